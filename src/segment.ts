/**
 * Segment: one store file and one index file, named by the 20-digit base offset of their first record.
 *
 * A segment is either active (the one being appended to: writable store and in-memory index) or
 * sealed (read-only, opened on demand, mapped when mmap is available, closed again by the log's
 * cache). The two paths stay separate: only the active segment's files are ever cut in place.
 *
 * Reads never trust the index alone: the frame an entry points to must carry the expected relative
 * offset and length, and its CRC-32C must match. When a sealed segment's index disagrees with its
 * store, the index is rebuilt from the store once; damage in the store itself is CORRUPT_RECORD.
 */
import fs from 'node:fs'
import path from 'node:path'
import { assert } from './assert.js'
import { LogError, ioError } from './errors.js'
import {
  FILE_HEADER_BYTES,
  FLAG_BATCH_END,
  markFrameBatchEnd,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  INDEX_SUFFIX,
  type PayloadSource,
  STORE_SUFFIX,
  frameChecksumOk,
  framePayloadBytes,
  frameRelativeOffset,
  frameTimestampMs,
  segmentFileName,
} from './format.js'
import { FollowedTail } from './followed-tail.js'
import { type MmapApi } from './mmap.js'
import { type FrameMaker, type FrameRecord, MappedFrames, uniformFrameBytes } from './mapped-frames.js'
import { wordsOver } from './crc32c.js'
import { Index, encodeIndexFile, entriesFormChain } from './offset-index.js'
import { replaceWithPrefix, scanStore } from './recovery.js'
import { writeAll, writeFileAtomic } from './fs-util.js'
import { Store } from './store.js'

/**
 * Index entries written to the file in chunks of this many (64 KiB) or when the log's index timer
 * fires: a second write(2) per flush cost about a fifth of append throughput. The index file is
 * derived data (recovery rebuilds it from the store), so only readers in other processes see the lag.
 */
const INDEX_FLUSH_ENTRIES = 4096

/** Descriptors of a just-sealed segment, still open so that they can be fsynced. */
export interface SealedDescriptors {
  storeFd: number
  indexFd: number
}

export interface SegmentFiles {
  storePath: string
  indexPath: string
}

export function segmentFiles(dir: string, baseOffset: number): SegmentFiles {
  return {
    storePath: path.join(dir, segmentFileName(baseOffset, STORE_SUFFIX)),
    indexPath: path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX)),
  }
}

export class Segment {
  readonly storePath: string
  readonly indexPath: string
  private recordCount: number
  private storeBytes: number
  private store: Store | undefined
  private index: Index | undefined
  private active: boolean
  private timestampMax: number | undefined
  /**
   * When the active segment's age starts, for segmentAgeMsMax: its first record's timestamp, but
   * never before the segment was created (an import of old timestamps must not roll every record).
   */
  private firstRecordAgeBaseMs: number | undefined
  /** When the log's segment cache last used this segment (its LRU clock). */
  lastUse = 0
  /** A reader's own index of another handle's active segment (read by pread; grows on refresh). */
  private tail: FollowedTail | undefined
  /** Word views over the maps of a sealed, mapped segment: the fast read path (mapped-frames.ts). */
  private frames: MappedFrames | undefined
  /**
   * A sealed segment read by pread whose frames all have one size: that size (header included), else
   * 0. Record r's frame then starts at FILE_HEADER_BYTES + r * size, so a read is one pread instead of
   * two (the index entry, then the frame). Found from the entries the open already reads to check the
   * chain; the frame read is still checked against its relative offset, length and CRC-32C.
   */
  private preadFrameBytes = 0

  private constructor(
    readonly baseOffset: number,
    /** Creation time from the store header (0 for a sealed segment not yet opened). */
    readonly createdMs: number,
    files: SegmentFiles,
    state: { count: number; bytes: number; active: boolean; store?: Store; index?: Index },
  ) {
    this.storePath = files.storePath
    this.indexPath = files.indexPath
    this.recordCount = state.count
    this.storeBytes = state.bytes
    this.active = state.active
    this.store = state.store
    this.index = state.index
  }

  /** Creates an empty active segment (new store and index files, each holding only its header). */
  static create(dir: string, baseOffset: number, createdMs: number, writeBufferBytes: number): Segment {
    const files = segmentFiles(dir, baseOffset)
    const store = Store.create(files.storePath, baseOffset, createdMs, writeBufferBytes)
    const index = Index.create(files.indexPath, baseOffset, createdMs)
    store.syncNow()
    index.sync()
    return new Segment(baseOffset, createdMs, files, { count: 0, bytes: FILE_HEADER_BYTES, active: true, store, index })
  }

  /**
   * Makes an existing segment the active one, holding exactly the records described by `entries`
   * (already validated against the store) in its first `validBytes` bytes. Extra bytes are cut;
   * `rewriteIndex` replaces the index file with `entries`.
   */
  static activate(
    dir: string,
    baseOffset: number,
    createdMs: number,
    entries: Buffer,
    validBytes: number,
    options: { writeBufferBytes: number; rewriteIndex: boolean; storeMayBeMapped: boolean },
  ): Segment {
    const files = segmentFiles(dir, baseOffset)
    const fileBytes = fs.statSync(files.storePath).size
    if (fileBytes > validBytes && options.storeMayBeMapped) replaceWithPrefix(files.storePath, validBytes)
    const store = Store.openWritable(files.storePath, baseOffset, createdMs, validBytes, options.writeBufferBytes)
    if (fileBytes > validBytes && !options.storeMayBeMapped) store.truncate(validBytes)
    const index = options.rewriteIndex
      ? Index.rewrite(files.indexPath, baseOffset, createdMs, entries)
      : Index.openWritable(files.indexPath, baseOffset, entries)
    const count = entries.length / INDEX_ENTRY_BYTES
    const segment = new Segment(baseOffset, createdMs, files, { count, bytes: validBytes, active: true, store, index })
    if (count > 0) {
      segment.timestampMax = index.entry(count - 1).timestampMs
      segment.firstRecordAgeBaseMs = Math.max(createdMs, index.entry(0).timestampMs)
    }
    return segment
  }

  /** A sealed segment, known by name and record count; its files are opened on the first read. */
  static sealed(dir: string, baseOffset: number, createdMs: number, count: number, bytes: number): Segment {
    return new Segment(baseOffset, createdMs, segmentFiles(dir, baseOffset), { count, bytes, active: false })
  }

  /** A reader's view of the newest segment, which another handle is appending to. */
  static followed(dir: string, baseOffset: number): Segment {
    const files = segmentFiles(dir, baseOffset)
    const tail = FollowedTail.open(files.storePath, files.indexPath, baseOffset)
    const segment = new Segment(baseOffset, 0, files, { count: tail.count, bytes: 0, active: false })
    segment.tail = tail
    return segment
  }

  /**
   * Readers: picks up what the writer appended to the followed segment, or, when the writer has
   * sealed it (`sealedCount` given: the next segment's base minus this one's), turns it sealed.
   * Returns the record count.
   */
  updateFollowed(sealedCount?: number): number {
    assert(this.tail)
    this.timestampMax = undefined
    if (sealedCount !== undefined) {
      this.tail = undefined
      this.recordCount = sealedCount
      this.release()
      return sealedCount
    }
    this.recordCount = this.tail.refresh()
    if (this.store) {
      this.store.refreshBytes()
      this.index = this.tail.index()
    }
    return this.recordCount
  }

  get isFollowed(): boolean {
    return this.tail !== undefined
  }

  /** Number of records. */
  get count(): number {
    return this.recordCount
  }

  /** The offset after this segment's last record. */
  get nextOffset(): number {
    return this.baseOffset + this.recordCount
  }

  /** Store file bytes (header included; buffered frames included for the active segment). */
  get bytes(): number {
    return this.active && this.store ? this.store.bytes : this.storeBytes
  }

  /** The active segment's age at `nowMs`, counted from its first record (0 when empty). */
  ageMs(nowMs: number): number {
    return this.firstRecordAgeBaseMs === undefined ? 0 : nowMs - this.firstRecordAgeBaseMs
  }

  get isActive(): boolean {
    return this.active
  }

  /** Whether the segment's files are open for reading now. */
  get isOpen(): boolean {
    return this.store !== undefined
  }

  get mappedBytes(): number {
    return this.store?.mappedBytes ?? 0
  }

  /** The largest record timestamp in the segment (0 when empty); reads the index of a sealed segment. */
  lastTimestampMs(mmap: MmapApi | undefined, canRepair: boolean): number {
    if (this.timestampMax === undefined) {
      if (this.recordCount === 0) return 0
      this.openForRead(mmap, canRepair)
      assert(this.index)
      this.timestampMax = this.index.entry(this.recordCount - 1).timestampMs
    }
    return this.timestampMax
  }

  // -------------------------------------------------------------------------------------------
  // Active path

  /**
   * Appends records [from, to) of `source` (the caller has checked limits, offsets and the record
   * count); stops early, before a record that would take the store past `bytesMax`, though never
   * before the first. Record `batchEnd` ends its batch. Returns how many records it appended.
   */
  appendFrames(source: PayloadSource, from: number, to: number, timestamps: number | readonly number[], batchEnd: number, bytesMax: number): number {
    assert(this.active && this.store && this.index, 'append to a sealed segment')
    const relativeOffset = this.recordCount
    const before = this.timestampMax ?? 0
    const count = this.store.appendFrames(source, from, to, relativeOffset, timestamps, batchEnd, bytesMax, this.index, before)
    let timestampMax = before
    if (typeof timestamps === 'number') timestampMax = Math.max(before, timestamps)
    else for (let i = from; i < from + count; i++) timestampMax = Math.max(timestampMax, timestamps[i]!)
    this.timestampMax = timestampMax
    if (relativeOffset === 0) this.firstRecordAgeBaseMs = Math.max(this.createdMs, typeof timestamps === 'number' ? timestamps : timestamps[from]!)
    this.recordCount = relativeOffset + count
    return count
  }

  /**
   * Writes buffered frames to the store file. Index entries follow when `withIndex` (store first:
   * an index entry on disk never points past the store), else only once enough have gathered.
   * Returns whether index entries remain unwritten.
   */
  flush(withIndex = true): boolean {
    assert(this.active && this.store && this.index)
    this.store.flush()
    if (withIndex || this.index.unflushedCount >= INDEX_FLUSH_ENTRIES) this.index.flush()
    return this.index.unflushedCount > 0
  }

  /** Starts an fdatasync of the store; `done` runs when it completes. */
  syncStoreAsync(done: (error: Error | null) => void): void {
    assert(this.active && this.store)
    this.store.syncAsync(done)
  }

  /** fsyncs store and index now. */
  syncNow(): void {
    assert(this.active && this.store && this.index)
    this.store.syncNow()
    this.index.sync()
  }

  /**
   * Seals the active segment for a roll: everything is written out (not yet fsynced) and the open
   * descriptors are handed to the caller, which fsyncs them in the background and closes them.
   * The segment reopens read-only (mapped) on its next read.
   */
  sealForRoll(): SealedDescriptors {
    assert(this.active && this.store && this.index)
    this.store.flush()
    this.index.flush()
    const storeFd = this.store.descriptor
    const indexFd = this.index.descriptor
    assert(storeFd !== undefined && indexFd !== undefined)
    this.storeBytes = this.store.bytes
    this.store.close(true)
    this.index.close(true, true)
    this.store = undefined
    this.index = undefined
    this.active = false
    return { storeFd, indexFd }
  }

  /** Closes the active segment cleanly: written, fsynced, released. */
  closeActive(): void {
    assert(this.active && this.store && this.index)
    this.syncNow()
    this.storeBytes = this.store.bytes
    this.store.close()
    this.index.close()
    this.store = undefined
    this.index = undefined
    this.active = false
  }

  // -------------------------------------------------------------------------------------------
  // Read path

  /**
   * Opens a sealed segment for reading (idempotent) and checks that its index agrees with its store:
   * the index must hold one entry per record and its last entry must end exactly at the store's end.
   * A disagreeing index is rebuilt from the store (written back when `canRepair`).
   */
  openForRead(mmap: MmapApi | undefined, canRepair: boolean): void {
    if (this.store) return
    if (this.tail) {
      // Never map a file that is still growing; the reader's own index covers what it saw.
      this.store = Store.openReadOnly(this.storePath, undefined)
      this.index = this.tail.index()
      return
    }
    const store = Store.openReadOnly(this.storePath, mmap)
    let index: Index
    try {
      index = Index.openSealed(this.indexPath, this.baseOffset, mmap)
    } catch (error) {
      // A damaged or missing index is rebuilt from the store; anything else (an unknown version,
      // an I/O failure) is reported, and the file is left as it is.
      const rebuildable = error instanceof LogError && (error.code === 'CORRUPT_FILE' || isMissing(error))
      if (!rebuildable) {
        store.close()
        throw error
      }
      index = this.rebuildIndex(canRepair, mmap)
    }
    this.store = store
    this.storeBytes = store.bytes
    this.index = index
    const entries = index.entriesView()
    if (!this.indexAgreesWithStore(entries)) {
      index.close()
      this.index = this.rebuildIndex(canRepair, mmap)
    }
    this.frames = this.mapFrames(store, this.index)
    this.preadFrameBytes = this.frames === undefined && this.index === index ? uniformEntries(entries, this.recordCount) : 0
  }

  /** The fast read path when both files are mapped (or the index was rebuilt in memory). */
  private mapFrames(store: Store, index: Index): MappedFrames | undefined {
    const map = store.mappedFile
    const entries = index.fixedEntries
    if (map === undefined || entries === undefined) return undefined
    // A rebuilt index may hold fewer entries than the segment has records (those past damage).
    return MappedFrames.over({ store, index }, this.baseOffset, Math.min(index.count, this.recordCount), map, entries)
  }

  /** The fast read path, if the files it was made from are still the ones open. */
  private get mappedFrames(): MappedFrames | undefined {
    const frames = this.frames
    return frames !== undefined && frames.storeOwner === this.store && frames.indexOwner === this.index ? frames : undefined
  }

  /** Closes a sealed segment's files; mapped views already handed out stay valid. */
  release(): void {
    if (this.active) return
    this.store?.close()
    this.index?.close()
    this.store = undefined
    this.index = undefined
  }

  /**
   * The checked payload of `offset`: readFrame without the header. Mapped segments check the frame
   * in place and make one view, the payload's; damage is reported as readFrame reports it.
   */
  readPayload(offset: number, verifyChecksum: boolean, mmap: MmapApi | undefined, canRepair: boolean): Buffer {
    const payload = this.mappedFrames?.payloadOf(offset - this.baseOffset, verifyChecksum)
    return payload ?? this.readFrame(offset, verifyChecksum, mmap, canRepair).subarray(FRAME_HEADER_BYTES)
  }

  /** The checked record of `offset` with its timestamp, as readPayload reads it. */
  readRecord(offset: number, verifyChecksum: boolean, mmap: MmapApi | undefined, canRepair: boolean): FrameRecord {
    const frames = this.mappedFrames
    if (frames !== undefined) {
      const position = frames.checkedPosition(offset - this.baseOffset, verifyChecksum)
      if (position >= 0) return { offset, timestampMs: frames.timestampMsAt(position), value: frames.payloadAt(position) }
    }
    const frame = this.readFrame(offset, verifyChecksum, mmap, canRepair)
    return { offset, timestampMs: frameTimestampMs(frame), value: frame.subarray(FRAME_HEADER_BYTES) }
  }

  /**
   * Appends to `into` the checked records from `from` up to `end` (exclusive) or this segment's
   * end, whichever comes first, each made by `make`; returns the next offset. Throws at a damaged
   * record (or one `make` throws for) when `into` got nothing yet from this call; otherwise stops
   * before it (the next call, starting there, throws).
   */
  readBatch<T, C>(
    from: number,
    end: number,
    verifyChecksum: boolean,
    mmap: MmapApi | undefined,
    canRepair: boolean,
    make: FrameMaker<T, C>,
    context: C,
    into: T[],
  ): number {
    const last = Math.min(end, this.nextOffset)
    assert(from >= this.baseOffset && from < last, 'a batch starts inside the segment')
    if (!this.store) this.openForRead(mmap, canRepair)
    const lengthBefore = into.length
    try {
      let offset = this.mappedFrames?.readBatch(from, last, verifyChecksum, make, context, into) ?? from
      for (; offset < last; offset++) {
        const frame = this.readFrame(offset, verifyChecksum, mmap, canRepair)
        into.push(make(context, offset, frameTimestampMs(frame), frame, FRAME_HEADER_BYTES, frame.length - FRAME_HEADER_BYTES))
      }
      return offset
    } catch (error) {
      // A damaged frame, or one `make` refused (a bad envelope): every record before it was pushed.
      if (into.length === lengthBefore) throw error
      return from + (into.length - lengthBefore)
    }
  }

  /**
   * The checked frame (header and payload) of `offset`. Mapped segments return a view of the map.
   * Throws CORRUPT_RECORD when the record is damaged; never returns damaged bytes.
   */
  readFrame(offset: number, verifyChecksum: boolean, mmap: MmapApi | undefined, canRepair: boolean): Buffer {
    const relativeOffset = offset - this.baseOffset
    // Split and with constant messages: a template string here was built on every read.
    assert(relativeOffset >= 0, 'offset below the segment')
    assert(relativeOffset < this.recordCount, 'offset past the segment')
    if (!this.store) this.openForRead(mmap, canRepair)
    // The index was checked when the segment opened; a frame that does not match it is damage in
    // the store itself, whatever order records are read in.
    const frame = this.locate(relativeOffset)
    if (frame === undefined) {
      throw new LogError('CORRUPT_RECORD', `record ${offset} is missing or damaged in ${path.basename(this.storePath)}`, {
        offset,
        path: this.storePath,
      })
    }
    if (verifyChecksum && !frameChecksumOk(frame)) {
      throw new LogError('CORRUPT_RECORD', `checksum mismatch for record ${offset}`, { offset, path: this.storePath })
    }
    return frame
  }

  /** First offset in this segment whose timestamp is ≥ `timestampMs`, or nextOffset if none. */
  searchTimestamp(timestampMs: number, mmap: MmapApi | undefined, canRepair: boolean): number {
    if (this.recordCount === 0) return this.nextOffset
    this.openForRead(mmap, canRepair)
    assert(this.index)
    return this.baseOffset + Math.min(this.index.searchTimestamp(timestampMs), this.recordCount)
  }

  /** The frame an index entry points to, if it is the frame of `relativeOffset`; undefined otherwise. */
  private locate(relativeOffset: number): Buffer | undefined {
    const index = this.index!
    const store = this.store!
    if (relativeOffset >= index.count) return undefined
    const frameBytes = this.preadFrameBytes
    // A frame read is exactly its header plus the payload length asked for.
    const frame =
      frameBytes > 0
        ? store.readFrame(FILE_HEADER_BYTES + relativeOffset * frameBytes, frameBytes - FRAME_HEADER_BYTES)
        : store.readFrame(index.locate(relativeOffset), index.lastPayloadBytes)
    if (frame === undefined) return undefined
    const payloadBytes = frame.length - FRAME_HEADER_BYTES
    if (frameRelativeOffset(frame) !== relativeOffset || framePayloadBytes(frame) !== payloadBytes) return undefined
    return frame
  }

  private indexAgreesWithStore(entries: Buffer): boolean {
    assert(this.store && this.index)
    if (this.index.count !== this.recordCount) return false
    return entriesFormChain(entries, this.recordCount, this.store.bytes)
  }

  private rebuildIndex(canRepair: boolean, mmap: MmapApi | undefined): Index {
    // A sealed segment may end inside a batch that continues in the next segment, so every valid
    // frame counts here, not only those up to the last BATCH_END. Frames past the damage stay out:
    // reading them throws CORRUPT_RECORD.
    const rebuilt = scanStore(this.storePath, this.recordCount).entries
    if (!canRepair) return Index.inMemory(this.indexPath, this.baseOffset, rebuilt)
    const createdMs = Store.inspect(this.storePath).createdMs
    writeFileAtomic(this.indexPath, encodeIndexFile(this.baseOffset, createdMs, rebuilt))
    return Index.openSealed(this.indexPath, this.baseOffset, mmap)
  }

  // -------------------------------------------------------------------------------------------
  // Cutting and deleting

  /** Removes both files. Readers holding maps keep them (the inode lives until they drop it). */
  delete(): void {
    assert(!this.active, 'the active segment is never deleted')
    this.release()
    try {
      fs.rmSync(this.storePath, { force: true })
      fs.rmSync(this.indexPath, { force: true })
    } catch (error) {
      throw ioError('could not delete segment', error, this.storePath)
    }
  }

  /** Copies the index entries of the first `count` records (the segment must be open). */
  indexSnapshot(count: number): Buffer {
    assert(this.index && count <= this.index.count)
    return this.index.snapshot().subarray(0, count * INDEX_ENTRY_BYTES)
  }

  /** Store position just past the frame of `relativeOffset` (the segment must be open). */
  frameEnd(relativeOffset: number): number {
    assert(this.index)
    const entry = this.index.entry(relativeOffset)
    return entry.position + FRAME_HEADER_BYTES + entry.payloadBytes
  }

  /** Closes the active segment's files without writing or syncing anything (the log failed). */
  abandon(): void {
    this.store?.close(false, false)
    this.index?.close(false)
    this.store = undefined
    this.index = undefined
    this.active = false
  }

  /** Removes both files of the active segment (used when a truncate empties the log). */
  deleteActive(): void {
    assert(this.active && this.store && this.index)
    this.store.close()
    this.index.close()
    this.store = undefined
    this.index = undefined
    this.active = false
    this.delete()
  }

  /** Cuts the active segment so that `offset` becomes its next offset. */
  /**
   * Before a truncate: makes the record at `offset` (the last one to stay) end a batch, durably. Done
   * first, so that whichever step of the cut a crash interrupts (newer segments deleted, this one
   * cut), recovery, which keeps records up to the last BATCH_END, keeps it and everything before it.
   * A sealed store is rewritten in place: the same bytes count, so maps of it stay valid.
   */
  markBatchEnd(offset: number, mmap: MmapApi | undefined): void {
    const frame = this.readFrame(offset, true, mmap, true)
    if ((frame.readUInt16LE(12) & FLAG_BATCH_END) !== 0) return
    const copy = Buffer.from(frame)
    markFrameBatchEnd(copy)
    const header = copy.subarray(0, FRAME_HEADER_BYTES)
    const position = this.frameEnd(offset - this.baseOffset) - frame.length
    if (this.store?.isWritable) {
      this.store.rewriteFrameHeader(position, header)
      this.store.syncNow()
      return
    }
    rewriteInPlace(this.storePath, header, position)
  }

  truncateActive(offset: number): void {
    assert(this.active && this.store && this.index)
    const relativeOffset = offset - this.baseOffset
    assert(relativeOffset >= 0 && relativeOffset <= this.recordCount)
    if (relativeOffset === this.recordCount) return
    const position = this.index.entry(relativeOffset).position
    this.store.truncate(position)
    this.index.truncate(relativeOffset)
    this.recordCount = relativeOffset
    this.timestampMax = relativeOffset === 0 ? undefined : this.index.entry(relativeOffset - 1).timestampMs
    if (relativeOffset === 0) this.firstRecordAgeBaseMs = undefined
  }
}

function rewriteInPlace(file: string, bytes: Uint8Array, position: number): void {
  let fd: number | undefined
  try {
    fd = fs.openSync(file, 'r+')
    writeAll(fd, bytes, position)
    fs.fdatasyncSync(fd)
  } catch (error) {
    throw ioError('could not rewrite a frame header', error, file)
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

function isMissing(error: LogError): boolean {
  return (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
}

/** uniformFrameBytes over index entries held as bytes (0 when they cannot be viewed as words). */
function uniformEntries(entries: Buffer, count: number): number {
  const words = wordsOver(entries)
  return words === undefined ? 0 : uniformFrameBytes(words, count)
}
