/**
 * Job queues in the spirit of MLQ, on three topics per queue `q` (each 1 partition, `sync: 'always'`):
 *
 * | topic | holds |
 * |---|---|
 * | `jobs.<q>` | the submissions: a job's id is its offset; the value is its payload; headers `content-type` and `seglog.job.callback` |
 * | `jobs.<q>.events` | state changes keyed by job id: `running` (attempt), `failed` (attempt, error), `done` (the result as the value, its content type) |
 * | `jobs.<q>.dlq` | dead letters, written by the share group `workers` of `jobs.<q>` (`maxDeliveries` = `maxAttempts`) |
 *
 * Workers are members of the share group: each job is held by one worker at a time, a failed
 * attempt is released with exponential backoff, and the share group dead-letters a job after
 * `maxAttempts` deliveries (also when its worker dies holding it). The state (job-state.ts) is
 * rebuilt from the events and dead-letter topics when a queue is first used after a start, and
 * follows the dead-letter topic while the server runs; callbacks are sent when a job ends.
 * A result is written (and durable) before its job is acknowledged, so a crash in between runs the
 * job again and the first result stays (at-least-once execution, one result per id).
 */
import { LogError } from '../errors.js'
import type { ShareConsumedRecord, ShareConsumer } from '../share-consumer.js'
import type { ShareGroup } from '../share-group.js'
import type { Topic } from '../topic.js'
import type { CallbackOptions, CallbackSender } from './callbacks.js'
import { HttpError } from './errors.js'
import { type JobEntry, type JobEvent, JobTable, backoffMs } from './job-state.js'

export interface JobQueueOptions {
  /** Deliveries before a job is dead-lettered. Default 3. */
  maxAttempts?: number
  /** How long a worker may hold a job before it is delivered again. Default 60,000 ms. */
  lockMs?: number
  /** Backoff before the 2nd attempt; doubles per attempt, at most `backoffMsMax`. Default 1,000 ms. */
  backoffMs?: number
  backoffMsMax?: number
}

export interface JobServiceOptions extends CallbackOptions {
  /** Options of every queue, under `queues[name]`. */
  defaults?: JobQueueOptions
  queues?: Record<string, JobQueueOptions>
  /** Most bytes of a job payload or result (the job topics' recordBytesMax). Default 8 MiB. */
  jobBytesMax?: number
}

/** A job as a worker sees it. */
export interface Job {
  id: number
  queue: string
  payload: Uint8Array
  contentType: string
  /** 1 on the first attempt. */
  attempt: number
  submittedMs: number
}

export interface JobStatus extends Omit<JobEntry, 'resultOffset'> {
  id: number
  queue: string
  submittedMs: number
}

const QUEUE_NAME = /^[a-zA-Z0-9_-]{1,200}$/
export const CALLBACK_HEADER = 'seglog.job.callback'
export const WORKERS_GROUP = 'workers'

export function queueTopic(queue: string): string {
  return `jobs.${queue}`
}

export function checkQueueName(name: string): string {
  if (!QUEUE_NAME.test(name)) throw new LogError('INVALID_ARGUMENT', 'queue names are 1–200 letters, digits, _ or -')
  return name
}

export class JobQueue {
  readonly table = new JobTable()
  private readonly stop = new AbortController()
  private readonly following: Promise<void>

  constructor(
    readonly name: string,
    readonly options: Required<JobQueueOptions>,
    private readonly jobs: Topic,
    private readonly events: Topic,
    private readonly dlq: Topic,
    private readonly group: ShareGroup,
    private readonly callbacks: CallbackSender,
    private readonly log: (line: string) => void,
  ) {
    const dlqEnd = this.replay()
    this.following = this.followDeadLetters(dlqEnd)
  }

  get submitted(): number {
    return this.jobs.partition(0).highWatermark
  }

  async submit(payload: Uint8Array, contentType: string, callback: string | undefined): Promise<number> {
    const headers: Record<string, string> = { 'content-type': contentType }
    if (callback !== undefined) headers[CALLBACK_HEADER] = this.callbacks.check(callback)
    const { offset } = await this.jobs.send({ value: payload, headers, partition: 0 })
    return offset
  }

  status(id: number): JobStatus {
    this.checkId(id)
    const { resultOffset: _, ...entry } = this.table.get(id)
    return { id, queue: this.name, submittedMs: this.jobs.partition(0).read(id).timestamp, ...entry }
  }

  /** The result of a done job; JOB_NOT_DONE before. */
  result(id: number): { body: Uint8Array; contentType: string } {
    this.checkId(id)
    const entry = this.table.get(id)
    if (entry.state !== 'done' || entry.resultOffset === undefined) throw new HttpError('JOB_NOT_DONE', `job ${id} of '${this.name}' is ${entry.state}`)
    return { body: this.events.partition(0).read(entry.resultOffset).value, contentType: entry.contentType ?? 'application/octet-stream' }
  }

  join(memberId?: string): Promise<ShareConsumer> {
    return this.group.join(memberId === undefined ? {} : { memberId })
  }

  /** Up to `maxJobs` jobs for `worker` (their `running` events durable first); jobs done already are acked and skipped. */
  async take(worker: ShareConsumer, maxJobs: number, timeoutMs: number): Promise<Job[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const records = await worker.poll({ maxRecords: maxJobs, timeoutMs: Math.max(0, deadline - Date.now()) })
      const finished = records.filter((record) => this.table.isFinal(record.offset))
      if (finished.length > 0) await worker.ack(finished).catch(() => undefined)
      const fresh = records.filter((record) => !this.table.isFinal(record.offset))
      if (fresh.length > 0) {
        await this.record(fresh.map((record) => [record.offset, { kind: 'running', attempt: record.deliveryCount, atMs: Date.now() }]))
        return fresh.map((record) => this.toJob(record))
      }
      if (records.length === 0 || Date.now() >= deadline || worker.isClosed) return []
    }
  }

  /** Stores the result of job `id` (durable), then acknowledges it. */
  async complete(worker: ShareConsumer, job: Pick<Job, 'id' | 'attempt'>, body: Uint8Array, contentType: string): Promise<void> {
    await this.record([[job.id, { kind: 'done', attempt: job.attempt, atMs: Date.now(), resultOffset: -1, contentType, resultBytes: body.byteLength }]], body)
    await worker.ack({ partition: 0, offset: job.id }).catch((error: unknown) => {
      if (!(error instanceof LogError && error.code === 'FENCED')) throw error // else another delivery runs it; the first result stays
    })
    this.ended(job.id)
  }

  /** Records a failed attempt; `retry` releases the job with backoff (dead-lettered at maxAttempts), else rejects it. */
  async fail(worker: ShareConsumer, job: Pick<Job, 'id' | 'attempt'>, error: string, retry: boolean): Promise<void> {
    await this.record([[job.id, { kind: 'failed', attempt: job.attempt, atMs: Date.now(), error: error.slice(0, 1_000) }]])
    const ref = { partition: 0, offset: job.id }
    if (retry) await worker.release(ref, { delayMs: backoffMs(job.attempt, this.options.backoffMs, this.options.backoffMsMax) })
    else await worker.reject(ref)
  }

  async close(): Promise<void> {
    this.stop.abort()
    await this.following
  }

  /** Appends events (one batch, durable) and applies them; `body` is the value of a `done` event. */
  private async record(items: [number, JobEvent][], body?: Uint8Array): Promise<void> {
    const results = await this.events.sendBatch(items.map(([id, event]) => ({ key: String(id), value: body ?? new Uint8Array(0), headers: eventHeaders(event), partition: 0 })))
    items.forEach(([id, event], i) => this.table.apply(id, event.kind === 'done' ? { ...event, resultOffset: results[i]!.offset } : event))
  }

  /** Rebuilds the table from the events and dead letters; returns where the dead-letter follow starts. */
  private replay(): number {
    const events = this.events.partition(0)
    for (let offset = events.startOffset; offset < events.highWatermark; offset++) {
      const record = events.read(offset)
      const event = parseEvent(record.headers, offset, record.value.byteLength)
      if (event && record.key) this.table.apply(Number(Buffer.from(record.key).toString()), event)
    }
    const dead = this.dlq.partition(0)
    for (let offset = dead.startOffset; offset < dead.highWatermark; offset++) this.applyDeadLetter(dead.read(offset))
    this.table.requeueRunning()
    return dead.highWatermark
  }

  private async followDeadLetters(from: number): Promise<void> {
    try {
      for await (const record of this.dlq.partition(0).records({ from, follow: true, signal: this.stop.signal })) {
        const id = this.applyDeadLetter(record)
        if (id !== undefined) this.ended(id)
      }
      if (!this.stop.signal.aborted) this.log(`job queue '${this.name}': ${this.dlq.name} closed; dead letters are no longer followed`)
    } catch (error) {
      if (!this.stop.signal.aborted) this.log(`job queue '${this.name}': following ${this.dlq.name} stopped: ${(error as Error).message}`)
    }
  }

  private applyDeadLetter(record: { headers: Record<string, Uint8Array>; timestamp: number }): number | undefined {
    const text = (name: string): string => Buffer.from(record.headers[name] ?? new Uint8Array(0)).toString()
    if (text('seglog.dlq.topic') !== this.jobs.name) return undefined
    const id = Number(text('seglog.dlq.offset'))
    const changed = this.table.apply(id, { kind: 'dead', attempt: Number(text('seglog.dlq.deliveries')) || 0, atMs: Date.now(), error: this.table.get(id).error ?? text('seglog.dlq.reason') })
    return changed ? id : undefined
  }

  /** A job ended (done or dead): its callback, if it named one (a failure here never stops the queue). */
  private ended(id: number): void {
    try {
      const url = this.jobs.partition(0).read(id).headers[CALLBACK_HEADER]
      if (!url) return
      this.callbacks.send(Buffer.from(url).toString(), { ...this.status(id), resultUrl: `/queues/${this.name}/jobs/${id}/result` })
    } catch (error) {
      this.log(`job queue '${this.name}': no callback for job ${id}: ${(error as Error).message}`)
    }
  }

  /** The names of the queue's topics. */
  get topicNames(): string[] {
    return [this.jobs.name, this.events.name, this.dlq.name]
  }

  private toJob(record: ShareConsumedRecord): Job {
    const contentType = Buffer.from(record.headers['content-type'] ?? new Uint8Array(0)).toString() || 'application/octet-stream'
    return { id: record.offset, queue: this.name, payload: record.value, contentType, attempt: record.deliveryCount, submittedMs: record.timestamp }
  }

  private checkId(id: number): void {
    if (!Number.isSafeInteger(id) || id < 0 || id >= this.submitted) throw new HttpError('UNKNOWN_JOB', `queue '${this.name}' has no job ${id}`)
  }
}

function eventHeaders(event: JobEvent): Record<string, string> {
  const headers: Record<string, string> = { state: event.kind, attempt: String(event.attempt) }
  if (event.kind === 'failed' || event.kind === 'dead') headers.error = event.error
  if (event.kind === 'done') headers['content-type'] = event.contentType
  return headers
}

function parseEvent(headers: Record<string, Uint8Array>, offset: number, bytes: number): JobEvent | undefined {
  const text = (name: string): string => Buffer.from(headers[name] ?? new Uint8Array(0)).toString()
  const attempt = Number(text('attempt')) || 0
  const atMs = Date.now()
  switch (text('state')) {
    case 'running':
      return { kind: 'running', attempt, atMs }
    case 'failed':
      return { kind: 'failed', attempt, atMs, error: text('error') }
    case 'done':
      return { kind: 'done', attempt, atMs, resultOffset: offset, contentType: text('content-type') || 'application/octet-stream', resultBytes: bytes }
    default:
      return undefined
  }
}
