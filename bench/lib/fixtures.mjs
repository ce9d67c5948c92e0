/**
 * Logs built before anything is timed, shared by the read, scan and growth workloads.
 *
 * `buildFixture` appends N records (payload pool cycled, so offset o holds pool[o % POOL_RECORDS])
 * with default segment options. With defaults the newest segment stays active, and the active
 * segment is read by pread whatever the mmap option, so `sealFixture` reopens the log with
 * segmentAgeMsMax: 1 and appends one record: that rolls, leaving offsets [0, N) all in sealed
 * (mappable) segments while segment sizes stay at their defaults.
 */
import fs from 'node:fs'
import { SegmentedLog } from '../../dist/index.js'
import { BATCH_RECORDS, POOL_RECORDS, batchesOf, fixturePool } from './payloads.mjs'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from './layout.mjs'
import { XorShift32 } from './prng.mjs'

const BUILD_BATCH_RECORDS = 8_000 // divides POOL_RECORDS, so big batches keep offset o → pool[o % POOL]

export async function buildFixture({ dir, records, recordBytes, mixedSizes = false }) {
  if (records % BATCH_RECORDS !== 0) throw new Error('fixture records must be a multiple of 1,000')
  if (POOL_RECORDS % BUILD_BATCH_RECORDS !== 0) throw new Error('build batches must tile the pool')
  fs.rmSync(dir, { recursive: true, force: true })
  const pool = fixturePool({ recordBytes, mixedSizes })
  const small = batchesOf(pool, BATCH_RECORDS)
  const big = batchesOf(pool, BUILD_BATCH_RECORDS)
  const started = performance.now()
  const log = await SegmentedLog.open(dir, { sync: 'never' })
  let appended = 0
  while (appended < records) {
    const at = appended % POOL_RECORDS
    if (records - appended >= BUILD_BATCH_RECORDS && at % BUILD_BATCH_RECORDS === 0) {
      await log.appendBatch(big[at / BUILD_BATCH_RECORDS])
      appended += BUILD_BATCH_RECORDS
    } else {
      await log.appendBatch(small[at / BATCH_RECORDS])
      appended += BATCH_RECORDS
    }
  }
  const segments = describeSegments(log)
  await log.close()
  return { dir, records, recordBytes, mixedSizes, buildMs: performance.now() - started, segments }
}

/** Rolls the active segment so that every record of the fixture lies in a sealed segment. */
export async function sealFixture({ dir, records, recordBytes, mixedSizes = false }) {
  const pool = fixturePool({ recordBytes, mixedSizes })
  const log = await SegmentedLog.open(dir, { sync: 'never', segmentAgeMsMax: 1 })
  if (log.endOffset !== records) throw new Error(`fixture holds ${log.endOffset} records, expected ${records}`)
  await new Promise((resolve) => setTimeout(resolve, 5))
  await log.append(pool[records % POOL_RECORDS])
  const segments = describeSegments(log)
  await log.close()
  const last = segments[segments.length - 1]
  if (!last.isActive || last.baseOffset !== records) throw new Error('sealing the fixture did not roll at its end')
  return { dir, records, recordBytes, mixedSizes, segments }
}

function describeSegments(log) {
  return log.segments.map((segment) => ({
    baseOffset: segment.baseOffset,
    count: segment.count,
    bytes: segment.bytes,
    isActive: segment.isActive,
    storePath: segment.storePath,
  }))
}

/** Where record `offset`'s payload sits, from the fixed frame size (no index): for raw baselines. */
export function payloadLocator(fixture) {
  if (fixture.mixedSizes) throw new Error('raw baselines need records of one size')
  const sealed = fixture.segments.filter((segment) => segment.baseOffset < fixture.records)
  const perSegment = sealed[0].count
  const frameBytes = FRAME_HEADER_BYTES + fixture.recordBytes
  for (let k = 0; k < sealed.length - 1; k++) {
    if (sealed[k].count !== perSegment) throw new Error('raw baselines assume equally full segments')
  }
  return {
    sealed,
    segmentOf: (offset) => Math.floor(offset / perSegment),
    positionOf: (offset) => FILE_HEADER_BYTES + (offset % perSegment) * frameBytes + FRAME_HEADER_BYTES,
  }
}

/** Checks `sampleCount` random offsets against the payload pool before timing anything. */
export function checkPayloads(readPayload, fixture, sampleCount = 1000) {
  const pool = fixturePool(fixture)
  const rng = new XorShift32(0x0c0ffee)
  for (let i = 0; i < sampleCount; i++) {
    const offset = rng.below(fixture.records)
    const got = readPayload(offset)
    if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(pool[offset % POOL_RECORDS])) !== 0) {
      throw new Error(`payload of offset ${offset} does not match the fixture`)
    }
  }
}
