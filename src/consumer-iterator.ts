/**
 * ConsumerIterator: a consumer's records one at a time, as `for await (const record of consumer)`
 * reads them. A record counts as processed when the loop asks for the next one; after each polled
 * batch the processed records are committed (one fsync per batch), and when the loop ends early
 * (break, throw: `return()`) the record being processed is put back, so it is delivered again.
 *
 * Why not an `async function*` with `yield record`: each yield of an async generator costs an await,
 * a promise and a resumption, which profiles of drains showed as a large part of the loop. Here
 * `next()` hands out a record of the current batch as an already-resolved promise, and only the step
 * to the next batch (commit, then poll) awaits (as BatchFlattener does for records()). Calls to
 * `next()` made before the previous one settled are served in order.
 */
import type { ConsumedRecord } from './partition.js'

const DONE: IteratorReturnResult<void> = Object.freeze({ value: undefined, done: true })

/** What the iterator needs of its consumer. */
export interface IteratedConsumer {
  /** Whether the member (and its group) is still open. */
  isOpen(): boolean
  /** The next batch (maybe empty, after a wait) and the generation it was polled in. */
  pollBatch(): Promise<{ records: ConsumedRecord[]; generation: number }>
  /**
   * The loop is done with `batch[0, processed)`: commits those (quietly, as the iterator's commits
   * are); `finished` false means it left early, and the rest of the batch is to be read again.
   */
  settle(batch: readonly ConsumedRecord[], processed: number, generation: number, finished: boolean): Promise<void>
}

export class ConsumerIterator implements AsyncGenerator<ConsumedRecord, void, undefined> {
  private batch: ConsumedRecord[] = []
  private generation = -1
  /** Records of `batch` handed out; all but the last are processed. */
  private at = 0
  private finished = false
  private pending: Promise<void> | undefined

  constructor(private readonly consumer: IteratedConsumer) {}

  [Symbol.asyncIterator](): this {
    return this
  }

  next(): Promise<IteratorResult<ConsumedRecord, void>> {
    if (this.pending !== undefined) return this.queued(() => this.next())
    if (this.finished) return Promise.resolve(DONE)
    if (this.at < this.batch.length) return Promise.resolve({ value: this.batch[this.at++]!, done: false })
    return this.track(this.nextBatch())
  }

  return(): Promise<IteratorResult<ConsumedRecord, void>> {
    if (this.pending !== undefined) return this.queued(() => this.return())
    return this.track(this.finish().then(() => DONE))
  }

  throw(error: unknown): Promise<IteratorResult<ConsumedRecord, void>> {
    if (this.pending !== undefined) return this.queued(() => this.throw(error))
    return this.track(this.finish().then(() => Promise.reject(error)))
  }

  /** The whole batch is processed: commit it, then poll until records come or the member closes. */
  private async nextBatch(): Promise<IteratorResult<ConsumedRecord, void>> {
    try {
      if (this.batch.length > 0) {
        const batch = this.batch
        this.batch = []
        this.at = 0
        await this.consumer.settle(batch, batch.length, this.generation, true)
      }
      while (this.consumer.isOpen()) {
        const { records, generation } = await this.consumer.pollBatch()
        if (records.length === 0) continue
        this.batch = records
        this.generation = generation
        this.at = 1
        return { value: records[0]!, done: false }
      }
    } catch (error) {
      this.finished = true
      throw error
    }
    this.finished = true
    return DONE
  }

  /** Leaves early: the record being processed (the last handed out) is delivered again. */
  private async finish(): Promise<void> {
    if (this.finished) return
    this.finished = true
    const batch = this.batch
    this.batch = []
    if (batch.length > 0) await this.consumer.settle(batch, Math.max(0, this.at - 1), this.generation, false)
  }

  /** Runs `step` after the call in flight settles (whichever way). */
  private queued(step: () => Promise<IteratorResult<ConsumedRecord, void>>): Promise<IteratorResult<ConsumedRecord, void>> {
    return this.pending!.then(step)
  }

  private track(promise: Promise<IteratorResult<ConsumedRecord, void>>): Promise<IteratorResult<ConsumedRecord, void>> {
    const release = (): void => {
      if (this.pending === tracked) this.pending = undefined
    }
    const tracked: Promise<void> = promise.then(release, release) // the caller handles the rejection
    this.pending = tracked
    return promise
  }
}
