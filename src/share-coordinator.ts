/**
 * ShareCoordinator: one share group of one topic (queue semantics, like Kafka's KIP-932), kept by
 * the topic's owner next to its consumer-group coordinators. Members take records from the same
 * partitions at once; each record is acquired by one member at a time under a lock of `lockMs`.
 *
 * Invariants:
 * - An acquisition (its delivery count) is durable before the record is handed out, so a record
 *   that crashes its consumer still counts toward `maxDeliveries`.
 * - A record whose lock expires, that is released, or whose member leaves is available again,
 *   unless it was delivered `maxDeliveries` times: then it is archived (dead-lettered).
 * - An archived record reaches the dead-letter topic before its archived state is stored.
 * - Waiting is event-driven: `version` grows (and listeners run) whenever records may have become
 *   available other than by an append; one timer is armed, for the earliest lock deadline or
 *   delayed release.
 *
 * Speaks plain data ([partition, offset, deliveryCount] triples) so that the owner connection can
 * carry the same calls for members in other threads and processes (share-link.ts).
 */
import { randomUUID } from 'node:crypto'
import { LogError } from './errors.js'
import { SHARE_DELIVERY_COUNT_MAX, SHARE_RECORD_UPDATE, SHARE_STATE_ACKED, SHARE_STATE_ACQUIRED, SHARE_STATE_ARCHIVED, SHARE_STATE_AVAILABLE, type ShareStateRecord } from './format.js'
import type { Partition } from './partition.js'
import type { ProducerRecord } from './producer-record.js'
import { type Delivery, SharePartitionState, toBatches } from './share-state.js'
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

/** [partition, offset, deliveryCount] */
export type Acquired = [number, number, number]
export type SettleKind = 'ack' | 'release' | 'reject'
export type DeadLetterReason = 'rejected' | 'maxDeliveries'

/** Where rejected records go (the dead-letter topic, opened on first use). */
export interface DeadLetterSink {
  sendBatch(records: ProducerRecord[]): Promise<unknown>
  close(): Promise<void>
}
export type DeadLetterOpener = (name: string) => Promise<DeadLetterSink>

export interface AcquireAnswer {
  records: Acquired[]
  /** The coordinator's version when it answered: wait for a newer one before polling again. */
  version: number
}

interface Member {
  lastSeenMs: number
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
    this.members.set(id, { lastSeenMs: Date.now() })
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
    if (!this.members.delete(memberId)) return
    const nowMs = Date.now()
    const expired: [SharePartitionState, number][] = []
    for (const state of this.states) for (const [offset, delivery] of state.window()) if (delivery.state === SHARE_STATE_ACQUIRED && delivery.memberId === memberId && !delivery.settling) expired.push([state, offset])
    this.giveBack(expired, nowMs)
  }

  /**
   * Acquires up to `maxRecords` records for `memberId`: redeliveries first, then records never
   * delivered, taking partitions in turn. Resolves once the acquisitions are durable.
   */
  async acquire(memberId: string, maxRecords: number): Promise<AcquireAnswer> {
    this.heartbeat(memberId)
    const version = this.versionValue
    const nowMs = Date.now()
    const records: Acquired[] = []
    const updates: ShareStateRecord[] = []
    const count = this.states.length
    for (let turn = 0; turn < count && records.length < maxRecords; turn++) {
      const state = this.states[(this.cursor + turn) % count]!
      const taken = this.acquireFrom(state, memberId, maxRecords - records.length, nowMs, records)
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
  async settle(memberId: string, kind: SettleKind, items: readonly [number, number][], delayMs = 0): Promise<void> {
    this.heartbeat(memberId)
    if (kind !== 'ack' && kind !== 'release' && kind !== 'reject') throw new LogError('INVALID_ARGUMENT', `unknown settlement '${String(kind)}'`)
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > TIME_MS_MAX) throw new LogError('INVALID_ARGUMENT', `delayMs must be an integer in [0, ${TIME_MS_MAX}], got ${String(delayMs)}`)
    const chosen = this.held(memberId, items)
    const nowMs = Date.now()
    if (kind === 'reject') return this.archive(chosen, 'rejected')
    if (kind === 'release') return this.giveBack(chosen, nowMs, nowMs + delayMs)
    const touched = new Map<SharePartitionState, number[]>()
    for (const [state, offset] of chosen) {
      const delivery = state.get(offset)!
      delivery.state = SHARE_STATE_ACKED // in place: acquired → acked moves no counter of the state
      delivery.memberId = undefined
      push(touched, state, offset)
    }
    await this.store.append(this.advance(touched))
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

  private acquireFrom(state: SharePartitionState, memberId: string, wanted: number, nowMs: number, records: Acquired[]): number[] {
    const partition = this.partitions[state.partition]!
    if (state.start < partition.startOffset) state.skipTo(partition.startOffset) // retention deleted them
    const taken: number[] = []
    const take = (offset: number, deliveryCount: number): void => {
      state.put(offset, { state: SHARE_STATE_ACQUIRED, deliveryCount, memberId, timeMs: nowMs + this.options.lockMs, settling: false })
      records.push([state.partition, offset, deliveryCount])
      taken.push(offset)
    }
    if (state.hasAvailable) {
      for (const [offset, delivery] of state.window()) {
        if (taken.length >= wanted) break
        if (delivery.state === SHARE_STATE_AVAILABLE && delivery.timeMs <= nowMs) take(offset, Math.min(delivery.deliveryCount + 1, SHARE_DELIVERY_COUNT_MAX))
      }
    }
    const end = Math.min(partition.highWatermark, state.start + this.options.inFlightRecordsMax)
    while (taken.length < wanted && state.next < end) take(state.next, 1)
    return taken
  }

  /** The deliveries of `items` that `memberId` holds, in order, once each; FENCED (nothing changed) if any is not held. */
  private held(memberId: string, items: readonly [number, number][]): [SharePartitionState, number][] {
    const byPartition = new Map<number, number[]>()
    for (const item of items) {
      if (!Array.isArray(item) || item.length !== 2 || !Number.isSafeInteger(item[0]) || !Number.isSafeInteger(item[1])) {
        throw new LogError('INVALID_ARGUMENT', 'records to settle are [partition, offset] pairs of integers')
      }
      const offsets = byPartition.get(item[0])
      if (offsets) offsets.push(item[1])
      else byPartition.set(item[0], [item[1]])
    }
    // Checked in (partition, offset) order. Each partition's offsets are sorted as a Float64Array
    // (safe integers are exact there): a native numeric sort, without a comparator call per pair,
    // which was a tenth of the share group's CPU per acknowledged record.
    const chosen: [SharePartitionState, number][] = []
    for (const partition of [...byPartition.keys()].sort((a, b) => a - b)) {
      const state = this.states[partition]
      if (!state) throw new LogError('UNKNOWN_PARTITION', `partition ${String(partition)} does not exist (the topic has ${this.states.length})`)
      let previous: number | undefined
      for (const offset of Float64Array.from(byPartition.get(partition)!).sort()) {
        if (offset === previous) continue // the same record twice counts once
        const delivery = state.get(offset)
        if (!delivery || delivery.state !== SHARE_STATE_ACQUIRED || delivery.memberId !== memberId || delivery.settling) {
          throw new LogError('FENCED', `member '${memberId}' does not hold record ${partition}:${offset} (its lock expired, or it was never delivered to this member)`, { offset })
        }
        chosen.push([state, offset])
        previous = offset
      }
    }
    return chosen
  }

  /** Makes records available again (after `availableAtMs`), archiving those delivered maxDeliveries times. */
  private giveBack(items: readonly [SharePartitionState, number][], nowMs: number, availableAtMs = 0): Promise<void> {
    const exhausted: [SharePartitionState, number][] = []
    const touched = new Map<SharePartitionState, number[]>()
    for (const [state, offset] of items) {
      const delivery = state.get(offset)!
      if (delivery.deliveryCount >= this.options.maxDeliveries) exhausted.push([state, offset])
      else {
        state.put(offset, { ...delivery, state: SHARE_STATE_AVAILABLE, memberId: undefined, timeMs: availableAtMs })
        push(touched, state, offset)
      }
    }
    const stored = this.store.append([...touched].map(([state, offsets]) => this.update(state, offsets)))
    if (availableAtMs > nowMs) this.armTimer(availableAtMs)
    if (touched.size > 0) this.notify()
    return Promise.all([stored, this.archive(exhausted, 'maxDeliveries')]).then(() => undefined)
  }

  /**
   * Archives records: marked settling (nobody takes them, the start does not pass them), written to
   * the dead-letter topic, then stored as archived. If the dead-letter write fails they are
   * available again and the caller sees the error.
   */
  private archive(items: readonly [SharePartitionState, number][], reason: DeadLetterReason): Promise<void> {
    if (items.length === 0) return Promise.resolve()
    for (const [state, offset] of items) {
      const delivery = state.get(offset)!
      state.put(offset, { ...delivery, state: SHARE_STATE_ARCHIVED, memberId: undefined, settling: true })
    }
    const work = this.deadLetter(items, reason).then(
      () => {
        const touched = new Map<SharePartitionState, number[]>()
        for (const [state, offset] of items) {
          state.put(offset, { ...state.get(offset)!, settling: false })
          push(touched, state, offset)
        }
        return this.store.append(this.advance(touched))
      },
      (error: unknown) => {
        for (const [state, offset] of items) state.put(offset, { ...state.get(offset)!, state: SHARE_STATE_AVAILABLE, settling: false, timeMs: 0 })
        this.notify()
        throw error
      },
    )
    this.settling.add(work)
    void work.catch(() => undefined).finally(() => this.settling.delete(work))
    return work
  }

  private async deadLetter(items: readonly [SharePartitionState, number][], reason: DeadLetterReason): Promise<void> {
    const name = this.options.deadLetterTopic
    if (name === undefined) return
    const records: ProducerRecord[] = []
    for (const [state, offset] of items) {
      const partition = this.partitions[state.partition]!
      if (offset < partition.startOffset) continue // retention deleted it: nothing left to keep
      const record = partition.read(offset)
      const headers: Record<string, Uint8Array | string> = { ...record.headers }
      headers['seglog.dlq.topic'] = partition.topic
      headers['seglog.dlq.partition'] = String(state.partition)
      headers['seglog.dlq.offset'] = String(offset)
      headers['seglog.dlq.deliveries'] = String(state.get(offset)!.deliveryCount)
      headers['seglog.dlq.reason'] = reason
      records.push({ key: record.key, value: record.value, headers, timestamp: record.timestamp })
    }
    if (records.length === 0) return
    if (!this.deadLetters) {
      this.deadLetters = this.openDeadLetters(name)
      this.deadLetters.catch(() => (this.deadLetters = undefined))
    }
    await (await this.deadLetters).sendBatch(records)
  }

  /** Moves the starts of `touched` partitions over their done prefixes; the records that store it. */
  private advance(touched: Map<SharePartitionState, number[]>): ShareStateRecord[] {
    let moved = false
    const updates: ShareStateRecord[] = []
    for (const [state, offsets] of touched) {
      if (state.advance()) moved = true
      updates.push(this.update(state, offsets))
    }
    if (moved) this.notify() // the window has room for records never delivered
    return updates
  }

  private update(state: SharePartitionState, offsets: readonly number[]): ShareStateRecord {
    return { kind: SHARE_RECORD_UPDATE, partition: state.partition, startOffset: state.start, batches: toBatches(state, offsets) }
  }

  /** After replay: what was acquired when the previous owner stopped is available again (or archived). */
  private recover(): void {
    const acquired: [SharePartitionState, number][] = []
    let delayed = NO_TIMER
    for (const state of this.states) {
      for (const [offset, delivery] of state.window()) {
        if (delivery.state === SHARE_STATE_ACQUIRED) acquired.push([state, offset])
        else if (delivery.state === SHARE_STATE_AVAILABLE && delivery.timeMs > 0) delayed = Math.min(delayed, delivery.timeMs)
      }
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
    const expired: [SharePartitionState, number][] = []
    let due = false
    let next = NO_TIMER
    for (const state of this.states) {
      for (const [offset, delivery] of state.window()) {
        if (!isTimed(delivery)) continue
        if (delivery.timeMs > nowMs) next = Math.min(next, delivery.timeMs)
        else if (delivery.state === SHARE_STATE_ACQUIRED) expired.push([state, offset])
        else {
          state.put(offset, { ...delivery, timeMs: 0 }) // its delay passed: plainly available now
          due = true
        }
      }
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

function isTimed(delivery: Delivery): boolean {
  return (delivery.state === SHARE_STATE_ACQUIRED && !delivery.settling) || (delivery.state === SHARE_STATE_AVAILABLE && delivery.timeMs > 0)
}

function push<K>(map: Map<K, number[]>, key: K, value: number): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}
