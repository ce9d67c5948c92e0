/**
 * ShareConsumer: one member of a share group. It polls records that the group's coordinator lets
 * it acquire (from any partition, alongside the other members), and settles each one: `ack` (done),
 * `release` (delivered again, to any member, after an optional delay) or `reject` (dead-lettered).
 * A record it does not settle within the group's lockMs is available to the others again.
 *
 * The coordinator answers [partition, offset, deliveryCount]; the records are read here, from this
 * handle's own files. Waiting for records is event-driven: the partitions' append notifications
 * (records never delivered) and the coordinator's version (redeliveries), never a polling loop.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { LogError, isLogError } from './errors.js'
import type { ConsumedRecord, Partition } from './partition.js'
import type { SettleKind } from './share-coordinator.js'
import type { ShareAcquired, ShareLink } from './share-link.js'

export interface ShareConsumedRecord extends ConsumedRecord {
  /** How many times the record was delivered, this time included (1 on first delivery). */
  deliveryCount: number
}

export interface SharePollOptions {
  /** Most records returned (default 500, at most 100,000). */
  maxRecords?: number
  /** How long to wait when nothing is there yet (default 0: return at once). */
  timeoutMs?: number
}

/** A record to settle: what poll returned, or any `{ partition, offset }`. */
export type ShareRecordRef = Pick<ConsumedRecord, 'partition' | 'offset'>

/** The acknowledgements made in one synchronous run: flat [partition, offset] pairs, and per caller where its pairs end. */
interface AckRun {
  items: number[]
  ends: number[]
  resolves: (() => void)[]
  rejects: ((error: unknown) => void)[]
}

const MAX_RECORDS_DEFAULT = 500
const MAX_RECORDS_LIMIT = 100_000
const ITERATOR_BATCH_RECORDS = 100
const ITERATOR_WAIT_MS = 1000
const DELAY_MS_MAX = 2 ** 31 - 1
/** How long a poll waits before retrying after its owner went away (the topic is switching owners). */
const OWNER_SWITCH_WAIT_MS = 20
/** Settle failures the iterator absorbs: the record is delivered again either way (at-least-once). */
const QUIET_SETTLE_FAILURES = new Set<string>(['FENCED', 'LOG_CLOSED', 'UNKNOWN_MEMBER', 'DISCONNECTED'])

export class ShareConsumer {
  private readonly heartbeatTimer: NodeJS.Timeout
  private readonly closing = new AbortController()
  private ackRun: AckRun | undefined
  private closed = false

  constructor(
    readonly memberId: string,
    private readonly link: ShareLink,
    private readonly partitions: readonly Partition[],
  ) {
    this.heartbeatTimer = setInterval(() => this.heartbeat(), Math.max(10, Math.floor(link.options.sessionTimeoutMs / 3)))
    this.heartbeatTimer.unref()
  }

  /** Up to `maxRecords` records acquired for this member, waiting up to `timeoutMs` for some. */
  async poll(options: SharePollOptions = {}): Promise<ShareConsumedRecord[]> {
    const { maxRecords, timeoutMs } = checkPollOptions(options)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      this.checkOpen()
      const ends = this.partitions.map((partition) => partition.highWatermark) // before asking: no append is missed
      const answer = await this.acquire(maxRecords)
      if (answer && answer.records.length > 0) return this.read(answer)
      const remainingMs = deadline - Date.now()
      if (remainingMs <= 0 || this.closed) return []
      if (answer) await this.waitForRecords(answer.version, ends, remainingMs)
      else await this.waitForOwner(remainingMs)
    }
  }

  /** Done: the records are never delivered again. Resolves once durable; FENCED if this member does not hold one. */
  ack(records: ShareRecordRef | readonly ShareRecordRef[]): Promise<void> {
    try {
      this.checkOpen()
      return this.queueAck(records)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Gives the records back: delivered again (to any member) after `delayMs` (default 0). */
  release(records: ShareRecordRef | readonly ShareRecordRef[], options: { delayMs?: number } = {}): Promise<void> {
    if (options === null || typeof options !== 'object') return Promise.reject(new LogError('INVALID_ARGUMENT', 'release options must be an object'))
    const delayMs = options.delayMs ?? 0
    if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > DELAY_MS_MAX) {
      return Promise.reject(new LogError('INVALID_ARGUMENT', `delayMs must be an integer in [0, ${DELAY_MS_MAX}], got ${String(delayMs)}`))
    }
    return this.settle('release', records, delayMs)
  }

  /** Gives up on the records: written to the group's dead-letter topic (if any), never delivered again. */
  reject(records: ShareRecordRef | readonly ShareRecordRef[]): Promise<void> {
    return this.settle('reject', records, 0)
  }

  /**
   * Records one at a time, for as long as the member is open. A record is acknowledged when the
   * loop asks for the next one (the acknowledgements of a batch share one fsync); after `break` or a
   * throw, the record being processed and the rest of its batch are released.
   */
  [Symbol.asyncIterator](): AsyncGenerator<ShareConsumedRecord, void, undefined> {
    return iterateAcking<ShareConsumedRecord>(this, () => !this.closed && !this.link.isClosed)
  }

  /** Leaves the group; what the member holds is available to the others at once. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeatTimer)
    this.closing.abort()
    await this.link.leave(this.memberId).catch(() => undefined) // an owner that is gone forgets the member anyway
  }

  get isClosed(): boolean {
    return this.closed
  }

  // -------------------------------------------------------------------------------------------

  /** The coordinator's answer, or undefined when the member must retry (it rejoined, or the owner is switching). */
  private async acquire(maxRecords: number): Promise<ShareAcquired | undefined> {
    try {
      return await this.link.acquire(this.memberId, maxRecords)
    } catch (error) {
      if (isLogError(error, 'UNKNOWN_MEMBER')) {
        // Removed after sessionTimeoutMs of silence, or a new owner that never saw it: rejoin.
        await this.link.join(this.memberId).catch((joinError: unknown) => {
          if (!isLogError(joinError, 'INVALID_ARGUMENT') && !isLogError(joinError, 'DISCONNECTED')) throw joinError
        })
        return undefined
      }
      if (isLogError(error, 'DISCONNECTED') && !this.link.isClosed) return undefined
      throw error
    }
  }

  private read(answer: ShareAcquired): ShareConsumedRecord[] {
    for (const [partition, end] of answer.ends) this.partitions[partition]?.announceEnd(end)
    const acquired = answer.records
    const records = new Array<ShareConsumedRecord>(acquired.length / 3)
    for (let i = 0, at = 0; i < acquired.length; i += 3) {
      const record = this.partitions[acquired[i]!]!.read(acquired[i + 1]!) as ShareConsumedRecord
      record.deliveryCount = acquired[i + 2]! // set on the fresh object: cheaper than a spread per record
      records[at++] = record
    }
    return records
  }

  private async settle(kind: SettleKind, records: ShareRecordRef | readonly ShareRecordRef[], delayMs: number): Promise<void> {
    this.checkOpen()
    const items = this.toItems(records)
    if (items.length === 0) return
    await this.link.settle(this.memberId, kind, items, delayMs)
  }

  /**
   * Acknowledgements made in one synchronous run (a loop of ack calls over a poll's records) travel
   * as one call with one flat list, so the coordinator checks them together and stores them as one
   * record per partition. If the joint call is refused (one record no longer held), each caller's
   * records are settled on their own, so only the caller at fault sees the error.
   */
  private queueAck(records: ShareRecordRef | readonly ShareRecordRef[]): Promise<void> {
    let run = this.ackRun
    if (!run) {
      run = this.ackRun = { items: [], ends: [], resolves: [], rejects: [] }
      queueMicrotask(() => this.flushAcks())
    }
    const from = run.items.length
    try {
      this.pushItems(records, run.items)
    } catch (error) {
      run.items.length = from // a bad call adds nothing to the run
      throw error
    }
    if (run.items.length === from) return Promise.resolve() // an empty list
    const waiters = run
    waiters.ends.push(run.items.length)
    return new Promise((resolve, reject) => {
      waiters.resolves.push(resolve)
      waiters.rejects.push(reject)
    })
  }

  private flushAcks(): void {
    const run = this.ackRun!
    this.ackRun = undefined
    const callers = run.ends.length
    if (callers === 0) return
    const alone = (caller: number): void => {
      const items = run.items.slice(caller === 0 ? 0 : run.ends[caller - 1], run.ends[caller])
      void this.link.settle(this.memberId, 'ack', items, 0).then(run.resolves[caller], run.rejects[caller])
    }
    this.link.settle(this.memberId, 'ack', run.items, 0).then(
      () => {
        for (const resolve of run.resolves) resolve()
      },
      (error: unknown) => {
        for (let caller = 0; caller < callers; caller++) {
          if (callers > 1 && isLogError(error, 'FENCED')) alone(caller)
          else run.rejects[caller]!(error)
        }
      },
    )
  }

  /** The records as flat [partition, offset] pairs. */
  private toItems(records: ShareRecordRef | readonly ShareRecordRef[]): number[] {
    const items: number[] = []
    this.pushItems(records, items)
    return items
  }

  private pushItems(records: ShareRecordRef | readonly ShareRecordRef[], into: number[]): void {
    if (!Array.isArray(records)) return this.pushItem(records, into) // one record (the common case: an ack per record)
    for (const record of records as readonly unknown[]) this.pushItem(record, into)
  }

  private pushItem(record: unknown, into: number[]): void {
    if (record === null || typeof record !== 'object') throw new LogError('INVALID_ARGUMENT', 'ack, release and reject take polled records ({ partition, offset }) or an array of them')
    const { partition, offset } = record as ShareRecordRef
    if (!Number.isSafeInteger(offset) || offset < 0) throw new LogError('INVALID_ARGUMENT', `offset must be a non-negative integer, got ${String(offset)}`)
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitions.length) {
      throw new LogError('UNKNOWN_PARTITION', `partition ${String(partition)} does not exist (the topic has ${this.partitions.length})`)
    }
    into.push(partition, offset)
  }

  /** @internal What `waitForWork` compares against: taken before polling, so nothing that arrives after is missed. */
  workSnapshot(): { version: number; ends: number[] } {
    return { version: this.link.version, ends: this.partitions.map((partition) => partition.highWatermark) }
  }

  /** @internal Resolves when there may be records to acquire since `snapshot` (a group over several topics waits on each topic's member). */
  waitForWork(snapshot: { version: number; ends: readonly number[] }, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return this.waitForRecords(snapshot.version, snapshot.ends, timeoutMs, signal)
  }

  /** Resolves when the coordinator's version passes `version`, a partition's end passes `ends`, the member closes, or `timeoutMs` passes. */
  private async waitForRecords(version: number, ends: readonly number[], timeoutMs: number, cancel?: AbortSignal): Promise<void> {
    if (this.link.version > version || cancel?.aborted) return
    const stop = new AbortController()
    const signal = AbortSignal.any(cancel ? [stop.signal, this.closing.signal, cancel] : [stop.signal, this.closing.signal])
    let removeListener: (() => void) | undefined
    const waits = this.partitions.map((partition, i) => partition.waitForRecords(ends[i]!, signal))
    waits.push(new Promise<void>((resolve) => (removeListener = this.link.onChange(resolve))))
    waits.push(sleep(timeoutMs, undefined, { signal }).catch(() => undefined))
    try {
      await Promise.race(waits)
    } finally {
      stop.abort()
      removeListener?.()
    }
  }

  private async waitForOwner(timeoutMs: number): Promise<void> {
    await sleep(Math.min(timeoutMs, OWNER_SWITCH_WAIT_MS))
  }

  private heartbeat(): void {
    if (!this.closed && !this.link.isClosed) this.link.heartbeat(this.memberId)
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `share consumer '${this.memberId}' is closed`)
    if (this.link.isClosed) throw new LogError('LOG_CLOSED', `share group '${this.link.groupId}' is closed`)
  }
}

export function checkPollOptions(options: SharePollOptions): { maxRecords: number; timeoutMs: number } {
  if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'poll options must be an object')
  const maxRecords = options.maxRecords ?? MAX_RECORDS_DEFAULT
  const timeoutMs = options.timeoutMs ?? 0
  if (!Number.isInteger(maxRecords) || maxRecords < 1 || maxRecords > MAX_RECORDS_LIMIT) {
    throw new LogError('INVALID_ARGUMENT', `maxRecords must be an integer in [1, ${MAX_RECORDS_LIMIT}], got ${String(maxRecords)}`)
  }
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0 || timeoutMs > DELAY_MS_MAX) {
    throw new LogError('INVALID_ARGUMENT', `timeoutMs must be a number in [0, 2^31-1], got ${String(timeoutMs)}`)
  }
  return { maxRecords, timeoutMs }
}

/** What the share iterator needs of a member (a ShareConsumer, or a broker's member over several topics). */
interface SettlingMember<R> {
  poll(options: SharePollOptions): Promise<R[]>
  ack(records: R): Promise<void>
  release(records: readonly R[]): Promise<void>
}

/**
 * Records one at a time while `isOpen()`: a record is acknowledged when the loop asks for the next
 * one (a batch's acknowledgements share one fsync); after `break` or a throw, the record being
 * processed and the rest of its batch are released.
 */
export async function* iterateAcking<R>(member: SettlingMember<R>, isOpen: () => boolean): AsyncGenerator<R, void, undefined> {
  while (isOpen()) {
    const batch = await member.poll({ maxRecords: ITERATOR_BATCH_RECORDS, timeoutMs: ITERATOR_WAIT_MS })
    const settled: Promise<void>[] = []
    let index = 0
    try {
      for (; index < batch.length; index++) {
        yield batch[index]!
        settled.push(settleQuietly(member.ack(batch[index]!)))
      }
    } finally {
      if (index < batch.length && isOpen()) settled.push(settleQuietly(member.release(batch.slice(index))))
      await Promise.all(settled)
    }
  }
}

/** A settle the iterator makes may find the record gone to another member (lock lost, closed): it is redone there. */
async function settleQuietly(work: Promise<void>): Promise<void> {
  try {
    await work
  } catch (error) {
    if (!(error instanceof LogError) || !QUIET_SETTLE_FAILURES.has(error.code)) throw error
  }
}
