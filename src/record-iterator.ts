/**
 * BatchFlattener: the records of an async iterator of batches, one by one, as an AsyncGenerator.
 *
 * Why not `async function*` with `for (const r of batch) yield r`: an async generator pays for each
 * yield with its own await, a promise and a resumption; profiles of records() showed that machinery,
 * not the reading, as most of a scan's time. Here `next()` hands out a record of the current batch
 * as an already-resolved promise, and only the step to the next batch awaits. Seen from outside it
 * behaves as the generator did: records in order, `done` after the last one, after `return()`, or
 * once `stopped()` says so (a signal aborted); an error of the batches is thrown once, then `done`.
 * Calls to `next()` made before the previous one settled are served in order.
 */

const DONE: IteratorReturnResult<void> = Object.freeze({ value: undefined, done: true })

export class BatchFlattener<T> implements AsyncGenerator<T, void, undefined> {
  private batch: readonly T[] = []
  private at = 0
  private finished = false
  private pending: Promise<void> | undefined

  constructor(
    private readonly batches: AsyncGenerator<readonly T[], void, undefined>,
    private readonly stopped: () => boolean,
  ) {}

  [Symbol.asyncIterator](): this {
    return this
  }

  /** How many records of the current batch were handed out (while `return()` ends the batches too). */
  get handedOut(): number {
    return this.at
  }

  next(): Promise<IteratorResult<T, void>> {
    if (this.pending !== undefined) return this.queued(() => this.next())
    if (this.finished) return Promise.resolve(DONE)
    if (this.stopped()) return this.return()
    if (this.at < this.batch.length) return Promise.resolve({ value: this.batch[this.at++]!, done: false })
    return this.track(this.nextBatch())
  }

  return(): Promise<IteratorResult<T, void>> {
    if (this.pending !== undefined) return this.queued(() => this.return())
    return this.track(this.finish().then(() => DONE))
  }

  throw(error: unknown): Promise<IteratorResult<T, void>> {
    if (this.pending !== undefined) return this.queued(() => this.throw(error))
    return this.track(this.finish().then(() => Promise.reject(error)))
  }

  private async nextBatch(): Promise<IteratorResult<T, void>> {
    for (;;) {
      let result: IteratorResult<readonly T[], void>
      try {
        result = await this.batches.next()
      } catch (error) {
        this.finished = true
        throw error
      }
      if (result.done) {
        this.finished = true
        return DONE
      }
      this.batch = result.value
      this.at = 0
      if (this.batch.length > 0) return { value: this.batch[this.at++]!, done: false }
    }
  }

  private async finish(): Promise<void> {
    if (this.finished) return
    this.finished = true
    await this.batches.return() // may ask handedOut: the batch stays until it has ended
    this.batch = []
  }

  /** Runs `step` after the call in flight settles (whichever way). */
  private queued(step: () => Promise<IteratorResult<T, void>>): Promise<IteratorResult<T, void>> {
    return this.pending!.then(step)
  }

  private track(promise: Promise<IteratorResult<T, void>>): Promise<IteratorResult<T, void>> {
    const release = (): void => {
      if (this.pending === tracked) this.pending = undefined
    }
    const tracked: Promise<void> = promise.then(release, release) // the caller handles the rejection
    this.pending = tracked
    return promise
  }
}
