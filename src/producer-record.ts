/**
 * What producers hand to Topic.send / Partition.append, checked and encoded into envelopes in one
 * pass over each record: every field is read once, checked, and written into a scratch buffer
 * (format.ts's EnvelopeWriter). A bad record throws before any log is touched, so a refused batch
 * writes nothing; the logs then copy the finished envelopes into their write buffers
 * (SegmentedLog.appendFrom with `source()`). For the owner's own appends the scratch is framed: a
 * frame header's worth of bytes before each envelope, so consecutive envelopes lie as the store's
 * frames will and a run of them is copied at once (EnvelopeRun).
 *
 * The scratch is shared between batches: a batch is encoded and handed to its logs' appendFrom
 * synchronously (appendFrom copies the bytes before it returns), then released for the next one.
 */
import { LogError } from './errors.js'
import { assert } from './assert.js'
import { ENVELOPE_FIXED_BYTES, EnvelopeWriter, FRAME_HEADER_BYTES, HEADERS_NAME_TOO_LONG, HEADERS_TOO_MANY, HEADERS_VALUE_BAD, type PayloadSource, envelopeHasKey, envelopeKeyBytes } from './format.js'
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

/** A scratch buffer kept between batches: grown by a large batch, dropped back after it. */
const SCRATCH_BYTES_INITIAL = 256 * 1024
const SCRATCH_BYTES_KEPT_MAX = 4 * 1024 * 1024
/** Marks "not given" in the per-record arrays: given timestamps are never negative, given partitions are integers. */
const NO_TIMESTAMP = -1
const NO_PARTITION = Number.NaN
/** keyedPartitions' mark of a keyless record. */
export const NO_KEY = -1

/** Whether a field is bytes or a string (checked inline on the hot path; badBytes builds the error). */
function isBytes(value: unknown): boolean {
  return typeof value === 'string' || value instanceof Uint8Array
}

/** `headerName`, when given, names the header whose value was bad. */
function badBytes(value: unknown, what: string, index: number, headerName?: string): LogError {
  const field = headerName === undefined ? what : `${what} '${headerName}'`
  return new LogError('INVALID_ARGUMENT', `record ${index}: ${field} must be a Uint8Array or a string, got ${value === null ? 'null' : typeof value}`)
}

/** The checked and encoded records of one batch, in the order given. */
export class EncodedRecords {
  /** Envelope i is bytes [offsets[i] + gapBytes, offsets[i + 1]) of the scratch. */
  private readonly offsets: number[] = [0]
  /** 0, or FRAME_HEADER_BYTES when the envelopes are laid out as store frames (see encode). */
  private gapBytes = 0
  private readonly timestampsMs: number[] = []
  private readonly partitions: number[] = []
  private writer = new EnvelopeWriter(SCRATCH_BYTES_INITIAL)
  private hasTimestamps = false
  private placements = new Int32Array(0)
  hasExplicitPartition = false

  get count(): number {
    return this.offsets.length - 1
  }

  /** The partition record `index` asked for, or undefined. */
  explicitPartition(index: number): number | undefined {
    if (!this.hasExplicitPartition) return undefined
    const partition = this.partitions[index]!
    return Number.isNaN(partition) ? undefined : partition
  }

  /**
   * Kafka's keyed placement (murmur2 of the key's bytes) of every record, NO_KEY for keyless ones,
   * in a array kept between batches: valid until the next call.
   */
  keyedPartitions(partitionCount: number): Int32Array {
    const count = this.count
    if (this.placements.length < count) this.placements = new Int32Array(Math.max(count, this.placements.length * 2))
    const placements = this.placements
    const bytes = this.writer.bytes
    const offsets = this.offsets
    const gapBytes = this.gapBytes
    for (let index = 0; index < count; index++) {
      const start = offsets[index]! + gapBytes
      if (!envelopeHasKey(bytes, start)) {
        placements[index] = NO_KEY
        continue
      }
      const keyStart = start + ENVELOPE_FIXED_BYTES
      placements[index] = partitionForHash(murmur2Range(bytes, keyStart, keyStart + envelopeKeyBytes(bytes, start)), partitionCount)
    }
    return placements
  }

  /**
   * The scratch of a batch encoded without gaps: record `index`'s envelope is bytes
   * [envelopeStart(index), envelopeStart(index + 1)), all of them back to back.
   */
  get scratch(): Buffer {
    assert(this.gapBytes === 0, 'envelopes back to back')
    return this.writer.bytes
  }

  envelopeStart(index: number): number {
    assert(this.gapBytes === 0, 'envelopes back to back')
    return this.offsets[index]!
  }

  /**
   * The envelopes of `indexes` (all records when undefined) as a payload source for
   * SegmentedLog.appendFrom, which copies each straight into its write buffer. Valid until release().
   */
  source(indexes: readonly number[] | undefined): PayloadSource {
    return new EnvelopeRun(this.writer.bytes, this.offsets, this.gapBytes, indexes)
  }

  /** Lays framed envelopes back to back, for a batch that is forwarded after all (a getter closed the topic meanwhile). */
  unframe(): void {
    if (this.gapBytes === 0) return
    const bytes = this.writer.bytes
    const offsets = this.offsets
    let to = 0
    for (let index = 0; index < this.count; index++) {
      const start = offsets[index]! + this.gapBytes
      const end = offsets[index + 1]!
      bytes.copyWithin(to, start, end)
      offsets[index] = to
      to += end - start
    }
    offsets[this.count] = to
    this.gapBytes = 0
  }

  /** The timestamps for appendBatch: `now` for all, or one per record of `indexes` (all records when undefined). */
  timestampsFor(indexes: readonly number[] | undefined, now: number): number | number[] {
    if (!this.hasTimestamps) return now
    const pick = (timestampMs: number): number => (timestampMs === NO_TIMESTAMP ? now : timestampMs)
    return indexes === undefined ? this.timestampsMs.map(pick) : indexes.map((index) => pick(this.timestampsMs[index]!))
  }

  /**
   * With `framed`, each envelope is preceded by FRAME_HEADER_BYTES of scratch, so the envelopes of a
   * partition lie as the frames of its store will (appendFrom copies runs of them at once); else they
   * are back to back (the forwarded body copies them so). `bytesMax` counts envelope bytes only.
   */
  encode(records: readonly unknown[], bytesMax: number, framed: boolean): void {
    this.gapBytes = framed ? FRAME_HEADER_BYTES : 0
    this.writer.reset(bytesMax + records.length * this.gapBytes, this.gapBytes)
    this.offsets.length = 1
    this.timestampsMs.length = 0
    this.partitions.length = 0
    this.hasTimestamps = false
    this.hasExplicitPartition = false
    for (let index = 0; index < records.length; index++) this.encodeRecord(records[index], index)
  }

  /** Hands the scratch to the next batch; this one must not be read again. */
  release(): void {
    if (this.writer.bytes.length > SCRATCH_BYTES_KEPT_MAX) this.writer = new EnvelopeWriter(SCRATCH_BYTES_INITIAL)
    idle = this
  }

  private encodeRecord(record: unknown, index: number): void {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new LogError('INVALID_ARGUMENT', `record ${index} must be an object with a value`)
    }
    const { value, key, headers, timestamp, partition } = record as ProducerRecord
    if (value === undefined) throw new LogError('INVALID_ARGUMENT', `record ${index} has no value`)
    if (!isBytes(value)) throw badBytes(value, 'value', index)
    const hasKey = key !== undefined && key !== null
    if (hasKey && !isBytes(key)) throw badBytes(key, 'key', index)
    if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0)) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: timestamp must be a non-negative integer (ms), got ${String(timestamp)}`)
    }
    if (partition !== undefined && (typeof partition !== 'number' || !Number.isInteger(partition))) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: partition must be an integer, got ${String(partition)}`)
    }
    if (headers !== undefined && (headers === null || typeof headers !== 'object' || Array.isArray(headers))) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: headers must be an object`)
    }
    const end = this.writer.envelope(hasKey ? key : undefined, headers, value)
    if (end < 0) throw headersRefused(end, headers!, index)
    this.offsets.push(end)
    // The per-record arrays are filled only once some record of the batch gives a timestamp or a partition.
    if (timestamp !== undefined || this.hasTimestamps) {
      fillTo(this.timestampsMs, index, NO_TIMESTAMP).push(timestamp ?? NO_TIMESTAMP)
      this.hasTimestamps = true
    }
    if (partition !== undefined || this.hasExplicitPartition) {
      fillTo(this.partitions, index, NO_PARTITION).push(partition ?? NO_PARTITION)
      this.hasExplicitPartition = true
    }
  }
}

/**
 * Some envelopes of a batch's scratch, in order: record i of the run is envelope indexes[i] (or i).
 * When the scratch is framed and the log writes a record right after the previous one, the
 * envelopes that follow in the scratch are copied along with it, up to the end of the write buffer,
 * gaps and all: they then lie exactly where the log will put them, so one copy serves a long run and
 * later calls only check that their record is already in place (one Uint8Array view and call per
 * record cost as much as encoding a header, measured).
 */
class EnvelopeRun implements PayloadSource {
  private readonly buffer: ArrayBuffer
  private readonly byteOffset: number
  /** The buffer the last copy went to, and where it put run record `placedIndex` .. `placedEnd` - 1. */
  private placedIn: Buffer | undefined
  private placedIndex = 0
  private placedEnd = 0
  private placedAt = 0

  constructor(
    scratch: Buffer,
    private readonly offsets: readonly number[],
    private readonly gapBytes: number,
    private readonly indexes: readonly number[] | undefined,
  ) {
    this.buffer = scratch.buffer as ArrayBuffer
    this.byteOffset = scratch.byteOffset
  }

  payloadBytes(index: number): number {
    const record = this.indexes === undefined ? index : this.indexes[index]!
    return this.offsets[record + 1]! - this.offsets[record]! - this.gapBytes
  }

  write(buf: Buffer, at: number, index: number): void {
    if (buf === this.placedIn && index === this.placedIndex && at === this.placedAt && index < this.placedEnd) {
      this.placedIndex = index + 1
      this.placedAt = at + this.payloadBytes(index) + FRAME_HEADER_BYTES
      return
    }
    const record = this.indexes === undefined ? index : this.indexes[index]!
    const start = this.offsets[record]! + this.gapBytes
    let end = this.offsets[record + 1]!
    let next = index + 1
    if (this.gapBytes === FRAME_HEADER_BYTES) {
      // Take the following records while they follow in the scratch too and fit in `buf`.
      const scratchEnd = buf.length - at + start // scratch position that lands on the end of buf
      const indexes = this.indexes
      const runEnd = indexes === undefined ? this.offsets.length - 1 : indexes.length
      for (; next < runEnd; next++) {
        const nextRecord = indexes === undefined ? next : indexes[next]!
        if (nextRecord !== record + (next - index)) break
        const nextEnd = this.offsets[nextRecord + 1]!
        if (nextEnd > scratchEnd) break
        end = nextEnd
      }
    }
    buf.set(new Uint8Array(this.buffer, this.byteOffset + start, end - start), at)
    this.placedIn = buf
    this.placedIndex = index + 1
    this.placedEnd = next
    this.placedAt = at + this.offsets[record + 1]! - this.offsets[record]!
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
    if (!isBytes(value)) return badBytes(value, 'header', index, name)
  }
  return new LogError('INVALID_ARGUMENT', `record ${index}: a header value must be a Uint8Array or a string`)
}

function fillTo(values: number[], length: number, filler: number): number[] {
  while (values.length < length) values.push(filler)
  return values
}

let idle: EncodedRecords | undefined

/**
 * Checks and encodes `records` (INVALID_ARGUMENT names the first bad one; RECORD_TOO_LARGE past
 * `bytesMax` encoded bytes). The caller appends them at once and then calls release().
 */
export function encodeRecords(records: readonly unknown[], bytesMax: number, framed = false): EncodedRecords {
  // A batch encoded while another is still held (a getter on a record that sends) gets its own scratch.
  const batch = idle ?? new EncodedRecords()
  idle = undefined
  try {
    batch.encode(records, bytesMax, framed)
  } catch (error) {
    batch.release()
    throw error
  }
  return batch
}
