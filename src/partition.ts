/**
 * Partition: one partition of a topic, a SegmentedLog whose record payloads are envelopes
 * (key, headers, value; format.ts) and whose frame timestamps are the records' timestamps.
 */
import { decodeEnvelope } from './format.js'
import { type EncodedRecords, type ProducerRecord, encodeRecords } from './producer-record.js'
import type { SegmentedLog } from './segmented-log.js'

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

export class Partition {
  constructor(
    readonly topic: string,
    readonly id: number,
    /** The partition's storage. */
    readonly log: SegmentedLog,
  ) {}

  /** Appends one record; resolves to its offset. */
  async append(record: ProducerRecord): Promise<number> {
    const encoded = encodeRecords([record], this.log.options.batchBytesMax)
    try {
      return this.appendEncoded(encoded)
    } finally {
      encoded.release()
    }
  }

  /**
   * Appends encoded records (those of `indexes`, else all) atomically, all or none; resolves to the
   * first offset. The envelopes are copied before this returns, so the caller may then release them.
   */
  appendEncoded(records: EncodedRecords, indexes?: readonly number[]): Promise<number> {
    return this.log.appendBatch(records.envelopes(indexes), { timestampMs: records.timestampsFor(indexes, Date.now()) })
  }

  /** The record at `offset` (value, key and header values are views, not copies). */
  read(offset: number): ConsumedRecord {
    const { timestampMs, value } = this.log.readRecord(offset)
    return this.toConsumed(offset, timestampMs, value)
  }

  private toConsumed(offset: number, timestampMs: number, value: Uint8Array): ConsumedRecord {
    const envelope = decodeEnvelope(value, offset)
    return {
      topic: this.topic,
      partition: this.id,
      offset,
      timestamp: timestampMs,
      key: envelope.key,
      value: envelope.value,
      headers: envelope.headers,
    }
  }

  /** Records in offset order; with `follow`, waits for new ones until `signal` aborts. */
  async *records(options: PartitionRecordsOptions = {}): AsyncGenerator<ConsumedRecord, void, undefined> {
    for await (const record of this.log.records(options)) yield this.toConsumed(record.offset, record.timestampMs, record.value)
  }

  /** First offset whose timestamp is ≥ `timestampMs`, or undefined. */
  offsetForTimestamp(timestampMs: number): number | undefined {
    return this.log.offsetForTimestamp(timestampMs)
  }

  get startOffset(): number {
    return this.log.startOffset
  }

  get endOffset(): number {
    return this.log.endOffset
  }

  /** Offsets below this are acknowledged: what consumers may read. */
  get highWatermark(): number {
    return this.log.highWatermark
  }
}
