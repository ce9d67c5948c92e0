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
 *
 * Sync rounds (`SyncRounds`): up to SYNC_ROUNDS_MAX run at once and retire in the order they began,
 * so `durableEnd` only ever takes a round's target once every earlier round (and the sealed segments
 * it fsyncs) is done. With one round at a time, writers that all wait on the same fsync stay in one
 * cohort: the event loop idles during the fsync and the disk during the appends that follow, for
 * each cohort in turn. When a round that released many appends leaves none running, the next cohort
 * is split in two (the first half starts its round at once, the second shares the next): the two
 * halves then alternate, one cohort's appends running while the other's fsync does.
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

/**
 * Rounds at once. Two fdatasyncs of one file overlap on this machine's disk (about 1.4–1.7× the
 * rate of one at a time, measured); cohorts split in three or four with as many rounds showed no
 * gain over two in the 1,000-writer bench.
 */
export const SYNC_ROUNDS_MAX = 2

/**
 * A round that released at least this many appends, with none left running, splits the next cohort.
 * Below it the appends take little time next to an fsync and splitting only adds fsyncs (about
 * 0.5 µs of event-loop time per 100-byte append against 0.3–0.6 ms per fdatasync, measured).
 */
export const SPLIT_RECORDS_MIN = 512

/** One sync round: the frontier it makes durable and the sealed segments' descriptors it fsyncs. */
export interface SyncRound {
  readonly target: number
  readonly descriptors: readonly number[]
  /** fsyncs still running (the active store's and one per descriptor). */
  pending: number
  failure: Error | null
}

/** The sync rounds in flight, oldest first, and when to split the next cohort. */
export class SyncRounds {
  private rounds: SyncRound[] = []
  private splitAt = Infinity

  get inFlight(): number {
    return this.rounds.length
  }

  get canStart(): boolean {
    return this.rounds.length < SYNC_ROUNDS_MAX
  }

  /** The end the running rounds will make durable, or `durableEnd` when none runs. */
  coveredEnd(durableEnd: number): number {
    const last = this.rounds[this.rounds.length - 1]
    return last ? last.target : durableEnd
  }

  begin(target: number, descriptors: readonly number[]): SyncRound {
    const round: SyncRound = { target, descriptors, pending: descriptors.length + 1, failure: null }
    this.rounds.push(round)
    return round
  }

  /** Removes and returns the finished rounds that no unfinished round precedes. */
  takeFinished(): SyncRound[] {
    let count = 0
    while (count < this.rounds.length && this.rounds[count]!.pending === 0) count++
    return this.rounds.splice(0, count)
  }

  /** After retiring rounds that released `released` appends: split the next cohort if it is large and nothing runs. */
  noteReleased(released: number): void {
    this.splitAt = released >= SPLIT_RECORDS_MIN && this.rounds.length === 0 ? Math.ceil(released / 2) : Infinity
  }

  /** Whether `unwritten` appends, waiting for a flush, are the first half of a cohort to split (once). */
  takeSplit(unwritten: number): boolean {
    if (unwritten < this.splitAt || this.rounds.length > 0) return false
    this.splitAt = Infinity
    return true
  }
}
