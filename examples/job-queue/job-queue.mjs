// seglog job queue: long ML jobs submitted by a web-style caller, processed by a pool of workers,
// results delivered back by job id (in the spirit of MLQ, a Redis-backed queue for ML jobs).
//
//   caller ──send(key=jobId)──▶ topic `jobs` (3 partitions) ──share group `workers`──▶ worker-0..N-1
//   caller ◀──follow, match jobId── topic `results` (3 partitions, key=jobId) ◀──send(key=jobId)── worker
//   caller ◀──follow── topic `jobs.dlq` ◀── jobs rejected, or delivered maxDeliveries times ── share group
//
// - Workers are members of one share group: any free worker takes the next job, from any partition,
//   and each job is held by one worker at a time and acknowledged on its own. A worker runs the (fake,
//   CPU-bound, deterministic) model, writes the result keyed by job id, then acks the job.
// - A job that throws is released with a backoff that doubles with its delivery count; the group
//   dead-letters it into `jobs.dlq` once it was delivered maxDeliveries times. A job that cannot
//   succeed (it fails validation) is rejected at once: straight to `jobs.dlq`.
// - A worker that dies between "result written" and "ack" leaves the job unacknowledged: leaving the
//   group releases it, and another worker runs it again (at-least-once delivery).
// - Results are idempotent by job id: the same job always gives the same result, so a second result
//   for a job is a harmless duplicate. The caller keeps the first one per job id: every job completes
//   exactly once in the caller's results map, however many times it was processed.
// - A result can be fetched later by job id alone: it lives in partition partitionForKey(jobId).
//
// The demo jobs include two with simulated faults: job-0003 is flaky (fails on its 1st and 2nd
// delivery, succeeds on its 3rd) and job-0005 is poisoned (fails on every delivery, ends in jobs.dlq).
//
// Run with: npm run build && node examples/job-queue/job-queue.mjs [--jobs=200] [--workers=3] [--no-crash]
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LogError, Topic, partitionForKey } from '../../dist/index.js'

export const JOBS_TOPIC = 'jobs'
export const RESULTS_TOPIC = 'results'
export const DEAD_LETTER_TOPIC = 'jobs.dlq'
export const WORKER_GROUP = 'workers'
export const PARTITIONS = 3
export const MODELS = ['resnet-lite', 'vit-tiny']
/** Deliveries after which a job still failing is dead-lettered by the share group. */
export const MAX_DELIVERIES = 4
/** The first retry waits this long; each further one twice as long (50, 100, 200 ms). */
export const BACKOFF_BASE_MS = 50
/** The share group's settings. lockMs only matters for a worker that hangs: a crash releases at once. */
export const SHARE_GROUP_OPTIONS = { lockMs: 5_000, maxDeliveries: MAX_DELIVERIES, deadLetterTopic: DEAD_LETTER_TOPIC, sessionTimeoutMs: 10_000 }
/** The demo's flaky job fails on every delivery before this one. */
export const FLAKY_SUCCEEDS_ON_DELIVERY = 3
export const FLAKY_JOB_ID = 'job-0003'
export const POISONED_JOB_ID = 'job-0005'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

// ---------------------------------------------------------------------------------------------
// Jobs and the fake model

/**
 * `count` jobs with fixed ids, image seeds and models: the same count gives the same jobs. Two carry
 * a simulated fault when the count reaches them: FLAKY_JOB_ID ('flaky') and POISONED_JOB_ID ('poisoned').
 */
export function makeJobs(count) {
  const faults = new Map([
    [FLAKY_JOB_ID, 'flaky'],
    [POISONED_JOB_ID, 'poisoned'],
  ])
  const jobs = []
  for (let i = 0; i < count; i++) {
    const jobId = `job-${String(i).padStart(4, '0')}`
    const job = { jobId, imageSeed: Math.imul(i + 1, 0x9e3779b1) >>> 0, model: MODELS[i % MODELS.length] }
    if (faults.has(jobId)) job.fault = faults.get(jobId)
    jobs.push(job)
  }
  return jobs
}

/** A failure that no retry can fix (the job itself is malformed): the worker rejects the job at once. */
export class InvalidJobError extends Error {
  name = 'InvalidJobError'
}

/** Parses and checks a job record's value; throws InvalidJobError for anything this queue cannot run. */
export function parseJob(bytes) {
  let job
  try {
    job = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new InvalidJobError('the job is not JSON')
  }
  if (job === null || typeof job !== 'object') throw new InvalidJobError('the job is not an object')
  if (typeof job.jobId !== 'string' || job.jobId.length === 0) throw new InvalidJobError('the job has no jobId')
  if (!MODELS.includes(job.model)) throw new InvalidJobError(`unknown model ${JSON.stringify(job.model)}`)
  if (!Number.isInteger(job.imageSeed) || job.imageSeed < 0 || job.imageSeed > 0xffffffff) throw new InvalidJobError('imageSeed must be a 32-bit unsigned integer')
  return job
}

/**
 * Runs one delivery of a job and returns its result. The demo's faults are simulated here: a
 * 'poisoned' job throws on every delivery (say, an input that crashes the model), a 'flaky' one throws
 * until its FLAKY_SUCCEEDS_ON_DELIVERY-th delivery (say, a GPU that is briefly out of memory). Both
 * throw plain errors: to the worker they look transient, which is why retries are bounded.
 */
export function runJob(job, deliveryCount) {
  if (job.fault === 'poisoned') throw new Error('the model crashed on this input (simulated: every delivery fails)')
  if (job.fault === 'flaky' && deliveryCount < FLAKY_SUCCEEDS_ON_DELIVERY) {
    throw new Error(`GPU out of memory (simulated: fails until delivery ${FLAKY_SUCCEEDS_ON_DELIVERY})`)
  }
  return { jobId: job.jobId, model: job.model, ...runModel(job) }
}

/** How long a job that failed on delivery `deliveryCount` waits before its next delivery. */
export function backoffMs(deliveryCount) {
  return BACKOFF_BASE_MS * 2 ** (deliveryCount - 1)
}


const LABELS = ['cat', 'dog', 'bird', 'fish', 'horse', 'ship', 'truck', 'plane', 'frog', 'deer']
const IMAGE_SIDE = 64
const LAYERS = 3
const FINGERPRINT_ROUNDS = 2000
const weightsByModel = new Map()

/**
 * A deterministic stand-in for an ML model (a few ms of real CPU work): render a 64×64 "image" from
 * the job's seed, push it through three residual dense layers whose weights derive from the model's
 * name, pool 8×8 patches into 64 features, score 10 labels, and hash the activations 2,000 times
 * into a fingerprint. Same job → same { label, score, fingerprint }, on any run and any worker.
 */
export function runModel({ imageSeed, model }) {
  const n = IMAGE_SIDE
  const next = xorshift32(imageSeed)
  const fx = (next() % 7) + 1
  const fy = (next() % 5) + 1
  const phase = (next() / 2 ** 32) * 2 * Math.PI
  let x = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) x[i * n + j] = 0.5 + 0.5 * Math.sin(((fx * i + fy * j) / n) * 2 * Math.PI + phase) + (0.3 * next()) / 2 ** 32
  }
  const { layers, head } = weightsOf(model)
  for (const w of layers) x = residualDense(x, w, n)
  const features = new Float64Array(n) // 8×8 patches of 8×8 pixels
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) features[(i >> 3) * 8 + (j >> 3)] += x[i * n + j] / n
  const logits = scoreLabels(features, head, n)
  let best = 0
  for (let c = 1; c < logits.length; c++) if (logits[c] > logits[best]) best = c
  let sum = 0
  for (const logit of logits) sum += Math.exp(logit - logits[best])
  let digest = createHash('sha256').update(new Uint8Array(x.buffer)).digest()
  for (let round = 0; round < FINGERPRINT_ROUNDS; round++) digest = createHash('sha256').update(digest).digest()
  return { label: LABELS[best], score: Math.round(1e4 / sum) / 1e4, fingerprint: digest.toString('hex').slice(0, 16) }
}

function residualDense(x, w, n) {
  const y = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const xik = x[i * n + k]
      for (let j = 0; j < n; j++) y[i * n + j] += xik * w[k * n + j]
    }
  }
  for (let i = 0; i < y.length; i++) y[i] = x[i] + 0.3 * Math.max(0, y[i])
  return y
}

function scoreLabels(features, head, n) {
  let mean = 0
  for (const v of features) mean += v / n
  let variance = 0
  for (const v of features) variance += (v - mean) ** 2 / n
  const sd = Math.sqrt(variance) || 1
  const logits = new Float64Array(LABELS.length)
  for (let j = 0; j < n; j++) {
    const c = j % LABELS.length
    logits[c] += (1 + 0.5 * head[c * n + j]) * 3 * ((features[j] - mean) / sd)
  }
  return logits
}

function weightsOf(model) {
  let weights = weightsByModel.get(model)
  if (weights) return weights
  const n = IMAGE_SIDE
  const next = xorshift32(createHash('sha256').update(model).digest().readUInt32LE(0))
  const uniform = () => next() / 2 ** 32 - 0.5
  const layers = []
  for (let l = 0; l < LAYERS; l++) layers.push(Float64Array.from({ length: n * n }, () => uniform() / Math.sqrt(n)))
  weights = { layers, head: Float64Array.from({ length: LABELS.length * n }, uniform) }
  weightsByModel.set(model, weights)
  return weights
}

function xorshift32(seed) {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state
  }
}

// ---------------------------------------------------------------------------------------------
// Results and dead letters: the caller's side

/** A result record as the caller sees it; deliveryCount is the delivery on which the job succeeded. */
function decodeResult(record) {
  return {
    ...JSON.parse(decoder.decode(record.value)),
    worker: decoder.decode(record.headers.worker),
    deliveryCount: Number(decoder.decode(record.headers.delivery)),
    partition: record.partition,
    offset: record.offset,
  }
}

/** The deterministic part of a result, to compare two results of one job. */
function sameResult(a, b) {
  return a.jobId === b.jobId && a.model === b.model && a.label === b.label && a.score === b.score && a.fingerprint === b.fingerprint
}

/**
 * A dead-letter record as the caller sees it: the job id (its key), where the job was in the jobs
 * topic, how often it was delivered and why the share group gave up ('rejected' or 'maxDeliveries').
 */
function decodeDeadLetter(record) {
  const header = (name) => (record.headers[name] === undefined ? undefined : decoder.decode(record.headers[name]))
  return {
    jobId: record.key === null ? null : decoder.decode(record.key),
    topic: header('seglog.dlq.topic'),
    partition: Number(header('seglog.dlq.partition')),
    offset: Number(header('seglog.dlq.offset')),
    deliveries: Number(header('seglog.dlq.deliveries')),
    reason: header('seglog.dlq.reason'),
    deadLetterOffset: record.offset,
  }
}

/**
 * Fetches the result of `jobId` from the results topic, long after it was produced: keyed records
 * land in partitionForKey(key), so only that partition is scanned. Undefined if there is none yet.
 */
export async function fetchResult(resultsTopic, jobId) {
  const key = encoder.encode(jobId) // partitionForKey hashes bytes: the UTF-8 key, as send() does
  const partition = resultsTopic.partition(partitionForKey(key, resultsTopic.partitionCount))
  for await (const record of partition.records()) {
    if (record.key !== null && Buffer.compare(record.key, key) === 0) return decodeResult(record)
  }
  return undefined
}

/** Every dead-lettered job in the dead-letter topic, oldest first. */
export async function readDeadLetters(deadLetterTopic) {
  const deadLetters = []
  for (let p = 0; p < deadLetterTopic.partitionCount; p++) {
    for await (const record of deadLetterTopic.partition(p).records()) deadLetters.push(decodeDeadLetter(record))
  }
  return deadLetters
}

/**
 * Follows the results topic and the dead-letter topic from their current ends and settles
 * `wait(jobId)` promises by job id: with 'result' once a worker wrote the job's result, with
 * 'deadLettered' once the share group gave up on it. Keeps the first result per job; later ones
 * (a job processed twice) are counted as duplicates and checked to be identical.
 */
class OutcomeFollower {
  constructor(resultsTopic, deadLetterTopic, onOutcome) {
    this.onOutcome = onOutcome
    this.results = new Map()
    this.deadLetters = new Map()
    this.waiters = new Map()
    this.resultRecords = 0
    this.deadLetterRecords = 0
    this.duplicates = 0
    this.conflicts = []
    this.stop = new AbortController()
    const sources = (topic, take) => Array.from({ length: topic.partitionCount }, (_, p) => ({ partition: topic.partition(p), take, next: topic.partition(p).highWatermark }))
    this.sources = [...sources(resultsTopic, (record) => this.takeResult(decodeResult(record))), ...sources(deadLetterTopic, (record) => this.takeDeadLetter(decodeDeadLetter(record)))]
    this.loops = this.sources.map((source) => this.follow(source, { from: source.next, follow: true, signal: this.stop.signal }))
  }

  /** Resolves with 'result' or 'deadLettered' once `jobId` has one. Call before submitting. */
  wait(jobId) {
    if (this.results.has(jobId)) return Promise.resolve('result')
    if (this.deadLetters.has(jobId)) return Promise.resolve('deadLettered')
    return new Promise((resolve) => this.waiters.set(jobId, resolve))
  }

  /** Stops following, after reading whatever the two topics hold now. */
  async close() {
    this.stop.abort()
    await Promise.all(this.loops)
    await Promise.all(this.sources.map((source) => this.follow(source, { from: source.next })))
  }

  async follow(source, options) {
    for await (const record of source.partition.records(options)) {
      source.next = record.offset + 1
      source.take(record)
    }
  }

  takeResult(result) {
    this.resultRecords++
    const first = this.results.get(result.jobId)
    if (first) {
      this.duplicates++
      if (!sameResult(first, result)) this.conflicts.push({ first, later: result })
      return
    }
    this.results.set(result.jobId, result)
    this.settle(result.jobId, 'result')
  }

  takeDeadLetter(deadLetter) {
    this.deadLetterRecords++
    if (this.deadLetters.has(deadLetter.jobId)) return // at-least-once into the dead-letter topic too
    this.deadLetters.set(deadLetter.jobId, deadLetter)
    this.settle(deadLetter.jobId, 'deadLettered')
  }

  settle(jobId, outcome) {
    this.onOutcome(jobId, outcome)
    this.waiters.get(jobId)?.(outcome)
    this.waiters.delete(jobId)
  }
}

// ---------------------------------------------------------------------------------------------
// Workers

/**
 * One worker: a member of the share group `workers`. Polls a few jobs at a time (any partition);
 * for each, runs the model, writes the result keyed by job id, then acks the job. A job that throws
 * is released with a backoff; one that fails validation is rejected. `crashAfterJobs` makes it die
 * right after writing the result of its n-th job, before acking it: it leaves the group, and the
 * jobs it held (that one included) go back to the others.
 */
async function runWorker({ worker, resultsTopic, stopping, pollRecords, crashAfterJobs, log }) {
  const stats = { id: worker.memberId, done: 0, failed: 0, rejected: 0, retries: [], lastErrors: new Map(), jobIds: [], fencedAcks: 0, crashedOn: null }
  while (!stopping()) {
    const records = await worker.poll({ maxRecords: pollRecords, timeoutMs: 100 })
    for (const record of records) {
      const crashed = await handleJob({ worker, record, resultsTopic, stats, crashAfterJobs, log })
      if (crashed) return stats
      await new Promise((resolve) => setImmediate(resolve)) // let the other in-process workers run between jobs
    }
  }
  return stats
}

/** Runs one delivered job and settles it: ack, release with backoff, or reject. True if the worker crashed. */
async function handleJob({ worker, record, resultsTopic, stats, crashAfterJobs, log }) {
  const id = worker.memberId
  const jobId = record.key === null ? '(no key)' : decoder.decode(record.key)
  let result
  try {
    result = runJob(parseJob(record.value), record.deliveryCount)
  } catch (error) {
    stats.lastErrors.set(jobId, error.message)
    if (error instanceof InvalidJobError) {
      stats.rejected++
      log(`✗ ${id}: ${jobId} is invalid (${error.message}); rejected, no retry`)
      await worker.reject(record)
      return false
    }
    stats.failed++
    const delayMs = backoffMs(record.deliveryCount)
    if (record.deliveryCount < MAX_DELIVERIES) {
      stats.retries.push(jobId)
      log(`✗ ${id}: ${jobId} failed on delivery ${record.deliveryCount} (${error.message}); released, next delivery in ≥ ${delayMs} ms`)
    } else {
      log(`✗ ${id}: ${jobId} failed on delivery ${record.deliveryCount} of ${MAX_DELIVERIES}; released, so the group dead-letters it`)
    }
    await worker.release(record, { delayMs }) // at maxDeliveries the group archives it into jobs.dlq instead
    return false
  }
  await resultsTopic.send({ key: jobId, value: JSON.stringify(result), headers: { model: result.model, worker: id, delivery: String(record.deliveryCount) } })
  stats.done++
  stats.jobIds.push(jobId)
  if (stats.done === crashAfterJobs) {
    log(`✗ ${id} crashed after writing the result of ${jobId} (partition ${record.partition}, offset ${record.offset}), before acking it`)
    stats.crashedOn = { jobId, partition: record.partition, offset: record.offset }
    await worker.close() // leaves the group, acks nothing: the jobs it held are available to the others at once
    return true
  }
  try {
    await worker.ack(record)
  } catch (error) {
    // The lock expired (lockMs) before the ack: another worker may be running the job again, which
    // is harmless (results are idempotent by job id).
    if (!(error instanceof LogError) || error.code !== 'FENCED') throw error
    stats.fencedAcks++
  }
  return false
}

// ---------------------------------------------------------------------------------------------
// The whole queue

/**
 * Submits `jobs` (a count, or an array from makeJobs) to `<dir>/jobs`, runs `workers` workers until
 * every job has a result in `<dir>/results` or sits in `<dir>/jobs.dlq`, and returns what happened.
 * With `crash` (default on, and only with ≥ 2 workers), worker-0 dies mid-way without acking its
 * current job. Throws if some job is still unsettled after `settleTimeoutMs`.
 */
export async function runJobQueue({ dir, jobs = 200, workers = 3, log = () => {}, crash = true, pollRecords = 4, crashAfterJobs, settleTimeoutMs = 30_000 } = {}) {
  const jobList = typeof jobs === 'number' ? makeJobs(jobs) : jobs
  if (!Number.isInteger(workers) || workers < 1) throw new Error('workers must be a positive integer')
  const started = performance.now()
  const jobsTopic = await Topic.open(path.join(dir, JOBS_TOPIC), { partitions: PARTITIONS, sync: 'always' })
  const resultsTopic = await Topic.open(path.join(dir, RESULTS_TOPIC), { partitions: PARTITIONS, sync: 'always' })
  // The caller opens the dead-letter topic first, so that it can follow it; the share group then
  // writes its dead letters through this handle (the topic's owner).
  const deadLetterTopic = await Topic.open(path.join(dir, DEAD_LETTER_TOPIC), { sync: 'always' })
  try {
    const group = jobsTopic.shareGroup(WORKER_GROUP, SHARE_GROUP_OPTIONS)
    const members = []
    for (let w = 0; w < workers; w++) members.push(await group.join({ memberId: `worker-${w}` }))
    log(`${members.map((m) => m.memberId).join(', ')} joined share group '${WORKER_GROUP}' of '${JOBS_TOPIC}' (maxDeliveries ${MAX_DELIVERIES}, dead letters to '${DEAD_LETTER_TOPIC}')`)

    let settled = 0
    const progressEvery = Math.max(1, Math.ceil(jobList.length / 8))
    const follower = new OutcomeFollower(resultsTopic, deadLetterTopic, (jobId, outcome) => {
      settled++
      if (outcome === 'deadLettered') log(`☠ ${jobId} is in '${DEAD_LETTER_TOPIC}'`)
      if (settled % progressEvery === 0 || settled === jobList.length) log(`settled ${settled}/${jobList.length}`)
    })

    let stop = false
    const crashAt = crash && workers >= 2 ? (crashAfterJobs ?? Math.max(1, Math.ceil(jobList.length / workers / 3))) : undefined
    const loops = members.map((worker, w) => runWorker({ worker, resultsTopic, stopping: () => stop, pollRecords, crashAfterJobs: w === 0 ? crashAt : undefined, log }))

    // The web-style caller: requests arrive in bursts; each is acknowledged once its job is durable.
    const waits = jobList.map((job) => follower.wait(job.jobId))
    let submitted = 0
    for (let at = 0; at < jobList.length; at += 10) {
      const burst = jobList.slice(at, at + 10)
      await Promise.all(burst.map((job) => jobsTopic.send({ key: job.jobId, value: JSON.stringify(job), headers: { 'content-type': 'application/json' } })))
      submitted += burst.length
      await new Promise((resolve) => setImmediate(resolve))
    }
    log(`submitted ${submitted} jobs to '${JOBS_TOPIC}' (${PARTITIONS} partitions, keyed by job id)`)

    await settledWithin(Promise.all(waits), settleTimeoutMs, () => jobList.filter((job) => !follower.results.has(job.jobId) && !follower.deadLetters.has(job.jobId)).map((job) => job.jobId))
    stop = true
    const workerStats = await Promise.all(loops)
    await Promise.all(members.map((worker) => worker.close()))
    await follower.close()
    if (follower.conflicts.length > 0) throw new Error(`job ${follower.conflicts[0].first.jobId} got two different results`)
    return summarize({ submitted, follower, workerStats, started })
  } finally {
    await jobsTopic.close() // closes the share group, which finishes its dead-letter writes first
    await resultsTopic.close()
    await deadLetterTopic.close()
  }
}

async function settledWithin(work, timeoutMs, unsettled) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`jobs without a result or dead letter after ${timeoutMs} ms: ${unsettled().join(', ')}`)), timeoutMs)
  })
  try {
    await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function summarize({ submitted, follower, workerStats, started }) {
  const runs = new Map()
  for (const stats of workerStats) for (const jobId of stats.jobIds) runs.set(jobId, (runs.get(jobId) ?? 0) + 1)
  const lastErrors = new Map(workerStats.flatMap((stats) => [...stats.lastErrors]))
  const crashed = workerStats.find((stats) => stats.crashedOn)
  return {
    submitted,
    completed: follower.results.size,
    results: follower.results,
    deadLettered: [...follower.deadLetters.values()].map((deadLetter) => ({ ...deadLetter, lastError: lastErrors.get(deadLetter.jobId) })),
    deadLetterRecords: follower.deadLetterRecords,
    retries: workerStats.flatMap((stats) => stats.retries),
    perWorker: Object.fromEntries(workerStats.map(({ id, done, failed, rejected }) => [id, { done, failed, rejected }])),
    resultRecords: follower.resultRecords,
    duplicateResults: follower.duplicates,
    processedMoreThanOnce: [...runs].filter(([, count]) => count > 1).map(([jobId]) => jobId),
    fencedAcks: workerStats.reduce((sum, stats) => sum + stats.fencedAcks, 0),
    crashed: crashed ? { worker: crashed.id, ...crashed.crashedOn, rerunBy: workerStats.filter((s) => s !== crashed && s.jobIds.includes(crashed.crashedOn.jobId)).map((s) => s.id) } : null,
    elapsedMs: Math.round(performance.now() - started),
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const flag = (name, fallback) => {
    const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
    return arg === undefined ? fallback : Number(arg.slice(name.length + 3))
  }
  const jobs = flag('jobs', 200)
  const workers = flag('workers', 3)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seglog-job-queue-'))
  const say = (line) => console.log(`• ${line}`)
  try {
    say(`queue directory: ${dir}`)
    const summary = await runJobQueue({ dir, jobs, workers, log: say, crash: !process.argv.includes('--no-crash') })
    printSummary(summary, say)

    // Later, in another request: fetch results by job id and list the dead letters, from the reopened topics.
    const resultsTopic = await Topic.open(path.join(dir, RESULTS_TOPIC))
    const deadLetterTopic = await Topic.open(path.join(dir, DEAD_LETTER_TOPIC))
    try {
      const flaky = makeJobs(jobs).some((job) => job.jobId === FLAKY_JOB_ID) ? FLAKY_JOB_ID : undefined
      for (const jobId of new Set([makeJobs(1)[0]?.jobId, flaky, summary.crashed?.jobId, makeJobs(jobs).at(-1)?.jobId].filter(Boolean))) {
        const result = await fetchResult(resultsTopic, jobId)
        say(`fetchResult(${jobId}) → ${result.label} (score ${result.score}, ${result.model}, by ${result.worker} on delivery ${result.deliveryCount}, results partition ${result.partition} offset ${result.offset})`)
      }
      for (const dead of await readDeadLetters(deadLetterTopic)) {
        say(`'${DEAD_LETTER_TOPIC}' offset ${dead.deadLetterOffset}: ${dead.jobId} from '${dead.topic}' partition ${dead.partition} offset ${dead.offset}, ${dead.deliveries} deliveries, reason ${dead.reason}`)
      }
    } finally {
      await resultsTopic.close()
      await deadLetterTopic.close()
    }
    if (summary.completed + summary.deadLettered.length !== summary.submitted) throw new Error('some jobs did not settle')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function printSummary(summary, say) {
  const dead = summary.deadLettered
  say(`done in ${summary.elapsedMs} ms: ${summary.completed}/${summary.submitted} jobs completed, ${dead.length} dead-lettered; ${summary.resultRecords} result records written`)
  const retried = new Map()
  for (const jobId of summary.retries) retried.set(jobId, (retried.get(jobId) ?? 0) + 1)
  say(`retries: ${summary.retries.length} (${[...retried].map(([jobId, n]) => `${jobId} ×${n}`).join(', ') || 'none'}); backoff ${BACKOFF_BASE_MS} ms × 2^(delivery − 1)`)
  const flaky = summary.results.get(FLAKY_JOB_ID)
  if (flaky) say(`flaky ${FLAKY_JOB_ID} succeeded on delivery ${flaky.deliveryCount}`)
  for (const d of dead) say(`dead-lettered: ${d.jobId} after ${d.deliveries} deliveries (reason ${d.reason}; last error: ${d.lastError ?? 'none'})`)
  say(`per worker: ${Object.entries(summary.perWorker).map(([id, s]) => `${id} ${s.done} done / ${s.failed} failed / ${s.rejected} rejected`).join(', ')}`)
  if (summary.crashed) {
    const { worker, jobId, rerunBy } = summary.crashed
    say(`${worker} crashed on ${jobId}; it was run again by ${rerunBy.join(', ') || 'nobody (?)'}`)
  }
  const rerun = summary.processedMoreThanOnce
  say(`jobs run to a result more than once: ${rerun.length} (${rerun.slice(0, 8).join(', ') || 'none'}${rerun.length > 8 ? ', ...' : ''}); duplicate results ignored: ${summary.duplicateResults}; acks refused (lock expired): ${summary.fencedAcks}`)
  const labels = {}
  for (const result of summary.results.values()) labels[result.label] = (labels[result.label] ?? 0) + 1
  say(`labels: ${Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([label, n]) => `${label} ${n}`).join(', ')}`)
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main()
}
