/**
 * What producers hand to Topic.send / Partition.append, checked and turned into envelope parts.
 * Strings become UTF-8 bytes; an absent key is null; the timestamp defaults to append time.
 */
import { LogError } from './errors.js'
import { type EnvelopeParts, HEADER_COUNT_MAX, HEADER_NAME_BYTES_MAX, type PayloadSource, encodeEnvelope, envelopeBytes, headerNameBytes } from './format.js'

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

function checkBytes(value: unknown, what: string): Bytes {
  if (value instanceof Uint8Array || typeof value === 'string') return value
  throw new LogError('INVALID_ARGUMENT', `${what} must be a Uint8Array or a string, got ${value === null ? 'null' : typeof value}`)
}

export interface PreparedRecord {
  parts: EnvelopeParts
  timestampMs: number | undefined
  partition: number | undefined
}

/** Checks one producer record (`index` names it in errors). Strings stay strings until encoding. */
export function prepareRecord(record: unknown, index: number): PreparedRecord {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new LogError('INVALID_ARGUMENT', `record ${index} must be an object with a value`)
  }
  const { value, key, headers, timestamp, partition } = record as ProducerRecord
  if (value === undefined) throw new LogError('INVALID_ARGUMENT', `record ${index} has no value`)
  const headerPairs: [string, Bytes][] = []
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: headers must be an object`)
    }
    for (const name in headers) {
      if (!Object.prototype.hasOwnProperty.call(headers, name)) continue
      if (name.length > HEADER_NAME_BYTES_MAX / 3 && headerNameBytes(name) > HEADER_NAME_BYTES_MAX) {
        throw new LogError('INVALID_ARGUMENT', `record ${index}: header name too long`)
      }
      headerPairs.push([name, checkBytes(headers[name], `record ${index}: header '${name}'`)])
    }
    if (headerPairs.length > HEADER_COUNT_MAX) throw new LogError('INVALID_ARGUMENT', `record ${index}: too many headers`)
  }
  if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0)) {
    throw new LogError('INVALID_ARGUMENT', `record ${index}: timestamp must be a non-negative integer (ms), got ${String(timestamp)}`)
  }
  if (partition !== undefined && (typeof partition !== 'number' || !Number.isInteger(partition))) {
    throw new LogError('INVALID_ARGUMENT', `record ${index}: partition must be an integer, got ${String(partition)}`)
  }
  return {
    parts: {
      key: key === undefined || key === null ? null : checkBytes(key, `record ${index}: key`),
      headers: headerPairs,
      value: checkBytes(value, `record ${index}: value`),
    },
    timestampMs: timestamp,
    partition,
  }
}

/**
 * Records of a batch (or of one partition's share of it) as a PayloadSource: each envelope is
 * encoded straight into the log's write buffer, with no intermediate buffer or copy.
 */
export class EnvelopeBatch implements PayloadSource {
  private readonly sizes: number[]

  constructor(
    private readonly records: readonly PreparedRecord[],
    /** Which of `records` this batch holds, in order; all of them when undefined. */
    private readonly indexes?: readonly number[],
  ) {
    this.sizes = (indexes ?? records.map((_, index) => index)).map((index) => envelopeBytes(records[index]!.parts))
  }

  get count(): number {
    return this.sizes.length
  }

  payloadBytes(index: number): number {
    return this.sizes[index]!
  }

  write(buf: Buffer, at: number, index: number): void {
    encodeEnvelope(buf, at, this.records[this.indexes ? this.indexes[index]! : index]!.parts)
  }

  /** Per-record timestamps for appendFrom (undefined ones become append time). */
  timestampsMs(now: number): number[] {
    const indexes = this.indexes
    return this.sizes.map((_, i) => this.records[indexes ? indexes[i]! : i]!.timestampMs ?? now)
  }
}

/** The bytes a keyed record is placed by (a string key hashes as its UTF-8 bytes). */
export function keyBytes(record: PreparedRecord): Uint8Array | null {
  const key = record.parts.key
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : key
}
