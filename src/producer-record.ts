/**
 * What producers hand to Topic.send / Partition.append, checked, placed and encoded into envelopes
 * in one pass over each record: every field is read once, checked, and written into the scratch of
 * the partition the record goes to (format.ts's EnvelopeWriter). A bad record throws before any log
 * is touched, so a refused batch writes nothing; the logs then copy the finished envelopes into their
 * write buffers (SegmentedLog.appendFrom with `source(partition)`).
 *
 * Each partition's scratch is framed: a frame header's worth of bytes before each envelope, so its
 * envelopes lie as the store's frames will and a run of them is copied at once (EnvelopeRun). A batch
 * spread over partitions is thus written partition by partition without ever copying one envelope
 * alone. The forwarded body (owner-client.ts) is the same scratches, with each gap holding the
 * record's size and timestamp.
 *
 * The scratches are shared between batches: a batch is encoded and handed to its logs' appendFrom
 * (or copied into a forwarded body) synchronously, then released for the next one.
 */
import { LogError } from './errors.js'
import { assert } from './assert.js'
import { EnvelopeWriter, FRAME_HEADER_BYTES, HEADERS_NAME_TOO_LONG, HEADERS_TOO_MANY, HEADERS_VALUE_BAD, type PayloadSource, stageKey, stagedKeyBytes } from './format.js'
import { murmur2Range, partitionForHash } from './murmur2.js'

export type Bytes = Uint8Array | string

export interface ProducerRecord {
  value: Bytes
  key?: Bytes | null
  headers?: Record<string, Bytes>
  /** Milliseconds since the epoch; default: append time. */
  timestamp?: number
  /** Explicit partition; otherwise the key decides (murmur2), otherwise records are spread. */
  partition?: number
}

/** Where the records of a batch go (topic.ts decides the policy's inputs). */
export interface Placement {
  partitionCount: number
  /** Every record goes here (Partition.append), whatever it asks. */
  forced: number | undefined
  /** Where keyless records without a partition go this batch (the turn is taken only if one does). */
  spread: number
  /** Checks an explicit partition (UNKNOWN_PARTITION); returns it. */
  check(partition: number): number
}

/** A scratch buffer kept between batches: grown by a large batch, dropped back after it. */
const SCRATCH_BYTES_INITIAL = 256 * 1024
const SCRATCH_BYTES_KEPT_MAX = 4 * 1024 * 1024
/** Marks "not given" in the per-record timestamps: given timestamps are never negative. */
const NO_TIMESTAMP = -1

/** `headerName`, when given, names the header whose value was bad. */
function badBytes(value: unknown, what: string, index: number, headerName?: string): LogError {
  const field = headerName === undefined ? what : `${what} '${headerName}'`
  return new LogError('INVALID_ARGUMENT', `record ${index}: ${field} must be a Uint8Array or a string, got ${value === null ? 'null' : typeof value}`)
}

/** One partition's envelopes of a batch, framed and back to back in its own scratch. */
class PartitionEnvelopes {
  writer = new EnvelopeWriter(SCRATCH_BYTES_INITIAL)
  /** Envelope i is bytes [ends[i] + FRAME_HEADER_BYTES, ends[i + 1]) of the scratch. */
  readonly ends: number[] = [0]
  /** The batch index of each envelope, kept only when a batch may span partitions (else envelope i is record i). */
  readonly indexes: number[] = []
  /** Per envelope, NO_TIMESTAMP for append time; filled only once one record of the batch gives one. */
  readonly timestampsMs: number[] = []
  hasTimestamps = false
  /** The batch (EncodedRecords.batchNumber) this share belongs to. */
  batch = -1

  reset(bytesMax: number): void {
    this.writer.reset(bytesMax, FRAME_HEADER_BYTES)
    this.ends.length = 1
    this.indexes.length = 0
    this.timestampsMs.length = 0
    this.hasTimestamps = false
  }

  get count(): number {
    return this.ends.length - 1
  }
}

/** The checked and encoded records of one batch, by partition. */
export class EncodedRecords {
  private parts: (PartitionEnvelopes | undefined)[] = []
  /** The partitions records went to, in the order each was first used. */
  readonly partitions: number[] = []
  /** Whether a keyless record took the spread partition (the caller then moves its turn on). */
  spreadUsed = false
  private recordCount = 0
  private partBytesMax = 0
  /** Counts encode() calls: a partition's share is of this batch when its `batch` is this. */
  private batchNumber = 0
  /** The share the previous record went to (most batches go to one partition). */
  private lastPart: PartitionEnvelopes | undefined
  private lastPartition = -1
  /** Whether the shares keep their records' batch indexes (the batch may span partitions). */
  private keepsIndexes = false

  get count(): number {
    return this.recordCount
  }

  /** Partition `partition`'s share: how many records, and their batch indexes in order. */
  countOf(partition: number): number {
    return this.part(partition).count
  }

  /** The batch indexes of partition `partition`'s records, or undefined when it holds the whole batch in order. */
  indexesOf(partition: number): readonly number[] | undefined {
    return this.partitions.length === 1 ? undefined : this.part(partition).indexes
  }

  /** Partition `partition`'s envelopes as a payload source for SegmentedLog.appendFrom. Valid until release(). */
  source(partition: number): PayloadSource {
    const part = this.part(partition)
    return new EnvelopeRun(part.writer.bytes, part.ends)
  }

  /** The timestamps for appendFrom: `now` for all, or one per record of the partition's share. */
  timestampsFor(partition: number, now: number): number | number[] {
    const part = this.part(partition)
    if (!part.hasTimestamps) return now
    return part.timestampsMs.map((timestampMs) => (timestampMs === NO_TIMESTAMP ? now : timestampMs))
  }

  /**
   * Partition `partition`'s framed scratch, bytes [0, end): each envelope i preceded by
   * FRAME_HEADER_BYTES free bytes at ends[i] (the forwarded body fills them; see owner-client.ts).
   */
  framedOf(partition: number): { bytes: Buffer; ends: readonly number[] } {
    const part = this.part(partition)
    return { bytes: part.writer.bytes, ends: part.ends }
  }

  /** Checks, places and encodes `records`; `bytesMax` bounds each partition's envelope bytes. */
  encode(records: readonly unknown[], bytesMax: number, placement: Placement): void {
    this.partitions.length = 0
    this.batchNumber++
    this.lastPartition = -1
    this.keepsIndexes = placement.forced === undefined && placement.partitionCount > 1
    this.spreadUsed = false
    this.recordCount = records.length
    this.partBytesMax = bytesMax + records.length * FRAME_HEADER_BYTES
    for (let index = 0; index < records.length; index++) this.encodeRecord(records[index], index, placement)
  }

  /** Hands the scratches to the next batch; this one must not be read again. */
  release(): void {
    for (const partition of this.partitions) {
      const part = this.parts[partition]!
      if (part.writer.bytes.length > SCRATCH_BYTES_KEPT_MAX) part.writer = new EnvelopeWriter(SCRATCH_BYTES_INITIAL)
    }
    idle = this
  }

  private part(partition: number): PartitionEnvelopes {
    const part = this.parts[partition]
    assert(part !== undefined && part.batch === this.batchNumber, 'a partition of this batch')
    return part
  }

  /** The share of `partition`, started (its scratch reset) when the batch first uses it. */
  private startedPart(partition: number): PartitionEnvelopes {
    let part = this.parts[partition]
    if (part === undefined) this.parts[partition] = part = new PartitionEnvelopes()
    if (part.batch !== this.batchNumber) {
      part.batch = this.batchNumber
      part.reset(this.partBytesMax)
      this.partitions.push(partition)
    }
    this.lastPart = part
    this.lastPartition = partition
    return part
  }

  private encodeRecord(record: unknown, index: number, placement: Placement): void {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new LogError('INVALID_ARGUMENT', `record ${index} must be an object with a value`)
    }
    const { value, key, headers, timestamp, partition } = record as ProducerRecord
    if (value === undefined) throw new LogError('INVALID_ARGUMENT', `record ${index} has no value`)
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) throw badBytes(value, 'value', index)
    const hasKey = key !== undefined && key !== null
    if (hasKey && typeof key !== 'string' && !(key instanceof Uint8Array)) throw badBytes(key, 'key', index)
    if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0)) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: timestamp must be a non-negative integer (ms), got ${String(timestamp)}`)
    }
    if (partition !== undefined && (typeof partition !== 'number' || !Number.isInteger(partition))) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: partition must be an integer, got ${String(partition)}`)
    }
    if (headers !== undefined && (headers === null || typeof headers !== 'object' || Array.isArray(headers))) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: headers must be an object`)
    }
    // The partition first: a keyed record's place is the murmur2 of its key's bytes, which a string
    // key has only once encoded (staged, then copied into the envelope rather than encoded twice).
    let target: number
    let staged = false
    if (placement.forced !== undefined) target = placement.forced
    else if (partition !== undefined) target = placement.check(partition)
    else if (placement.partitionCount === 1) target = 0
    else if (!hasKey) {
      target = placement.spread
      this.spreadUsed = true
    } else if (typeof key === 'string') {
      const keyBytes = stageKey(key, this.partBytesMax)
      target = partitionForHash(murmur2Range(stagedKeyBytes(), 0, keyBytes), placement.partitionCount)
      staged = true
    } else {
      target = partitionForHash(murmur2Range(key, 0, key.length), placement.partitionCount)
    }
    const part = target === this.lastPartition ? this.lastPart! : this.startedPart(target)
    const end = part.writer.envelope(hasKey ? key : undefined, headers, value, staged)
    if (end < 0) throw headersRefused(end, headers!, index)
    part.ends.push(end)
    if (this.keepsIndexes) part.indexes.push(index)
    // The timestamps are kept only once some record of the share gives one.
    if (timestamp !== undefined || part.hasTimestamps) {
      const timestamps = part.timestampsMs
      while (timestamps.length < part.ends.length - 2) timestamps.push(NO_TIMESTAMP)
      timestamps.push(timestamp ?? NO_TIMESTAMP)
      part.hasTimestamps = true
    }
  }
}

/**
 * One partition's envelopes, in order, from a framed scratch: envelope i is bytes
 * [ends[i] + FRAME_HEADER_BYTES, ends[i + 1]). When the log writes a record right after the previous
 * one, the envelopes that follow in the scratch are copied along with it, up to the end of the write
 * buffer, gaps and all: they then lie exactly where the log will put them, so one copy serves a long
 * run and later calls only check that their record is already in place (one Uint8Array view and call
 * per record cost as much as encoding a header, measured). The owner reads forwarded bodies, laid out
 * the same way, through it too (topic-owner.ts).
 */
export class EnvelopeRun implements PayloadSource {
  private readonly buffer: ArrayBuffer
  private readonly byteOffset: number
  /** The buffer the last copy went to, and where it put records `placedIndex` .. `placedEnd` - 1. */
  private placedIn: Buffer | undefined
  private placedIndex = 0
  private placedEnd = 0
  private placedAt = 0

  constructor(
    scratch: Uint8Array,
    private readonly ends: readonly number[],
  ) {
    this.buffer = scratch.buffer as ArrayBuffer
    this.byteOffset = scratch.byteOffset
  }

  payloadBytes(index: number): number {
    return this.ends[index + 1]! - this.ends[index]! - FRAME_HEADER_BYTES
  }

  write(buf: Buffer, at: number, index: number): void {
    const ends = this.ends
    if (buf === this.placedIn && index === this.placedIndex && at === this.placedAt && index < this.placedEnd) {
      this.placedIndex = index + 1
      this.placedAt = at + ends[index + 1]! - ends[index]!
      return
    }
    const start = ends[index]! + FRAME_HEADER_BYTES
    // Take the following records while they fit in `buf` too.
    const scratchEnd = buf.length - at + start // scratch position that lands on the end of buf
    let next = index + 1
    const count = ends.length - 1
    while (next < count && ends[next + 1]! <= scratchEnd) next++
    const end = ends[next]!
    buf.set(new Uint8Array(this.buffer, this.byteOffset + start, end - start), at)
    this.placedIn = buf
    this.placedIndex = index + 1
    this.placedEnd = next
    this.placedAt = at + ends[index + 1]! - ends[index]!
  }
}

/** The error for a record whose headers the writer refused with `code` (HEADERS_*), naming the bad header. */
function headersRefused(code: number, headers: object, index: number): LogError {
  if (code === HEADERS_NAME_TOO_LONG) return new LogError('INVALID_ARGUMENT', `record ${index}: header name too long`)
  if (code === HEADERS_TOO_MANY) return new LogError('INVALID_ARGUMENT', `record ${index}: too many headers`)
  assert(code === HEADERS_VALUE_BAD, 'a known refusal')
  for (const name in headers) {
    if (!Object.prototype.hasOwnProperty.call(headers, name)) continue
    const value = (headers as Record<string, unknown>)[name]
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) return badBytes(value, 'header', index, name)
  }
  return new LogError('INVALID_ARGUMENT', `record ${index}: a header value must be a Uint8Array or a string`)
}

let idle: EncodedRecords | undefined

/**
 * Checks, places and encodes `records` (INVALID_ARGUMENT names the first bad one, UNKNOWN_PARTITION
 * an explicit partition that does not exist; RECORD_TOO_LARGE past `bytesMax` encoded bytes in one
 * partition). The caller appends them at once and then calls release().
 */
export function encodeRecords(records: readonly unknown[], bytesMax: number, placement: Placement): EncodedRecords {
  // A batch encoded while another is still held (a getter on a record that sends) gets its own scratches.
  const batch = idle ?? new EncodedRecords()
  idle = undefined
  try {
    batch.encode(records, bytesMax, placement)
  } catch (error) {
    batch.release()
    throw error
  }
  return batch
}
