/**
 * Peer-system workloads (child side): LMDB, SQLite and an in-memory B+tree (bench/peers/) on the same
 * records and offsets as seglog's rows. Every store holds payload `o % POOL_RECORDS` at key `o`, so
 * read jobs check their bytes against the pool before timing (lib/fixtures.mjs checkPayloads), and
 * random keys come from the same seeded xorshift32 as seglog's read rows.
 */
import fs from 'node:fs'
import path from 'node:path'
import { buildFixture, checkPayloads, sealFixture } from '../lib/fixtures.mjs'
import { BATCH_RECORDS, POOL_RECORDS, batchesOf, fixturePool, payloadPool } from '../lib/payloads.mjs'
import { DEFAULT_SEED, XorShift32, randomOffsets } from '../lib/prng.mjs'
import { runRounds } from '../lib/rounds.mjs'
import { LatencyRecorder } from '../lib/stats.mjs'
import { loadPeer } from '../peers/index.mjs'

let sink = 0

/** Appends `records` records (offset o → pool[o % POOL]) in batches of 1,000; `shape`: { recordBytes, mixedSizes? }. */
async function fill(store, records, shape) {
  const batches = batchesOf(fixturePool(shape), BATCH_RECORDS)
  if (records % BATCH_RECORDS !== 0) throw new Error('records must be a multiple of 1,000')
  for (let at = store.count; at < records; at += BATCH_RECORDS) await store.appendBatch(batches[(at % POOL_RECORDS) / BATCH_RECORDS])
}

/** Fixture op for a peer group: builds the store of N records on disk (btree: nothing, it lives in the child). */
export async function buildPeerFixture({ system, dir, records, recordBytes, mixedSizes = false }) {
  const started = performance.now()
  if (system === 'seglog') {
    await buildFixture({ dir, records, recordBytes, mixedSizes })
    const sealed = await sealFixture({ dir, records, recordBytes, mixedSizes })
    return { segments: sealed.segments, buildMs: performance.now() - started }
  }
  if (system !== 'btree') {
    fs.rmSync(dir, { recursive: true, force: true })
    const peer = await loadPeer(system)
    const store = await peer.open(dir, system === 'lmdb' ? 'nosync' : 'off')
    await fill(store, records, { recordBytes, mixedSizes })
    await store.close()
  }
  return { segments: [], buildMs: performance.now() - started }
}

/** Opens a fixture's store for reading (btree: builds it here, untimed). */
async function openFixture(fixture, mode) {
  const peer = await loadPeer(fixture.system)
  const store = await peer.open(fixture.dir, mode)
  if (fixture.system === 'btree') await fill(store, fixture.records, fixture)
  if (store.count < fixture.records) throw new Error(`${fixture.system} fixture holds ${store.count} records, expected ${fixture.records}`)
  return store
}

/** Appends without fsync: batches of 1,000, fresh store per round (or the fixture cut back to N). */
export async function peerAppend({ dir, fixture, system, mode, recordBytes, opsPerRound, rounds, onFixture = false }) {
  const peer = await loadPeer(system)
  const batches = batchesOf(payloadPool(recordBytes, POOL_RECORDS), BATCH_RECORDS)
  let store
  let roundNumber = 0
  let storeDir
  let start = 0
  let next = 0
  const measured = await runRounds({
    name: `${system} append`,
    rounds,
    before: async () => {
      if (onFixture) {
        if (!store) {
          store = await openFixture(fixture, mode)
          start = store.count
        } else await store.truncate(start)
        return
      }
      if (store) {
        await store.close()
        fs.rmSync(storeDir, { recursive: true, force: true })
      }
      storeDir = path.join(dir, `round-${roundNumber++}`)
      store = await peer.open(storeDir, mode)
    },
    round: async () => {
      for (let i = 0; i < opsPerRound; i += BATCH_RECORDS) {
        await store.appendBatch(batches[next])
        next = next + 1 === batches.length ? 0 : next + 1
      }
      return { ops: opsPerRound }
    },
  })
  if (onFixture) await store.truncate(start)
  await store.close()
  if (!onFixture) fs.rmSync(storeDir, { recursive: true, force: true })
  return measured
}

/** Durable appends: `writers` concurrent async loops, one record per call, for roundMs per round. */
export async function peerDurable({ dir, system, mode, recordBytes, roundMs, rounds, writers }) {
  const peer = await loadPeer(system)
  const pool = payloadPool(recordBytes, POOL_RECORDS)
  const store = await peer.open(dir, mode)
  const latency = new LatencyRecorder()
  const measured = await runRounds({
    name: `${system} durable`,
    rounds,
    round: async (phase) => {
      const deadline = performance.now() + roundMs
      let ops = 0
      const writer = async (first) => {
        for (let i = first; performance.now() < deadline; i += writers) {
          const started = performance.now()
          // SQLite's calls are synchronous: yielding first queues this writer behind the others,
          // so its latency includes their commits, as a request waiting for the database would.
          await null
          await store.appendDurable(pool[i % POOL_RECORDS])
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
  const info = { endRecords: store.count }
  await store.close()
  return { ...measured, ...latency.percentiles(), info }
}

/** Random point reads by key over [0, N), the same key sequence as seglog's read rows. */
export async function peerRandomRead({ fixture, mode, fast = false, readsPerRound, rounds }) {
  const store = await openFixture(fixture, mode)
  const read = fast ? (key) => store.getFast(key) : (key) => store.get(key)
  // getBinaryFast's reused buffer reports the value's size in .length but spans its whole backing
  // memory (byteLength): compare a view of .length bytes.
  checkPayloads((key) => {
    const value = read(key)
    return new Uint8Array(value.buffer, value.byteOffset, value.length)
  }, fixture)
  const rng = new XorShift32(DEFAULT_SEED)
  let keys
  const measured = await runRounds({
    name: `${fixture.system} random read`,
    rounds,
    before: () => {
      keys = randomOffsets(rng, readsPerRound, fixture.records)
    },
    round: () => {
      let touched = 0
      for (let i = 0; i < readsPerRound; i++) touched += read(keys[i])[0]
      sink += touched
      return { ops: readsPerRound }
    },
  })
  await store.close()
  return { ...measured, info: { sink: sink & 0xff } }
}

/** Sequential scan of [0, recordsPerRound). */
export async function peerScan({ fixture, mode, recordsPerRound, rounds }) {
  const store = await openFixture(fixture, mode)
  let touched = 0
  const visit = (value) => {
    touched += value[0]
  }
  const measured = await runRounds({
    name: `${fixture.system} scan`,
    rounds,
    round: async () => {
      const seen = await store.scan(0, recordsPerRound, visit)
      if (seen !== recordsPerRound) throw new Error(`${fixture.system} scan saw ${seen} records, expected ${recordsPerRound}`)
      return { ops: recordsPerRound }
    },
  })
  sink += touched
  await store.close()
  return measured
}

/**
 * Open time after a clean close, or recovery time after a crash, of a store of `records` records
 * (seglog: in `segments` segments). Timed: open + one read of the newest record. Each round opens
 * a fresh copy of a template built untimed in this child.
 * Crash images: seglog: a copy of the closed log without its `clean-shutdown` marker (so open runs
 * crash recovery: the newest segment is scanned record by record and its index rebuilt); LMDB: a copy
 * of data.mdb taken while the writer still has it open (LMDB needs no recovery by design);
 * SQLite: copies of the database and its un-checkpointed -wal taken while open, without the -shm
 * (open rebuilds the WAL index from the WAL).
 */
export async function peerOpen({ dir, system, mode, records, recordBytes, segments, crash, rounds }) {
  const peer = await loadPeer(system)
  const template = path.join(dir, 'template')
  const image = path.join(dir, 'image')
  const extra = system === 'seglog' ? { segmentRecordsMax: records / segments } : {}
  let store = await peer.open(template, mode, extra)
  if (system === 'sqlite') store.db.pragma('wal_autocheckpoint = 0')
  await fill(store, records, { recordBytes })
  if (system === 'seglog' && store.log.segments.length !== segments) throw new Error(`seglog template has ${store.log.segments.length} segments, expected ${segments}`)
  if (crash && system !== 'seglog') {
    fs.cpSync(template, image, { recursive: true, filter: (source) => !source.endsWith('-shm') && !source.endsWith('lock.mdb') })
    await store.close()
  } else {
    await store.close()
    fs.cpSync(template, image, { recursive: true })
    if (crash) fs.rmSync(path.join(image, 'clean-shutdown'))
  }
  let roundNumber = 0
  let current
  let opened
  const openMs = []
  const measured = await runRounds({
    name: `${system} open`,
    rounds,
    before: async () => {
      if (opened) await opened.close()
      opened = undefined
      if (current) fs.rmSync(current, { recursive: true, force: true })
      current = path.join(dir, `open-${roundNumber++}`)
      fs.cpSync(image, current, { recursive: true })
    },
    round: async (phase) => {
      const started = performance.now()
      opened = await peer.open(current, mode, extra)
      sink += opened.get(records - 1)[0]
      if (system === 'seglog' && opened.log.recovery.uncleanShutdown !== Boolean(crash)) throw new Error('seglog open: unexpected recovery state')
      if (phase === 'run') openMs.push(performance.now() - started)
      return { ops: 1 }
    },
  })
  if (opened) await opened.close()
  openMs.sort((a, b) => a - b)
  return { ...measured, info: { records, segments: system === 'seglog' ? segments : null, medianMs: openMs[openMs.length >> 1] } }
}
