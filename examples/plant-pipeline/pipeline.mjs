// The plant-disease pipeline of the talk "Message queues and their role in ML inference", on seglog
// topics of one Broker directory. Drones photograph numbered positions in a control and a treated
// area every day; a leaf detector crops the leaves into one topic per area (crops.control,
// crops.treated); five graders, one share group per disease subscribed to /^crops\./, give each leaf
// a severity grade 0–4; predictions are stored keyed by (crop, disease) with the model id and
// version; an aggregator tells, per disease, whether the medicine lowers severity. Then a retrained
// rust model, a new share group, replays the crops topics: only that grader runs.
//
//   drones ─▶ drone-images ─▶ leaf-detector ×R ─▶ crops.control ─┬▶ grader.rust.v1 ×R   ─┐
//                                                 crops.treated ─┤  grader.blight.v1 ×R ├▶ predictions ─▶ aggregator
//                                                  (/^crops\./)   └▶ ... (5 diseases)   ─┘
//
// This thread opens every topic first, so it owns them (writes, group coordination); each stage
// replica is a worker thread or a child process that opens the Broker itself and forwards to it.
//
// Run with: npm run demo, or npm run build && node examples/plant-pipeline/pipeline.mjs [flags]
// (flags: see README.md or --help).
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Broker } from '../../dist/index.js'
import { ALL_TOPICS, GROUPS, TOPICS, decodePrediction, photoRecord } from './records.mjs'
import { parseArgs, usage } from './cli.mjs'
import { PredictionStore, processedBy, progressLine, reportLines, stageSummary, sumLag } from './report.mjs'
import { STAGE_KINDS, groupOptions, stageName, startReplica } from './stage.mjs'
import { AREAS, DISEASES, LEAVES_MAX, MODELS, PHOTO_HEIGHT, PHOTO_WIDTH, latestVersion, photoIdOf, renderPhoto } from './synthetic.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))

export const DEFAULTS = {
  dir: path.join(HERE, '.data'),
  days: 8,
  positions: 16, // per area
  leaves: LEAVES_MAX, // per photo
  replicas: 2, // of the leaf detector and of each grader
  detectorReplicas: undefined, // default: replicas
  partitions: 4, // of every topic
  processes: false, // stage replicas as child processes instead of worker threads
  kill: null, // 'detector' or a disease: kill replica 0 of that stage midway
  retrain: 'rust', // a disease whose newest grader version replays the crops topics after the first pass; null for none
  sessionTimeoutMs: 1500,
  progressIntervalMs: 1000,
  timeoutMs: 300_000,
  log: console.log,
}

/**
 * Runs the whole pipeline in a fresh `dir` (removed first) and resolves to a summary:
 * { options, mode, elapsedMs, photos, crops, stages: [{ name, replicas, killed, processed, written,
 * busyMs, throughputPerSec, lag }], predictions: { expected, unique, missing, records,
 * duplicatesAbsorbed, byModel }, table: [row], retrain: { disease, group, processed, before, after,
 * otherStagesProcessed, topicEndsBefore, topicEndsAfter } | null, killed: { stage, memberId, mode,
 * processed, inputTopic, uncommitted: [{ partition, offset }], atMs } | null }.
 */
export async function runPipeline(options = {}) {
  const run = new PipelineRun(resolveOptions(options))
  try {
    return await run.execute()
  } finally {
    await run.shutdown()
  }
}

function resolveOptions(options) {
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) }
  o.detectorReplicas ??= o.replicas
  for (const name of ['days', 'positions', 'leaves', 'replicas', 'detectorReplicas', 'partitions']) {
    if (!Number.isInteger(o[name]) || o[name] < 1) throw new RangeError(`${name} must be a positive integer, got ${o[name]}`)
  }
  if (o.leaves > LEAVES_MAX) throw new RangeError(`leaves must be at most ${LEAVES_MAX}`)
  if (o.retrain !== null && !(o.retrain in MODELS && latestVersion(o.retrain) > 1)) {
    throw new RangeError(`retrain must be a disease with a newer grader version (${DISEASES.filter((d) => latestVersion(d) > 1).join(', ')}) or null`)
  }
  if (o.kill !== null) {
    if (o.kill !== 'detector' && !DISEASES.includes(o.kill)) throw new RangeError(`kill must be detector or a disease, got ${o.kill}`)
    const replicas = o.kill === 'detector' ? o.detectorReplicas : o.replicas
    if (replicas < 2) throw new RangeError(`kill=${o.kill} needs at least 2 replicas of that stage, so one survives`)
  }
  return o
}

class PipelineRun {
  constructor(options) {
    this.options = options
    this.mode = options.processes ? 'process' : 'thread'
    this.photos = AREAS.length * options.positions * options.days
    this.crops = this.photos * options.leaves
    this.topics = new Map()
    this.stages = []
    this.store = new PredictionStore()
    this.photosSent = 0
    this.killed = null
    this.failures = []
  }

  async execute() {
    const o = this.options
    this.startedAt = Date.now()
    fs.rmSync(o.dir, { recursive: true, force: true })
    fs.mkdirSync(o.dir, { recursive: true })
    this.broker = await Broker.open(o.dir)
    for (const name of ALL_TOPICS) this.topics.set(name, await this.broker.topic(name, { partitions: o.partitions }))
    this.aggregatorGroup = this.topics.get(TOPICS.predictions).consumerGroup(GROUPS.aggregator, groupOptions(o.sessionTimeoutMs))
    this.aggregator = await this.aggregatorGroup.join({ memberId: 'aggregator' })

    this.say(`plant pipeline in ${o.dir}: ${this.photos} photos (${AREAS.length} areas × ${o.positions} positions × ${o.days} days), ${o.leaves} leaves each, stages as ${this.mode === 'process' ? 'child processes' : 'worker threads'}`)
    this.startStage({ kind: 'detector' }, o.detectorReplicas)
    for (const disease of DISEASES) this.startStage({ kind: 'grader', disease, version: 1 }, o.replicas)
    const flights = this.flyDrones()
    await this.waitFor(() => this.firstPassDone(), 'first pass')
    await flights
    const firstPass = this.tableRows()
    const retrain = o.retrain === null ? null : await this.retrain(o.retrain, firstPass)
    await this.stopReplicas()
    return this.summarize(firstPass, retrain)
  }

  say(line) {
    this.options.log?.(line)
  }

  // -------------------------------------------------------------------------------------------
  // Producing photos

  /** The drones: each day, one photo per position and area, sent as one batch. */
  async flyDrones() {
    const { days, positions, leaves } = this.options
    const topic = this.topics.get(TOPICS.photos)
    for (let day = 0; day < days; day++) {
      const batch = []
      for (const area of AREAS) {
        for (let position = 0; position < positions; position++) {
          const pixels = renderPhoto(area, position, day, leaves)
          batch.push(photoRecord({ photoId: photoIdOf(area, position, day), area, position, day, width: PHOTO_WIDTH, height: PHOTO_HEIGHT, pixels }))
        }
      }
      await topic.sendBatch(batch)
      this.photosSent += batch.length
    }
  }

  // -------------------------------------------------------------------------------------------
  // Stages and their replicas

  startStage(base, replicaCount) {
    const o = this.options
    const name = stageName(base)
    const kind = STAGE_KINDS[base.kind]
    const input = kind.input(base)
    // A consumer group's lag is its committed offsets' distance to the ends; a share group has no
    // single committed offset, so a grader's lag is the crops it has not graded yet (as aggregated).
    const group = base.kind === 'detector' ? this.topics.get(input).consumerGroup(kind.group(base), groupOptions(o.sessionTimeoutMs)) : undefined
    const lag = group ? async () => sumLag(await group.lag()) : async () => this.crops - this.store.count(base.disease, base.version)
    const stage = { name, base, input, lagNow: lag, replicas: [], lag: undefined }
    const victimStage = o.kill !== null && base.version !== 2 && (o.kill === base.kind || o.kill === base.disease)
    for (let replica = 0; replica < replicaCount; replica++) {
      const config = { ...base, replica, dir: o.dir, sessionTimeoutMs: o.sessionTimeoutMs }
      if (victimStage && replica === 0) config.crashAfterRecords = Math.max(1, Math.floor((base.kind === 'detector' ? this.photos : this.crops) / replicaCount / 3))
      stage.replicas.push(this.startOne(stage, config))
    }
    this.stages.push(stage)
    return stage
  }

  startOne(stage, config) {
    const handle = startReplica(config, this.mode)
    const state = { memberId: `${stage.name}#${config.replica}`, handle, state: 'running', stats: null }
    handle.onMessage((message) => {
      if (message.stats) state.stats = message.stats
      if (message.type === 'crash-point') this.kill(stage, state, message.uncommitted)
      if (message.type === 'stopped') state.state = 'stopped'
      if (message.type === 'failed') this.failures.push(`${state.memberId}: ${message.error}`)
    })
    handle.exited.then(({ code, signal, error }) => {
      if (state.state === 'running') this.failures.push(`${state.memberId} exited unexpectedly (code ${code}, signal ${signal}${error ? `, ${error.stack}` : ''})`)
      if (state.state === 'stopping') state.state = 'stopped'
    })
    return state
  }

  /** The victim stopped between writing its outputs and committing: kill it for real. */
  kill(stage, state, uncommitted) {
    state.state = 'killed'
    state.handle.kill()
    this.killed = { stage: stage.name, memberId: state.memberId, mode: this.mode, processed: state.stats.processed, inputTopic: stage.input, uncommitted, atMs: Date.now() - this.startedAt }
    this.say(`✗ killing ${state.memberId} (${this.mode === 'process' ? 'SIGKILL' : 'worker.terminate()'}) after it wrote the outputs of ${state.stats.processed} records, before ${stage.base.kind === 'grader' ? 'acking' : 'committing'} them`)
  }

  async stopReplicas() {
    const live = this.stages.flatMap((stage) => stage.replicas).filter((replica) => replica.state === 'running')
    for (const replica of live) {
      replica.state = 'stopping'
      replica.handle.post({ type: 'stop' })
    }
    await Promise.all(live.map((replica) => withTimeout(replica.handle.exited, 10_000, () => replica.handle.kill())))
  }

  /** Closes everything still open, and kills replicas left running after a failure. */
  async shutdown() {
    for (const replica of this.stages.flatMap((stage) => stage.replicas)) {
      if (replica.state === 'running' || replica.state === 'stopping') replica.handle.kill()
    }
    await Promise.all(this.stages.flatMap((stage) => stage.replicas.map((replica) => replica.handle.exited)))
    if (this.aggregator && !this.aggregator.isClosed) await this.aggregator.close()
    await this.broker?.close()
    this.topics.clear()
  }

  // -------------------------------------------------------------------------------------------
  // Aggregating, progress, completion

  /** Aggregates predictions until `done()` holds, printing a progress line every progressIntervalMs. */
  async waitFor(done, phase) {
    const { progressIntervalMs, timeoutMs } = this.options
    let nextProgressAt = Date.now() + progressIntervalMs
    let nextCheckAt = 0
    for (;;) {
      if (this.failures.length > 0) throw new Error(`a stage replica failed during the ${phase}:\n${this.failures.join('\n')}`)
      if (Date.now() - this.startedAt > timeoutMs) throw new Error(`the ${phase} did not finish within ${timeoutMs} ms; ${await this.progress()}`)
      const records = await this.aggregator.poll({ maxRecords: 2000, timeoutMs: 50 })
      for (const record of records) this.store.absorb(decodePrediction(record))
      if (records.length > 0) await this.aggregator.commit()
      if (Date.now() >= nextProgressAt) {
        this.say(await this.progress())
        nextProgressAt += progressIntervalMs
      }
      if (records.length === 0 && Date.now() >= nextCheckAt) {
        if (await done()) return
        nextCheckAt = Date.now() + 100
      }
    }
  }

  async progress() {
    await this.refreshLags()
    const stages = this.stages.map((stage) => ({ name: stage.name, live: stage.replicas.filter((r) => r.state === 'running').length, processed: processedBy(stage), lag: stage.lag }))
    return progressLine(Date.now() - this.startedAt, { photosSent: this.photosSent, photos: this.photos }, stages, this.store.byKey.size, this.expectedPredictions())
  }

  async refreshLags() {
    for (const stage of this.stages) stage.lag = await stage.lagNow()
  }

  expectedPredictions() {
    const retrained = this.stages.some((stage) => stage.base.version === 2)
    return this.crops * (DISEASES.length + (retrained ? 1 : 0))
  }

  /** Every input consumed and committed by every stage, and every expected prediction aggregated. */
  async stagesDrained() {
    if (this.photosSent < this.photos) return false
    await this.refreshLags()
    if (this.stages.some((stage) => stage.lag !== 0)) return false
    return sumLag(await this.aggregatorGroup.lag()) === 0
  }

  async firstPassDone() {
    return DISEASES.every((disease) => this.store.count(disease, 1) === this.crops) && (await this.stagesDrained())
  }

  // -------------------------------------------------------------------------------------------
  // Replay with a retrained model

  /** Starts only the new grader version of `disease`, in a new share group that reads the crops topics from the start. */
  async retrain(disease, firstPass) {
    const version = latestVersion(disease)
    const processedBefore = new Map(this.stages.map((stage) => [stage.name, processedBy(stage)]))
    const topicEndsBefore = this.topicEnds()
    this.say(`retrain: ${MODELS[disease].id}@${version} replays ${AREAS.map(TOPICS.crops).join(' and ')} from the start in the new share group ${GROUPS.grader(disease, version)}`)
    const stage = this.startStage({ kind: 'grader', disease, version }, this.options.replicas)
    await this.waitFor(async () => this.store.count(disease, version) === this.crops && (await this.stagesDrained()), 'retrain')
    const otherStagesProcessed = Object.fromEntries([...processedBefore].map(([name, before]) => [name, processedBy(this.stages.find((s) => s.name === name)) - before]))
    return {
      disease,
      version,
      group: stage.name,
      inputTopic: stage.input,
      processed: processedBy(stage),
      before: firstPass.find((row) => row.disease === disease),
      after: this.store.row(disease, version),
      otherStagesProcessed,
      topicEndsBefore,
      topicEndsAfter: this.topicEnds(),
    }
  }

  topicEnds() {
    return Object.fromEntries([...this.topics].map(([name, topic]) => [name, Array.from({ length: topic.partitionCount }, (_, p) => topic.partition(p).endOffset)]))
  }

  tableRows() {
    return this.store.table()
  }

  // -------------------------------------------------------------------------------------------
  // Summary

  async summarize(firstPass, retrain) {
    await this.refreshLags()
    const stages = this.stages.map((stage) => stageSummary(stage))
    stages.push({ name: GROUPS.aggregator, replicas: 1, killed: 0, processed: this.store.records, written: 0, busyMs: NaN, throughputPerSec: NaN, lag: sumLag(await this.aggregatorGroup.lag()) })
    const expected = this.expectedPredictions()
    const summary = {
      options: { ...this.options, log: undefined },
      mode: this.mode,
      elapsedMs: Date.now() - this.startedAt,
      photos: this.photos,
      crops: this.crops,
      stages,
      predictions: {
        expected,
        unique: this.store.byKey.size,
        missing: expected - this.store.byKey.size,
        records: this.store.records,
        duplicatesAbsorbed: this.store.duplicates,
        byModel: Object.fromEntries(this.store.uniqueByModel),
      },
      table: this.store.table(),
      firstPassTable: firstPass,
      retrain,
      killed: this.killed,
    }
    for (const line of reportLines(summary)) this.say(line)
    return summary
  }
}

async function withTimeout(promise, ms, onTimeout) {
  let timer
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let parsed
  try {
    parsed = parseArgs(process.argv.slice(2))
  } catch (error) {
    console.error(`${error.message}\n\n${usage(DEFAULTS)}`)
    process.exit(2)
  }
  const { help, quiet, ...options } = parsed
  if (help) {
    console.log(usage(DEFAULTS))
  } else {
    const say = console.log
    await runPipeline({ ...options, log: quiet ? (line) => !line.startsWith('[') && say(line) : say })
  }
}
