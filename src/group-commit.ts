/**
 * Group commit: when appends count as done, and one fsync for everything waiting.
 *
 * Appends are written into the active segment synchronously and wait here. The log reports two
 * frontiers, both offsets that only grow (except across a truncate): `writtenEnd` (records below it
 * are in the OS page cache) and `durableEnd` (records below it were covered by a completed fsync).
 * With sync 'always' an append waits for `durableEnd`; otherwise for `writtenEnd`. While one fsync
 * runs, newer writes gather and share the next one.
 *
 * A failed write or fsync is final: every waiter is rejected with the cause and the frontiers stop.
 * Data is never reported durable after a failed fsync (the kernel may have dropped the dirty pages;
 * retrying fsync would falsely succeed), so the log must be reopened, which re-reads the disk.
 */
import type { LogError } from './errors.js'

interface Waiter {
  endOffset: number
  value: number
  resolve: (value: number) => void
  reject: (error: Error) => void
}

class WaiterQueue {
  private items: Waiter[] = []
  private head = 0

  push(waiter: Waiter): void {
    this.items.push(waiter)
  }

  get size(): number {
    return this.items.length - this.head
  }

  /** Resolves every waiter whose records all lie below `frontier`. */
  release(frontier: number): void {
    const items = this.items
    while (this.head < items.length && items[this.head]!.endOffset <= frontier) {
      const waiter = items[this.head]!
      items[this.head++] = undefined as unknown as Waiter
      waiter.resolve(waiter.value)
    }
    if (this.head === items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head)
      this.head = 0
    }
  }

  /** Rejects waiters whose records reach past `frontier` (all of them when frontier is -Infinity). */
  rejectFrom(frontier: number, error: Error): void {
    const kept: Waiter[] = []
    for (let i = this.head; i < this.items.length; i++) {
      const waiter = this.items[i]!
      if (waiter.endOffset > frontier) waiter.reject(error)
      else kept.push(waiter)
    }
    this.items = kept
    this.head = 0
  }
}

export class GroupCommit {
  private writtenWaiters = new WaiterQueue()
  private durableWaiters = new WaiterQueue()
  private written: number
  private durable: number
  private failure: LogError | undefined

  constructor(
    private readonly waitForFsync: boolean,
    endOffset: number,
  ) {
    this.written = endOffset
    this.durable = endOffset
  }

  get writtenEnd(): number {
    return this.written
  }

  get durableEnd(): number {
    return this.durable
  }

  /** The offset below which every append has been acknowledged. */
  get acknowledgedEnd(): number {
    return this.waitForFsync ? this.durable : this.written
  }

  get pendingDurable(): boolean {
    return this.durableWaiters.size > 0
  }

  /** Waits until records below `endOffset` are acknowledged under the log's sync mode; resolves to `value`. */
  waitAcknowledged(endOffset: number, value: number): Promise<number> {
    return this.waitOn(this.waitForFsync ? this.durableWaiters : this.writtenWaiters, endOffset, value, this.acknowledgedEnd)
  }

  /** Waits until records below `endOffset` are durable, whatever the sync mode. */
  waitDurable(endOffset: number): Promise<number> {
    return this.waitOn(this.durableWaiters, endOffset, endOffset, this.durable)
  }

  markWritten(endOffset: number): void {
    if (this.failure || endOffset <= this.written) return
    this.written = endOffset
    this.writtenWaiters.release(endOffset)
  }

  /** A sync round that began at `endOffset` completed (clamped: a truncate may have cut meanwhile). */
  markDurable(endOffset: number): void {
    if (this.failure) return
    endOffset = Math.min(endOffset, this.written)
    if (endOffset <= this.durable) return
    this.durable = endOffset
    this.durableWaiters.release(endOffset)
  }

  /** After a truncate: forget acknowledgements past `endOffset` and refuse waiters that were cut. */
  truncate(endOffset: number, error: Error): void {
    this.written = Math.min(this.written, endOffset)
    this.durable = Math.min(this.durable, endOffset)
    this.writtenWaiters.rejectFrom(endOffset, error)
    this.durableWaiters.rejectFrom(endOffset, error)
  }

  fail(error: LogError): void {
    if (this.failure) return
    this.failure = error
    this.writtenWaiters.rejectFrom(-Infinity, error)
    this.durableWaiters.rejectFrom(-Infinity, error)
  }

  private waitOn(queue: WaiterQueue, endOffset: number, value: number, frontier: number): Promise<number> {
    if (this.failure) return Promise.reject(this.failure)
    if (endOffset <= frontier) return Promise.resolve(value)
    return new Promise<number>((resolve, reject) => queue.push({ endOffset, value, resolve, reject }))
  }
}
