/**
 * JobService: the job queues of one server (jobs.ts), each opened on first use (its three topics
 * created if missing, its state replayed) and kept; in-process handlers (job-worker.ts); callbacks
 * (callbacks.ts). Deleting one of a queue's topics retires the queue: its next use opens it again.
 */
import { CallbackSender } from './callbacks.js'
import { HttpError } from './errors.js'
import { type JobHandler, type JobWorkerOptions, startJobWorkers } from './job-worker.js'
import { JobQueue, type JobQueueOptions, type JobServiceOptions, WORKERS_GROUP, checkQueueName, queueTopic } from './jobs.js'
import type { TopicAccess } from './topics.js'

/** The job queues of a server: opened (and replayed) on first use; in-process handlers (job-worker.ts). */
export class JobService {
  private readonly queues = new Map<string, Promise<JobQueue>>()
  private readonly callbacks: CallbackSender
  private readonly closers = new Set<() => Promise<void>>()
  private closed = false

  constructor(
    private readonly topics: TopicAccess,
    private readonly options: JobServiceOptions,
    private readonly log: (line: string) => void,
  ) {
    this.callbacks = new CallbackSender(options, log)
    // Deleting one of a queue's topics retires the queue: its next use opens (and replays) it again.
    topics.onDelete((name) => {
      for (const [queueName, queue] of this.queues) {
        queue
          .then((open) => {
            if (!open.topicNames.includes(name) || this.queues.get(queueName) !== queue) return
            this.queues.delete(queueName)
            return open.close()
          })
          .catch(() => undefined) // a queue that failed to open is forgotten by queue() already
      }
    })
  }

  /** The queue `name` (its topics created on first use). */
  queue(name: string): Promise<JobQueue> {
    if (this.closed) return Promise.reject(new HttpError('SHUTTING_DOWN', 'the job service is closed'))
    try {
      checkQueueName(name)
    } catch (error) {
      return Promise.reject(error)
    }
    let queue = this.queues.get(name)
    if (!queue) {
      queue = this.openQueue(name)
      queue.catch(() => this.queues.delete(name))
      this.queues.set(name, queue)
    }
    return queue
  }

  /**
   * Runs `handler` for the jobs of queue `name` in this process (`concurrency` at a time); resolves
   * once the workers joined, to a function that stops them. They also stop when the server closes.
   */
  async handle(name: string, handler: JobHandler, options: JobWorkerOptions = {}): Promise<() => Promise<void>> {
    const queue = await this.queue(name)
    const stop = await startJobWorkers(queue, handler, options, this.log)
    this.closers.add(stop)
    return async () => {
      this.closers.delete(stop)
      await stop()
    }
  }

  /** Deletes the queue `name`: stops using it, then deletes its topics (submissions first, so its share group lets go of the dead-letter topic). */
  async deleteQueue(name: string): Promise<void> {
    checkQueueName(name)
    const queue = this.queues.get(name)
    this.queues.delete(name)
    await (await queue?.catch(() => undefined))?.close()
    const topic = queueTopic(name)
    for (const suffix of ['', '.events', '.dlq']) if (this.topics.exists(topic + suffix)) await this.topics.delete(topic + suffix)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all([...this.closers].map((closer) => closer()))
    await this.callbacks.close()
    const queues = await Promise.allSettled([...this.queues.values()])
    await Promise.all(queues.map((queue) => (queue.status === 'fulfilled' ? queue.value.close() : undefined)))
  }

  private async openQueue(name: string): Promise<JobQueue> {
    const given = { ...this.options.defaults, ...this.options.queues?.[name] }
    const options: Required<JobQueueOptions> = { maxAttempts: given.maxAttempts ?? 3, lockMs: given.lockMs ?? 60_000, backoffMs: given.backoffMs ?? 1_000, backoffMsMax: given.backoffMsMax ?? 600_000 }
    const topic = queueTopic(name)
    const recordBytesMax = Math.max(1024 * 1024, (this.options.jobBytesMax ?? 8 * 1024 * 1024) + 64 * 1024)
    const open = (suffix: string) => this.topics.openOrCreate(`${topic}${suffix}`, { partitions: 1, sync: 'always', recordBytesMax })
    const [jobs, events, dlq] = await Promise.all([open(''), open('.events'), open('.dlq')])
    const group = jobs.shareGroup(WORKERS_GROUP, { maxDeliveries: options.maxAttempts, lockMs: options.lockMs, deadLetterTopic: dlq.name })
    return new JobQueue(name, options, jobs, events, dlq, group, this.callbacks, this.log)
  }
}
