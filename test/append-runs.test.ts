/**
 * The append path writes runs of records at once (Store.appendFrames) and checks the roll conditions
 * once per run. These specs pin that the segments come out exactly as the per-record rule says:
 * a segment rolls before the record that would pass segmentBytesMax or segmentRecordsMax, also in the
 * middle of a batch, a frame larger than the write buffer goes through, and index entries (positions,
 * the running maximum of timestamps) match what a reopen rebuilds from the store.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { type PayloadSource, FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../src/format.js'
import { SegmentedLog } from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const open: SegmentedLog[] = []
afterEach(async () => {
  for (const log of open.splice(0)) await log.close().catch(() => undefined)
})

async function openLog(dir: string, options: Parameters<typeof SegmentedLog.open>[1]): Promise<SegmentedLog> {
  const log = await SegmentedLog.open(dir, options)
  open.push(log)
  return log
}

/** Record i: `bytes(i)` bytes, each equal to i mod 251. */
function payload(i: number, bytes: number): Uint8Array {
  return new Uint8Array(bytes).fill(i % 251)
}

/** A plain Uint8Array copy, so reads (Buffers) compare with the payloads given. */
const bytes = (view: Uint8Array): Uint8Array => new Uint8Array(view)

/** What the per-record rule gives: segment sizes when each record rolls before it passes either limit. */
function expectedCounts(sizes: number[], segmentBytesMax: number, segmentRecordsMax: number): number[] {
  const counts: number[] = []
  let count = 0
  let bytes = FILE_HEADER_BYTES
  for (const size of sizes) {
    const frameBytes = FRAME_HEADER_BYTES + size
    if (count > 0 && (count >= segmentRecordsMax || bytes + frameBytes > segmentBytesMax)) {
      counts.push(count)
      count = 0
      bytes = FILE_HEADER_BYTES
    }
    count++
    bytes += frameBytes
  }
  counts.push(count)
  return counts
}

describe('SegmentedLog appends in runs', () => {
  it.each([
    ['by bytes, mid-batch', 32 + 3 * 124 + 50, 1000],
    ['by record count, mid-batch', 1 << 20, 7],
    ['by whichever comes first', 32 + 5 * 124, 4],
  ])('rolls %s exactly where the per-record rule does', async (_name, segmentBytesMax, segmentRecordsMax) => {
    const log = await openLog(tempDir('runs'), { segmentBytesMax, segmentRecordsMax })
    const sizes = Array.from({ length: 40 }, () => 100)
    await log.appendBatch(sizes.slice(0, 3).map((size, i) => payload(i, size)))
    await log.appendBatch(sizes.slice(3).map((size, i) => payload(i + 3, size)))
    expect(log.segments.map((segment) => segment.count)).toEqual(expectedCounts(sizes, segmentBytesMax, segmentRecordsMax))
    for (let offset = 0; offset < sizes.length; offset++) expect(bytes(log.read(offset))).toEqual(payload(offset, 100))
  })

  it('rolls by bytes with records of varied sizes, and a reopen finds the same records', async () => {
    const dir = tempDir('runs')
    const segmentBytesMax = 4096
    const sizes = Array.from({ length: 120 }, (_, i) => (i * 37) % 301)
    const log = await openLog(dir, { segmentBytesMax })
    await log.appendBatch(sizes.map((size, i) => payload(i, size)))
    expect(log.segments.map((segment) => segment.count)).toEqual(expectedCounts(sizes, segmentBytesMax, Infinity))
    await log.close()
    const reopened = await openLog(dir, { segmentBytesMax })
    expect(reopened.endOffset).toBe(sizes.length)
    for (let offset = 0; offset < sizes.length; offset++) expect(bytes(reopened.read(offset))).toEqual(payload(offset, sizes[offset]!))
  })

  it('writes a record larger than the write buffer in the middle of a batch', async () => {
    const dir = tempDir('runs')
    const writeBufferBytes = 4096
    const sizes = [10, 3000, 9000, 20, 5000, 4096 - FRAME_HEADER_BYTES, 1]
    const log = await openLog(dir, { writeBufferBytes })
    await log.appendBatch(sizes.map((size, i) => payload(i, size)))
    for (let offset = 0; offset < sizes.length; offset++) expect(bytes(log.read(offset))).toEqual(payload(offset, sizes[offset]!))
    await log.close()
    const reopened = await openLog(dir, { writeBufferBytes })
    expect(reopened.recovery).toBeDefined()
    for (let offset = 0; offset < sizes.length; offset++) expect(bytes(reopened.read(offset))).toEqual(payload(offset, sizes[offset]!))
  })

  it('keeps per-record timestamps and their running maximum in the index (appendFrom)', async () => {
    const log = await openLog(tempDir('runs'), { segmentRecordsMax: 4 })
    const timestamps = [50, 10, 70, 60, 80, 20, 90, 30, 100]
    const source: PayloadSource = {
      payloadBytes: (i) => 8 + i,
      write: (buf, at, i) => buf.set(payload(i, 8 + i), at),
    }
    await log.appendFrom(timestamps.length, source, { timestampMs: timestamps })
    expect(log.segments.map((segment) => segment.count)).toEqual([4, 4, 1])
    for (let offset = 0; offset < timestamps.length; offset++) {
      const record = log.readRecord(offset)
      expect(record.timestampMs).toBe(timestamps[offset])
      expect(bytes(record.value)).toEqual(payload(offset, 8 + offset))
    }
    // The running maximum: 50 50 70 70 | 80 80 90 90 | 100, so the first offset reaching 75 is 4.
    expect(log.offsetForTimestamp(75)).toBe(4)
    expect(log.offsetForTimestamp(55)).toBe(2)
    expect(log.offsetForTimestamp(95)).toBe(8)
  })

  it('appends single records and batches in any mix onto the same runs, offsets contiguous', async () => {
    const log = await openLog(tempDir('runs'), { segmentRecordsMax: 5 })
    const offsets: number[] = []
    for (let i = 0; i < 12; i++) {
      if (i % 3 === 0) offsets.push(await log.appendBatch([payload(i, 30), payload(i, 31)]))
      else offsets.push(await log.append(payload(i, 7)))
    }
    expect(log.endOffset).toBe(4 * 2 + 8)
    expect(offsets).toEqual([0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15])
    expect(log.segments.map((segment) => segment.count)).toEqual([5, 5, 5, 1])
  })
})
