/**
 * Queue-layer workloads (child side), each next to the storage operation it is built on:
 *
 * - produce: Topic.sendBatch of 1,000 records (100 B value, 16-byte string key, 2 string headers)
 *   onto 1 or 3 partitions, against SegmentedLog.appendBatch of 1,000 100 B values (the existing
 *   `seglogAppendBatch` workload, registered again under a queue id). Same round shape as the
 *   append rows: every round starts on an empty topic (the previous one is closed and deleted,
 *   untimed) and writes 1,083,000 records, `sync: 'never'`. A diagnostic row appends the encoded
 *   envelopes themselves (what sendBatch hands to appendBatch) to split the gap in two.
 * - drain: a consumer group member reading a topic fixture of N records from offset 0 (a new group
 *   per round, joined untimed) with poll({ maxRecords: 1000 }) + commit() per poll, with
 *   `for await (const r of consumer)`, and with poll alone (no commit: shows what commits cost),
 *   against SegmentedLog.records() over the partition's own log (the same files, the same bytes).
 *
 * Producer records are built before anything is timed (a pool of 16,000, cycled in batches of
 * 1,000), as the append workloads pre-build their payloads.
 */
import fs from 'node:fs'
import path from 'node:path'
import { SegmentedLog, Topic } from '../../dist/index.js'
import { BATCH_RECORDS, POOL_RECORDS, batchesOf, payloadPool } from '../lib/payloads.mjs'
import { runRounds } from '../lib/rounds.mjs'

export const KEY_CHARS = 16
let sink = 0 // keeps the touched bytes observable

/** `POOL_RECORDS` producer records: 100 B value, a distinct 16-character ASCII key, 2 headers. */
export function producerRecordPool(recordBytes) {
  const values = payloadPool(recordBytes, POOL_RECORDS)
  return values.map((value, i) => ({
    key: `key-${i.toString(16).padStart(KEY_CHARS - 4, '0')}`,
    value,
    headers: { 'content-type': 'application/octet-stream', 'trace-id': (Math.imul(i + 1, 0x9e3779b1) >>> 0).toString(16).padStart(8, '0') },
  }))
}

// ---------------------------------------------------------------------------------------------
// produce

/** sendBatch of 1,000 records at a time onto a new topic of `partitions` partitions per round (valueOnly: values alone). */
export async function topicSendBatch({ dir, recordBytes, opsPerRound, partitions, rounds, valueOnly = false }) {
  if (opsPerRound % BATCH_RECORDS !== 0) throw new Error('opsPerRound must be a multiple of the batch size')
  const pool = producerRecordPool(recordBytes)
  // valueOnly (diagnostic): the same values with no key and no headers, the producer path's base cost.
  const batches = batchesOf(valueOnly ? pool.map(({ value }) => ({ value })) : pool, BATCH_RECORDS)
  let topic
  let roundNumber = 0
  let next = 0
  const info = []
  const closeTopic = async () => {
    if (!topic) return
    await topic.close()
    fs.rmSync(topic.dir, { recursive: true, force: true })
    topic = undefined
  }
  const measured = await runRounds({
    name: `topic sendBatch, ${partitions} partition(s)`,
    rounds,
    before: async () => {
      await closeTopic()
      topic = await Topic.open(path.join(dir, `round-${roundNumber++}`), { partitions, sync: 'never' })
    },
    round: async (phase) => {
      for (let i = 0; i < opsPerRound; i += BATCH_RECORDS) {
        await topic.sendBatch(batches[next])
        next = next + 1 === batches.length ? 0 : next + 1
      }
      if (phase === 'run') info.push(partitionInfo(topic))
      return { ops: opsPerRound }
    },
  })
  await closeTopic()
  return { ...measured, info: info[0] }
}

/**
 * Diagnostic: the producer path's encoder alone (checking, placing and encoding 1,000 records into
 * a partition's scratch, as sendBatch does before appending), with no log: what encoding costs.
 */
export async function producerEncode({ recordBytes, opsPerRound, partitions, rounds }) {
  if (opsPerRound % BATCH_RECORDS !== 0) throw new Error('opsPerRound must be a multiple of the batch size')
  const { encodeRecords } = await import('../../dist/producer-record.js')
  const batches = batchesOf(producerRecordPool(recordBytes), BATCH_RECORDS)
  const placement = { partitionCount: partitions, forced: undefined, spread: 0, check: (partition) => partition }
  let next = 0
  return runRounds({
    name: `encode only, ${partitions} partition(s)`,
    rounds,
    round: () => {
      for (let i = 0; i < opsPerRound; i += BATCH_RECORDS) {
        const encoded = encodeRecords(batches[next], 64 * 1024 * 1024, placement)
        sink += encoded.count
        encoded.release()
        next = next + 1 === batches.length ? 0 : next + 1
      }
      return { ops: opsPerRound }
    },
  })
}

/**
 * Diagnostic: the floor of any JavaScript encoder of these records. A bare loop that only copies
 * each record's fields into one buffer (8 bytes for a header, the value, the key and both header
 * names and values as ASCII, four chars per store): no checks, no lengths, no UTF-8, no placement.
 */
export async function bareCopyLoop({ recordBytes, opsPerRound, rounds }) {
  if (opsPerRound % BATCH_RECORDS !== 0) throw new Error('opsPerRound must be a multiple of the batch size')
  const batches = batchesOf(producerRecordPool(recordBytes), BATCH_RECORDS)
  const buffer = Buffer.allocUnsafe(1024 * 1024)
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.length)
  const putAscii = (at, text) => {
    const chars = text.length
    let i = 0
    for (; i + 3 < chars; i += 4) {
      view.setInt32(at + i, text.charCodeAt(i) | (text.charCodeAt(i + 1) << 8) | (text.charCodeAt(i + 2) << 16) | (text.charCodeAt(i + 3) << 24), true)
    }
    for (; i < chars; i++) view.setUint8(at + i, text.charCodeAt(i))
    return chars
  }
  let next = 0
  return runRounds({
    name: 'bare copy loop',
    rounds,
    round: () => {
      for (let i = 0; i < opsPerRound; i += BATCH_RECORDS) {
        const records = batches[next]
        let at = 0
        for (let r = 0; r < records.length; r++) {
          const { value, key, headers } = records[r]
          at += 8
          buffer.set(value, at)
          at += value.length
          at += putAscii(at, key)
          for (const name in headers) {
            at += putAscii(at, name)
            at += putAscii(at, headers[name])
          }
        }
        sink += at
        next = next + 1 === batches.length ? 0 : next + 1
      }
      return { ops: opsPerRound }
    },
  })
}

/**
 * Diagnostic: SegmentedLog.appendBatch of the very envelopes sendBatch writes (key, headers and value
 * already encoded, about 190 B each), so the gap to sendBatch is the producer path's own work
 * (checking, encoding, placing) and the gap to the 100 B baseline is the cost of bigger records.
 * The envelopes are produced by a scratch topic and read back (public API only), before timing.
 */
export async function encodedAppendBatch({ dir, recordBytes, opsPerRound, rounds }) {
  if (opsPerRound % BATCH_RECORDS !== 0) throw new Error('opsPerRound must be a multiple of the batch size')
  const batches = await encodedEnvelopeBatches(path.join(dir, 'scratch'), recordBytes)
  let log
  let roundNumber = 0
  let next = 0
  const closeLog = async () => {
    if (!log) return
    await log.close()
    fs.rmSync(log.dir, { recursive: true, force: true })
    log = undefined
  }
  const measured = await runRounds({
    name: 'SegmentedLog appendBatch of encoded envelopes',
    rounds,
    before: async () => {
      await closeLog()
      log = await SegmentedLog.open(path.join(dir, `round-${roundNumber++}`), { sync: 'never' })
    },
    round: async () => {
      for (let i = 0; i < opsPerRound; i += BATCH_RECORDS) {
        await log.appendBatch(batches[next])
        next = next + 1 === batches.length ? 0 : next + 1
      }
      return { ops: opsPerRound }
    },
  })
  await closeLog()
  const envelopeBytes = batches.flat().reduce((sum, envelope) => sum + envelope.length, 0) / POOL_RECORDS
  return { ...measured, info: { envelopeBytesMean: envelopeBytes } }
}

/** The producer record pool as the envelopes Topic.sendBatch writes for it, in batches of 1,000. */
async function encodedEnvelopeBatches(dir, recordBytes) {
  const topic = await Topic.open(dir, { partitions: 1, sync: 'never' })
  try {
    for (const batch of batchesOf(producerRecordPool(recordBytes), BATCH_RECORDS)) await topic.sendBatch(batch)
    const log = topic.partition(0).log
    const envelopes = Array.from({ length: POOL_RECORDS }, (_, offset) => Uint8Array.from(log.read(offset)))
    return batchesOf(envelopes, BATCH_RECORDS)
  } finally {
    await topic.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function partitionInfo(topic) {
  const logs = Array.from({ length: topic.partitionCount }, (_, p) => topic.partition(p).log)
  return {
    recordsPerPartition: logs.map((log) => log.endOffset),
    segmentsPerPartition: logs.map((log) => log.segments.length),
    storeBytes: logs.reduce((sum, log) => sum + log.segments.reduce((s, segment) => s + segment.bytes, 0), 0),
  }
}

// ---------------------------------------------------------------------------------------------
// drain: fixture

/** Builds the drain fixture: a topic of `records` producer records (1 partition unless told). */
export async function buildTopicFixture({ dir, records, recordBytes, partitions = 1 }) {
  if (records % BATCH_RECORDS !== 0) throw new Error('fixture records must be a multiple of 1,000')
  fs.rmSync(dir, { recursive: true, force: true })
  const batches = batchesOf(producerRecordPool(recordBytes), BATCH_RECORDS)
  const started = performance.now()
  const topic = await Topic.open(dir, { partitions, sync: 'never' })
  for (let sent = 0, next = 0; sent < records; sent += BATCH_RECORDS, next = (next + 1) % batches.length) await topic.sendBatch(batches[next])
  const segments = []
  for (let p = 0; p < partitions; p++) {
    for (const segment of topic.partition(p).log.segments) {
      segments.push({ partition: p, baseOffset: segment.baseOffset, count: segment.count, bytes: segment.bytes, isActive: segment.isActive })
    }
  }
  await topic.close()
  return { dir, records, recordBytes, partitions, buildMs: performance.now() - started, segments }
}

// ---------------------------------------------------------------------------------------------
// drain: workloads

/**
 * Rounds that each drain the fixture from offset 0 with a new consumer group (joined untimed, in
 * `before`), until `recordsPerRound` records were seen. `drain(consumer)` returns how many it saw.
 */
async function drainRounds(name, { fixture, recordsPerRound, rounds }, drain) {
  const topic = await Topic.open(fixture.dir)
  let consumer
  let roundNumber = 0
  const info = { commits: 0, polls: 0 }
  const leave = async () => {
    if (consumer) await consumer.close()
    consumer = undefined
  }
  try {
    const measured = await runRounds({
      name,
      rounds,
      before: async () => {
        await leave()
        // A group id never used before (rounds, passes): the member starts at offset 0 (earliest).
        const group = topic.consumerGroup(`drain-${process.pid}-${roundNumber++}`)
        consumer = await group.join({ memberId: 'bench' })
      },
      round: async () => {
        const seen = await drain(consumer, info)
        if (seen !== recordsPerRound) throw new Error(`${name} saw ${seen} records, expected ${recordsPerRound}`)
        return { ops: recordsPerRound }
      },
    })
    await leave()
    const roundsRun = rounds + 1 // with the warmup round
    const counted = info.polls > 0 ? { pollsPerRound: info.polls / roundsRun, commitsPerRound: info.commits / roundsRun } : {} // for await: the iterator's own
    return { ...measured, info: { partitions: topic.partitionCount, ...counted } }
  } finally {
    await leave()
    await topic.close()
  }
}

/** poll({ maxRecords }) then commit() (all positions), until the round's records are consumed. */
export async function consumerPollCommit({ fixture, recordsPerRound, rounds, maxRecords, commit = true }) {
  return drainRounds(`consumer poll(${maxRecords})${commit ? ' + commit()' : ''}`, { fixture, recordsPerRound, rounds }, async (consumer, info) => {
    let seen = 0
    let touched = 0
    while (seen < recordsPerRound) {
      const records = await consumer.poll({ maxRecords: Math.min(maxRecords, recordsPerRound - seen) })
      if (records.length === 0) throw new Error(`poll returned nothing after ${seen} records`)
      for (const record of records) touched += record.value[0]
      seen += records.length
      info.polls++
      if (commit) {
        await consumer.commit()
        info.commits++
      }
    }
    sink += touched
    return seen
  })
}

/** for await (const r of consumer): the iterator polls 100 at a time and commits after each batch. */
export async function consumerForAwait({ fixture, recordsPerRound, rounds }) {
  return drainRounds('consumer for await', { fixture, recordsPerRound, rounds }, async (consumer) => {
    let seen = 0
    let touched = 0
    for await (const record of consumer) {
      touched += record.value[0]
      if (++seen === recordsPerRound) break
    }
    sink += touched
    return seen
  })
}

/** Baseline: SegmentedLog.records() over partition 0's log, from offset 0. */
export async function partitionLogRecords({ fixture, recordsPerRound, rounds }) {
  const log = await SegmentedLog.open(path.join(fixture.dir, 'partition-0'), { sync: 'never' })
  if (log.endOffset < recordsPerRound) throw new Error(`the fixture's partition 0 holds ${log.endOffset} records, fewer than ${recordsPerRound}`)
  try {
    const measured = await runRounds({
      name: 'SegmentedLog records()',
      rounds,
      round: async () => {
        let seen = 0
        let touched = 0
        for await (const record of log.records({ from: 0, to: recordsPerRound })) {
          touched += record.value[0]
          seen++
        }
        sink += touched
        if (seen !== recordsPerRound) throw new Error(`records() saw ${seen} records, expected ${recordsPerRound}`)
        return { ops: recordsPerRound }
      },
    })
    return { ...measured, info: { segments: log.segments.length, usesMmap: log.usesMmap, sink: sink & 0xff } }
  } finally {
    await log.close()
  }
}
