/**
 * SegmentedLog options: every limit is a named option with a default and a checked range. Bad
 * options throw INVALID_ARGUMENT before anything on disk is touched.
 */
import { LogError } from './errors.js'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES, SEGMENT_BYTES_LIMIT } from './format.js'

export type SyncMode = 'always' | 'interval' | 'never'
export type MmapMode = 'auto' | 'always' | 'never'

export interface SegmentedLogOptions {
  /** Roll to a new segment when the active store file would exceed this. Default 128 MiB, at most 1 GiB. */
  segmentBytesMax?: number
  /** Roll after this many records. Default 4,194,304 (a 64 MiB index); at most 16,777,216. */
  segmentRecordsMax?: number
  /** Roll when the active segment's first record is older than this (counted from the later of its timestamp and the segment's creation). Default 7 days; Infinity disables. */
  segmentAgeMsMax?: number
  /** Larger records are refused with RECORD_TOO_LARGE. Default 1 MiB, at most 256 MiB. */
  recordBytesMax?: number
  /** Most records in one appendBatch. Default 1,000,000. */
  batchRecordsMax?: number
  /** Most payload bytes in one appendBatch. Default 256 MiB. */
  batchBytesMax?: number
  /** When an append counts as done: after fsync ('always'), after write() with fsync every syncIntervalMs ('interval'), or after write() ('never'). Default 'interval'. */
  sync?: SyncMode
  /** fsync period for sync: 'interval'. Default 1000 ms. */
  syncIntervalMs?: number
  /** Delete the oldest whole segments while the log holds more than this. Default Infinity. */
  retentionBytesMax?: number
  /** Delete whole segments whose newest record is older than this. Default Infinity. */
  retentionMs?: number
  /** How often time-based retention and age-based rolling are checked in the background. Default 60,000 ms. */
  retentionCheckIntervalMs?: number
  /** Memory-map sealed segments: 'auto' (when the addon loaded), 'always' (fail without it), 'never'. */
  mmap?: MmapMode
  /** Open without taking the writer's place, to read a log another thread or process writes. */
  readOnly?: boolean
  /** Size of the write buffer; appends are written in chunks of up to this. Default 256 KiB. */
  writeBufferBytes?: number
  /** Sealed segments kept open (file descriptors or maps) at once; least recently used are closed. Default 256. */
  openSegmentsMax?: number
  /** Bytes of sealed segments kept mapped at once; least recently used maps are dropped. Default 16 GiB. */
  mappedBytesMax?: number
  /** Verify each record's CRC-32C on every read. Default true. */
  verifyChecksums?: boolean
}

export type ResolvedOptions = Required<SegmentedLogOptions>

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const DAY_MS = 24 * 60 * 60 * 1000

export const DEFAULT_OPTIONS: ResolvedOptions = {
  segmentBytesMax: 128 * MiB,
  segmentRecordsMax: 4 * MiB,
  segmentAgeMsMax: 7 * DAY_MS,
  recordBytesMax: 1 * MiB,
  batchRecordsMax: 1_000_000,
  batchBytesMax: 256 * MiB,
  sync: 'interval',
  syncIntervalMs: 1000,
  retentionBytesMax: Infinity,
  retentionMs: Infinity,
  retentionCheckIntervalMs: 60_000,
  mmap: 'auto',
  readOnly: false,
  writeBufferBytes: 256 * KiB,
  openSegmentsMax: 256,
  mappedBytesMax: 16 * GiB,
  verifyChecksums: true,
}

interface IntegerRange {
  min: number
  max: number
  infinity?: boolean
}

const INTEGER_RANGES: { [K in keyof ResolvedOptions]?: IntegerRange } = {
  segmentBytesMax: { min: FILE_HEADER_BYTES + FRAME_HEADER_BYTES + 1, max: SEGMENT_BYTES_LIMIT },
  segmentRecordsMax: { min: 1, max: 16 * MiB },
  segmentAgeMsMax: { min: 1, max: Number.MAX_SAFE_INTEGER, infinity: true },
  recordBytesMax: { min: 1, max: 256 * MiB },
  batchRecordsMax: { min: 1, max: 16 * MiB },
  batchBytesMax: { min: 1, max: 4 * GiB },
  syncIntervalMs: { min: 1, max: 2 ** 31 - 1 },
  retentionBytesMax: { min: 0, max: Number.MAX_SAFE_INTEGER, infinity: true },
  retentionMs: { min: 0, max: Number.MAX_SAFE_INTEGER, infinity: true },
  retentionCheckIntervalMs: { min: 10, max: 2 ** 31 - 1 },
  writeBufferBytes: { min: 4 * KiB, max: 64 * MiB },
  openSegmentsMax: { min: 1, max: 65_536 },
  mappedBytesMax: { min: 1 * MiB, max: Number.MAX_SAFE_INTEGER, infinity: true },
}

const ENUMS: { [K in keyof ResolvedOptions]?: readonly unknown[] } = {
  sync: ['always', 'interval', 'never'],
  mmap: ['auto', 'always', 'never'],
  readOnly: [true, false],
  verifyChecksums: [true, false],
}

export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) return { ...DEFAULT_OPTIONS }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new LogError('INVALID_ARGUMENT', 'options must be an object')
  }
  const given = options as Record<string, unknown>
  const resolved: Record<string, unknown> = { ...DEFAULT_OPTIONS }
  for (const [name, value] of Object.entries(given)) {
    if (value === undefined) continue
    if (!(name in DEFAULT_OPTIONS)) throw new LogError('INVALID_ARGUMENT', `unknown option '${name}'`)
    const key = name as keyof ResolvedOptions
    const range = INTEGER_RANGES[key]
    if (range) checkInteger(name, value, range)
    else if (!ENUMS[key]?.includes(value)) {
      throw new LogError('INVALID_ARGUMENT', `option '${name}' must be one of ${ENUMS[key]?.map((v) => JSON.stringify(v)).join(', ')}`)
    }
    resolved[name] = value
  }
  return resolved as ResolvedOptions
}

function checkInteger(name: string, value: unknown, range: IntegerRange): void {
  if (range.infinity && value === Infinity) return
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    const upper = range.infinity ? `${range.max} or Infinity` : String(range.max)
    throw new LogError('INVALID_ARGUMENT', `option '${name}' must be an integer in [${range.min}, ${upper}], got ${String(value)}`)
  }
}

