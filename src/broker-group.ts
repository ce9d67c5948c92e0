/**
 * BrokerConsumerGroup: a consumer group over several topics of a Broker, named by a list or a
 * RegExp. Its coordinator shares out *slots*, one per (topic, partition) (broker-group-slots.ts); a
 * topic created later that matches the subscription is found within a second (subscription.ts: a
 * directory watch, and a 1 s rescan as a fallback): its partitions become new slots and the group
 * rebalances, without restarting the members.
 *
 * Members may live in any thread or process that opens the broker directory. The first handle of
 * the group takes the group's lock (`@groups/<id>/LOCK`) and becomes its owner: it keeps the
 * coordinator and the offsets log, looks for new topics, and serves the other handles on a local
 * socket (broker-group-owner.ts); every later handle forwards its members' calls there and reads
 * the records from the topics itself. When the owner dies, a forwarder takes the lock and its place
 * (members rejoin at the committed offsets); when it closes, it hands over gracefully.
 */
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BrokerConsumer } from './broker-consumer.js'
import { BrokerGroupOwner } from './broker-group-owner.js'
import { SlotGatedLink } from './broker-group-link.js'
import { SlotTable, type TopicPartition, type TopicSource } from './broker-group-slots.js'
import { type ConsumerGroupOptions, type PartitionLag, resolveGroupOptions } from './consumer-group.js'
import { Consumer } from './consumer.js'
import { LogError, ioError, isLogError } from './errors.js'
import { GroupCoordinator, type GroupOptions } from './group-coordinator.js'
import { type GroupLink, LocalGroupLink, SwitchableGroupLink } from './group-link.js'
import type { DirectoryLock } from './lock.js'
import { OffsetStore, checkGroupId } from './offset-store.js'
import { OwnerClient, RemoteGroupLink, RetryElsewhere, ownerAddress } from './owner-client.js'
import { subscription, subscriptionKey, watchTopics } from './subscription.js'
import { guardAsync, tryLock } from './topic-files.js'

export type { TopicPartition, TopicSource } from './broker-group-slots.js'
export { BrokerConsumer } from './broker-consumer.js'

export interface BrokerGroupOptions extends ConsumerGroupOptions {
  /** The topics: a list of names, or a pattern matched against every topic's name (now and later). */
  topics: readonly string[] | RegExp
}

export const GROUPS_DIR = '@groups'
/** How long opening (or taking over after the owner died) keeps trying before it gives up. */
const OWNER_WAIT_MS = 10_000
const OWNER_RETRY_MS = 5

type Role =
  | { kind: 'owner'; lock: DirectoryLock; owner: BrokerGroupOwner }
  | { kind: 'forwarder'; client: OwnerClient; link: RemoteGroupLink }
  | { kind: 'switching' }
  | { kind: 'failed'; error: LogError }

export class BrokerConsumerGroup {
  private readonly table: SlotTable
  private readonly dir: string
  private readonly matches: (name: string) => boolean
  private readonly options: GroupOptions
  private readonly key: string
  private role: Role = { kind: 'switching' }
  private roleWaiters: (() => void)[] = []
  private readonly opened: Promise<SlotGatedLink>
  /** The members' link to the current owner (set once the first role is found). */
  private switchable: SwitchableGroupLink | undefined
  private rescanning: Promise<void> | undefined
  private stopWatching: (() => void) | undefined
  private closed = false

  constructor(
    readonly groupId: string,
    private readonly source: TopicSource,
    options: BrokerGroupOptions,
  ) {
    checkGroupId(groupId)
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'group options must be an object')
    const { topics, ...groupOptions } = options
    this.matches = subscription(topics)
    this.options = resolveGroupOptions(groupOptions)
    this.key = JSON.stringify({ topics: subscriptionKey(topics), options: this.options })
    this.dir = path.join(source.dir, GROUPS_DIR, groupId)
    this.table = new SlotTable(this.dir, source, groupId)
    this.opened = this.open()
    this.opened.catch(() => undefined) // reported by the calls that wait for it
  }

  /** Joins as a new member (or with the given id). */
  async join(options: { memberId?: string } = {}): Promise<BrokerConsumer> {
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'join options must be an object')
    const link = await this.ready()
    const memberId = await link.join(options.memberId)
    return new BrokerConsumer(new Consumer(memberId, link, this.table.readers, (record) => this.table.slotOf(record.topic, record.partition)), this.table)
  }

  /** @internal Settles once the handle found its role (rejects when it could not open). */
  get opening(): Promise<unknown> {
    return this.opened
  }

  /** Whether this handle keeps the group's state (and serves the group's other handles). */
  get isOwner(): boolean {
    return this.role.kind === 'owner'
  }

  /** The committed offset (the next offset to read) of one topic's partition, or undefined. */
  async committed(topic: string, partition: number): Promise<number | undefined> {
    const info = await (await this.ready()).info()
    return info.committed[this.table.slotOf(topic, partition)]
  }

  /** Per subscribed partition: how far the committed offset is behind the end. */
  async lag(): Promise<(PartitionLag & { topic: string })[]> {
    const info = await (await this.ready()).info()
    return this.table.slots.slice(0, info.committed.length).map(({ topic, partition }, slot) => {
      const reader = this.table.readers[slot]!
      const committed = info.committed[slot]
      const endOffset = reader.highWatermark
      // A deleted topic's partition reads as empty: no lag, whatever was committed on it.
      return { topic, partition, committed, endOffset, lag: Math.max(0, endOffset - Math.max(committed ?? reader.startOffset, reader.startOffset)) }
    })
  }

  /** The topics' partitions the group shares now, in slot order. */
  async subscribed(): Promise<TopicPartition[]> {
    await (await this.ready()).info()
    return this.table.slots.map((slot) => ({ ...slot }))
  }

  async generation(): Promise<number> {
    return (await (await this.ready()).info()).generation
  }

  async members(): Promise<{ memberId: string; assignment: TopicPartition[] }[]> {
    const info = await (await this.ready()).info()
    return info.members.map(({ memberId, assignment }) => ({ memberId, assignment: assignment.map((slot) => ({ ...this.table.slots[slot]! })) }))
  }

  /** Looks for new matching topics now (also done by itself within a second, by the group's owner). */
  rescan(): Promise<void> {
    if (!this.rescanning) this.rescanning = this.findTopics().finally(() => (this.rescanning = undefined))
    return this.rescanning
  }

  /** Closes the members joined through this handle; an owner first hands the group over to the other handles. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopWatching?.()
    await this.opened.catch(() => undefined)
    await this.rescanning?.catch(() => undefined)
    const role = this.role
    this.setRole({ kind: 'failed', error: new LogError('LOG_CLOSED', `consumer group '${this.groupId}' is closed`) })
    if (role.kind === 'owner') {
      await role.owner.close()
      role.lock.release()
    }
    if (role.kind === 'forwarder') {
      role.client.close()
      role.link.close()
    }
  }

  // -------------------------------------------------------------------------------------------

  private async ready(): Promise<SlotGatedLink> {
    if (this.closed) throw new LogError('LOG_CLOSED', `consumer group '${this.groupId}' is closed`)
    return this.opened
  }

  private async open(): Promise<SlotGatedLink> {
    try {
      fs.mkdirSync(this.dir, { recursive: true })
    } catch (error) {
      throw ioError('could not create the group directory', error, this.dir)
    }
    const role = await this.findRole()
    this.switchable = new SwitchableGroupLink(this.innerLink(role))
    this.setRole(role)
    this.watchConnection(role)
    return new SlotGatedLink(this.switchable, this.table, () => this.reconnected())
  }

  /** Becomes the owner if the group's lock is free, else connects to the owner; retried until OWNER_WAIT_MS. */
  private async findRole(): Promise<Role & { kind: 'owner' | 'forwarder' }> {
    const deadline = Date.now() + OWNER_WAIT_MS
    let lastError: unknown
    while (!this.closed) {
      try {
        const lock = tryLock(this.dir)
        if (lock) return await guardAsync(lock, () => this.becomeOwner(lock))
        const forwarder = await this.connect()
        if (forwarder) return forwarder
      } catch (error) {
        if (isLogError(error, 'INVALID_ARGUMENT') || isLogError(error, 'CORRUPT_FILE')) throw error
        lastError = error
      }
      if (Date.now() > deadline) break
      await sleep(OWNER_RETRY_MS)
    }
    if (this.closed) throw new LogError('LOG_CLOSED', `consumer group '${this.groupId}' is closed`)
    throw new LogError('LOCKED', `consumer group '${this.groupId}' is held by an owner that does not answer`, { cause: lastError, path: this.dir })
  }

  private async becomeOwner(lock: DirectoryLock): Promise<Role & { kind: 'owner' }> {
    await this.table.load()
    const offsets = await OffsetStore.open(path.join(this.dir, 'offsets'))
    const coordinator = new GroupCoordinator(this.groupId, this.table.slots.length, this.options, offsets, (slot) => this.table.readers[slot]!.highWatermark)
    const owner = new BrokerGroupOwner(coordinator, this.key, () => this.rescan())
    try {
      const added = await this.table.addTopics(this.matches, () => this.closed)
      if (added > 0) coordinator.addPartitions(added)
      await owner.listen(ownerAddress(this.dir))
    } catch (error) {
      await owner.close()
      throw error
    }
    this.stopWatching?.()
    this.stopWatching = watchTopics(this.source.dir, () => void this.rescan().catch(() => undefined))
    return { kind: 'owner', lock, owner }
  }

  /** A connection to the group's owner, or undefined when nobody answers (it is starting or just died). */
  private async connect(): Promise<(Role & { kind: 'forwarder' }) | undefined> {
    let client: OwnerClient
    try {
      client = await OwnerClient.connect(ownerAddress(this.dir), {
        ends: () => undefined,
        group: (_groupId, states, closed) => {
          if (this.role.kind === 'forwarder' && this.role.client === client) this.role.link.receiveStates(states, closed)
        },
        lost: () => this.ownerLost(client),
      })
    } catch {
      return undefined
    }
    try {
      await client.request({ op: 'hello', group: this.groupId, subscription: this.key })
      await this.table.load()
    } catch (error) {
      client.close()
      if (isLogError(error, 'INVALID_ARGUMENT') || isLogError(error, 'CORRUPT_FILE')) throw error
      return undefined
    }
    const link = new RemoteGroupLink(this.groupId, this.options, true, (header) => this.requestOwner(client, header))
    return { kind: 'forwarder', client, link }
  }

  private innerLink(role: Role & { kind: 'owner' | 'forwarder' }): GroupLink {
    return role.kind === 'owner' ? new LocalGroupLink(role.owner.coordinator) : role.link
  }

  /** A connection that ended before its role was set is noticed here. */
  private watchConnection(role: Role): void {
    if (role.kind === 'forwarder' && !role.client.isConnected) this.ownerLost(role.client)
  }

  /** The owner went away: take its place, or forward to whoever did; the members rejoin there. */
  private ownerLost(client: OwnerClient): void {
    const role = this.role
    if (this.closed || role.kind !== 'forwarder' || role.client !== client) return
    role.link.detach()
    this.setRole({ kind: 'switching' })
    void this.switchOwner()
  }

  private async switchOwner(): Promise<void> {
    let role: Role & { kind: 'owner' | 'forwarder' }
    try {
      role = await this.findRole()
    } catch (error) {
      if (!this.closed) this.setRole({ kind: 'failed', error: new LogError('DISCONNECTED', `consumer group '${this.groupId}' lost its owner and no handle could take its place`, { cause: error, path: this.dir }) })
      return
    }
    if (this.closed) {
      if (role.kind === 'owner') await role.owner.close().finally(() => role.lock.release())
      else role.client.close()
      return
    }
    this.switchable!.switchTo(this.innerLink(role))
    this.setRole(role)
    this.watchConnection(role)
  }

  /** After a DISCONNECTED call: waits until the handle has an owner again; false once it is closed or failed. */
  private async reconnected(): Promise<boolean> {
    while (this.role.kind === 'switching' || (this.role.kind === 'forwarder' && !this.role.client.isConnected)) {
      const role = this.role
      await new Promise<void>((resolve) => {
        if (this.role !== role) resolve()
        else this.roleWaiters.push(resolve)
      })
    }
    return this.role.kind === 'owner' || this.role.kind === 'forwarder'
  }

  private setRole(role: Role): void {
    this.role = role
    for (const wake of this.roleWaiters.splice(0)) wake()
  }

  /** A request to the owner over `client`; DISCONNECTED once it is gone or closing (the caller retries through the next one). */
  private async requestOwner(client: OwnerClient, header: Record<string, unknown>): Promise<unknown> {
    try {
      return await client.request(header)
    } catch (error) {
      if (!(error instanceof RetryElsewhere)) throw error
      throw new LogError('DISCONNECTED', "the consumer group's owner is closing; retry")
    }
  }

  /** The owner scans the directory; another handle asks the owner to, then loads the new slots. */
  private async findTopics(): Promise<void> {
    await this.opened
    const role = this.role
    if (role.kind === 'owner') {
      const added = await this.table.addTopics(this.matches, () => this.closed)
      if (added > 0 && !role.owner.coordinator.isClosed) role.owner.coordinator.addPartitions(added)
    } else if (role.kind === 'forwarder') {
      await this.requestOwner(role.client, { op: 'rescan', group: this.groupId })
      await this.table.load()
    }
  }
}
