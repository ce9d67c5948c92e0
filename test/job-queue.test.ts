/**
 * Specs of examples/job-queue: a caller submits ML jobs to a topic, a share group of workers runs a
 * deterministic fake model and writes results keyed by job id, one worker crashes without acking.
 * A flaky job is retried with backoff until it succeeds on its third delivery; a poisoned job is
 * dead-lettered into `jobs.dlq` after maxDeliveries. The example imports the BUILT package, so dist/
 * is built first when it is stale.
 */
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { Topic } from '../src/index.js'
import { ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const EXAMPLE = path.join(REPO, 'examples', 'job-queue', 'job-queue.mjs')
const JOBS = 60
const WORKERS = 3

interface Job {
  jobId: string
  imageSeed: number
  model: string
  fault?: 'flaky' | 'poisoned'
}

interface ModelOutput {
  label: string
  score: number
  fingerprint: string
}

interface JobResult extends ModelOutput {
  jobId: string
  model: string
  worker: string
  deliveryCount: number
  partition: number
  offset: number
}

interface DeadLetter {
  jobId: string
  topic: string
  partition: number
  offset: number
  deliveries: number
  reason: string
  lastError?: string
}

interface Summary {
  submitted: number
  completed: number
  results: Map<string, JobResult>
  deadLettered: DeadLetter[]
  deadLetterRecords: number
  retries: string[]
  perWorker: Record<string, { done: number; failed: number; rejected: number }>
  resultRecords: number
  duplicateResults: number
  processedMoreThanOnce: string[]
  fencedAcks: number
  crashed: { worker: string; jobId: string; partition: number; offset: number; rerunBy: string[] } | null
  elapsedMs: number
}

interface JobQueueExample {
  runJobQueue(options: { dir: string; jobs: number | Job[]; workers: number; crash?: boolean }): Promise<Summary>
  makeJobs(count: number): Job[]
  runModel(job: Job): ModelOutput
  runJob(job: Job, deliveryCount: number): ModelOutput & { jobId: string; model: string }
  parseJob(bytes: Uint8Array): Job
  backoffMs(deliveryCount: number): number
  fetchResult(resultsTopic: Topic, jobId: string): Promise<JobResult | undefined>
  readDeadLetters(deadLetterTopic: Topic): Promise<DeadLetter[]>
  InvalidJobError: new (message: string) => Error
  FLAKY_JOB_ID: string
  POISONED_JOB_ID: string
  MAX_DELIVERIES: number
  SHARE_GROUP_OPTIONS: Record<string, unknown>
}

let example: JobQueueExample

beforeAll(async () => {
  ensureBuilt()
  const url = pathToFileURL(EXAMPLE).href // a computed specifier: the .mjs has no type declarations
  example = (await import(url)) as JobQueueExample
})

/** What a job's result must be: its id and model plus the model's deterministic output. */
function expectedResult(job: Job): Pick<JobResult, 'jobId' | 'model' | 'label' | 'score' | 'fingerprint'> {
  return { jobId: job.jobId, model: job.model, ...example.runModel(job) }
}

/** The jobs that must end with a result: all but the poisoned one. */
function completableJobs(count: number): Job[] {
  return example.makeJobs(count).filter((job) => job.jobId !== example.POISONED_JOB_ID)
}

/** Every record of a topic's partitions, with key and headers decoded. */
async function readAll(topic: Topic): Promise<{ partition: number; offset: number; key: string; headers: Record<string, string> }[]> {
  const decoder = new TextDecoder()
  const records = []
  for (let p = 0; p < topic.partitionCount; p++) {
    for await (const record of topic.partition(p).records()) {
      const headers = Object.fromEntries(Object.entries(record.headers).map(([name, value]) => [name, decoder.decode(value)]))
      records.push({ partition: record.partition, offset: record.offset, key: decoder.decode(record.key!), headers })
    }
  }
  return records
}

describe('examples/job-queue', () => {
  describe('runModel', () => {
    it.each([
      // Pinned outputs: a change in the fake model (or in how it is fed) shows up here.
      [0, 'resnet-lite', 'truck', 0.9387],
      [59, 'vit-tiny', 'frog', 0.5448],
    ])('gives job %i (%s) the fixed label %s, score %f', (index, model, label, score) => {
      const job = example.makeJobs(JOBS)[index]!
      expect(job.model).toBe(model)
      expect(example.runModel(job)).toMatchObject({ label, score })
      expect(example.runModel({ ...job })).toEqual(example.runModel(job))
    })
  })

  describe('runJob', () => {
    it.each([
      ['flaky', 1, 'throws'],
      ['flaky', 2, 'throws'],
      ['flaky', 3, 'succeeds'],
      ['poisoned', 1, 'throws'],
      ['poisoned', 4, 'throws'],
      ['poisoned', 100, 'throws'],
    ])('a %s job on delivery %i %s', (fault, deliveryCount, outcome) => {
      const job = example.makeJobs(JOBS).find((candidate) => candidate.fault === fault)!
      expect(job).toBeDefined()
      if (outcome === 'throws') expect(() => example.runJob(job, deliveryCount)).toThrow(/simulated/)
      else expect(example.runJob(job, deliveryCount)).toEqual(expectedResult(job))
    })

    it('marks exactly one flaky and one poisoned job among the demo jobs', () => {
      const faulty = example.makeJobs(JOBS).filter((job) => job.fault !== undefined)
      expect(faulty.map((job) => [job.jobId, job.fault])).toEqual([
        [example.FLAKY_JOB_ID, 'flaky'],
        [example.POISONED_JOB_ID, 'poisoned'],
      ])
    })

    it.each([
      [1, 50],
      [2, 100],
      [3, 200],
    ])('waits backoffMs(%i) = %i ms before the next delivery', (deliveryCount, delayMs) => {
      expect(example.backoffMs(deliveryCount)).toBe(delayMs)
    })
  })

  describe('parseJob', () => {
    it.each([
      ['not JSON', '{'],
      ['no jobId', JSON.stringify({ imageSeed: 1, model: 'vit-tiny' })],
      ['an unknown model', JSON.stringify({ jobId: 'j', imageSeed: 1, model: 'gpt-huge' })],
      ['a negative seed', JSON.stringify({ jobId: 'j', imageSeed: -1, model: 'vit-tiny' })],
    ])('refuses a job with %s as permanently invalid', (_, text) => {
      expect(() => example.parseJob(new TextEncoder().encode(text))).toThrow(example.InvalidJobError)
    })
  })

  describe('runJobQueue', () => {
    it('completes every job but the poisoned one exactly once in the results map, with its deterministic result, although worker-0 crashes', async () => {
      const summary = await example.runJobQueue({ dir: tempDir('job-queue'), jobs: JOBS, workers: WORKERS })

      expect(summary.submitted).toBe(JOBS)
      expect(summary.completed).toBe(JOBS - 1)
      expect([...summary.results.keys()].sort()).toEqual(completableJobs(JOBS).map((job) => job.jobId))
      for (const job of completableJobs(JOBS)) expect(summary.results.get(job.jobId)).toMatchObject(expectedResult(job))
      expect(summary.resultRecords).toBe(JOBS - 1 + summary.duplicateResults)
      expect(summary.deadLettered.map((dead) => dead.jobId)).toEqual([example.POISONED_JOB_ID])
    })

    it('reruns the job the crashed worker never acked on another worker', async () => {
      const summary = await example.runJobQueue({ dir: tempDir('job-queue'), jobs: JOBS, workers: WORKERS })

      expect(summary.crashed).not.toBeNull()
      const crashed = summary.crashed!
      expect(crashed.worker).toBe('worker-0')
      expect(crashed.rerunBy.length).toBeGreaterThan(0)
      expect(crashed.rerunBy).not.toContain('worker-0')
      expect(summary.processedMoreThanOnce).toContain(crashed.jobId)
      expect(summary.duplicateResults).toBeGreaterThanOrEqual(1) // the crashed worker's result was written, then written again
      expect(summary.results.get(crashed.jobId)).toMatchObject(expectedResult(example.makeJobs(JOBS).find((job) => job.jobId === crashed.jobId)!))
    })

    it('retries the flaky job with backoff until it succeeds on its third delivery, and the poisoned one until maxDeliveries', async () => {
      const summary = await example.runJobQueue({ dir: tempDir('job-queue'), jobs: JOBS, workers: WORKERS, crash: false })

      const flaky = summary.results.get(example.FLAKY_JOB_ID)!
      expect(flaky).toMatchObject({ ...expectedResult(example.makeJobs(JOBS).find((job) => job.jobId === example.FLAKY_JOB_ID)!), deliveryCount: 3 })
      expect([...summary.results.values()].filter((result) => result.deliveryCount !== 1).map((result) => result.jobId)).toEqual([example.FLAKY_JOB_ID])
      // No crash: a release per failed delivery, the poisoned job's last one dead-letters it instead.
      const { FLAKY_JOB_ID: flakyId, POISONED_JOB_ID: poisonedId } = example
      expect([...summary.retries].sort()).toEqual([flakyId, flakyId, poisonedId, poisonedId, poisonedId])
      const failed = Object.values(summary.perWorker).reduce((sum, worker) => sum + worker.failed, 0)
      expect(failed).toBe(2 + example.MAX_DELIVERIES)
      // The poisoned job's four deliveries wait 50 + 100 + 200 ms between them at least.
      expect(summary.elapsedMs).toBeGreaterThanOrEqual(350)
    })

    it('dead-letters the poisoned job into jobs.dlq exactly once, with headers naming where it came from, and nothing else', async () => {
      const dir = tempDir('job-queue')
      const summary = await example.runJobQueue({ dir, jobs: JOBS, workers: WORKERS })

      expect(summary.results.has(example.POISONED_JOB_ID)).toBe(false)
      expect(summary.deadLetterRecords).toBe(1)
      expect(summary.deadLettered).toEqual([expect.objectContaining({ jobId: example.POISONED_JOB_ID, topic: 'jobs', deliveries: example.MAX_DELIVERIES, reason: 'maxDeliveries', lastError: expect.stringMatching(/simulated/) })])

      const dlq = await Topic.open(path.join(dir, 'jobs.dlq'))
      const jobs = await Topic.open(path.join(dir, 'jobs'))
      try {
        const dead = await readAll(dlq)
        expect(dead).toHaveLength(1)
        expect(dead[0]).toMatchObject({
          key: example.POISONED_JOB_ID,
          headers: { 'content-type': 'application/json', 'seglog.dlq.topic': 'jobs', 'seglog.dlq.deliveries': String(example.MAX_DELIVERIES), 'seglog.dlq.reason': 'maxDeliveries' },
        })
        // The partition and offset headers point at the original job record.
        const headers = dead[0]!.headers
        const original = jobs.partition(Number(headers['seglog.dlq.partition'])).read(Number(headers['seglog.dlq.offset']))
        expect(new TextDecoder().decode(original.key!)).toBe(example.POISONED_JOB_ID)
        expect(summary.deadLettered[0]).toMatchObject({ partition: original.partition, offset: original.offset })
        expect(await example.readDeadLetters(dlq)).toEqual([expect.objectContaining({ jobId: example.POISONED_JOB_ID, partition: original.partition, offset: original.offset })])
      } finally {
        await dlq.close()
        await jobs.close()
      }
    })

    it('rejects an invalid job at once: one delivery, no retry, reason rejected', async () => {
      const invalid: Job = { jobId: 'job-invalid', imageSeed: 7, model: 'gpt-huge' }
      const summary = await example.runJobQueue({ dir: tempDir('job-queue'), jobs: [...example.makeJobs(12), invalid], workers: WORKERS, crash: false })

      expect(summary.completed).toBe(11)
      expect(summary.results.has(invalid.jobId)).toBe(false)
      expect(summary.retries).not.toContain(invalid.jobId)
      expect(Object.values(summary.perWorker).reduce((sum, worker) => sum + worker.rejected, 0)).toBe(1)
      const dead = new Map(summary.deadLettered.map((entry) => [entry.jobId, entry]))
      expect([...dead.keys()].sort()).toEqual([example.POISONED_JOB_ID, invalid.jobId])
      expect(dead.get(invalid.jobId)).toMatchObject({ deliveries: 1, reason: 'rejected', lastError: expect.stringMatching(/unknown model/) })
    })

    it('shares the work among more than one worker', async () => {
      const summary = await example.runJobQueue({ dir: tempDir('job-queue'), jobs: JOBS, workers: WORKERS, crash: false })

      const busy = Object.values(summary.perWorker).filter((worker) => worker.done > 0)
      expect(busy.length).toBeGreaterThan(1)
      expect(Object.values(summary.perWorker).reduce((sum, worker) => sum + worker.done, 0)).toBe(JOBS - 1) // no crash, no lock expiry: each job ran to a result once
      expect(summary.duplicateResults).toBe(0)
      expect(summary.fencedAcks).toBe(0)
      expect(summary.crashed).toBeNull()
    })

    it('leaves every result fetchable by job id, and every job settled, after the topics are reopened', async () => {
      const dir = tempDir('job-queue')
      const summary = await example.runJobQueue({ dir, jobs: JOBS, workers: WORKERS })

      const results = await Topic.open(path.join(dir, 'results'))
      const jobs = await Topic.open(path.join(dir, 'jobs'))
      try {
        for (const job of completableJobs(JOBS)) {
          const fetched = await example.fetchResult(results, job.jobId)
          expect(fetched).toMatchObject(expectedResult(job))
          expect(fetched).toEqual(summary.results.get(job.jobId)) // the first result written is the one the caller kept
        }
        expect(await example.fetchResult(results, example.POISONED_JOB_ID)).toBeUndefined()
        expect(await example.fetchResult(results, 'job-unknown')).toBeUndefined()
        // Acks and the dead letter are durable: the reopened share group delivers nothing again.
        const worker = await jobs.shareGroup('workers', example.SHARE_GROUP_OPTIONS).join()
        expect(await worker.poll({ maxRecords: 100, timeoutMs: 300 })).toEqual([])
        await worker.close()
        expect((await readAll(jobs)).length).toBe(JOBS)
      } finally {
        await results.close()
        await jobs.close()
      }
    })
  })
})
