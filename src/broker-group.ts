/**
 * BrokerConsumerGroup: a consumer group over several topics of a Broker, named by a list or a
 * RegExp. Its coordinator shares out *slots*, one per (topic, partition), numbered in the order
 * they were first subscribed; the slot table is stored with the group (`<broker>/@groups/<id>/
 * slots.json`, replaced atomically) so that committed offsets, which the group's offsets log keys
 * by slot, keep their meaning across reopen. A topic created later that matches the subscription is
 * found within a second (subscription.ts: a directory watch, and a 1 s rescan as a fallback): its partitions become
 * new slots and the group rebalances, without restarting the members.
 *
 * A slot whose topic was deleted stays in the table (its offsets stay meaningful) and reads as empty.
 * The group's state lives in the handle that opened it: members in other threads and processes of
 * one broker group are not supported yet (a second opener gets LOCKED from the offsets log).
 */
import fs from 'node:fs'
import path from 'node:path'
import { type ConsumerGroupOptions, type PartitionLag, resolveGroupOptions } from './consumer-group.js'
import { Consumer, type PollOptions } from './consumer.js'
import { LogError, ioError } from './errors.js'
import { writeFileAtomic } from './fs-util.js'
import { GroupCoordinator } from './group-coordinator.js'
import { LocalGroupLink } from './group-link.js'
import { OffsetStore, checkGroupId } from './offset-store.js'
import { subscription, watchTopics } from './subscription.js'
import type { ConsumedRecord, PartitionReader } from './partition.js'
import type { Topic } from './topic.js'

export interface BrokerGroupOptions extends ConsumerGroupOptions {
  /** The topics: a list of names, or a pattern matched against every topic's name (now and later). */
  topics: readonly string[] | RegExp
}

/** What the group needs of its broker (broker.ts passes itself). */
export interface TopicSource {
  readonly dir: string
  topics(): string[]
  topic(name: string): Promise<Topic>
}

export interface TopicPartition {
  topic: string
  partition: number
}

export const GROUPS_DIR = '@groups'
const SLOTS_FILE = 'slots.json'

export class BrokerConsumerGroup {
  private readonly slots: TopicPartition[] = []
  private readonly slotByKey = new Map<string, number>()
  /** Indexed by slot: what members read (grows in place as topics are found). */
  private readonly readers: PartitionReader[] = []
  private readonly dir: string
  private readonly matches: (name: string) => boolean
  private readonly opened: Promise<GroupCoordinator>
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
    const resolved = resolveGroupOptions(groupOptions)
    this.dir = path.join(source.dir, GROUPS_DIR, groupId)
    this.opened = this.open(resolved)
    this.opened.catch(() => undefined) // reported by the calls that wait for it
  }

  /** Joins as a new member (or with the given id). */
  async join(options: { memberId?: string } = {}): Promise<BrokerConsumer> {
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'join options must be an object')
    const coordinator = await this.ready()
    const link = new LocalGroupLink(coordinator)
    const memberId = await link.join(options.memberId)
    return new BrokerConsumer(new Consumer(memberId, link, this.readers, (record) => this.slotOf(record.topic, record.partition)), this.slots)
  }

  /** The committed offset (the next offset to read) of one topic's partition, or undefined. */
  async committed(topic: string, partition: number): Promise<number | undefined> {
    const coordinator = await this.ready()
    return coordinator.committed(this.slotOf(topic, partition))
  }

  /** Per subscribed partition: how far the committed offset is behind the end. */
  async lag(): Promise<(PartitionLag & { topic: string })[]> {
    const coordinator = await this.ready()
    return this.slots.map(({ topic, partition }, slot) => {
      const reader = this.readers[slot]!
      const committed = coordinator.committed(slot)
      const endOffset = reader.highWatermark
      // A deleted topic's partition reads as empty: no lag, whatever was committed on it.
      return { topic, partition, committed, endOffset, lag: Math.max(0, endOffset - Math.max(committed ?? reader.startOffset, reader.startOffset)) }
    })
  }

  /** The topics' partitions the group shares now, in slot order. */
  async subscribed(): Promise<TopicPartition[]> {
    await this.ready()
    return this.slots.map((slot) => ({ ...slot }))
  }

  async generation(): Promise<number> {
    return (await this.ready()).generation
  }

  async members(): Promise<{ memberId: string; assignment: TopicPartition[] }[]> {
    const coordinator = await this.ready()
    return coordinator.memberIds.map((memberId) => ({ memberId, assignment: coordinator.assignmentOf(memberId).map((slot) => ({ ...this.slots[slot]! })) }))
  }

  /** Looks for new matching topics now (also done by itself within a second). */
  rescan(): Promise<void> {
    if (!this.rescanning) this.rescanning = this.findTopics().finally(() => (this.rescanning = undefined))
    return this.rescanning
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopWatching?.()
    const coordinator = await this.opened.catch(() => undefined)
    await this.rescanning?.catch(() => undefined)
    await coordinator?.close()
  }

  // -------------------------------------------------------------------------------------------

  private async ready(): Promise<GroupCoordinator> {
    if (this.closed) throw new LogError('LOG_CLOSED', `consumer group '${this.groupId}' is closed`)
    return this.opened
  }

  private slotOf(topic: string | undefined, partition: number): number {
    const slot = this.slotByKey.get(`${String(topic)}\u0000${partition}`)
    if (slot === undefined) throw new LogError('UNKNOWN_PARTITION', `partition ${partition} of topic '${String(topic)}' is not subscribed by group '${this.groupId}'`)
    return slot
  }

  private async open(options: ReturnType<typeof resolveGroupOptions>): Promise<GroupCoordinator> {
    try {
      fs.mkdirSync(this.dir, { recursive: true })
    } catch (error) {
      throw ioError('could not create the group directory', error, this.dir)
    }
    const offsets = await OffsetStore.open(path.join(this.dir, 'offsets'))
    try {
      for (const slot of readSlots(this.dir)) this.addSlot(slot, await this.readerFor(slot))
      const coordinator = new GroupCoordinator(this.groupId, this.slots.length, options, offsets, (slot) => this.readers[slot]!.highWatermark)
      await this.findTopics(coordinator)
      this.startWatching()
      return coordinator
    } catch (error) {
      await offsets.close()
      throw error
    }
  }

  private async readerFor({ topic, partition }: TopicPartition): Promise<PartitionReader> {
    if (!this.source.topics().includes(topic)) return new AbsentPartition()
    const opened = await this.source.topic(topic)
    return partition < opened.partitionCount ? opened.partition(partition) : new AbsentPartition()
  }

  private addSlot(slot: TopicPartition, reader: PartitionReader): void {
    this.slotByKey.set(`${slot.topic}\u0000${slot.partition}`, this.slots.length)
    this.slots.push(slot)
    this.readers.push(reader)
  }

  /** Adds the partitions of matching topics not subscribed yet; rebalances if there were any. */
  private async findTopics(coordinator?: GroupCoordinator): Promise<void> {
    const known = new Set(this.slots.map((slot) => slot.topic))
    let added = 0
    for (const name of this.source.topics()) {
      if (this.closed || known.has(name) || !this.matches(name)) continue
      const topic = await this.source.topic(name)
      for (let partition = 0; partition < topic.partitionCount; partition++) this.addSlot({ topic: name, partition }, topic.partition(partition))
      added += topic.partitionCount
    }
    if (added === 0) return
    writeFileAtomic(path.join(this.dir, SLOTS_FILE), Buffer.from(`${JSON.stringify({ slots: this.slots.map(({ topic, partition }) => [topic, partition]) })}\n`))
    const target = coordinator ?? (await this.opened)
    if (!target.isClosed) target.addPartitions(added)
  }

  private startWatching(): void {
    this.stopWatching = watchTopics(this.source.dir, () => void this.rescan().catch(() => undefined))
  }
}

/** A member of a BrokerConsumerGroup: a Consumer whose partitions are named by topic and partition. */
export class BrokerConsumer {
  constructor(
    private readonly consumer: Consumer,
    private readonly slots: readonly TopicPartition[],
  ) {}

  get memberId(): string {
    return this.consumer.memberId
  }

  /** The topics' partitions this member owns now. */
  get assignment(): TopicPartition[] {
    return this.consumer.assignment.map((slot) => ({ ...this.slots[slot]! }))
  }

  poll(options?: PollOptions): Promise<ConsumedRecord[]> {
    return this.consumer.poll(options)
  }

  /** Commits `record.offset + 1` for the record's topic and partition, or every position consumed so far. */
  commit(record?: Pick<ConsumedRecord, 'topic' | 'partition' | 'offset'>): Promise<void> {
    return this.consumer.commit(record)
  }

  /** Moves the position of an owned partition (replay or skip). */
  seek(topic: string, partition: number, offset: number): void {
    this.consumer.seek(this.slotIndex(topic, partition), offset)
  }

  position(topic: string, partition: number): number | undefined {
    return this.consumer.position(this.slotIndex(topic, partition))
  }

  [Symbol.asyncIterator](): AsyncGenerator<ConsumedRecord, void, undefined> {
    return this.consumer[Symbol.asyncIterator]()
  }

  close(): Promise<void> {
    return this.consumer.close()
  }

  private slotIndex(topic: string, partition: number): number {
    const slot = this.slots.findIndex((candidate) => candidate.topic === topic && candidate.partition === partition)
    if (slot < 0) throw new LogError('UNKNOWN_PARTITION', `partition ${String(partition)} of topic '${String(topic)}' is not subscribed`)
    return slot
  }
}

/** Stands in for the partition of a subscribed topic that was deleted: empty, and never wakes anyone. */
class AbsentPartition implements PartitionReader {
  readonly startOffset = 0
  readonly highWatermark = 0

  read(offset: number): ConsumedRecord {
    throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} of a deleted topic`, { offset })
  }

  waitForRecords(_offset: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }))
  }
}

function readSlots(dir: string): TopicPartition[] {
  let text: string
  try {
    text = fs.readFileSync(path.join(dir, SLOTS_FILE), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw ioError('could not read the group slot table', error, dir)
  }
  try {
    const { slots } = JSON.parse(text) as { slots: [string, number][] }
    if (!Array.isArray(slots)) throw new Error('no slots')
    return slots.map(([topic, partition]) => {
      if (typeof topic !== 'string' || !Number.isInteger(partition) || partition < 0) throw new Error('bad slot')
      return { topic, partition }
    })
  } catch (error) {
    throw new LogError('CORRUPT_FILE', `group slot table is damaged (${(error as Error).message})`, { path: path.join(dir, SLOTS_FILE) })
  }
}
