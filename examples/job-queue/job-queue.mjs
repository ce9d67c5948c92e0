// seglog job queue: long ML jobs submitted by a web-style caller, processed by a pool of workers,
// results delivered back by job id (in the spirit of MLQ, a Redis-backed queue for ML jobs).
//
//   caller ──send(key=jobId)──▶ topic `jobs` (3 partitions) ──consumer group `workers`──▶ worker-0..N-1
//   caller ◀──follow, match jobId── topic `results` (3 partitions, key=jobId) ◀──send(key=jobId)── worker
//
// - Jobs are keyed by job id, so a job's partition (and so the worker that owns it) follows from its id.
// - Workers are members of one consumer group: each partition has one owner at a time. A worker polls a
//   few jobs, runs the (fake, CPU-bound, deterministic) model on each, writes the result, then commits
//   that job. A worker that dies between "result written" and "commit" leaves the job uncommitted: its
//   partitions move to the other workers, which run the job again (at-least-once delivery).
// - Results are idempotent by job id: the same job always gives the same result, so a second result
//   for a job is a harmless duplicate. The caller keeps the first one per job id: every job completes
//   exactly once in the caller's results map, however many times it was processed.
// - A result can be fetched later by job id alone: it lives in partition partitionForKey(jobId).
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
export const WORKER_GROUP = 'workers'
export const PARTITIONS = 3
export const MODELS = ['resnet-lite', 'vit-tiny']

const encoder = new TextEncoder()
const decoder = new TextDecoder()

// ---------------------------------------------------------------------------------------------
// Jobs and the fake model

/** `count` jobs with fixed ids, image seeds and models: the same count gives the same jobs. */
export function makeJobs(count) {
  const jobs = []
  for (let i = 0; i < count; i++) {
    jobs.push({ jobId: `job-${String(i).padStart(4, '0')}`, imageSeed: Math.imul(i + 1, 0x9e3779b1) >>> 0, model: MODELS[i % MODELS.length] })
  }
  return jobs
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
// Results: the caller's side

/** A result record as the caller sees it. */
function decodeResult(record) {
  return { ...JSON.parse(decoder.decode(record.value)), worker: decoder.decode(record.headers.worker), partition: record.partition, offset: record.offset }
}

/** The deterministic part of a result, to compare two results of one job. */
function sameResult(a, b) {
  return a.jobId === b.jobId && a.model === b.model && a.label === b.label && a.score === b.score && a.fingerprint === b.fingerprint
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

/**
 * Follows every partition of the results topic from its current end and settles `wait(jobId)`
 * promises by job id. Keeps the first result per job; later ones (a job processed twice) are
 * counted as duplicates and checked to be identical.
 */
class ResultFollower {
  constructor(resultsTopic, onResult) {
    this.topic = resultsTopic
    this.onResult = onResult
    this.results = new Map()
    this.waiters = new Map()
    this.resultRecords = 0
    this.duplicates = 0
    this.conflicts = []
    this.stop = new AbortController()
    this.next = []
    for (let p = 0; p < resultsTopic.partitionCount; p++) this.next.push(resultsTopic.partition(p).highWatermark)
    this.loops = this.next.map((from, p) => this.follow(p, { from, follow: true, signal: this.stop.signal }))
  }

  /** Resolves with the result of `jobId` once a worker has written it. Call before submitting. */
  wait(jobId) {
    const known = this.results.get(jobId)
    if (known) return Promise.resolve(known)
    return new Promise((resolve) => this.waiters.set(jobId, resolve))
  }

  /** Stops following, after reading whatever the results topic holds now. */
  async close() {
    this.stop.abort()
    await Promise.all(this.loops)
    await Promise.all(this.next.map((from, p) => this.follow(p, { from })))
  }

  async follow(p, options) {
    for await (const record of this.topic.partition(p).records(options)) {
      this.next[p] = record.offset + 1
      this.take(decodeResult(record))
    }
  }

  take(result) {
    this.resultRecords++
    const first = this.results.get(result.jobId)
    if (first) {
      this.duplicates++
      if (!sameResult(first, result)) this.conflicts.push({ first, later: result })
      return
    }
    this.results.set(result.jobId, result)
    this.onResult(result)
    this.waiters.get(result.jobId)?.(result)
    this.waiters.delete(result.jobId)
  }
}

// ---------------------------------------------------------------------------------------------
// Workers

/**
 * One worker: a member of the `workers` group. Polls a few jobs at a time; for each, runs the model,
 * writes the result keyed by job id, then commits the job. `crashAfterJobs` makes it die right after
 * writing the result of its n-th job, before committing it: it leaves the group without a commit.
 */
async function runWorker({ id, consumer, resultsTopic, stopping, pollRecords, crashAfterJobs, log }) {
  const stats = { id, processed: 0, jobIds: [], fenced: 0, crashedOn: null }
  while (!stopping()) {
    const records = await consumer.poll({ maxRecords: pollRecords, timeoutMs: 100 })
    for (const record of records) {
      const job = JSON.parse(decoder.decode(record.value))
      const result = { jobId: job.jobId, model: job.model, ...runModel(job) }
      await resultsTopic.send({ key: job.jobId, value: JSON.stringify(result), headers: { model: job.model, worker: id } })
      stats.processed++
      stats.jobIds.push(job.jobId)
      if (stats.processed === crashAfterJobs) {
        log(`✗ ${id} crashed after writing the result of ${job.jobId} (partition ${record.partition}, offset ${record.offset}), before committing it`)
        stats.crashedOn = { jobId: job.jobId, partition: record.partition, offset: record.offset }
        await consumer.close() // leaves the group, commits nothing: its partitions move to the others
        return stats
      }
      try {
        await consumer.commit(record)
      } catch (error) {
        // A rebalance since this poll (a worker joined or left): the partition may have a new owner,
        // which restarts from the committed offset and runs this job again. Poll again to catch up.
        if (!(error instanceof LogError) || error.code !== 'FENCED') throw error
        stats.fenced++
        break
      }
      await new Promise((resolve) => setImmediate(resolve)) // let the other in-process workers run between jobs
    }
  }
  return stats
}

// ---------------------------------------------------------------------------------------------
// The whole queue

/**
 * Submits `jobs` (a count, or an array from makeJobs) to `<dir>/jobs`, runs `workers` workers until
 * every job has a result in `<dir>/results`, and returns what happened. With `crash` (default on, and
 * only with ≥ 2 workers), worker-0 dies mid-way without committing its current job.
 */
export async function runJobQueue({ dir, jobs = 200, workers = 3, log = () => {}, crash = true, pollRecords = 4, crashAfterJobs } = {}) {
  const jobList = typeof jobs === 'number' ? makeJobs(jobs) : jobs
  if (!Number.isInteger(workers) || workers < 1) throw new Error('workers must be a positive integer')
  const started = performance.now()
  const jobsTopic = await Topic.open(path.join(dir, JOBS_TOPIC), { partitions: PARTITIONS, sync: 'always' })
  const resultsTopic = await Topic.open(path.join(dir, RESULTS_TOPIC), { partitions: PARTITIONS, sync: 'always' })
  try {
    // Every worker joins before any job is polled, so the first assignment is the steady one
    // (range: worker-i owns partition i while there are at least as many partitions as workers).
    const group = jobsTopic.consumerGroup(WORKER_GROUP, { sessionTimeoutMs: 10_000 })
    const consumers = []
    for (let w = 0; w < workers; w++) consumers.push(await group.join({ memberId: `worker-${w}` }))
    for (const member of await group.members()) log(`${member.memberId} owns partition(s) ${member.assignment.join(', ') || '(none)'} of '${JOBS_TOPIC}'`)

    let completed = 0
    const progressEvery = Math.max(1, Math.ceil(jobList.length / 8))
    const follower = new ResultFollower(resultsTopic, () => {
      completed++
      if (completed % progressEvery === 0 || completed === jobList.length) log(`completed ${completed}/${jobList.length}`)
    })

    let stop = false
    const crashAt = crash && workers >= 2 ? (crashAfterJobs ?? Math.max(1, Math.ceil(jobList.length / workers / 3))) : undefined
    const loops = consumers.map((consumer, w) =>
      runWorker({ id: consumer.memberId, consumer, resultsTopic, stopping: () => stop, pollRecords, crashAfterJobs: w === 0 ? crashAt : undefined, log }),
    )

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

    await Promise.all(waits)
    stop = true
    const workerStats = await Promise.all(loops)
    await Promise.all(consumers.map((consumer) => consumer.close()))
    await follower.close()
    if (follower.conflicts.length > 0) throw new Error(`job ${follower.conflicts[0].first.jobId} got two different results`)

    const perWorker = Object.fromEntries(workerStats.map((stats) => [stats.id, stats.processed]))
    const runs = new Map()
    for (const stats of workerStats) for (const jobId of stats.jobIds) runs.set(jobId, (runs.get(jobId) ?? 0) + 1)
    const crashed = workerStats.find((stats) => stats.crashedOn)
    return {
      submitted,
      completed: follower.results.size,
      results: follower.results,
      perWorker,
      resultRecords: follower.resultRecords,
      duplicateResults: follower.duplicates,
      processedMoreThanOnce: [...runs].filter(([, count]) => count > 1).map(([jobId]) => jobId),
      fencedCommits: workerStats.reduce((sum, stats) => sum + stats.fenced, 0),
      crashed: crashed ? { worker: crashed.id, ...crashed.crashedOn, rerunBy: workerStats.filter((s) => s !== crashed && s.jobIds.includes(crashed.crashedOn.jobId)).map((s) => s.id) } : null,
      elapsedMs: Math.round(performance.now() - started),
    }
  } finally {
    await jobsTopic.close()
    await resultsTopic.close()
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
    say(`done in ${summary.elapsedMs} ms: ${summary.completed}/${summary.submitted} jobs completed, ${summary.resultRecords} result records written`)
    say(`jobs run per worker: ${Object.entries(summary.perWorker).map(([id, n]) => `${id} ${n}`).join(', ')}`)
    if (summary.crashed) {
      const { worker, jobId, rerunBy } = summary.crashed
      say(`${worker} crashed on ${jobId}; it was run again by ${rerunBy.join(', ') || 'nobody (?)'}`)
    }
    say(`jobs run more than once: ${summary.processedMoreThanOnce.length} (${summary.processedMoreThanOnce.slice(0, 8).join(', ')}${summary.processedMoreThanOnce.length > 8 ? ', ...' : ''}); duplicate results ignored: ${summary.duplicateResults}; commits fenced by the rebalance: ${summary.fencedCommits}`)
    const labels = {}
    for (const result of summary.results.values()) labels[result.label] = (labels[result.label] ?? 0) + 1
    say(`labels: ${Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([label, n]) => `${label} ${n}`).join(', ')}`)

    // Later, in another request: fetch results by job id from the reopened topic.
    const resultsTopic = await Topic.open(path.join(dir, RESULTS_TOPIC))
    try {
      for (const jobId of [makeJobs(1)[0].jobId, summary.crashed?.jobId, makeJobs(jobs).at(-1).jobId].filter(Boolean)) {
        const result = await fetchResult(resultsTopic, jobId)
        say(`fetchResult(${jobId}) → ${result.label} (score ${result.score}, ${result.model}, by ${result.worker}, results partition ${result.partition} offset ${result.offset})`)
      }
    } finally {
      await resultsTopic.close()
    }
    if (summary.completed !== summary.submitted) throw new Error('some jobs did not complete')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main()
}
