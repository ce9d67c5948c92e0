/**
 * One replica of a pipeline stage in a worker thread (bench/workloads/scale.mjs drives it): opens the
 * topic the main thread owns (so it forwards to it), then on command consumes with a CPU-bound
 * handler or produces batches. Replies `{ done, ... }` to each command.
 */
import { parentPort } from 'node:worker_threads'
import { Topic } from '../../dist/index.js'
import { BATCH_RECORDS, batchesOf } from '../lib/payloads.mjs'
import { cpuBoundHandler } from './scale-handler.mjs'

let topic
let consumer
let batches
let sink = 0

const commands = {
  async open({ dir }) {
    topic = await Topic.open(dir)
    if (topic.isOwner) throw new Error('a replica must not own the topic')
  },
  async join({ group }) {
    consumer = await topic.consumerGroup(group, { sessionTimeoutMs: 30_000 }).join()
  },
  /** Polls, handles every record, commits, until the group has nothing left (its lag is 0 everywhere). */
  async consume({ group, workIterations }) {
    let handled = 0
    const lagOf = topic.consumerGroup(group)
    for (;;) {
      const records = await consumer.poll({ maxRecords: 200, timeoutMs: 20 })
      for (const record of records) sink ^= cpuBoundHandler(record.value, workIterations)
      handled += records.length
      if (records.length > 0) await consumer.commit()
      else if ((await lagOf.lag()).every((partition) => partition.lag === 0)) return { handled }
    }
  },
  setPool({ records }) {
    batches = batchesOf(records, BATCH_RECORDS)
  },
  async produce({ batchCount }) {
    for (let b = 0; b < batchCount; b++) await topic.sendBatch(batches[b % batches.length])
    return { sent: batchCount * BATCH_RECORDS }
  },
  async close() {
    await consumer?.close()
    consumer = undefined
    await topic?.close()
    topic = undefined
  },
}

parentPort.on('message', async ({ cmd, ...args }) => {
  try {
    parentPort.postMessage({ ok: true, result: (await commands[cmd](args)) ?? null, sink })
  } catch (error) {
    parentPort.postMessage({ ok: false, error: error?.stack ?? String(error) })
  }
})
