/**
 * Checks of what callers hand to SegmentedLog: records, batches, timestamps and offsets. Pure
 * functions of the arguments and the log's options; every failure is a LogError, thrown before
 * anything is written, so a refused call changes nothing.
 */
import { LogError } from './errors.js'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from './format.js'
import type { ResolvedOptions } from './options.js'

type Limits = Pick<ResolvedOptions, 'recordBytesMax' | 'segmentBytesMax' | 'batchRecordsMax' | 'batchBytesMax'>
type Timestamps = number | readonly number[] | undefined

/** The largest payload one record may have: recordBytesMax, and what fits in one segment. */
export function recordBytesLimit(options: Limits): number {
  return Math.min(options.recordBytesMax, options.segmentBytesMax - FILE_HEADER_BYTES - FRAME_HEADER_BYTES)
}

export function checkRecord(value: unknown, index: number, options: Limits): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new LogError('INVALID_ARGUMENT', `record ${index} must be a Uint8Array, got ${describe(value)}`)
  }
  const limit = recordBytesLimit(options)
  if (value.length > limit) {
    throw new LogError('RECORD_TOO_LARGE', `record ${index} has ${value.length} bytes; the limit is ${limit}`)
  }
}

/** Checks a whole batch (records, counts, bytes, timestamps); returns the timestamp(s) to write. */
export function checkBatch(values: unknown, timestamps: Timestamps, now: number, options: Limits): number | readonly number[] {
  if (!Array.isArray(values)) throw new LogError('INVALID_ARGUMENT', `appendBatch takes an array, got ${describe(values)}`)
  if (values.length === 0) throw new LogError('INVALID_ARGUMENT', 'appendBatch needs at least one record')
  if (values.length > options.batchRecordsMax) {
    throw new LogError('INVALID_ARGUMENT', `batch of ${values.length} records exceeds batchRecordsMax ${options.batchRecordsMax}`)
  }
  let bytes = 0
  for (let i = 0; i < values.length; i++) {
    checkRecord(values[i], i, options)
    bytes += (values[i] as Uint8Array).length
  }
  if (bytes > options.batchBytesMax) {
    throw new LogError('RECORD_TOO_LARGE', `batch of ${bytes} bytes exceeds batchBytesMax ${options.batchBytesMax}`)
  }
  return checkTimestamps(timestamps, values.length, now)
}

/** One timestamp for all records, or one per record; `now` when none is given. */
export function checkTimestamps(timestamps: Timestamps, count: number, now: number): number | readonly number[] {
  if (!Array.isArray(timestamps)) return checkTimestamp(timestamps, now)
  if (timestamps.length !== count) throw new LogError('INVALID_ARGUMENT', 'timestampMs must have one entry per record')
  return timestamps.map((timestamp) => checkTimestamp(timestamp, now))
}

export function checkTimestamp(timestampMs: unknown, now: number): number {
  if (timestampMs === undefined) return now
  if (typeof timestampMs !== 'number' || !Number.isSafeInteger(timestampMs) || timestampMs < 0) {
    throw new LogError('INVALID_ARGUMENT', `timestampMs must be a non-negative integer, got ${describe(timestampMs)}`)
  }
  return timestampMs
}

export function checkOffsetArgument(offset: unknown, name: string): asserts offset is number {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new LogError('INVALID_ARGUMENT', `${name} must be a non-negative safe integer, got ${describe(offset)}`)
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'number') return String(value)
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value
}
