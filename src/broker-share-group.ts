/**
 * BrokerShareGroup: a share group over several topics of a Broker (a list or a RegExp). A share
 * group has no assignment to spread (every member takes records from every partition), so it is the
 * topics' own share groups under one group id: a member is one ShareConsumer per subscribed topic,
 * all with one member id, and polls them in turn. Everything else comes from the topics' share
 * groups as it is: locks, delivery counts, dead letters, durability, members in other threads and
 * processes (each topic's coordinator lives with that topic's owner). Topics created later that match
 * are found within a second (subscription.ts) and every member joins their group.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { TopicSource } from './broker-group.js'
import { LogError } from './errors.js'
import { checkGroupId } from './offset-store.js'
import { type ShareConsumedRecord, type SharePollOptions, ShareConsumer, checkPollOptions, iterateAcking } from './share-consumer.js'
import { type ShareGroupOptions, resolveShareGroupOptions } from './share-coordinator.js'
import type { ShareGroup } from './share-group.js'
import { subscription, watchTopics } from './subscription.js'

export interface BrokerShareGroupOptions extends ShareGroupOptions {
  /** The topics: a list of names, or a pattern matched against every topic's name (now and later). */
  topics: readonly string[] | RegExp
}

/** A record to settle: what poll returned, or any `{ topic, partition, offset }`. */
export type BrokerShareRecordRef = Pick<ShareConsumedRecord, 'topic' | 'partition' | 'offset'>


export class BrokerShareGroup {
  /** Each subscribed topic's own share group, by topic name. */
  private readonly groups = new Map<string, ShareGroup>()
  private readonly members = new Set<BrokerShareConsumer>()
  private readonly matches: (name: string) => boolean
  private readonly shareOptions: ShareGroupOptions
  private readonly opened: Promise<void>
  private rescanning: Promise<void> | undefined
  private readonly stopWatching: () => void
  private closed = false

  constructor(
    readonly groupId: string,
    private readonly source: TopicSource,
    options: BrokerShareGroupOptions,
  ) {
    checkGroupId(groupId)
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'share group options must be an object')
    const { topics, ...shareOptions } = options
    this.matches = subscription(topics)
    resolveShareGroupOptions(shareOptions) // refuse bad options now, not at the first topic
    this.shareOptions = shareOptions
    this.opened = this.rescan()
    this.opened.catch(() => undefined) // reported by join
    this.stopWatching = watchTopics(source.dir, () => void this.rescan().catch(() => undefined))
  }

  /** Joins every subscribed topic's share group under one member id (a new one unless given). */
  async join(options: { memberId?: string } = {}): Promise<BrokerShareConsumer> {
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'join options must be an object')
    this.checkOpen()
    await this.opened
    const memberId = options.memberId ?? `${this.groupId}-${randomUUID()}`
    const member = new BrokerShareConsumer(memberId, () => this.members.delete(member))
    try {
      for (const [topic, group] of this.groups) member.add(topic, await group.join({ memberId }))
    } catch (error) {
      await member.close()
      throw error
    }
    this.members.add(member)
    return member
  }

  /** The subscribed topics' names, in the order they were found. */
  async subscribed(): Promise<string[]> {
    await this.opened
    return [...this.groups.keys()]
  }

  /** Looks for new matching topics now (also done by itself within a second). */
  rescan(): Promise<void> {
    if (!this.rescanning) this.rescanning = this.findTopics().finally(() => (this.rescanning = undefined))
    return this.rescanning
  }

  /** Closes the members joined through this handle (what they hold goes back to the others). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopWatching()
    await this.rescanning?.catch(() => undefined)
    await Promise.all([...this.members].map((member) => member.close()))
  }

  private async findTopics(): Promise<void> {
    for (const name of this.source.topics()) {
      if (this.closed || this.groups.has(name) || !this.matches(name)) continue
      const group = (await this.source.topic(name)).shareGroup(this.groupId, this.shareOptions)
      this.groups.set(name, group)
      for (const member of this.members) member.add(name, await group.join({ memberId: member.memberId }))
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `share group '${this.groupId}' is closed`)
  }
}

/** A member of a BrokerShareGroup: one share member per subscribed topic, polled in turn. */
export class BrokerShareConsumer {
  private readonly byTopic = new Map<string, ShareConsumer>()
  private readonly added = new Set<() => void>()
  private nextTurn = 0
  private closed = false

  constructor(
    readonly memberId: string,
    private readonly onClose: () => void,
  ) {}

  /** @internal A topic joined the subscription: its share member polls with the others from now on. */
  add(topic: string, member: ShareConsumer): void {
    if (this.closed) {
      void member.close()
      return
    }
    this.byTopic.set(topic, member)
    for (const wake of [...this.added]) wake()
  }

  /** The topics this member takes records from. */
  get topics(): string[] {
    return [...this.byTopic.keys()]
  }

  /** Up to `maxRecords` records from the subscribed topics (a different topic first each call), waiting up to `timeoutMs` for some. */
  async poll(options: SharePollOptions = {}): Promise<ShareConsumedRecord[]> {
    const { maxRecords, timeoutMs } = checkPollOptions(options)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      this.checkOpen()
      const members = [...this.byTopic.values()]
      const snapshots = members.map((member) => member.workSnapshot()) // before asking: nothing that arrives after is missed
      const records: ShareConsumedRecord[] = []
      for (let turn = 0; turn < members.length && records.length < maxRecords; turn++) {
        const member = members[(this.nextTurn + turn) % members.length]!
        records.push(...(await member.poll({ maxRecords: maxRecords - records.length, timeoutMs: 0 })))
      }
      this.nextTurn = members.length === 0 ? 0 : (this.nextTurn + 1) % members.length
      const remainingMs = deadline - Date.now()
      if (records.length > 0 || remainingMs <= 0) return records
      await this.waitForWork(members, snapshots, remainingMs)
    }
  }

  /** Done: never delivered again. Resolves once durable; FENCED if this member does not hold one. */
  ack(records: BrokerShareRecordRef | readonly BrokerShareRecordRef[]): Promise<void> {
    return this.settle(records, (member, refs) => member.ack(refs))
  }

  /** Give back: delivered again (to any member) after `delayMs`. */
  release(records: BrokerShareRecordRef | readonly BrokerShareRecordRef[], options: { delayMs?: number } = {}): Promise<void> {
    return this.settle(records, (member, refs) => member.release(refs, options))
  }

  /** Give up: written to the deadLetterTopic when set, never delivered again. */
  reject(records: BrokerShareRecordRef | readonly BrokerShareRecordRef[]): Promise<void> {
    return this.settle(records, (member, refs) => member.reject(refs))
  }

  /** Records one at a time; each is acked when the loop asks for the next one; break or throw releases the rest. */
  [Symbol.asyncIterator](): AsyncGenerator<ShareConsumedRecord, void, undefined> {
    return iterateAcking<ShareConsumedRecord>(this, () => !this.closed)
  }

  /** Leaves every topic's share group; what it holds goes back to the others at once. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const wake of [...this.added]) wake()
    await Promise.all([...this.byTopic.values()].map((member) => member.close()))
    this.onClose()
  }

  get isClosed(): boolean {
    return this.closed
  }

  private async waitForWork(members: ShareConsumer[], snapshots: { version: number; ends: number[] }[], timeoutMs: number): Promise<void> {
    const stop = new AbortController()
    let wake: (() => void) | undefined
    const waits: Promise<unknown>[] = members.map((member, i) => member.waitForWork(snapshots[i]!, timeoutMs, stop.signal))
    waits.push(new Promise<void>((resolve) => this.added.add((wake = resolve)))) // a new topic may have records
    if (members.length === 0) waits.push(sleep(timeoutMs, undefined, { signal: stop.signal }).catch(() => undefined))
    try {
      await Promise.race(waits)
    } finally {
      stop.abort()
      if (wake) this.added.delete(wake)
    }
  }

  private async settle(records: BrokerShareRecordRef | readonly BrokerShareRecordRef[], action: (member: ShareConsumer, refs: BrokerShareRecordRef[]) => Promise<void>): Promise<void> {
    this.checkOpen()
    const list = Array.isArray(records) ? (records as readonly BrokerShareRecordRef[]) : [records as BrokerShareRecordRef]
    const byTopic = new Map<ShareConsumer, BrokerShareRecordRef[]>()
    for (const record of list) {
      const member = record !== null && typeof record === 'object' ? this.byTopic.get(record.topic) : undefined
      if (!member) throw new LogError('UNKNOWN_PARTITION', `topic '${String(record?.topic)}' is not subscribed by this member`)
      const refs = byTopic.get(member)
      if (refs) refs.push(record)
      else byTopic.set(member, [record])
    }
    await Promise.all([...byTopic].map(([member, refs]) => action(member, refs)))
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `share member '${this.memberId}' is closed`)
  }
}
