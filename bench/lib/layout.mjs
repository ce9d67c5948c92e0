/**
 * The few on-disk sizes the bench needs (docs/format.md): raw baselines compute payload positions
 * from them, and append rounds are sized from them. payloadLocator's sanity check against a real
 * fixture fails loudly if the format ever changes under these numbers.
 */
import { DEFAULT_OPTIONS } from '../../dist/index.js'

export const FILE_HEADER_BYTES = 32
export const FRAME_HEADER_BYTES = 24

/** Records of `recordBytes` that fit one default-sized segment (segmentBytesMax rolls first at these sizes). */
export function recordsPerSegment(recordBytes) {
  const byBytes = Math.floor((DEFAULT_OPTIONS.segmentBytesMax - FILE_HEADER_BYTES) / (FRAME_HEADER_BYTES + recordBytes))
  return Math.min(byBytes, DEFAULT_OPTIONS.segmentRecordsMax)
}

/**
 * Records per append round: one default segment's worth plus one record, rounded up to whole
 * 1,000-record batches. A round that starts on an empty log then rolls exactly once, so each round
 * pays one roll per segment of records, as a long-running writer does.
 */
export function appendRoundRecords(recordBytes) {
  return Math.ceil((recordsPerSegment(recordBytes) + 1) / 1000) * 1000
}
