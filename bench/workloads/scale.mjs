/**
 * Scaling a stage across worker threads (issue: threads and processes). The main thread opens the
 * topic and owns it; replicas in worker threads (scale-worker.mjs) open it too and forward to it.
 *
 * - consume: `replicas` group members in worker threads drain a 4-partition topic fixture from offset
 *   0 (a new group per round, joined untimed), running a CPU-bound handler (a fixed xorshift chain
 *   per record) and committing after each poll. 1 replica is the baseline of 2.
 * - produce: 4 worker threads each sendBatch their share of a round's batches (the queue-produce
 *   records: 100 B value, 16-char key, 2 headers) onto a new 1-partition topic the main thread owns,
 *   against the main thread sending all of them itself (threads: 0, the baseline).
 * Timing covers only the work: starting workers, opening and joining happen in `before`.
 */
import fs from 'node:fs'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { Topic } from '../../dist/index.js'
import { BATCH_RECORDS, POOL_RECORDS, batchesOf } from '../lib/payloads.mjs'
import { runRounds } from '../lib/rounds.mjs'
import { producerRecordPool } from './queue.mjs'

const WORKER = new URL('./scale-worker.mjs', import.meta.url)

/** A worker thread that answers one command at a time. */
class Replica {
  constructor() {
    this.worker = new Worker(WORKER)
    this.worker.on('error', (error) => this.fail?.(error))
  }

  call(cmd, args = {}) {
    return new Promise((resolve, reject) => {
      this.fail = reject
      this.worker.once('message', (reply) => (reply.ok ? resolve(reply.result) : reject(new Error(reply.error))))
      this.worker.postMessage({ cmd, ...args })
    })
  }

  async stop() {
    await this.call('close').catch(() => undefined)
    await this.worker.terminate()
  }
}

export async function scaleConsume({ fixture, replicas, workIterations, rounds }) {
  const topic = await Topic.open(fixture.dir)
  const total = fixture.records
  let workers = []
  let roundNumber = 0
  let group
  const handledPerReplica = []
  const stopAll = async () => {
    await Promise.all(workers.map((worker) => worker.stop()))
    workers = []
  }
  try {
    const measured = await runRounds({
      name: `consume with ${replicas} replica(s)`,
      rounds,
      before: async () => {
        await stopAll()
        group = `scale-${process.pid}-${roundNumber++}`
        workers = Array.from({ length: replicas }, () => new Replica())
        await Promise.all(workers.map((worker) => worker.call('open', { dir: fixture.dir })))
        for (const worker of workers) await worker.call('join', { group })
      },
      round: async () => {
        const results = await Promise.all(workers.map((worker) => worker.call('consume', { group, workIterations })))
        const handled = results.reduce((sum, result) => sum + result.handled, 0)
        if (handled < total) throw new Error(`replicas handled ${handled} of ${total} records`)
        handledPerReplica.push(results.map((result) => result.handled))
        return { ops: total }
      },
    })
    return { ...measured, info: { replicas, partitions: topic.partitionCount, workIterations, handledPerReplica: handledPerReplica.at(-1) } }
  } finally {
    await stopAll()
    await topic.close()
  }
}

export async function scaleProduce({ dir, threads, batchesPerRound, rounds }) {
  const records = producerRecordPool(100)
  const batches = batchesOf(records, BATCH_RECORDS)
  const workers = Array.from({ length: threads }, () => new Replica())
  await Promise.all(workers.map((worker) => worker.call('setPool', { records })))
  let topic
  let roundNumber = 0
  const closeRound = async () => {
    await Promise.all(workers.map((worker) => worker.call('close')))
    if (!topic) return
    await topic.close()
    fs.rmSync(topic.dir, { recursive: true, force: true })
    topic = undefined
  }
  try {
    const measured = await runRounds({
      name: threads === 0 ? 'sendBatch from the owner thread' : `sendBatch from ${threads} worker threads`,
      rounds,
      before: async () => {
        await closeRound()
        topic = await Topic.open(path.join(dir, `round-${roundNumber++}`), { partitions: 1, sync: 'never' })
        await Promise.all(workers.map((worker) => worker.call('open', { dir: topic.dir })))
      },
      round: async () => {
        if (threads === 0) {
          for (let b = 0; b < batchesPerRound; b++) await topic.sendBatch(batches[b % batches.length])
        } else {
          const share = batchesPerRound / threads
          await Promise.all(workers.map((worker) => worker.call('produce', { batchCount: share })))
        }
        if (topic.partition(0).endOffset < batchesPerRound * BATCH_RECORDS) throw new Error('records missing after the round')
        return { ops: batchesPerRound * BATCH_RECORDS }
      },
    })
    return { ...measured, info: { threads, recordsPerRound: batchesPerRound * BATCH_RECORDS, poolRecords: POOL_RECORDS } }
  } finally {
    await closeRound()
    await Promise.all(workers.map((worker) => worker.stop()))
  }
}
