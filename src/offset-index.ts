/**
 * Index: one segment's offset index, a file of fixed-size entries after a file header, so the entry
 * of relative offset r is found by arithmetic (O(1), no search, no scan).
 *
 * Three backings share one interface:
 * - writable (the active segment): entries live in a growable in-memory buffer that is also the
 *   source of the file's tail; `flush()` writes the entries not yet written.
 * - mapped (a sealed segment with mmap): a read-only map of the whole file.
 * - pread (a sealed segment without mmap, or a reader following another process's active segment).
 *
 * Invariant: entry positions strictly increase and timestamps never decrease (they are a running
 * maximum). Index bytes are never trusted on their own: every read checks the frame they point to
 * (see Segment.read), and a segment whose index disagrees with its store is rebuilt from the store.
 */
import fs from 'node:fs'
import { assert } from './assert.js'
import { LogError, ioError } from './errors.js'
import {
  FILE_HEADER_BYTES,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  INDEX_MAGIC,
  type IndexEntry,
  decodeFileHeader,
  decodeIndexEntry,
  encodeFileHeader,
  indexEntryPayloadBytes,
  indexEntryPosition,
  putIndexEntryWords,
} from './format.js'
import { wordsOf } from './crc32c.js'
import { readAt, writeAll, writeFileAtomic } from './fs-util.js'
import { type MmapApi, mapReadOnly } from './mmap.js'

const INITIAL_CAPACITY_ENTRIES = 1024

/**
 * The entry buffer of the last writable index closed in this thread (at a roll or a close), kept for
 * the next writable index: a fresh index grows its buffer by doubling, which copies and touches new
 * memory (about a tenth of appendBatch at 100 B, measured), while a writer that rolls or reopens
 * needs the same size again. One buffer, at most SPARE_ENTRIES_BYTES_MAX; its bytes past the entries
 * in use are never read or written to a file.
 */
let spareEntries: Buffer | undefined
const SPARE_ENTRIES_BYTES_MAX = 32 * 1024 * 1024

/** A buffer for at least `bytes` bytes of entries: the spare when it is large enough, else a new one. */
function takeEntryBuffer(bytes: number): Buffer {
  const spare = spareEntries
  if (spare !== undefined && spare.length >= bytes) {
    spareEntries = undefined
    return spare
  }
  return Buffer.allocUnsafe(bytes)
}

function offerEntryBuffer(buffer: Buffer): void {
  if (buffer.length > SPARE_ENTRIES_BYTES_MAX) return
  if (spareEntries === undefined || spareEntries.length < buffer.length) spareEntries = buffer
}

export class Index {
  /** Entries in memory (writable or rebuilt) or a view of the map past the header; undefined for pread. */
  private entries: Buffer | undefined
  /** A writable index's entries as words (format.ts putIndexEntryWords). */
  private entryWords: Int32Array | undefined
  private fd: number | undefined
  private entryCount: number
  private flushedCount: number
  private readonly writable: boolean

  private constructor(
    readonly path: string,
    readonly baseOffset: number,
    backing: { entries?: Buffer; fd?: number; count: number; flushedCount: number; writable: boolean },
  ) {
    this.entries = backing.entries
    this.fd = backing.fd
    this.entryCount = backing.count
    this.flushedCount = backing.flushedCount
    this.writable = backing.writable
    if (this.writable && this.entries) {
      assert(this.entries.byteOffset % 4 === 0, 'writable entries are word-aligned')
      this.entryWords = wordsOf(this.entries)
    }
  }

  /** Creates a new, empty index file (header only) and returns it writable. */
  static create(path: string, baseOffset: number, createdMs: number): Index {
    const header = Buffer.alloc(FILE_HEADER_BYTES)
    encodeFileHeader(header, 0, { magic: INDEX_MAGIC, baseOffset, createdMs })
    fs.rmSync(path, { force: true }) // a reader may still map an old file of this name: never shrink it
    const fd = openFile(path, 'wx+')
    writeAll(fd, header, 0)
    return Index.writableFrom(path, baseOffset, fd, Buffer.alloc(0), 0)
  }

  /**
   * Writes `entries` (already validated against the store) as the complete index of a segment,
   * replacing whatever the file held, and returns it writable. Used after recovery.
   */
  static rewrite(path: string, baseOffset: number, createdMs: number, entries: Buffer): Index {
    writeFileAtomic(path, encodeIndexFile(baseOffset, createdMs, entries))
    return Index.openWritable(path, baseOffset, entries)
  }

  /** Opens an index file to append to, after its entries were checked against the store. */
  static openWritable(path: string, baseOffset: number, entries: Buffer): Index {
    const fd = openFile(path, 'r+')
    const count = entries.length / INDEX_ENTRY_BYTES
    return Index.writableFrom(path, baseOffset, fd, entries, count)
  }

  private static writableFrom(path: string, baseOffset: number, fd: number, entries: Buffer, count: number): Index {
    const capacity = Math.max(INITIAL_CAPACITY_ENTRIES, count * 2)
    const grown = takeEntryBuffer(capacity * INDEX_ENTRY_BYTES)
    entries.copy(grown, 0, 0, count * INDEX_ENTRY_BYTES)
    return new Index(path, baseOffset, { entries: grown, fd, count, flushedCount: count, writable: true })
  }

  /** A read-only index over entries held in memory (a reader's rebuild of a damaged index). */
  static inMemory(path: string, baseOffset: number, entries: Buffer): Index {
    const count = entries.length / INDEX_ENTRY_BYTES
    return new Index(path, baseOffset, { entries, count, flushedCount: count, writable: false })
  }

  /**
   * Opens a sealed segment's index read-only, by map when `mmap` is given, else by pread.
   * Returns the index and the number of whole entries in the file; the caller checks that number.
   */
  static openSealed(path: string, baseOffset: number, mmap: MmapApi | undefined): Index {
    const fd = openFile(path, 'r')
    try {
      const fileBytes = fs.fstatSync(fd).size
      decodeFileHeader(readAt(fd, FILE_HEADER_BYTES, 0), 0, INDEX_MAGIC, path)
      const count = Math.floor((fileBytes - FILE_HEADER_BYTES) / INDEX_ENTRY_BYTES)
      if (mmap && count > 0) {
        const map = mapReadOnly(mmap, fd, FILE_HEADER_BYTES + count * INDEX_ENTRY_BYTES)
        fs.closeSync(fd)
        const entries = map.subarray(FILE_HEADER_BYTES)
        return new Index(path, baseOffset, { entries, count, flushedCount: count, writable: false })
      }
      return new Index(path, baseOffset, { fd, count, flushedCount: count, writable: false })
    } catch (error) {
      closeQuietly(fd)
      throw error
    }
  }

  /** Reads the header of an index file and its whole-entry count without keeping it open. */
  static inspect(path: string): { baseOffset: number; createdMs: number; count: number; fileBytes: number } {
    const fd = openFile(path, 'r')
    try {
      const fileBytes = fs.fstatSync(fd).size
      const header = decodeFileHeader(readAt(fd, FILE_HEADER_BYTES, 0), 0, INDEX_MAGIC, path)
      const count = Math.max(0, Math.floor((fileBytes - FILE_HEADER_BYTES) / INDEX_ENTRY_BYTES))
      return { baseOffset: header.baseOffset, createdMs: header.createdMs, count, fileBytes }
    } finally {
      closeQuietly(fd)
    }
  }

  get count(): number {
    return this.entryCount
  }

  /** Entries appended but not yet written to the file. */
  get unflushedCount(): number {
    return this.entryCount - this.flushedCount
  }

  /** The entry of `relativeOffset` (0 ≤ relativeOffset < count). */
  entry(relativeOffset: number): IndexEntry {
    assert(relativeOffset >= 0 && relativeOffset < this.entryCount, `relative offset ${relativeOffset} outside index`)
    const at = relativeOffset * INDEX_ENTRY_BYTES
    if (this.entries) return decodeIndexEntry(this.entries, at)
    assert(this.fd !== undefined)
    const bytes = readAt(this.fd, INDEX_ENTRY_BYTES, FILE_HEADER_BYTES + at)
    if (bytes.length < INDEX_ENTRY_BYTES) {
      throw new LogError('CORRUPT_INDEX', `index entry ${relativeOffset} is past the end of the file`, { path: this.path })
    }
    return decodeIndexEntry(bytes, 0)
  }

  /**
   * Position and payload length of `relativeOffset`'s frame, packed for the read path without an
   * object: `position` is returned and `lastPayloadBytes` holds the length until the next call.
   */
  locate(relativeOffset: number): number {
    if (this.entries) {
      const at = relativeOffset * INDEX_ENTRY_BYTES
      this.lastPayloadBytes = indexEntryPayloadBytes(this.entries, at)
      return indexEntryPosition(this.entries, at)
    }
    const entry = this.entry(relativeOffset)
    this.lastPayloadBytes = entry.payloadBytes
    return entry.position
  }

  /** Payload length found by the last `locate`. */
  lastPayloadBytes = 0

  /** Largest timestamp in the segment (0 when empty). */
  get lastTimestampMs(): number {
    return this.entryCount === 0 ? 0 : this.entry(this.entryCount - 1).timestampMs
  }

  /** First relative offset whose (running-maximum) timestamp is ≥ `timestampMs`, or count if none. */
  searchTimestamp(timestampMs: number): number {
    let low = 0
    let high = this.entryCount
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.entry(middle).timestampMs >= timestampMs) high = middle
      else low = middle + 1
    }
    return low
  }

  append(position: number, payloadBytes: number, timestampMs: number): void {
    assert(this.entries && this.entryWords, 'append to a read-only index')
    const at = this.entryCount * INDEX_ENTRY_BYTES
    if (at + INDEX_ENTRY_BYTES > this.entries.length) this.grow()
    putIndexEntryWords(this.entryWords!, this.entries!, at, position, payloadBytes, timestampMs)
    this.entryCount++
  }

  /** Writes the entries appended since the last flush to the file. */
  flush(): void {
    if (this.flushedCount === this.entryCount) return
    assert(this.writable && this.entries && this.fd !== undefined)
    const from = this.flushedCount * INDEX_ENTRY_BYTES
    const to = this.entryCount * INDEX_ENTRY_BYTES
    try {
      writeAll(this.fd, this.entries.subarray(from, to), FILE_HEADER_BYTES + from)
    } catch (error) {
      throw ioError('index write failed', error, this.path)
    }
    this.flushedCount = this.entryCount
  }

  /** Forgets entries from `relativeOffset` on, in memory and in the file (writable only). */
  truncate(relativeOffset: number): void {
    assert(this.writable && this.fd !== undefined)
    assert(relativeOffset >= 0 && relativeOffset <= this.entryCount)
    this.entryCount = relativeOffset
    this.flushedCount = Math.min(this.flushedCount, relativeOffset)
    try {
      fs.ftruncateSync(this.fd, FILE_HEADER_BYTES + relativeOffset * INDEX_ENTRY_BYTES)
    } catch (error) {
      throw ioError('index truncate failed', error, this.path)
    }
  }

  sync(): void {
    if (this.fd === undefined || !this.writable) return
    this.flush()
    try {
      fs.fsyncSync(this.fd)
    } catch (error) {
      throw ioError('index fsync failed', error, this.path)
    }
  }

  /** A read-only index's entries when mapped or in memory (they never move); undefined otherwise. */
  get fixedEntries(): Buffer | undefined {
    return this.writable ? undefined : this.entries
  }

  /** The entries without copying when they are in memory or mapped; read from the file otherwise. */
  entriesView(): Buffer {
    if (this.entries) return this.entries.subarray(0, this.entryCount * INDEX_ENTRY_BYTES)
    return this.snapshot()
  }

  /** A copy of the entries (the active segment's index handed to a sealed reader, or a test). */
  snapshot(): Buffer {
    if (this.entries) return Buffer.from(this.entries.subarray(0, this.entryCount * INDEX_ENTRY_BYTES))
    assert(this.fd !== undefined)
    return readAt(this.fd, this.entryCount * INDEX_ENTRY_BYTES, FILE_HEADER_BYTES)
  }

  /** The file descriptor (writable or pread backing), handed over on roll; undefined once closed. */
  get descriptor(): number | undefined {
    return this.fd
  }

  close(flushFirst = true, keepFd = false): void {
    if (this.writable && flushFirst) this.flush()
    if (this.fd !== undefined && !keepFd) closeQuietly(this.fd)
    // Nothing else holds a writable index's buffer (entriesView serves sealed indexes; snapshot copies).
    if (this.writable && this.entries) offerEntryBuffer(this.entries)
    this.fd = undefined
    this.entries = undefined
    this.entryWords = undefined
    this.entryCount = 0
  }

  private grow(): void {
    assert(this.entries)
    const grown = takeEntryBuffer(Math.max(INITIAL_CAPACITY_ENTRIES * INDEX_ENTRY_BYTES, this.entries.length * 2))
    this.entries.copy(grown, 0, 0, this.entryCount * INDEX_ENTRY_BYTES)
    offerEntryBuffer(this.entries)
    this.entries = grown
    this.entryWords = wordsOf(grown)
  }
}

/**
 * Whether `count` entries describe the store exactly: the first frame starts after the header,
 * each starts where the previous one ended, timestamps never decrease, and the last frame ends at
 * `storeBytes`. Pure arithmetic over the index (no store reads), so every index can be checked
 * before it is trusted: junk, zero padding or a stale entry anywhere breaks the chain.
 */
export function entriesFormChain(entries: Buffer, count: number, storeBytes: number): boolean {
  if (entries.length < count * INDEX_ENTRY_BYTES) return false
  let expectedPosition = FILE_HEADER_BYTES
  let previousTimestampMs = 0
  for (let relative = 0; relative < count; relative++) {
    const entry = decodeIndexEntry(entries, relative * INDEX_ENTRY_BYTES)
    if (entry.position !== expectedPosition || entry.timestampMs < previousTimestampMs) return false
    previousTimestampMs = entry.timestampMs
    expectedPosition = entry.position + FRAME_HEADER_BYTES + entry.payloadBytes
  }
  return expectedPosition === storeBytes
}

/** A whole index file: header followed by `entries`. */
export function encodeIndexFile(baseOffset: number, createdMs: number, entries: Buffer): Buffer {
  const file = Buffer.alloc(FILE_HEADER_BYTES + entries.length)
  encodeFileHeader(file, 0, { magic: INDEX_MAGIC, baseOffset, createdMs })
  entries.copy(file, FILE_HEADER_BYTES)
  return file
}

export function openFile(path: string, flags: string): number {
  try {
    return fs.openSync(path, flags)
  } catch (error) {
    throw ioError(`open failed`, error, path)
  }
}

export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd)
  } catch {
    // already closed or never fully opened: nothing to release
  }
}
