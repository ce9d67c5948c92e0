/**
 * In-process job workers: `concurrency` loops, each a member of the queue's share group, that take
 * one job at a time, run the handler and store its result (or its failure). A handler that throws
 * `PermanentJobError` is not retried (the job is dead-lettered at once); any other throw retries
 * with backoff until `maxAttempts`. `stop()` lets the running handlers finish (their signal is
 * aborted so they can cut work short) and leaves the group.
 */
import type { ShareConsumer } from '../share-consumer.js'
import type { Job, JobQueue } from './jobs.js'

/** Thrown by a handler for a job that can never succeed (bad input): no retries. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError'
}

export type JobResult = Uint8Array | string | { body: Uint8Array | string; contentType?: string }
export type JobHandler = (job: Job, signal: AbortSignal) => Promise<JobResult> | JobResult

export interface JobWorkerOptions {
  /** Jobs run at once. Default 1. */
  concurrency?: number
}

const IDLE_POLL_MS = 1_000

export function resultBytes(result: JobResult): { body: Uint8Array; contentType: string } {
  if (typeof result === 'string') return { body: Buffer.from(result, 'utf8'), contentType: 'text/plain; charset=utf-8' }
  if (result instanceof Uint8Array) return { body: result, contentType: 'application/octet-stream' }
  const body = typeof result.body === 'string' ? Buffer.from(result.body, 'utf8') : result.body
  return { body, contentType: result.contentType ?? (typeof result.body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream') }
}

/** Starts the workers; resolves once they joined, to their stop function. */
export async function startJobWorkers(queue: JobQueue, handler: JobHandler, options: JobWorkerOptions, log: (line: string) => void): Promise<() => Promise<void>> {
  const concurrency = options.concurrency ?? 1
  const stop = new AbortController()
  const members: ShareConsumer[] = []
  for (let i = 0; i < concurrency; i++) members.push(await queue.join())
  const loops = members.map((member) => runLoop(queue, member, handler, stop.signal, log))
  return async () => {
    stop.abort()
    await Promise.all(members.map((member) => member.close())) // ends a waiting poll
    await Promise.all(loops)
  }
}

async function runLoop(queue: JobQueue, member: ShareConsumer, handler: JobHandler, signal: AbortSignal, log: (line: string) => void): Promise<void> {
  while (!signal.aborted && !member.isClosed) {
    let jobs: Job[]
    try {
      jobs = await queue.take(member, 1, IDLE_POLL_MS)
    } catch (error) {
      if (!signal.aborted && !member.isClosed) log(`job worker of '${queue.name}': poll failed: ${(error as Error).message}`)
      return
    }
    for (const job of jobs) await runOne(queue, member, job, handler, signal, log)
  }
}

async function runOne(queue: JobQueue, member: ShareConsumer, job: Job, handler: JobHandler, signal: AbortSignal, log: (line: string) => void): Promise<void> {
  let outcome: { ok: true; result: JobResult } | { ok: false; error: unknown }
  try {
    outcome = { ok: true, result: await handler(job, signal) }
  } catch (error) {
    outcome = { ok: false, error }
  }
  try {
    if (outcome.ok) {
      const { body, contentType } = resultBytes(outcome.result)
      await queue.complete(member, job, body, contentType)
    } else {
      const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error)
      await queue.fail(member, job, message, !(outcome.error instanceof PermanentJobError))
    }
  } catch (error) {
    // The member closed (stop) or lost the job: the share group delivers it again.
    if (!signal.aborted) log(`job worker of '${queue.name}': could not settle job ${job.id}: ${(error as Error).message}`)
  }
}
