/**
 * Append workloads (child side): the naive buffered loop baseline, seglog appendBatch, single
 * appends with many in flight, and sync 'always' writers with their raw fdatasync baseline.
 * Payloads come from the pre-generated pool; nothing is allocated per record in timed loops except
 * what the system under test allocates itself.
 */
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { SegmentedLog } from '../../dist/index.js'
import { BATCH_RECORDS, POOL_RECORDS, batchesOf, payloadPool } from '../lib/payloads.mjs'
import { runRounds } from '../lib/rounds.mjs'
import { LatencyRecorder } from '../lib/stats.mjs'

const require = createRequire(import.meta.url)
const CRC32C = require('crc-32/crc32c')
const NAIVE_BUFFER_BYTES = 256 * 1024

/**
 * a) u32 length + u32 CRC-32C + payload into a 256 KiB buffer, writeSync when full, no fsync.
 * Each round writes a fresh file; the previous round's file is deleted before it (untimed), as the
 * seglog workloads start each round on a fresh log (see freshPerRound below).
 */
export async function naiveAppend({ dir, recordBytes, opsPerRound, rounds }) {
  fs.mkdirSync(dir, { recursive: true })
  const pool = payloadPool(recordBytes, POOL_RECORDS)
  const buffer = Buffer.allocUnsafe(NAIVE_BUFFER_BYTES)
  let fd
  let file
  let used = 0
  let next = 0
  let roundNumber = 0
  const writeOut = () => {
    let written = 0
    while (written < used) written += fs.writeSync(fd, buffer, written, used - written)
    used = 0
  }
  const closeRound = () => {
    if (fd === undefined) return
    fs.closeSync(fd)
    fs.rmSync(file)
    fd = undefined
  }
  const measured = await runRounds({
    name: 'naive append',
    rounds,
    before: () => {
      closeRound()
      file = path.join(dir, `naive-${roundNumber++}.dat`)
      fd = fs.openSync(file, 'w')
    },
    round: () => {
      for (let i = 0; i < opsPerRound; i++) {
        const payload = pool[next]
        next = next + 1 === POOL_RECORDS ? 0 : next + 1
        if (used + 8 + payload.length > NAIVE_BUFFER_BYTES) writeOut()
        buffer.writeUInt32LE(payload.length, used)
        buffer.writeUInt32LE(CRC32C.buf(payload) >>> 0, used + 4)
        buffer.set(payload, used + 8)
        used += 8 + payload.length
      }
      writeOut() // every record of the round reaches the OS inside the round
      return { ops: opsPerRound }
    },
  })
  closeRound()
  return measured
}

/**
 * Gives each round its own state, prepared untimed before it:
 * - fresh: a new empty log; the previous round's log is closed and deleted first.
 * - onFixture: the fixture log, cut back (truncate) to the records it had when opened.
 * Either way the page cache the previous round filled is freed right before the next round reuses
 * it. On this VM, growing the page cache into memory not recently used costs about 350 MB/s against
 * about 5 GB/s for reused pages (bench/README.md): without recycling, rounds would measure that.
 */
function freshPerRound({ dir, onFixture, options }) {
  let log
  let roundNumber = 0
  let startRecords
  return {
    get log() {
      return log
    },
    async before() {
      if (onFixture) {
        if (!log) {
          log = await SegmentedLog.open(dir, options)
          startRecords = log.endOffset
        } else await log.truncate(startRecords)
        return
      }
      if (log) {
        await log.close()
        fs.rmSync(log.dir, { recursive: true, force: true })
      }
      log = await SegmentedLog.open(path.join(dir, `round-${roundNumber++}`), options)
    },
    roundInfo() {
      return { segmentsAfterRound: log.segments.length, endRecords: log.endOffset }
    },
    async close() {
      await log.close()
      if (!onFixture) fs.rmSync(log.dir, { recursive: true, force: true })
    },
  }
}

/** b) appendBatch of 1,000 records, one awaited batch after another. */
export async function seglogAppendBatch({ dir, recordBytes, opsPerRound, rounds, onFixture = false }) {
  const batches = batchesOf(payloadPool(recordBytes, POOL_RECORDS), BATCH_RECORDS)
  if (opsPerRound % BATCH_RECORDS !== 0) throw new Error('opsPerRound must be a multiple of the batch size')
  const state = freshPerRound({ dir, onFixture, options: { sync: 'never' } })
  const info = []
  let next = 0
  const measured = await runRounds({
    name: 'seglog appendBatch',
    rounds,
    before: () => state.before(),
    round: async (phase) => {
      const log = state.log
      for (let i = 0; i < opsPerRound; i += BATCH_RECORDS) {
        await log.appendBatch(batches[next])
        next = next + 1 === batches.length ? 0 : next + 1
      }
      if (phase === 'run') info.push(state.roundInfo())
      return { ops: opsPerRound }
    },
  })
  await state.close()
  return { ...measured, info: info[0] }
}

/** c) single append() calls, `inFlight` at a time (Promise.all per chunk). */
export async function seglogAppendInFlight({ dir, recordBytes, opsPerRound, rounds, inFlight }) {
  const pool = payloadPool(recordBytes, POOL_RECORDS)
  if (opsPerRound % inFlight !== 0 || POOL_RECORDS % inFlight !== 0) throw new Error('inFlight must divide opsPerRound and the pool')
  const state = freshPerRound({ dir, onFixture: false, options: { sync: 'never' } })
  const pending = new Array(inFlight)
  const info = []
  let next = 0
  const measured = await runRounds({
    name: 'seglog append in flight',
    rounds,
    before: () => state.before(),
    round: async (phase) => {
      const log = state.log
      for (let i = 0; i < opsPerRound; i += inFlight) {
        for (let j = 0; j < inFlight; j++) pending[j] = log.append(pool[next + j])
        next = next + inFlight === POOL_RECORDS ? 0 : next + inFlight
        await Promise.all(pending)
      }
      if (phase === 'run') info.push(state.roundInfo())
      return { ops: opsPerRound }
    },
  })
  await state.close()
  return { ...measured, info: info[0] }
}

/** d) `writers` concurrent loops of `await log.append()` under sync 'always', for roundMs per round. */
export async function seglogSyncAlways({ dir, recordBytes, roundMs, rounds, writers }) {
  const pool = payloadPool(recordBytes, POOL_RECORDS)
  const log = await SegmentedLog.open(dir, { sync: 'always' })
  const latency = new LatencyRecorder()
  const measured = await runRounds({
    name: 'seglog sync always',
    rounds,
    round: async (phase) => {
      const deadline = performance.now() + roundMs
      let ops = 0
      const writer = async (first) => {
        for (let i = first; performance.now() < deadline; i += writers) {
          const started = performance.now()
          await log.append(pool[i % POOL_RECORDS])
          if (phase === 'run') latency.add((performance.now() - started) * 1000)
          ops++
        }
      }
      const loops = []
      for (let w = 0; w < writers; w++) loops.push(writer(w))
      await Promise.all(loops)
      return { ops }
    },
  })
  const info = { endRecords: log.endOffset }
  await log.close()
  return { ...measured, ...latency.percentiles(), info }
}

/** d) baseline: one writer, each record framed, writeSync, then an async fdatasync before the next. */
export async function rawWriteFdatasync({ dir, recordBytes, roundMs, rounds }) {
  fs.mkdirSync(dir, { recursive: true })
  const pool = payloadPool(recordBytes, POOL_RECORDS)
  const fd = fs.openSync(path.join(dir, 'raw-fsync.dat'), 'w')
  const frame = Buffer.allocUnsafe(8 + recordBytes)
  const fdatasync = () => new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())))
  const latency = new LatencyRecorder()
  let next = 0
  const measured = await runRounds({
    name: 'raw write + fdatasync',
    rounds,
    round: async (phase) => {
      const deadline = performance.now() + roundMs
      let ops = 0
      while (performance.now() < deadline) {
        const started = performance.now()
        const payload = pool[next]
        next = next + 1 === POOL_RECORDS ? 0 : next + 1
        frame.writeUInt32LE(payload.length, 0)
        frame.writeUInt32LE(CRC32C.buf(payload) >>> 0, 4)
        frame.set(payload, 8)
        fs.writeSync(fd, frame, 0, 8 + payload.length)
        await fdatasync()
        if (phase === 'run') latency.add((performance.now() - started) * 1000)
        ops++
      }
      return { ops }
    },
  })
  fs.closeSync(fd)
  return { ...measured, ...latency.percentiles() }
}
