/**
 * SegmentedLog: an append-only sequence of records numbered by contiguous offsets, kept in a
 * directory of segments. This module owns the log's life cycle (open, append, read, roll, cut,
 * retain, close); the bytes belong to format.ts, recovery to log-loader.ts, durability to
 * group-commit.ts.
 *
 * Invariants:
 * - segments are ordered and contiguous: segments[i].nextOffset === segments[i + 1].baseOffset;
 * - the writer's last segment is the only active one; the others are sealed and never cut in place;
 * - startOffset ≤ every readable offset < endOffset; offsets are never reused while the log is open.
 */
import fs from 'node:fs'
import path from 'node:path'
import { assert } from './assert.js'
import { LogError, ioError } from './errors.js'
import {
  CHECKPOINT_FILE,
  CLEAN_SHUTDOWN_FILE,
  FILE_HEADER_BYTES,
  FRAME_HEADER_BYTES,
  type PayloadSource,
  encodeCheckpoint,
  frameTimestampMs,
} from './format.js'
import { fsyncDirectory, writeFileAtomic } from './fs-util.js'
import { checkBatch, checkOffsetArgument, checkRecord, checkTimestamp, checkTimestamps, recordBytesLimit } from './append-checks.js'
import { GroupCommit, SyncRounds } from './group-commit.js'
import { DirectoryLock } from './lock.js'
import { type LoadedLog, type RecoveryReport, listBases, loadForReader, loadForWriter, readCheckpoint, readerVisibleEnd } from './log-loader.js'
import { type MmapApi, loadMmap, mmapLoadError } from './mmap.js'
import { BatchFlattener } from './record-iterator.js'
import { type ResolvedOptions, type SegmentedLogOptions, resolveOptions } from './options.js'
import { Segment, type SealedDescriptors } from './segment.js'
import { type FrameMaker, frameRecordOf } from './mapped-frames.js'
import { SegmentCache } from './segment-cache.js'

export interface LogRecord {
  offset: number
  timestampMs: number
  value: Uint8Array
}

export interface AppendOptions {
  /** The record's timestamp (ms since the epoch); default: now. For appendBatch, one for all or one per record. */
  timestampMs?: number | readonly number[]
}

export interface RecordsOptions {
  /** First offset (default: startOffset). */
  from?: number
  /** Stop before this offset (exclusive). */
  to?: number
  /** Wait for new records at the end instead of finishing. */
  follow?: boolean
  /** Ends the iteration (quietly) when aborted. */
  signal?: AbortSignal
}

export interface RecordBatchesOptions extends RecordsOptions {
  /** Most records in one batch (default 1,024); a batch also ends where a segment ends. */
  maxRecords?: number
}

const RECORD_BATCH_RECORDS_DEFAULT = 1024

/** Checks the options of records() and recordBatches() (here and in Partition); fills in defaults. */
export function checkScanOptions(options: RecordBatchesOptions): RecordBatchesOptions & { maxRecords: number } {
  const { from, to, maxRecords = RECORD_BATCH_RECORDS_DEFAULT } = options
  if (from !== undefined && (!Number.isSafeInteger(from) || from < 0)) throw new LogError('INVALID_ARGUMENT', `from must be an offset, got ${String(from)}`)
  if (to !== undefined && (!Number.isSafeInteger(to) || to < 0)) throw new LogError('INVALID_ARGUMENT', `to must be an offset, got ${String(to)}`)
  if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) {
    throw new LogError('INVALID_ARGUMENT', `maxRecords must be a positive integer, got ${String(maxRecords)}`)
  }
  return { ...options, maxRecords }
}

type State = 'open' | 'closing' | 'closed' | 'failed'
const READER_POLL_MS = 1000
/** How many times a reader reloads its view when the writer keeps moving under it before it reports. */
const READER_RELOADS_MAX = 3

/** Errors a reader sees when the writer deletes, cuts or rewrites files between two of its steps. */
function isReaderRace(error: unknown): boolean {
  if (error instanceof LogError) return error.code === 'IO_ERROR' || error.code === 'CORRUPT_RECORD' || error.code === 'CORRUPT_INDEX' || error.code === 'CORRUPT_FILE'
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ERR_BUFFER_OUT_OF_BOUNDS'
}
/** Longest a written record's index entry waits before it reaches the index file. */
const INDEX_FLUSH_DELAY_MS = 5

export class SegmentedLog {
  readonly dir: string
  readonly options: Readonly<ResolvedOptions>
  /** What opening found and repaired. */
  readonly recovery: RecoveryReport
  private segmentList: Segment[]
  private start: number
  private readonly mmap: MmapApi | undefined
  private readonly cache: SegmentCache
  private readonly lock: DirectoryLock | undefined
  private readonly commit: GroupCommit
  private state: State = 'open'
  private failure: LogError | undefined
  private flushScheduled = false
  private indexFlushTimer: NodeJS.Timeout | undefined
  /** Readers only: the end of the newest complete batch they can see. */
  private readerEnd: number | undefined
  private readonly rounds = new SyncRounds()
  /** Sealed segments' descriptors waiting for the next sync round, which fsyncs and closes them. */
  private sealedToSync: SealedDescriptors[] = []
  private followers = new Set<() => void>()
  private watcher: fs.FSWatcher | undefined
  private timers: NodeJS.Timeout[] = []
  private exclusive: Promise<unknown> = Promise.resolve()
  /** append()'s record as a payload source, reused from call to call. */
  private readonly single = new SingleValue()

  private constructor(dir: string, options: ResolvedOptions, mmap: MmapApi | undefined, lock: DirectoryLock | undefined, loaded: LoadedLog) {
    this.dir = dir
    this.options = Object.freeze(options)
    this.mmap = mmap
    this.lock = lock
    this.recovery = loaded.report
    this.segmentList = loaded.segments
    this.cache = new SegmentCache(options.openSegmentsMax, options.mappedBytesMax)
    const end = this.computeEnd()
    const first = this.segmentList[0]?.baseOffset ?? loaded.checkpointStartOffset ?? 0
    this.start = Math.min(Math.max(loaded.checkpointStartOffset ?? 0, first), end)
    this.commit = new GroupCommit(options.sync === 'always', end)
    if (!lock) this.updateReaderEnd()
  }

  /** Opens (creating, or recovering) the log in `dir`. */
  static async open(dir: string, options?: SegmentedLogOptions): Promise<SegmentedLog> {
    if (typeof dir !== 'string' || dir.length === 0) throw new LogError('INVALID_ARGUMENT', 'dir must be a non-empty string')
    const resolved = resolveOptions(options)
    const mmap = resolved.mmap === 'never' ? undefined : loadMmap()
    if (resolved.mmap === 'always' && !mmap) {
      throw new LogError('MMAP_UNAVAILABLE', 'mmap: "always" but the mmap addon (@riaskov/mmap-io) could not be loaded', {
        cause: mmapLoadError(),
      })
    }
    const absolute = path.resolve(dir)
    if (resolved.readOnly) {
      if (!fs.existsSync(absolute)) throw new LogError('INVALID_ARGUMENT', 'readOnly open of a directory that does not exist', { path: absolute })
      return new SegmentedLog(absolute, resolved, mmap, undefined, loadForReader(absolute))
    }
    try {
      fs.mkdirSync(absolute, { recursive: true })
    } catch (error) {
      throw ioError('could not create the log directory', error, absolute)
    }
    const lock = DirectoryLock.acquire(absolute)
    try {
      const log = new SegmentedLog(absolute, resolved, mmap, lock, loadForWriter(absolute, resolved.writeBufferBytes))
      log.startTimers()
      log.applyRetention()
      return log
    } catch (error) {
      lock.release()
      throw error
    }
  }

  // -------------------------------------------------------------------------------------------
  // Offsets and segments

  /** First offset still readable. */
  get startOffset(): number {
    return this.start
  }

  /** The offset the next append receives (the log end offset). */
  get endOffset(): number {
    return this.computeEnd()
  }

  /** Offsets below this are acknowledged under the sync mode (what records() and followers see). */
  get highWatermark(): number {
    return this.lock ? this.commit.acknowledgedEnd : this.computeEnd()
  }

  /** The segments, oldest first. */
  get segments(): readonly Segment[] {
    return this.segmentList
  }

  get isReadOnly(): boolean {
    return this.lock === undefined
  }

  get isClosed(): boolean {
    return this.state === 'closed'
  }

  /** Whether sealed segments are read through memory maps. */
  get usesMmap(): boolean {
    return this.mmap !== undefined
  }

  private computeEnd(): number {
    if (this.readerEnd !== undefined) return this.readerEnd
    const last = this.segmentList[this.segmentList.length - 1]
    return last ? last.nextOffset : this.start
  }

  private updateReaderEnd(): void {
    this.readerEnd = readerVisibleEnd(this.segmentList, this.start, this.mmap)
  }

  private get active(): Segment {
    const last = this.segmentList[this.segmentList.length - 1]
    assert(last && last.isActive, 'writer has an active segment')
    return last
  }

  /**
   * The segment holding `offset`: O(1) arithmetic when segments hold segmentRecordsMax records each
   * (the guess is checked), else a binary search over base offsets.
   */
  private segmentFor(offset: number): Segment {
    const segments = this.segmentList
    const first = segments[0]!
    const guess = segments[Math.floor((offset - first.baseOffset) / this.options.segmentRecordsMax)]
    if (guess && guess.baseOffset <= offset && offset < guess.nextOffset) return guess
    let low = 0
    let high = segments.length - 1
    while (low < high) {
      const middle = (low + high + 1) >>> 1
      if (segments[middle]!.baseOffset <= offset) low = middle
      else high = middle - 1
    }
    return segments[low]!
  }

  // -------------------------------------------------------------------------------------------
  // Appending

  /** Appends one record; resolves to its offset once acknowledged under the sync mode. */
  append(value: Uint8Array, options?: AppendOptions): Promise<number> {
    try {
      this.checkWritable()
      const now = Date.now()
      const timestampMs = checkTimestamp(options?.timestampMs, now)
      checkRecord(value, 0, this.options)
      const offset = this.computeEnd()
      const single = this.single
      single.value = value
      try {
        this.appendRecords(1, single, timestampMs, now)
      } finally {
        single.value = undefined
      }
      this.scheduleFlush()
      return this.commit.waitAcknowledged(offset + 1, offset)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Appends all records or none (also across a crash); resolves to the first offset. */
  appendBatch(values: readonly Uint8Array[], options?: AppendOptions): Promise<number> {
    try {
      this.checkWritable()
      const now = Date.now()
      const timestamps = checkBatch(values, options?.timestampMs, now, this.options)
      const first = this.computeEnd()
      this.appendRecords(values.length, new BatchValues(values), timestamps, now)
      this.scheduleFlush()
      return this.commit.waitAcknowledged(first + values.length, first)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * appendBatch for `count` records whose payloads `source` writes straight into the write buffer
   * (encoders such as the queue layer's envelopes skip an intermediate buffer and a copy).
   * Same limits, atomicity and acknowledgement as appendBatch.
   */
  appendFrom(count: number, source: PayloadSource, options?: AppendOptions): Promise<number> {
    try {
      this.checkWritable()
      if (!Number.isInteger(count) || count < 1 || count > this.options.batchRecordsMax) {
        throw new LogError('INVALID_ARGUMENT', `count must be an integer in [1, ${this.options.batchRecordsMax}], got ${String(count)}`)
      }
      const limit = recordBytesLimit(this.options)
      let bytes = 0
      for (let i = 0; i < count; i++) {
        const payloadBytes = source.payloadBytes(i)
        if (payloadBytes > limit) throw new LogError('RECORD_TOO_LARGE', `record ${i} has ${payloadBytes} bytes; the limit is ${limit}`)
        bytes += payloadBytes
      }
      if (bytes > this.options.batchBytesMax) {
        throw new LogError('RECORD_TOO_LARGE', `batch of ${bytes} bytes exceeds batchBytesMax ${this.options.batchBytesMax}`)
      }
      const now = Date.now()
      const timestamps = checkTimestamps(options?.timestampMs, count, now)
      const first = this.computeEnd()
      this.appendRecords(count, source, timestamps, now)
      this.scheduleFlush()
      return this.commit.waitAcknowledged(first + count, first)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Writes validated records into the active segment, rolling as needed; the last one ends the batch.
   * Runs of records go to the segment at once: the roll conditions are checked before each run, and
   * within one only the segment's bytes can call for a roll (the segment checks those): the record
   * count is bounded by the run's length, and the age (from the segment's first record, at `now`)
   * stays what it was once the segment holds a record, so a segment's first record goes alone.
   */
  private appendRecords(count: number, source: PayloadSource, timestamps: number | readonly number[], now: number): void {
    let active = this.active
    const { segmentRecordsMax, segmentBytesMax } = this.options
    try {
      for (let i = 0; i < count; ) {
        if (active.count > 0 && this.needsRoll(active, FRAME_HEADER_BYTES + source.payloadBytes(i), now)) active = this.roll()
        const room = active.count === 0 ? 1 : segmentRecordsMax - active.count
        i += active.appendFrames(source, i, Math.min(count, i + room), timestamps, count - 1, segmentBytesMax)
      }
    } catch (error) {
      throw this.fail(error)
    }
  }

  private needsRoll(active: Segment, frameBytes: number, now: number): boolean {
    return (
      active.count >= this.options.segmentRecordsMax ||
      active.bytes + frameBytes > this.options.segmentBytesMax ||
      active.ageMs(now) >= this.options.segmentAgeMsMax
    )
  }

  /**
   * Seals the active segment and starts a new one. The sealed files are fsynced by the next sync
   * round, in the background (an fsync of a whole segment may take long: the event loop must not
   * wait for it), and a round always follows a roll, whatever the sync mode.
   */
  private roll(): Segment {
    const sealed = this.active
    this.sealedToSync.push(sealed.sealForRoll())
    this.commit.markWritten(sealed.nextOffset)
    const next = Segment.create(this.dir, sealed.nextOffset, Date.now(), this.options.writeBufferBytes)
    fsyncDirectory(this.dir)
    this.segmentList.push(next)
    queueMicrotask(() => {
      this.startSync(true)
      this.applyRetention()
    })
    return next
  }

  private scheduleFlush(): void {
    if (this.options.sync === 'always' && this.rounds.takeSplit(this.computeEnd() - this.commit.writtenEnd)) {
      this.flush() // the first half of a large cohort starts its round now (group-commit.ts)
      return
    }
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() => this.flush())
  }

  /** Writes buffered records to the OS; with sync 'always' starts the shared fsync. */
  private flush(): void {
    this.flushScheduled = false
    if (this.state === 'failed' || this.state === 'closed') return
    try {
      if (this.active.flush(false)) this.scheduleIndexFlush()
    } catch (error) {
      this.fail(error)
      return
    }
    this.commit.markWritten(this.computeEnd())
    if (this.options.sync === 'always') this.startSync()
    else this.notifyFollowers()
  }

  /** Writes the active index's pending entries soon, so readers in other processes see them. */
  private scheduleIndexFlush(): void {
    if (this.indexFlushTimer) return
    this.indexFlushTimer = setTimeout(() => {
      this.indexFlushTimer = undefined
      if (this.state !== 'open') return
      try {
        this.active.flush(true)
      } catch (error) {
        this.fail(error)
      }
    }, INDEX_FLUSH_DELAY_MS)
    this.indexFlushTimer.unref()
  }

  /**
   * Starts one sync round, unless SYNC_ROUNDS_MAX run already (a round ending starts the next):
   * fdatasync of the active store plus fsync of every segment sealed since the last round, all in
   * parallel on the thread pool. When all succeed, everything written before the round began is
   * durable; it counts once every earlier round is done too (retireSyncRounds).
   */
  private startSync(force = false): void {
    if (!this.rounds.canStart || this.state === 'failed' || this.state === 'closed') return
    const target = this.commit.writtenEnd
    if (target <= this.rounds.coveredEnd(this.commit.durableEnd) && this.sealedToSync.length === 0 && !force) return
    const sealed = this.sealedToSync.splice(0)
    const round = this.rounds.begin(target, sealed.flatMap((seal) => [seal.storeFd, seal.indexFd]))
    const done = (error: Error | null): void => {
      round.failure ??= error
      if (--round.pending === 0) this.retireSyncRounds()
    }
    for (const fd of round.descriptors) fs.fsync(fd, done)
    this.active.syncStoreAsync(done)
  }

  /**
   * Retires finished rounds in the order they began: a later round may finish first, but the sealed
   * segments an earlier one fsyncs are not durable until it is done. Descriptors close only here,
   * so no fsync ever runs on a descriptor already closed (and perhaps reused).
   */
  private retireSyncRounds(): void {
    const durableBefore = this.commit.durableEnd
    let failure: Error | null = null
    for (const round of this.rounds.takeFinished()) {
      for (const fd of round.descriptors) fs.close(fd, () => {})
      failure ??= round.failure
      if (failure === null) this.commit.markDurable(round.target)
    }
    if (failure) {
      this.fail(ioError('fsync failed', failure, this.dir))
      return
    }
    this.rounds.noteReleased(this.commit.durableEnd - durableBefore)
    this.notifyFollowers()
    const unsynced = this.commit.writtenEnd > this.rounds.coveredEnd(this.commit.durableEnd)
    if ((unsynced && (this.commit.pendingDurable || this.options.sync === 'always')) || this.sealedToSync.length > 0) this.startSync()
  }

  /** fsyncs everything appended so far. */
  async sync(): Promise<void> {
    this.checkWritable()
    const end = this.computeEnd()
    this.flush()
    try {
      this.active.flush(true)
    } catch (error) {
      throw this.fail(error)
    }
    const durable = this.commit.waitDurable(end)
    this.startSync()
    await durable
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  /** The bytes of the record at `offset`. Sealed segments return a zero-copy view of the map. */
  read(offset: number): Uint8Array {
    const segment = this.segmentToRead(offset)
    const value = this.isReadOnly
      ? this.readRacingWriter(segment, offset, true)
      : segment.readPayload(offset, this.options.verifyChecksums, this.mmap, true)
    if (!segment.isActive) this.cache.touch(segment)
    return value
  }

  /** The record at `offset` with its timestamp. */
  readRecord(offset: number): LogRecord {
    const segment = this.segmentToRead(offset)
    if (!this.isReadOnly) {
      const record = segment.readRecord(offset, this.options.verifyChecksums, this.mmap, true)
      if (!segment.isActive) this.cache.touch(segment)
      return record
    }
    const frame = this.readRacingWriter(segment, offset, false)
    if (!segment.isActive) this.cache.touch(segment)
    return { offset, timestampMs: frameTimestampMs(frame), value: frame.subarray(FRAME_HEADER_BYTES) }
  }

  /** The segment holding `offset`, once the offset is checked to be readable. */
  private segmentToRead(offset: number): Segment {
    this.checkReadable()
    if (!Number.isSafeInteger(offset)) throw new LogError('INVALID_ARGUMENT', `offset must be a safe integer, got ${String(offset)}`)
    let end = this.computeEnd()
    if (offset >= end && this.isReadOnly) {
      this.refresh()
      end = this.computeEnd()
    }
    if (offset < this.start || offset >= end) throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${this.start}, ${end})`, { offset })
    return this.segmentFor(offset)
  }

  /**
   * A reader's read: the writer may delete (retention) or cut (truncate) the segment under it. On a
   * failure, look at the directory again: an offset that is gone is OFFSET_OUT_OF_RANGE; one still
   * there is read once more, and a second failure is real damage.
   */
  private readRacingWriter(first: Segment, offset: number, payloadOnly: boolean): Buffer {
    let segment = first
    for (let attempt = 0; ; attempt++) {
      try {
        if (offset < segment.baseOffset || offset >= segment.nextOffset) throw new LogError('IO_ERROR', 'the view of the segments is stale')
        return payloadOnly
          ? segment.readPayload(offset, this.options.verifyChecksums, this.mmap, false)
          : segment.readFrame(offset, this.options.verifyChecksums, this.mmap, false)
      } catch (error) {
        if (attempt >= READER_RELOADS_MAX || !isReaderRace(error)) throw error
        // A full reload, not the incremental refresh: a truncate followed by appends past the old
        // end leaves the count as it was, so only a fresh look at the files sees the new positions.
        this.reloadRacingWriter()
        if (offset < this.start || offset >= this.computeEnd()) {
          throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} was deleted or truncated by the writer`, { offset })
        }
        segment = this.segmentFor(offset)
      }
    }
  }

  /**
   * Records in offset order from `from` (default startOffset) up to `to` (exclusive) or the high
   * watermark; with `follow`, waits for new records until `signal` aborts. Damage is thrown.
   * Reads ahead in batches (recordBatches), so the iteration's await costs once per batch inside.
   */
  records(options: RecordsOptions = {}): AsyncGenerator<LogRecord, void, undefined> {
    // Arguments are checked on the first next(), as an async generator would check them.
    return new BatchFlattener(this.recordBatches(options), () => (options as RecordsOptions | undefined)?.signal?.aborted === true)
  }

  /**
   * records() in arrays of up to `maxRecords` (default 1,024) records, each array from one segment:
   * the scan path. Mapped segments are walked in place, each frame checked against its index entry
   * and its CRC-32C. A damaged record ends the batch before it and is thrown by the next one.
   */
  async *recordBatches(options: RecordBatchesOptions = {}): AsyncGenerator<LogRecord[], void, undefined> {
    this.checkReadable()
    const { to, follow = false, signal, maxRecords } = checkScanOptions(options)
    let offset = options.from ?? this.start
    for (;;) {
      if (signal?.aborted || this.state === 'closed') return
      if (this.isReadOnly) this.refresh()
      const end = Math.min(to ?? Infinity, this.highWatermark)
      while (offset < end) {
        const batch = this.readBatch(offset, Math.min(end, offset + maxRecords))
        offset += batch.length
        yield batch
        if (signal?.aborted) return
      }
      if ((to !== undefined && offset >= to) || !follow) return
      await this.waitForRecords(offset, signal)
    }
  }

  /**
   * The checked records from `from` up to `end` (exclusive) or the end of `from`'s segment; at least
   * one, else it throws. A damaged record ends the batch before it (or is thrown when it is first).
   */
  private readBatch(from: number, end: number): LogRecord[] {
    const batch: LogRecord[] = []
    this.readBatchInto(from, end, frameRecordOf, undefined, batch)
    return batch
  }

  /**
   * @internal The batch read under records() and the consumers: appends to `into` the checked
   * records from `from` up to `end` (exclusive) or the end of `from`'s segment, each made by `make`
   * from its frame in place (Partition decodes envelopes straight from the map, with no LogRecord or
   * payload view in between). Returns the next offset not read. A damaged record (or one `make`
   * throws for) ends the batch before it, or is thrown when it is the first.
   */
  readBatchInto<T, C>(from: number, end: number, make: FrameMaker<T, C>, context: C, into: T[]): number {
    const segment = this.segmentToRead(from)
    if (this.isReadOnly) {
      // A reader checks each record against a writer that may cut or delete files under it.
      const last = Math.min(end, segment.nextOffset)
      let offset = from
      for (; offset < last; offset++) {
        try {
          const { timestampMs, value } = this.readRecord(offset)
          into.push(make(context, offset, timestampMs, value, 0, value.length))
        } catch (error) {
          if (offset === from) throw error
          break
        }
      }
      return offset
    }
    const next = segment.readBatch(from, end, this.options.verifyChecksums, this.mmap, true, make, context, into)
    if (!segment.isActive) this.cache.touch(segment)
    return next
  }

  /** Resolves when the high watermark passes `offset`, the log closes, or `signal` aborts. */
  waitForRecords(offset: number, signal?: AbortSignal): Promise<void> {
    if (this.highWatermark > offset || this.state !== 'open' || signal?.aborted) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        if (this.highWatermark <= offset && this.state === 'open' && !signal?.aborted) return
        this.followers.delete(wake)
        signal?.removeEventListener('abort', wake)
        if (this.followers.size === 0) this.stopWatching()
        resolve()
      }
      this.followers.add(wake)
      signal?.addEventListener('abort', wake)
      if (this.isReadOnly) this.startWatching()
    })
  }

  private notifyFollowers(): void {
    for (const wake of [...this.followers]) wake()
  }

  /** First offset whose timestamp is ≥ `timestampMs` (by the index's running maximum), or undefined. */
  offsetForTimestamp(timestampMs: number): number | undefined {
    this.checkReadable()
    if (typeof timestampMs !== 'number' || Number.isNaN(timestampMs)) throw new LogError('INVALID_ARGUMENT', 'timestampMs must be a number')
    const segments = this.segmentList
    let low = 0
    let high = segments.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.lastTimestampOf(segments[middle]!) >= timestampMs) high = middle
      else low = middle + 1
    }
    const segment = segments[low]
    if (!segment) return undefined
    const offset = Math.max(segment.searchTimestamp(timestampMs, segment.isActive ? undefined : this.mmap, !this.isReadOnly), this.start)
    return offset < this.computeEnd() ? offset : undefined
  }

  private lastTimestampOf(segment: Segment): number {
    const timestampMs = segment.lastTimestampMs(this.mmap, !this.isReadOnly)
    if (!segment.isActive) this.cache.touch(segment)
    return timestampMs
  }

  // -------------------------------------------------------------------------------------------
  // Cutting, retention

  /** Removes `offset` and everything after it. */
  truncate(offset: number): Promise<void> {
    return this.runExclusive(async () => {
      this.checkWritable()
      checkOffsetArgument(offset, 'offset')
      if (offset < this.start || offset > this.computeEnd()) {
        throw new LogError('OFFSET_OUT_OF_RANGE', `truncate offset ${offset} is outside [${this.start}, ${this.computeEnd()}]`, { offset })
      }
      await this.sync()
      if (offset === this.computeEnd()) return
      try {
        this.cutAt(offset)
      } catch (error) {
        throw this.fail(error)
      }
      this.commit.truncate(offset, new LogError('OFFSET_OUT_OF_RANGE', 'record truncated before it was acknowledged', { offset }))
    })
  }

  private cutAt(offset: number): void {
    // Records below startOffset may still sit in the first segment: mark the last one that stays either way.
    if (offset > this.segmentList[0]!.baseOffset) this.segmentFor(offset - 1).markBatchEnd(offset - 1, this.mmap)
    const target = this.segmentFor(offset)
    while (this.segmentList[this.segmentList.length - 1] !== target) {
      const newest = this.segmentList.pop()!
      this.cache.forget(newest)
      if (newest.isActive) newest.deleteActive()
      else newest.delete()
    }
    if (target.isActive) {
      target.truncateActive(offset)
    } else {
      // A sealed segment becomes active again: cut by copy, since readers may have it mapped.
      this.cache.forget(target)
      target.openForRead(undefined, true)
      const kept = offset - target.baseOffset
      const entries = keptEntries(target, kept)
      const validBytes = kept === 0 ? FILE_HEADER_BYTES : entries.validBytes
      target.release()
      const createdMs = target.createdMs || Date.now()
      const active = Segment.activate(this.dir, target.baseOffset, createdMs, entries.buffer, validBytes, {
        writeBufferBytes: this.options.writeBufferBytes,
        rewriteIndex: true,
        storeMayBeMapped: true,
      })
      this.segmentList[this.segmentList.length - 1] = active
    }
    this.active.syncNow()
    fsyncDirectory(this.dir)
  }

  /** Removes whole segments that lie entirely below `offset`; records below it stop being readable. */
  deleteBefore(offset: number): Promise<number> {
    return this.runExclusive(async () => {
      this.checkWritable()
      checkOffsetArgument(offset, 'offset')
      if (offset > this.computeEnd()) {
        throw new LogError('OFFSET_OUT_OF_RANGE', `deleteBefore offset ${offset} is past the end ${this.computeEnd()}`, { offset })
      }
      await this.sync()
      if (offset <= this.start) return 0
      try {
        writeFileAtomic(path.join(this.dir, CHECKPOINT_FILE), encodeCheckpoint(offset))
        this.start = offset
        if (this.active.count > 0 && this.active.nextOffset <= offset) this.roll()
        return this.deleteOldest((segment) => segment.nextOffset <= offset)
      } catch (error) {
        throw this.fail(error)
      }
    })
  }

  /** Deletes sealed segments from the oldest while `shouldDelete` holds; returns how many. */
  private deleteOldest(shouldDelete: (segment: Segment, totalBytes: number) => boolean): number {
    let totalBytes = this.segmentList.reduce((sum, segment) => sum + segment.bytes, 0)
    let deleted = 0
    while (this.segmentList.length > 1) {
      const oldest = this.segmentList[0]!
      if (oldest.isActive || oldest.isFollowed || !shouldDelete(oldest, totalBytes)) break
      this.cache.forget(oldest)
      oldest.delete()
      this.segmentList.shift()
      totalBytes -= oldest.bytes
      deleted++
    }
    if (deleted > 0) {
      this.start = Math.max(this.start, this.segmentList[0]!.baseOffset)
      fsyncDirectory(this.dir)
    }
    return deleted
  }

  /** Deletes the oldest segments past retentionBytesMax or retentionMs; the active one never. */
  private applyRetention(): void {
    if (this.state !== 'open' || this.isReadOnly) return
    const { retentionBytesMax, retentionMs } = this.options
    if (retentionBytesMax === Infinity && retentionMs === Infinity) return
    const now = Date.now()
    try {
      this.deleteOldest(
        (segment, totalBytes) => totalBytes > retentionBytesMax || (retentionMs !== Infinity && now - this.lastTimestampOf(segment) > retentionMs),
      )
    } catch (error) {
      this.fail(error)
    }
  }

  // -------------------------------------------------------------------------------------------
  // Readers of a log another handle writes

  /** readOnly handles: picks up what the writer has written since (new records, rolls, deletions). */
  refresh(): void {
    if (!this.isReadOnly || this.state !== 'open') return
    for (let attempt = 0; ; attempt++) {
      try {
        return attempt === 0 ? this.followWriter() : this.reload()
      } catch (error) {
        // The writer moved between two of our steps (a segment deleted or cut, an index rewritten):
        // look again from scratch. Damage that stays is thrown after a few looks.
        if (attempt >= READER_RELOADS_MAX || !isReaderRace(error)) throw error
      }
    }
  }

  private reloadRacingWriter(): void {
    for (let attempt = 0; ; attempt++) {
      try {
        return this.reload()
      } catch (error) {
        if (attempt >= READER_RELOADS_MAX || !isReaderRace(error)) throw error
      }
    }
  }

  /** refresh for timers and watch events: nobody could catch what it throws; the next read reports it. */
  private refreshQuietly(): void {
    try {
      this.refresh()
    } catch {
      // the next read or records() refreshes again and throws what is still wrong
    }
  }

  private followWriter(): void {
    const bases = listBases(this.dir)
    const tail = this.segmentList[this.segmentList.length - 1]
    if (!tail) return this.reload()
    const known = new Set(this.segmentList.map((segment) => segment.baseOffset))
    const older = bases.filter((base) => base <= tail.baseOffset)
    if (older[older.length - 1] !== tail.baseOffset || !older.every((base) => known.has(base))) return this.reload()
    while (this.segmentList.length > 0 && !bases.includes(this.segmentList[0]!.baseOffset)) {
      const gone = this.segmentList.shift()!
      this.cache.forget(gone)
      gone.release()
    }
    this.start = Math.max(this.start, this.segmentList[0]?.baseOffset ?? this.start) // never behind the segments, even if a step below throws
    const newer = bases.filter((base) => base > tail.baseOffset)
    const countBefore = tail.count
    if (tail.updateFollowed(newer.length > 0 ? newer[0]! - tail.baseOffset : undefined) < countBefore) return this.reload()
    for (let i = 0; i < newer.length; i++) {
      const base = newer[i]!
      const next = newer[i + 1]
      this.segmentList.push(next === undefined ? Segment.followed(this.dir, base) : Segment.sealed(this.dir, base, 0, next - base, 0))
    }
    this.updateReaderEnd()
    const checkpoint = readCheckpoint(this.dir) ?? 0
    this.start = Math.min(Math.max(this.start, checkpoint, this.segmentList[0]?.baseOffset ?? this.start), this.computeEnd())
    this.notifyFollowers()
  }

  private reload(): void {
    const loaded = loadForReader(this.dir) // first: if it throws, the current view stays whole
    this.cache.closeAll()
    for (const segment of this.segmentList) segment.release()
    this.segmentList = loaded.segments
    this.updateReaderEnd()
    const first = this.segmentList[0]?.baseOffset ?? 0
    this.start = Math.min(Math.max(loaded.checkpointStartOffset ?? 0, first), this.computeEnd())
    this.notifyFollowers()
  }

  private startWatching(): void {
    if (this.watcher || this.state !== 'open') return
    try {
      // Persistent: a reader waiting for records keeps the process alive, as a listening socket does.
      this.watcher = fs.watch(this.dir, { persistent: true }, () => this.refreshQuietly())
      this.watcher.on('error', () => this.stopWatching())
    } catch {
      // no inotify: the slow poll below still wakes followers
    }
    this.timers.push(setInterval(() => this.refreshQuietly(), READER_POLL_MS))
  }

  private stopWatching(): void {
    this.watcher?.close()
    this.watcher = undefined
    if (this.isReadOnly) {
      for (const timer of this.timers) clearInterval(timer)
      this.timers = []
    }
  }

  // -------------------------------------------------------------------------------------------
  // Life cycle

  /** Flushes, syncs and releases everything. Later calls on the log throw LOG_CLOSED. */
  close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return this.exclusive.then(() => undefined)
    return this.runExclusive(async () => {
      const failed = this.state === 'failed'
      if (!failed && !this.isReadOnly) await this.sync().catch(() => undefined)
      const clean = this.state === 'open' && !this.isReadOnly
      this.state = 'closing'
      for (const timer of this.timers) clearInterval(timer)
      this.timers = []
      clearTimeout(this.indexFlushTimer)
      if (this.rounds.inFlight === 0) for (const seal of this.sealedToSync.splice(0)) closeDescriptors(seal)
      this.stopWatching()
      this.cache.closeAll()
      // Whatever fails below (the last fsync, the clean-shutdown marker), the handle ends closed and
      // the lock is released: the next open then sees no marker and recovers, as after a crash.
      let failure: unknown
      for (const segment of this.segmentList) {
        try {
          if (segment.isActive && clean && failure === undefined) segment.closeActive()
          else if (segment.isActive) segment.abandon()
          else segment.release()
        } catch (error) {
          failure = error
          segment.abandon()
        }
      }
      try {
        if (clean && failure === undefined) writeFileAtomic(path.join(this.dir, CLEAN_SHUTDOWN_FILE), Buffer.alloc(0))
      } catch (error) {
        failure = error
      } finally {
        this.lock?.release()
        this.state = 'closed'
        this.notifyFollowers()
      }
      if (failure !== undefined) throw new LogError('LOG_FAILED', `close could not make the log durable: ${(failure as Error).message}`, { cause: failure, path: this.dir })
    })
  }

  private startTimers(): void {
    if (this.options.sync === 'interval') {
      const timer = setInterval(() => this.startSync(), this.options.syncIntervalMs)
      timer.unref()
      this.timers.push(timer)
    }
    const { retentionBytesMax, retentionMs, segmentAgeMsMax, retentionCheckIntervalMs } = this.options
    if (retentionMs !== Infinity || retentionBytesMax !== Infinity || segmentAgeMsMax !== Infinity) {
      const timer = setInterval(() => {
        this.applyRetention()
      }, retentionCheckIntervalMs)
      timer.unref()
      this.timers.push(timer)
    }
  }

  private runExclusive<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.exclusive.then(operation)
    this.exclusive = result.catch(() => undefined)
    return result
  }

  /** Marks the log failed after a write, fsync or file error: nothing more is acknowledged. */
  private fail(error: unknown): LogError {
    if (error instanceof LogError && error.code !== 'IO_ERROR') return error
    if (this.state === 'failed') return this.failure!
    const failure = new LogError('LOG_FAILED', `the log failed and must be reopened: ${(error as Error).message}`, { cause: error, path: this.dir })
    this.failure = failure
    this.state = 'failed'
    this.commit.fail(failure)
    this.notifyFollowers()
    return failure
  }

  private checkReadable(): void {
    if (this.state === 'closed' || this.state === 'closing') throw new LogError('LOG_CLOSED', 'the log is closed', { path: this.dir })
  }

  private checkWritable(): void {
    this.checkReadable()
    if (this.state === 'failed') throw this.failure!
    if (this.isReadOnly) throw new LogError('READ_ONLY', 'this handle was opened readOnly', { path: this.dir })
  }
}

/** appendBatch's records as a payload source: each copied into the write buffer. */
class BatchValues implements PayloadSource {
  constructor(private readonly values: readonly Uint8Array[]) {}

  payloadBytes(index: number): number {
    return this.values[index]!.length
  }

  write(buf: Buffer, at: number, index: number): void {
    buf.set(this.values[index]!, at)
  }
}

/** append()'s record as a payload source (index 0). */
class SingleValue implements PayloadSource {
  value: Uint8Array | undefined

  payloadBytes(): number {
    return this.value!.length
  }

  write(buf: Buffer, at: number): void {
    buf.set(this.value!, at)
  }
}

function closeDescriptors(seal: SealedDescriptors): void {
  fs.close(seal.storeFd, () => {})
  fs.close(seal.indexFd, () => {})
}

function keptEntries(segment: Segment, kept: number): { buffer: Buffer; validBytes: number } {
  const buffer = segment.indexSnapshot(kept)
  if (kept === 0) return { buffer, validBytes: FILE_HEADER_BYTES }
  return { buffer, validBytes: segment.frameEnd(kept - 1) }
}
