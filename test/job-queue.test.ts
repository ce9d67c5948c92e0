/**
 * Specs of examples/job-queue: a caller submits ML jobs to a topic, a consumer group of workers runs
 * a deterministic fake model and writes results keyed by job id, one worker crashes without
 * committing. The example imports the BUILT package, so dist/ is built first when it is stale.
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
  partition: number
  offset: number
}

interface Summary {
  submitted: number
  completed: number
  results: Map<string, JobResult>
  perWorker: Record<string, number>
  resultRecords: number
  duplicateResults: number
  processedMoreThanOnce: string[]
  fencedCommits: number
  crashed: { worker: string; jobId: string; partition: number; offset: number; rerunBy: string[] } | null
  elapsedMs: number
}

interface JobQueueExample {
  runJobQueue(options: { dir: string; jobs: number; workers: number; crash?: boolean }): Promise<Summary>
  makeJobs(count: number): Job[]
  runModel(job: Job): ModelOutput
  fetchResult(resultsTopic: Topic, jobId: string): Promise<JobResult | undefined>
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

  describe('runJobQueue', () => {
    it('completes every job exactly once in the results map, with its deterministic result, although worker-0 crashes', async () => {
      const summary = await example.runJobQueue({ dir: tempDir('job-queue'), jobs: JOBS, workers: WORKERS })

      expect(summary.submitted).toBe(JOBS)
      expect(summary.completed).toBe(JOBS)
      expect([...summary.results.keys()].sort()).toEqual(example.makeJobs(JOBS).map((job) => job.jobId))
      for (const job of example.makeJobs(JOBS)) expect(summary.results.get(job.jobId)).toMatchObject(expectedResult(job))
      expect(summary.resultRecords).toBe(JOBS + summary.duplicateResults)
    })

    it('reruns the job the crashed worker never committed on another worker', async () => {
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

    it('shares the work among more than one worker', async () => {
      const summary = await example.runJobQueue({ dir: tempDir('job-queue'), jobs: JOBS, workers: WORKERS, crash: false })

      const busy = Object.values(summary.perWorker).filter((count) => count > 0)
      expect(busy.length).toBeGreaterThan(1)
      expect(Object.values(summary.perWorker).reduce((sum, count) => sum + count, 0)).toBe(JOBS) // no crash, no rebalance: each job ran once
      expect(summary.duplicateResults).toBe(0)
      expect(summary.crashed).toBeNull()
    })

    it('leaves every result fetchable by job id, and every job committed, after the topics are reopened', async () => {
      const dir = tempDir('job-queue')
      const summary = await example.runJobQueue({ dir, jobs: JOBS, workers: WORKERS })

      const results = await Topic.open(path.join(dir, 'results'))
      const jobs = await Topic.open(path.join(dir, 'jobs'))
      try {
        for (const job of example.makeJobs(JOBS)) {
          const fetched = await example.fetchResult(results, job.jobId)
          expect(fetched).toMatchObject(expectedResult(job))
          expect(fetched).toEqual(summary.results.get(job.jobId)) // the first result written is the one the caller kept
        }
        expect(await example.fetchResult(results, 'job-unknown')).toBeUndefined()
        const lag = await jobs.consumerGroup('workers').lag()
        expect(lag.map((partition) => partition.lag)).toEqual([0, 0, 0])
        expect(lag.reduce((sum, partition) => sum + partition.endOffset, 0)).toBe(JOBS)
      } finally {
        await results.close()
        await jobs.close()
      }
    })
  })
})

// ---------------------------------------------------------------------------------------------


