// One replica of a pipeline stage, in a worker thread or a child process: it opens the pipeline's
// Broker directory (the orchestrator's handles own the topics; this one forwards writes over a local
// socket and reads the files itself), joins the stage's group, and loops:
//
//   poll a few records → run the model on each → sendBatch the outputs → commit (or ack) → report progress
//
// The leaf detector is a consumer group on drone-images: it commits. Each grader is a share group
// over every crops topic (CROPS_PATTERN): its replicas take crops from all partitions at once and
// ack each batch, so a slow replica holds only the crops it took, never a whole partition.
// Outputs are written before the commit or ack, so a replica that dies in between leaves its input
// unsettled: a consumer group's survivor owns the partition after the session timeout and restarts
// from the committed offset; a share group gives the dead member's crops to the others as soon as its
// connection closes. Either way the same outputs are written again (at-least-once); outputs are
// keyed, so the aggregator absorbs the copies.
//
// The orchestrator talks to a replica with messages: it sends `start` (child processes only; a
// worker gets its config as workerData) and `stop`; the replica sends `progress`, `crash-point`,
// `stopped` (then lets its thread or process end) and `failed`.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { Broker, LogError } from '../../dist/index.js'
import { CROPS_PATTERN, GROUPS, TOPICS, cropRecord, decodeCrop, decodePhoto, predictionRecord } from './records.mjs'
import { AREAS, DETECTOR, MODELS, detectLeaves, gradeLeaf } from './synthetic.mjs'

const STAGE_FILE = fileURLToPath(import.meta.url)
const CHILD_FLAG = '--plant-pipeline-replica'

/** Every handle on a group must pass the same options (the first one defines the group). */
export function groupOptions(sessionTimeoutMs) {
  return { autoOffsetReset: 'earliest', assignmentStrategy: 'range', sessionTimeoutMs }
}

/** The graders' share groups: a dead replica's crops come back at once (its connection closes), a hung one's after lockMs. */
export function shareOptions(sessionTimeoutMs) {
  return { topics: CROPS_PATTERN, lockMs: 10_000, maxDeliveries: 10, sessionTimeoutMs }
}

/**
 * The two kinds of stage. `join` returns the replica's member as { poll(maxRecords), settle(records),
 * close() }; `process(record, config)` returns the output records as `[topicName, producerRecord]`
 * pairs; it is pure, so a record processed twice gives the same outputs.
 */
export const STAGE_KINDS = {
  detector: {
    input: () => TOPICS.photos,
    outputs: () => AREAS.map(TOPICS.crops),
    group: () => GROUPS.detector,
    pollRecords: 2, // a photo takes ~10 ms: keep a batch well inside the session timeout
    async join(broker, config, memberId) {
      const topic = await broker.topic(TOPICS.photos)
      const consumer = await topic.consumerGroup(GROUPS.detector, groupOptions(config.sessionTimeoutMs)).join({ memberId })
      return {
        poll: (maxRecords) => consumer.poll({ maxRecords, timeoutMs: 100 }),
        settle: (_records, stats) => unlessFenced(consumer.commit(), stats),
        close: () => consumer.close(),
      }
    },
    process(record) {
      const photo = decodePhoto(record)
      return detectLeaves(photo.pixels, photo.width, photo.height).map((crop) => [TOPICS.crops(photo.area), cropRecord(photo, crop, DETECTOR)])
    },
  },
  grader: {
    input: () => String(CROPS_PATTERN),
    outputs: () => [TOPICS.predictions],
    group: ({ disease, version }) => GROUPS.grader(disease, version),
    pollRecords: 48,
    async join(broker, config, memberId) {
      const member = await broker.shareGroup(GROUPS.grader(config.disease, config.version), shareOptions(config.sessionTimeoutMs)).join({ memberId })
      return {
        poll: (maxRecords) => member.poll({ maxRecords, timeoutMs: 100 }),
        settle: (records, stats) => unlessFenced(member.ack(records), stats),
        close: () => member.close(),
      }
    },
    process(record, { disease, version }) {
      const crop = decodeCrop(record)
      const result = gradeLeaf(crop.pixels, crop.box.width, crop.box.height, disease, version)
      return [[TOPICS.predictions, predictionRecord(crop, disease, { id: MODELS[disease].id, version }, result)]]
    },
  },
}

/** The stage's display name: `leaf-detector`, `grader.rust.v1`. */
export function stageName({ kind, disease, version }) {
  return kind === 'grader' ? GROUPS.grader(disease, version) : STAGE_KINDS[kind].group()
}

// ---------------------------------------------------------------------------------------------
// The replica's loop

/**
 * Runs one replica until told to stop. `config`: { kind, replica, dir, disease?, version?,
 * sessionTimeoutMs, crashAfterRecords? }. With `crashAfterRecords`, the replica stops dead once it
 * has written the outputs of that many records and before it commits (or acks) them, reports
 * `crash-point`, and waits there to be killed by the orchestrator (SIGKILL or worker.terminate()).
 */
export async function runReplica(config, channel) {
  const kind = STAGE_KINDS[config.kind]
  const memberId = `${stageName(config)}#${config.replica}`
  const broker = await Broker.open(config.dir)
  const outputs = new Map()
  for (const name of kind.outputs(config)) outputs.set(name, await broker.topic(name))
  const member = await kind.join(broker, config, memberId)
  let stopping = false
  const onMessage = (message) => {
    if (message?.type === 'stop') stopping = true
  }
  channel.onMessage(onMessage)
  const stats = { memberId, processed: 0, written: 0, fencedCommits: 0, busyMs: 0, firstAt: null, lastAt: null }
  while (!stopping) {
    const records = await member.poll(kind.pollRecords)
    if (records.length === 0) continue
    const startedAt = Date.now()
    const batches = new Map()
    for (const record of records) {
      for (const [topic, output] of kind.process(record, config)) {
        if (!batches.has(topic)) batches.set(topic, [])
        batches.get(topic).push(output)
      }
    }
    for (const [topic, batch] of batches) {
      await outputs.get(topic).sendBatch(batch)
      stats.written += batch.length
    }
    stats.processed += records.length
    stats.busyMs += Date.now() - startedAt
    stats.firstAt ??= startedAt
    stats.lastAt = Date.now()
    if (config.crashAfterRecords !== undefined && stats.processed >= config.crashAfterRecords) {
      channel.post({ type: 'crash-point', stats, uncommitted: records.map(({ topic, partition, offset }) => ({ topic, partition, offset })) })
      await new Promise(() => {}) // outputs written, input not settled: the orchestrator kills us here
    }
    await member.settle(records, stats)
    channel.post({ type: 'progress', stats })
  }
  await member.close()
  await broker.close()
  channel.finish({ type: 'stopped', stats }, onMessage)
}

/**
 * A commit refused because a rebalance happened since the poll (a replica joined, or a dead one was
 * removed), or an ack of a crop whose lock expired meanwhile: the new owner replays those records.
 */
async function unlessFenced(settling, stats) {
  try {
    await settling
  } catch (error) {
    if (!(error instanceof LogError) || error.code !== 'FENCED') throw error
    stats.fencedCommits++
  }
}

// ---------------------------------------------------------------------------------------------
// Starting replicas (orchestrator side) and the replica's entry points

/**
 * Starts a replica as a worker thread (`mode: 'thread'`) or a child process (`mode: 'process'`).
 * Returns { post(message), onMessage(fn), kill(), exited: Promise<{ code, signal }> }; `kill`
 * terminates the thread, or sends the process SIGKILL.
 */
export function startReplica(config, mode) {
  if (mode === 'process') {
    const child = fork(STAGE_FILE, [CHILD_FLAG], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.send({ type: 'start', config })
    return {
      post: (message) => child.connected && child.send(message),
      onMessage: (fn) => child.on('message', fn),
      kill: () => child.kill('SIGKILL'),
      exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    }
  }
  const worker = new Worker(STAGE_FILE, { workerData: { plantPipelineReplica: config } })
  const exited = new Promise((resolve) => {
    worker.on('error', (error) => resolve({ code: 1, error }))
    worker.on('exit', (code) => resolve({ code, signal: null }))
  })
  return { post: (message) => worker.postMessage(message), onMessage: (fn) => worker.on('message', fn), kill: () => worker.terminate(), exited }
}

function reportFailure(channel, error) {
  channel.post({ type: 'failed', error: String(error?.stack ?? error) })
}

if (!isMainThread && workerData?.plantPipelineReplica) {
  const channel = {
    post: (message) => parentPort.postMessage(message),
    onMessage: (fn) => parentPort.on('message', fn),
    finish: (message, fn) => {
      parentPort.postMessage(message)
      parentPort.off('message', fn) // with no listener left, the port no longer keeps the thread alive
    },
  }
  runReplica(workerData.plantPipelineReplica, channel).catch((error) => {
    reportFailure(channel, error)
    process.exit(1)
  })
} else if (process.argv.includes(CHILD_FLAG) && process.send) {
  const channel = {
    post: (message) => process.connected && process.send(message),
    onMessage: (fn) => process.on('message', fn),
    finish: (message, fn) => {
      process.off('message', fn)
      process.send(message, () => process.disconnect())
    },
  }
  process.once('message', ({ config }) => {
    runReplica(config, channel).catch((error) => {
      reportFailure(channel, error)
      process.exitCode = 1
      setTimeout(() => process.exit(1), 100)
    })
  })
}
