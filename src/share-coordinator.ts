/**
 * ShareCoordinator: one share group of one topic (queue semantics, like Kafka's KIP-932), kept by
 * the topic's owner next to its consumer-group coordinators. Members take records from the same
 * partitions at once; each record is acquired by one member at a time under a lock of `lockMs`.
 *
 * Invariants:
 * - An acquisition (its delivery count) is written to the OS before the record is handed out, so a
 *   record that crashes its consumer (or kills the owner's process) still counts toward
 *   `maxDeliveries`. It is fsynced by the next durable change (an acknowledgement's), not on its
 *   own: a power loss can only cost a delivery count the acquisitions since the last fsync.
 * - Acknowledgements, releases and archiving are fsynced before their calls resolve.
 * - A record whose lock expires, that is released, or whose member leaves is available again,
 *   unless it was delivered `maxDeliveries` times: then it is archived (dead-lettered).
 * - An archived record reaches the dead-letter topic before its archived state is stored.
 * - Waiting is event-driven: `version` grows (and listeners run) whenever records may have become
 *   available other than by an append; one timer is armed, for the earliest lock deadline or
 *   delayed release.
 *
 * Speaks plain data (flat lists of numbers: [partition, offset, deliveryCount] triples for what
 * it hands out, [partition, offset] pairs for what members settle) so that the owner connection
 * can carry the same calls for members in other threads and processes (share-link.ts), and so that
 * a poll of 500 records makes a handful of arrays rather than one per record.
 */
import { randomUUID } from 'node:crypto'
import { LogError } from './errors.js'
import { SHARE_DELIVERY_COUNT_MAX, SHARE_RECORD_UPDATE, SHARE_STATE_ACKED, SHARE_STATE_ACQUIRED, SHARE_STATE_ARCHIVED, SHARE_STATE_AVAILABLE, type ShareStateRecord } from './format.js'
import type { Partition } from './partition.js'
import type { ProducerRecord } from './producer-record.js'
import { NO_MEMBER, SharePartitionState, toBatches } from './share-state.js'
import { ShareStore } from './share-store.js'

export interface ShareGroupConfig {
  lockMs: number
  maxDeliveries: number
  deadLetterTopic: string | undefined
  autoOffsetReset: 'earliest' | 'latest'
  sessionTimeoutMs: number
  inFlightRecordsMax: number
}

export interface ShareGroupOptions {
  /** How long an acquired record stays with its member before it is available again. Default 30,000 ms. */
  lockMs?: number
  /** Deliveries after which a record still not acknowledged is rejected. Default 5, at most 1,000. */
  maxDeliveries?: number
  /** Topic (a sibling directory of this topic's) that receives rejected records. Default: none (dropped). */
  deadLetterTopic?: string
  /** Where a new share group starts on each partition. Default 'earliest'. */
  autoOffsetReset?: 'earliest' | 'latest'
  /** How long a silent member stays in the group. Default 30,000 ms. */
  sessionTimeoutMs?: number
  /** Most offsets in flight (delivered, not yet done) per partition. Default 2,000, at most 100,000. */
  inFlightRecordsMax?: number
}

export const DEFAULT_SHARE_GROUP_OPTIONS: ShareGroupConfig = {
  lockMs: 30_000,
  maxDeliveries: 5,
  deadLetterTopic: undefined,
  autoOffsetReset: 'earliest',
  sessionTimeoutMs: 30_000,
  inFlightRecordsMax: 2_000,
}

const TIME_MS_MAX = 2 ** 31 - 1
const MAX_DELIVERIES_LIMIT = 1_000
const IN_FLIGHT_RECORDS_LIMIT = 100_000

export function resolveShareGroupOptions(options: unknown): ShareGroupConfig {
  if (options === undefined) return { ...DEFAULT_SHARE_GROUP_OPTIONS }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new LogError('INVALID_ARGUMENT', 'share group options must be an object')
  const resolved: Record<string, unknown> = { ...DEFAULT_SHARE_GROUP_OPTIONS }
  for (const [name, value] of Object.entries(options)) {
    if (!(name in DEFAULT_SHARE_GROUP_OPTIONS)) throw new LogError('INVALID_ARGUMENT', `unknown share group option '${name}'`)
    if (value !== undefined) resolved[name] = value
  }
  const config = resolved as unknown as ShareGroupConfig
  checkInteger('lockMs', config.lockMs, 10, TIME_MS_MAX)
  checkInteger('maxDeliveries', config.maxDeliveries, 1, MAX_DELIVERIES_LIMIT)
  checkInteger('sessionTimeoutMs', config.sessionTimeoutMs, 10, TIME_MS_MAX)
  checkInteger('inFlightRecordsMax', config.inFlightRecordsMax, 1, IN_FLIGHT_RECORDS_LIMIT)
  if (config.autoOffsetReset !== 'earliest' && config.autoOffsetReset !== 'latest') {
    throw new LogError('INVALID_ARGUMENT', `autoOffsetReset must be 'earliest' or 'latest', got ${String(config.autoOffsetReset)}`)
  }
  const name = config.deadLetterTopic
  if (name !== undefined && (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(name) || name === '.' || name === '..')) {
    throw new LogError('INVALID_ARGUMENT', `deadLetterTopic must be 1–249 letters, digits, '.', '_' or '-' (not '.' or '..'), got ${JSON.stringify(name)}`)
  }
  return { ...config }
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw new LogError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], got ${String(value)}`)
  }
}

/** Acquired records as flat [partition, offset, deliveryCount] triples. */
export type AcquiredRecords = number[]
/** Records to settle as flat [partition, offset] pairs. */
export type SettleItems = readonly number[]
export type SettleKind = 'ack' | 'release' | 'reject'
export type DeadLetterReason = 'rejected' | 'maxDeliveries'

/** Where rejected records go (the dead-letter topic, opened on first use). */
export interface DeadLetterSink {
  sendBatch(records: ProducerRecord[]): Promise<unknown>
  close(): Promise<void>
}
export type DeadLetterOpener = (name: string) => Promise<DeadLetterSink>

export interface AcquireAnswer {
  records: AcquiredRecords
  /** The coordinator's version when it answered: wait for a newer one before polling again. */
  version: number
}

interface Member {
  lastSeenMs: number
  /** How the partition states name it (never NO_MEMBER, never reused). */
  number: number
}

/** Records of one partition, in ascending offset order, each once. */
interface PartitionPick {
  state: SharePartitionState
  offsets: ArrayLike<number>
}

const NO_TIMER = Infinity

export class ShareCoordinator {
  private readonly members = new Map<string, Member>()
  private readonly listeners = new Set<() => void>()
  private versionValue = 0
  private timer: NodeJS.Timeout | undefined
  private timerAtMs = NO_TIMER
  private readonly sessionTimer: NodeJS.Timeout
  private cursor = 0
  private lastMemberNumber = NO_MEMBER
  private deadLetters: Promise<DeadLetterSink> | undefined
  private readonly settling = new Set<Promise<unknown>>()
  private closed = false

  private constructor(
    readonly groupId: string,
    readonly options: ShareGroupConfig,
    private readonly partitions: readonly Partition[],
    private readonly states: SharePartitionState[],
    private store: ShareStore,
    private readonly openDeadLetters: DeadLetterOpener,
  ) {
    this.sessionTimer = setInterval(() => this.expireSilentMembers(Date.now()), Math.max(10, Math.floor(options.sessionTimeoutMs / 2)))
    this.sessionTimer.unref()
  }

  /** Replays the group's state log in `dir`; records acquired when the last owner stopped are available again. */
  static async open(groupId: string, dir: string, partitions: readonly Partition[], options: ShareGroupConfig, openDeadLetters: DeadLetterOpener): Promise<ShareCoordinator> {
    let states: SharePartitionState[] = []
    const { store, states: stored } = await ShareStore.open(dir, () => states.map((state) => state.snapshot()))
    const resets: ShareStateRecord[] = []
    states = partitions.map((partition, id) => {
      const found = stored.get(id)
      if (found) return found
      const start = options.autoOffsetReset === 'latest' ? partition.highWatermark : partition.startOffset
      if (options.autoOffsetReset === 'latest') resets.push({ kind: SHARE_RECORD_UPDATE, partition: id, startOffset: start, batches: [] })
      return new SharePartitionState(id, start)
    })
    const coordinator = new ShareCoordinator(groupId, options, partitions, states, store, openDeadLetters)
    try {
      await store.append(resets) // 'latest' is fixed once, not re-read at every restart
    } catch (error) {
      await store.close()
      throw error
    }
    coordinator.recover()
    return coordinator
  }

  get version(): number {
    return this.versionValue
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Adds a member (a new id unless one is given). */
  join(memberId?: string): string {
    this.checkOpen()
    const id = memberId ?? `${this.groupId}-${randomUUID()}`
    if (typeof id !== 'string' || id.length === 0 || id.length > 255) throw new LogError('INVALID_ARGUMENT', 'memberId must be a string of 1–255 characters')
    if (this.members.has(id)) throw new LogError('INVALID_ARGUMENT', `member '${id}' is already in share group '${this.groupId}'`)
    this.members.set(id, { lastSeenMs: Date.now(), number: ++this.lastMemberNumber })
    return id
  }

  isMember(memberId: string): boolean {
    return this.members.has(memberId)
  }

  heartbeat(memberId: string): void {
    this.member(memberId).lastSeenMs = Date.now()
  }

  /** Removes a member; what it holds is available again at once (or archived at maxDeliveries). */
  leave(memberId: string): void {
    const member = this.members.get(memberId)
    if (!member) return
    this.members.delete(memberId)
    const held: PartitionPick[] = []
    for (const state of this.states) {
      const offsets: number[] = []
      for (let offset = state.start; offset < state.next; offset++) {
        if (state.stateOf(offset) === SHARE_STATE_ACQUIRED && state.memberOf(offset) === member.number && !state.isSettling(offset)) offsets.push(offset)
      }
      if (offsets.length > 0) held.push({ state, offsets })
    }
    void this.giveBack(held, Date.now()).catch(() => undefined) // a failed dead-letter write leaves them available
  }

  /**
   * Acquires up to `maxRecords` records for `memberId`: redeliveries first, then records never
   * delivered, taking partitions in turn. Resolves once the acquisitions are written to the OS
   * (they survive the process being killed; docs/durability.md, "Share groups").
   */
  async acquire(memberId: string, maxRecords: number): Promise<AcquireAnswer> {
    const member = this.member(memberId)
    member.lastSeenMs = Date.now()
    const version = this.versionValue
    const nowMs = member.lastSeenMs
    const records: AcquiredRecords = []
    const updates: ShareStateRecord[] = []
    const count = this.states.length
    for (let turn = 0; turn < count && records.length < maxRecords * 3; turn++) {
      const state = this.states[(this.cursor + turn) % count]!
      const taken = this.acquireFrom(state, member.number, maxRecords - records.length / 3, nowMs, records)
      if (taken.length > 0) updates.push(this.update(state, taken))
    }
    this.cursor = (this.cursor + 1) % count
    if (records.length === 0) return { records, version }
    this.armTimer(nowMs + this.options.lockMs)
    await this.store.append(updates, false) // written to the OS, not fsynced: docs/durability.md ("Share groups")
    return { records, version }
  }

  /**
   * Acknowledges, releases (available again after `delayMs`) or rejects records `memberId` holds.
   * Every record is checked first (FENCED when the member does not hold it); resolves once durable.
   */
  async settle(memberId: string, kind: SettleKind, items: SettleItems, delayMs = 0): Promise<void> {
    const member = this.member(memberId)
    member.lastSeenMs = Date.now()
    if (kind !== 'ack' && kind !== 'release' && kind !== 'reject') throw new LogError('INVALID_ARGUMENT', `unknown settlement '${String(kind)}'`)
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > TIME_MS_MAX) throw new LogError('INVALID_ARGUMENT', `delayMs must be an integer in [0, ${TIME_MS_MAX}], got ${String(delayMs)}`)
    const picks = this.held(member.number, memberId, items)
    const nowMs = member.lastSeenMs
    if (kind === 'reject') return this.archive(picks, 'rejected')
    if (kind === 'release') return this.giveBack(picks, nowMs, nowMs + delayMs)
    for (const { state, offsets } of picks) for (let i = 0; i < offsets.length; i++) state.acknowledge(offsets[i]!)
    await this.store.append(this.advance(picks))
  }

  /** Calls `listener` whenever records may have become available (not for appends: wait on the partitions). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  expireSilentMembers(nowMs: number): void {
    for (const [memberId, member] of this.members) if (nowMs - member.lastSeenMs > this.options.sessionTimeoutMs) this.leave(memberId)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sessionTimer)
    clearTimeout(this.timer)
    this.members.clear()
    this.notify()
    while (this.settling.size > 0) await Promise.allSettled([...this.settling])
    await this.store.close()
    const sink = await this.deadLetters?.catch(() => undefined)
    await sink?.close()
  }

  // -------------------------------------------------------------------------------------------

  /** Acquires up to `wanted` records of `state` for `member`, appending their triples to `records`; returns their offsets. */
  private acquireFrom(state: SharePartitionState, member: number, wanted: number, nowMs: number, records: AcquiredRecords): number[] {
    const partition = this.partitions[state.partition]!
    if (state.start < partition.startOffset) state.skipTo(partition.startOffset) // retention deleted them
    const lockedUntilMs = nowMs + this.options.lockMs
    const taken: number[] = []
    if (state.hasAvailable) {
      for (let offset = state.start; offset < state.next && taken.length < wanted; offset++) {
        if (state.stateOf(offset) !== SHARE_STATE_AVAILABLE || state.timeOf(offset) > nowMs) continue
        const deliveryCount = Math.min(state.deliveryCountOf(offset) + 1, SHARE_DELIVERY_COUNT_MAX)
        state.set(offset, SHARE_STATE_ACQUIRED, deliveryCount, member, lockedUntilMs)
        records.push(state.partition, offset, deliveryCount)
        taken.push(offset)
      }
    }
    const end = Math.min(partition.highWatermark, state.start + this.options.inFlightRecordsMax)
    while (taken.length < wanted && state.next < end) {
      const offset = state.next
      state.set(offset, SHARE_STATE_ACQUIRED, 1, member, lockedUntilMs)
      records.push(state.partition, offset, 1)
      taken.push(offset)
    }
    return taken
  }

  /**
   * The records of `items` (flat [partition, offset] pairs) that `member` holds, by partition, in
   * offset order, once each; FENCED (nothing changed) if any is not held. Each partition's offsets
   * are sorted as a Float64Array (safe integers are exact there): a native numeric sort, without a
   * comparator call per pair, which was a tenth of the share group's CPU per acknowledged record.
   */
  private held(member: number, memberId: string, items: SettleItems): PartitionPick[] {
    if (!Array.isArray(items) || items.length % 2 !== 0) throw badItems()
    const partitionCount = this.states.length
    let single = -1 // the one partition of every item, or -2 when there are several
    for (let i = 0; i < items.length; i += 2) {
      const partition = items[i]
      if (!Number.isSafeInteger(partition) || !Number.isSafeInteger(items[i + 1])) throw badItems()
      if (single === -1) single = partition!
      else if (single !== partition) single = -2
    }
    for (let i = 0; i < items.length; i += 2) {
      const partition = items[i]!
      if (partition < 0 || partition >= partitionCount) throw new LogError('UNKNOWN_PARTITION', `partition ${String(partition)} does not exist (the topic has ${partitionCount})`)
    }
    const byPartition: Float64Array[] = []
    if (single >= 0) {
      const offsets = new Float64Array(items.length / 2)
      for (let i = 1, at = 0; i < items.length; i += 2) offsets[at++] = items[i]!
      byPartition[single] = offsets
    } else {
      const counts = new Int32Array(partitionCount)
      for (let i = 0; i < items.length; i += 2) counts[items[i]!]!++
      const fill = new Int32Array(partitionCount)
      for (let i = 0; i < items.length; i += 2) {
        const partition = items[i]!
        const offsets = (byPartition[partition] ??= new Float64Array(counts[partition]!))
        offsets[fill[partition]!++] = items[i + 1]!
      }
    }
    const picks: PartitionPick[] = []
    for (let partition = 0; partition < byPartition.length; partition++) {
      const offsets = byPartition[partition]
      if (offsets) picks.push({ state: this.states[partition]!, offsets: this.checkHeld(this.states[partition]!, offsets.sort(), member, memberId) })
    }
    return picks
  }

  /** `sorted` without repeats (the same record twice counts once), each checked to be held by `member`. */
  private checkHeld(state: SharePartitionState, sorted: Float64Array, member: number, memberId: string): Float64Array {
    let kept = 0
    for (let i = 0; i < sorted.length; i++) {
      const offset = sorted[i]!
      if (kept > 0 && sorted[kept - 1] === offset) continue
      if (!state.has(offset) || state.stateOf(offset) !== SHARE_STATE_ACQUIRED || state.memberOf(offset) !== member || state.isSettling(offset)) {
        throw new LogError('FENCED', `member '${memberId}' does not hold record ${state.partition}:${offset} (its lock expired, or it was never delivered to this member)`, { offset })
      }
      sorted[kept++] = offset
    }
    return kept === sorted.length ? sorted : sorted.subarray(0, kept)
  }

  /** Makes records available again (after `availableAtMs`), archiving those delivered maxDeliveries times. */
  private giveBack(picks: readonly PartitionPick[], nowMs: number, availableAtMs = 0): Promise<void> {
    const exhausted: PartitionPick[] = []
    const touched: PartitionPick[] = []
    for (const { state, offsets } of picks) {
      const back: number[] = []
      const spent: number[] = []
      for (let i = 0; i < offsets.length; i++) {
        const offset = offsets[i]!
        const deliveryCount = state.deliveryCountOf(offset)
        if (deliveryCount >= this.options.maxDeliveries) spent.push(offset)
        else {
          state.set(offset, SHARE_STATE_AVAILABLE, deliveryCount, NO_MEMBER, availableAtMs)
          back.push(offset)
        }
      }
      if (back.length > 0) touched.push({ state, offsets: back })
      if (spent.length > 0) exhausted.push({ state, offsets: spent })
    }
    const stored = this.store.append(touched.map(({ state, offsets }) => this.update(state, offsets)))
    if (availableAtMs > nowMs) this.armTimer(availableAtMs)
    if (touched.length > 0) this.notify()
    return Promise.all([stored, this.archive(exhausted, 'maxDeliveries')]).then(() => undefined)
  }

  /**
   * Archives records: marked settling (nobody takes them, the start does not pass them), written to
   * the dead-letter topic, then stored as archived. If the dead-letter write fails they are
   * available again and the caller sees the error. (Retention may move the start past them meanwhile:
   * those are gone either way.)
   */
  private archive(picks: readonly PartitionPick[], reason: DeadLetterReason): Promise<void> {
    if (picks.length === 0) return Promise.resolve()
    for (const { state, offsets } of picks) {
      for (let i = 0; i < offsets.length; i++) {
        const offset = offsets[i]!
        state.set(offset, SHARE_STATE_ARCHIVED, state.deliveryCountOf(offset), NO_MEMBER, state.timeOf(offset), true)
      }
    }
    const work = this.deadLetter(picks, reason).then(
      () => {
        for (const { state, offsets } of picks) {
          for (let i = 0; i < offsets.length; i++) {
            const offset = offsets[i]!
            if (state.has(offset)) state.set(offset, SHARE_STATE_ARCHIVED, state.deliveryCountOf(offset), NO_MEMBER, state.timeOf(offset))
          }
        }
        return this.store.append(this.advance(picks))
      },
      (error: unknown) => {
        for (const { state, offsets } of picks) {
          for (let i = 0; i < offsets.length; i++) {
            const offset = offsets[i]!
            if (state.has(offset)) state.set(offset, SHARE_STATE_AVAILABLE, state.deliveryCountOf(offset), NO_MEMBER, 0)
          }
        }
        this.notify()
        throw error
      },
    )
    this.settling.add(work)
    void work.catch(() => undefined).finally(() => this.settling.delete(work))
    return work
  }

  private async deadLetter(picks: readonly PartitionPick[], reason: DeadLetterReason): Promise<void> {
    const name = this.options.deadLetterTopic
    if (name === undefined) return
    const records: ProducerRecord[] = []
    for (const { state, offsets } of picks) {
      for (let i = 0; i < offsets.length; i++) {
        const record = this.deadLetterRecord(state, offsets[i]!, reason)
        if (record) records.push(record)
      }
    }
    if (records.length === 0) return
    if (!this.deadLetters) {
      this.deadLetters = this.openDeadLetters(name)
      this.deadLetters.catch(() => (this.deadLetters = undefined))
    }
    await (await this.deadLetters).sendBatch(records)
  }

  /** The dead-letter copy of one record (none when retention deleted it: nothing left to keep). */
  private deadLetterRecord(state: SharePartitionState, offset: number, reason: DeadLetterReason): ProducerRecord | undefined {
    const partition = this.partitions[state.partition]!
    if (offset < partition.startOffset || !state.has(offset)) return undefined
    const record = partition.read(offset)
    const headers: Record<string, Uint8Array | string> = { ...record.headers }
    headers['seglog.dlq.topic'] = partition.topic
    headers['seglog.dlq.partition'] = String(state.partition)
    headers['seglog.dlq.offset'] = String(offset)
    headers['seglog.dlq.deliveries'] = String(state.deliveryCountOf(offset))
    headers['seglog.dlq.reason'] = reason
    return { key: record.key, value: record.value, headers, timestamp: record.timestamp }
  }

  /** Moves the starts of `touched` partitions over their done prefixes; the records that store it. */
  private advance(touched: readonly PartitionPick[]): ShareStateRecord[] {
    let moved = false
    const updates: ShareStateRecord[] = []
    for (const { state, offsets } of touched) {
      if (state.advance()) moved = true
      updates.push(this.update(state, offsets))
    }
    if (moved) this.notify() // the window has room for records never delivered
    return updates
  }

  private update(state: SharePartitionState, offsets: ArrayLike<number>): ShareStateRecord {
    return { kind: SHARE_RECORD_UPDATE, partition: state.partition, startOffset: state.start, batches: toBatches(state, offsets) }
  }

  /** After replay: what was acquired when the previous owner stopped is available again (or archived). */
  private recover(): void {
    const acquired: PartitionPick[] = []
    let delayed = NO_TIMER
    for (const state of this.states) {
      const offsets: number[] = []
      for (let offset = state.start; offset < state.next; offset++) {
        const stateNow = state.stateOf(offset)
        if (stateNow === SHARE_STATE_ACQUIRED) offsets.push(offset)
        else if (stateNow === SHARE_STATE_AVAILABLE && state.timeOf(offset) > 0) delayed = Math.min(delayed, state.timeOf(offset))
      }
      if (offsets.length > 0) acquired.push({ state, offsets })
    }
    if (delayed !== NO_TIMER) this.armTimer(delayed)
    void this.giveBack(acquired, Date.now()).catch(() => undefined) // a failed dead-letter write leaves them available
  }

  /** Arms the one timer for `atMs` unless it fires sooner already. */
  private armTimer(atMs: number): void {
    if (this.closed || atMs >= this.timerAtMs) return
    clearTimeout(this.timer)
    this.timerAtMs = atMs
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, atMs - Date.now()) + 1)
    this.timer.unref()
  }

  /** Expires locks that are due, announces delayed releases that are due, and re-arms for the next deadline. */
  private onTimer(): void {
    this.timerAtMs = NO_TIMER
    if (this.closed) return
    const nowMs = Date.now()
    const expired: PartitionPick[] = []
    let due = false
    let next = NO_TIMER
    for (const state of this.states) {
      const offsets: number[] = []
      for (let offset = state.start; offset < state.next; offset++) {
        if (!state.isTimed(offset)) continue
        const timeMs = state.timeOf(offset)
        if (timeMs > nowMs) next = Math.min(next, timeMs)
        else if (state.stateOf(offset) === SHARE_STATE_ACQUIRED) offsets.push(offset)
        else {
          state.clearDelay(offset) // its delay passed: plainly available now
          due = true
        }
      }
      if (offsets.length > 0) expired.push({ state, offsets })
    }
    if (next !== NO_TIMER) this.armTimer(next)
    if (due) this.notify()
    void this.giveBack(expired, nowMs).catch(() => undefined)
  }

  private notify(): void {
    this.versionValue++
    for (const listener of [...this.listeners]) listener()
  }

  private member(memberId: string): Member {
    this.checkOpen()
    const member = this.members.get(memberId)
    if (!member) throw new LogError('UNKNOWN_MEMBER', `member '${memberId}' is not in share group '${this.groupId}' (it left or was silent too long)`)
    return member
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `share group '${this.groupId}' is closed`)
  }
}

function badItems(): LogError {
  return new LogError('INVALID_ARGUMENT', 'records to settle are [partition, offset] pairs of integers')
}
