/**
 * Partition: one partition of a topic, a SegmentedLog whose record payloads are envelopes
 * (key, headers, value; format.ts) and whose frame timestamps are the records' timestamps.
 */
import { LogError } from './errors.js'
import { decodeEnvelopeAt, decodeEnvelopeRecord } from './format.js'
import type { EncodedRecords, ProducerRecord } from './producer-record.js'
import { BatchFlattener } from './record-iterator.js'
import { type SegmentedLog, checkScanOptions } from './segmented-log.js'

export interface ConsumedRecord {
  topic: string
  partition: number
  offset: number
  /** Milliseconds since the epoch. */
  timestamp: number
  key: Uint8Array | null
  value: Uint8Array
  headers: Record<string, Uint8Array>
}

export interface PartitionRecordsOptions {
  from?: number
  to?: number
  follow?: boolean
  signal?: AbortSignal
}

export interface PartitionRecordBatchesOptions extends PartitionRecordsOptions {
  /** Most records in one batch (default 1,024). */
  maxRecords?: number
}

/** What a consumer reads from: a Partition, or a stand-in for a subscribed topic that is gone. */
export interface PartitionReader {
  readonly startOffset: number
  readonly highWatermark: number
  read(offset: number): ConsumedRecord
  /**
   * Appends to `into` the records from `from` up to `end` (exclusive, at most the high watermark) or
   * the end of `from`'s segment; returns the next offset. A damaged record ends the batch before it,
   * or is thrown when it is the first (a consumer's poll reads through this, a batch at a time).
   */
  readInto(from: number, end: number, into: ConsumedRecord[]): number
  waitForRecords(offset: number, signal?: AbortSignal): Promise<void>
}

/** How `Partition.append` sends: through its topic (which appends or forwards to the owner). */
export type RecordAppender = (partition: number, record: ProducerRecord) => Promise<number>
/** Keeps the process alive while a forwarding handle waits for the owner's news; returns the release. */
export type KeepAlive = () => () => void

export class Partition implements PartitionReader {
  private logValue: SegmentedLog
  /** Handles that forward to an owner: the owner's high watermark as last announced; else Infinity. */
  private announcedEnd = Infinity
  private forwarded = false
  private readonly endWaiters = new Set<() => void>()

  constructor(
    readonly topic: string,
    readonly id: number,
    log: SegmentedLog,
    private readonly appender: RecordAppender,
    private readonly keepAlive: KeepAlive = () => () => undefined,
  ) {
    this.logValue = log
  }

  /** The partition's storage (a reader of the owner's files when this handle forwards to an owner). */
  get log(): SegmentedLog {
    return this.logValue
  }

  /** @internal Switches the storage handle: the owner's writer log, or a reader of the owner's files. */
  attach(log: SegmentedLog, forwarded: boolean, announcedEnd = Infinity): void {
    this.logValue = log
    this.forwarded = forwarded
    this.announcedEnd = announcedEnd
    this.wakeEndWaiters()
  }

  /** @internal The owner announced its high watermark (forwarding handles only). */
  announceEnd(end: number): void {
    if (!this.forwarded || end <= this.announcedEnd) return
    this.announcedEnd = end
    this.wakeEndWaiters()
  }

  /** Appends one record; resolves to its offset. */
  async append(record: ProducerRecord): Promise<number> {
    return this.appender(this.id, record)
  }

  /**
   * Appends this partition's share of encoded records to its writer log, atomically; resolves to the
   * first offset. The envelopes are copied before this returns, so the caller may then release them.
   */
  appendEncoded(records: EncodedRecords): Promise<number> {
    return this.logValue.appendFrom(records.countOf(this.id), records.source(this.id), { timestampMs: records.timestampsFor(this.id, Date.now()) })
  }

  /** The record at `offset` (value, key and header values are views, not copies). */
  read(offset: number): ConsumedRecord {
    if (this.forwarded && offset >= this.highWatermark && Number.isSafeInteger(offset)) {
      throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} is not below the high watermark ${this.highWatermark}`, { offset })
    }
    const { timestampMs, value } = this.logValue.readRecord(offset)
    return this.toConsumed(offset, timestampMs, value)
  }

  /** @internal PartitionReader.readInto: the consumers' batch read, decoding each envelope in place. */
  readInto(from: number, end: number, into: ConsumedRecord[]): number {
    const highWatermark = this.highWatermark
    const last = Math.min(end, highWatermark)
    if (from >= last) {
      if (from >= end) return from // nothing asked for
      throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${from} is not below the high watermark ${highWatermark}`, { offset: from })
    }
    return this.logValue.readBatchInto(from, last, consumedRecordOf, this, into)
  }

  private toConsumed(offset: number, timestampMs: number, value: Uint8Array): ConsumedRecord {
    return decodeEnvelopeRecord(this.topic, this.id, offset, timestampMs, value)
  }

  /** Records in offset order; with `follow`, waits for new ones until `signal` aborts. */
  records(options: PartitionRecordsOptions = {}): AsyncGenerator<ConsumedRecord, void, undefined> {
    return new BatchFlattener(this.recordBatches(options), () => (options as PartitionRecordsOptions | undefined)?.signal?.aborted === true)
  }

  /**
   * records() in arrays of up to `maxRecords` (default 1,024), the scan path (see
   * SegmentedLog.recordBatches). A damaged record ends the batch before it and is thrown by the next.
   */
  async *recordBatches(options: PartitionRecordBatchesOptions = {}): AsyncGenerator<ConsumedRecord[], void, undefined> {
    if (!this.forwarded) {
      for await (const batch of this.logValue.recordBatches(options)) yield batch.map((r) => this.toConsumed(r.offset, r.timestampMs, r.value))
      return
    }
    const { to, follow = false, signal, maxRecords } = checkScanOptions(options)
    let offset = options.from ?? this.startOffset
    for (;;) {
      if (signal?.aborted) return
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

  /** Records from `from` to `end` (exclusive), at least one; a damaged record ends the batch before it. */
  private readBatch(from: number, end: number): ConsumedRecord[] {
    const batch: ConsumedRecord[] = []
    this.readInto(from, end, batch)
    return batch
  }

  /** Resolves when the high watermark passes `offset`, the handle closes, or `signal` aborts. */
  waitForRecords(offset: number, signal?: AbortSignal): Promise<void> {
    if (!this.forwarded) return this.logValue.waitForRecords(offset, signal)
    if (this.highWatermark > offset || signal?.aborted || this.logValue.isClosed) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const release = this.keepAlive() // like a readOnly log's watcher: a waiting reader keeps its process alive
      const wake = (): void => {
        if (this.forwarded && this.highWatermark <= offset && !signal?.aborted && !this.logValue.isClosed) return
        this.endWaiters.delete(wake)
        signal?.removeEventListener('abort', wake)
        release()
        resolve()
      }
      this.endWaiters.add(wake)
      signal?.addEventListener('abort', wake)
    })
  }

  /** First offset whose timestamp is ≥ `timestampMs`, or undefined. */
  offsetForTimestamp(timestampMs: number): number | undefined {
    const offset = this.logValue.offsetForTimestamp(timestampMs)
    return offset === undefined || offset >= this.highWatermark ? undefined : offset
  }

  get startOffset(): number {
    return this.logValue.startOffset
  }

  get endOffset(): number {
    return this.forwarded ? this.highWatermark : this.logValue.endOffset
  }

  /** Offsets below this are acknowledged: what consumers may read. */
  get highWatermark(): number {
    if (!this.forwarded) return this.logValue.highWatermark
    if (this.announcedEnd > this.logValue.highWatermark) this.logValue.refresh()
    return Math.min(this.announcedEnd, this.logValue.highWatermark)
  }

  /** @internal Wakes waiters (the end moved, the handle switched or closed). */
  wakeEndWaiters(): void {
    for (const wake of [...this.endWaiters]) wake()
  }
}

/** The FrameMaker of a consumed record: the envelope decoded in place (format.ts), for `partition`. */
function consumedRecordOf(partition: Partition, offset: number, timestampMs: number, bytes: Uint8Array, start: number, length: number): ConsumedRecord {
  return decodeEnvelopeAt(partition.topic, partition.id, offset, timestampMs, bytes, start, length)
}
