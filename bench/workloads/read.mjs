/**
 * Read workloads (child side) over a fixture built beforehand (lib/fixtures.mjs): random read(offset)
 * through seglog (mmap or pread), the raw baselines (pread, mmap, in-memory Buffer) on the same
 * bytes, and sequential scans. Offsets come from a seeded xorshift32, generated before each round;
 * every child starts from the same seed, so every system reads the same offsets. Each read touches
 * one byte of the returned payload so views are not just created but used.
 */
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { SegmentedLog } from '../../dist/index.js'
import { checkPayloads, payloadLocator } from '../lib/fixtures.mjs'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../lib/layout.mjs'
import { POOL_RECORDS, payloadPool } from '../lib/payloads.mjs'
import { DEFAULT_SEED, XorShift32, randomOffsets } from '../lib/prng.mjs'
import { runRounds } from '../lib/rounds.mjs'

const require = createRequire(import.meta.url)
const CRC32C = require('crc-32/crc32c')
let sink = 0 // keeps the touched bytes observable

/** Random reads of `readPayload(offset)` over [0, fixture.records). */
async function randomReads(name, fixture, { readsPerRound, rounds }, readPayload) {
  checkPayloads(readPayload, fixture)
  const rng = new XorShift32(DEFAULT_SEED)
  let offsets
  const measured = await runRounds({
    name,
    rounds,
    before: () => {
      offsets = randomOffsets(rng, readsPerRound, fixture.records)
    },
    round: () => {
      let touched = 0
      for (let i = 0; i < readsPerRound; i++) touched += readPayload(offsets[i])[0]
      sink += touched
      return { ops: readsPerRound }
    },
  })
  return { ...measured, info: { sink: sink & 0xff } }
}

function segmentStates(log, records) {
  const holding = log.segments.filter((segment) => segment.baseOffset < records)
  return { segments: holding.length, activeHoldsReadRange: holding.some((segment) => segment.isActive), usesMmap: log.usesMmap }
}

/** e/f) seglog random read(offset). */
export async function seglogRandomRead({ fixture, mmap, readsPerRound, rounds, verifyChecksums = true }) {
  const log = await SegmentedLog.open(fixture.dir, { sync: 'never', mmap, verifyChecksums })
  const states = segmentStates(log, fixture.records)
  if (fixture.sealed && states.activeHoldsReadRange) throw new Error('a sealed fixture has records in the active segment')
  if (mmap === 'always' && !states.usesMmap) throw new Error("mmap: 'always' but the log does not use mmap")
  const result = await randomReads('seglog read', fixture, { readsPerRound, rounds }, (offset) => log.read(offset))
  const info = { ...result.info, ...states }
  await log.close()
  return { ...result, info }
}

/** e) baseline: fs.readSync of the 100 payload bytes at a computed position, into one reused buffer. */
export async function rawPreadRead({ fixture, readsPerRound, rounds }) {
  const locator = payloadLocator(fixture)
  const fds = locator.sealed.map((segment) => fs.openSync(segment.storePath, 'r'))
  const buffer = Buffer.allocUnsafe(fixture.recordBytes)
  const bytes = fixture.recordBytes
  const result = await randomReads('raw pread', fixture, { readsPerRound, rounds }, (offset) => {
    fs.readSync(fds[locator.segmentOf(offset)], buffer, 0, bytes, locator.positionOf(offset))
    return buffer
  })
  for (const fd of fds) fs.closeSync(fd)
  return result
}

/**
 * e/f) design floor: the same memory accesses seglog's mmap read makes, without seglog: the index
 * entry (u32 position, u32 length) from the mapped index file, then the frame from the mapped store,
 * its CRC-32C checked. Two dependent random accesses per read; seglog cannot beat this.
 */
export async function rawMmapIndexedRead({ fixture, readsPerRound, rounds }) {
  const mmap = require('@riaskov/mmap-io')
  const locator = payloadLocator(fixture)
  const mapFile = (file) => {
    const fd = fs.openSync(file, 'r')
    const size = fs.fstatSync(fd).size
    const map = mmap.map(size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0, mmap.MADV_RANDOM)
    fs.closeSync(fd)
    return map
  }
  const stores = locator.sealed.map((segment) => mapFile(segment.storePath))
  const indexes = locator.sealed.map((segment) => mapFile(segment.storePath.replace(/\.log$/, '.index')))
  const bases = locator.sealed.map((segment) => segment.baseOffset)
  return randomReads('raw mmap index→store + CRC', fixture, { readsPerRound, rounds }, (offset) => {
    const k = locator.segmentOf(offset)
    const index = indexes[k]
    const at = FILE_HEADER_BYTES + (offset - bases[k]) * 16
    const position = index.readUInt32LE(at)
    const end = position + FRAME_HEADER_BYTES + index.readUInt32LE(at + 4)
    const frame = stores[k].subarray(position, end)
    if (CRC32C.buf(frame.subarray(4)) >>> 0 !== frame.readUInt32LE(0)) throw new Error('raw indexed read: bad CRC')
    return frame.subarray(FRAME_HEADER_BYTES)
  })
}

/** e) baseline: one plain in-memory Buffer holding every payload back to back. */
export async function rawMemoryRead({ fixture, readsPerRound, rounds }) {
  const pool = payloadPool(fixture.recordBytes, POOL_RECORDS)
  const bytes = fixture.recordBytes
  const memory = Buffer.allocUnsafe(fixture.records * bytes)
  for (let offset = 0; offset < fixture.records; offset++) memory.set(pool[offset % POOL_RECORDS], offset * bytes)
  return randomReads('raw Buffer.subarray', fixture, { readsPerRound, rounds }, (offset) => memory.subarray(offset * bytes, offset * bytes + bytes))
}

// ---------------------------------------------------------------------------------------------
// g) sequential scans of [0, recordsPerRound)

async function scanRounds(name, { recordsPerRound, rounds }, scan) {
  return runRounds({
    name,
    rounds,
    round: async () => {
      const seen = await scan()
      if (seen !== recordsPerRound) throw new Error(`${name} saw ${seen} records, expected ${recordsPerRound}`)
      return { ops: recordsPerRound }
    },
  })
}

export async function seglogScanRecords({ fixture, recordsPerRound, rounds }) {
  const log = await SegmentedLog.open(fixture.dir, { sync: 'never' })
  const result = await scanRounds('seglog records()', { recordsPerRound, rounds }, async () => {
    let seen = 0
    let touched = 0
    for await (const record of log.records({ from: 0, to: recordsPerRound })) {
      touched += record.value[0]
      seen++
    }
    sink += touched
    return seen
  })
  const info = segmentStates(log, fixture.records)
  await log.close()
  return { ...result, info }
}

export async function seglogScanBatches({ fixture, recordsPerRound, rounds }) {
  const log = await SegmentedLog.open(fixture.dir, { sync: 'never' })
  const result = await scanRounds('seglog recordBatches()', { recordsPerRound, rounds }, async () => {
    let seen = 0
    let touched = 0
    for await (const batch of log.recordBatches({ from: 0, to: recordsPerRound })) {
      for (const record of batch) {
        touched += record.value[0]
        seen++
      }
    }
    sink += touched
    return seen
  })
  const info = segmentStates(log, fixture.records)
  await log.close()
  return { ...result, info }
}

export async function seglogScanRead({ fixture, recordsPerRound, rounds }) {
  const log = await SegmentedLog.open(fixture.dir, { sync: 'never' })
  const result = await scanRounds('seglog read() loop', { recordsPerRound, rounds }, () => {
    let touched = 0
    for (let offset = 0; offset < recordsPerRound; offset++) touched += log.read(offset)[0]
    sink += touched
    return recordsPerRound
  })
  const info = segmentStates(log, fixture.records)
  await log.close()
  return { ...result, info }
}

/**
 * g) baseline: what a hand-written reader does: fs.readSync the store files in 1 MiB chunks, walk
 * the frames by their length field and check each CRC-32C (the same work seglog's reads do).
 */
export async function rawScan({ fixture, recordsPerRound, rounds }) {
  const locator = payloadLocator(fixture)
  const chunk = Buffer.allocUnsafe(1 << 20)
  return scanRounds('raw chunked scan', { recordsPerRound, rounds }, () => {
    let remaining = recordsPerRound
    let touched = 0
    for (const segment of locator.sealed) {
      const fd = fs.openSync(segment.storePath, 'r')
      let filePosition = FILE_HEADER_BYTES
      let carried = 0
      for (;;) {
        const read = fs.readSync(fd, chunk, carried, chunk.length - carried, filePosition)
        filePosition += read
        const available = carried + read
        let at = 0
        while (at + FRAME_HEADER_BYTES <= available) {
          const end = at + FRAME_HEADER_BYTES + chunk.readUInt32LE(at + 4)
          if (end > available) break
          if (CRC32C.buf(chunk.subarray(at + 4, end)) >>> 0 !== chunk.readUInt32LE(at)) throw new Error('raw scan: bad CRC')
          touched += chunk[at + FRAME_HEADER_BYTES]
          at = end
          if (--remaining === 0) break
        }
        if (remaining === 0 || read === 0) break
        carried = available - at
        chunk.copy(chunk, 0, at, available)
      }
      fs.closeSync(fd)
      if (remaining === 0) break
    }
    sink += touched
    return recordsPerRound - remaining
  })
}
