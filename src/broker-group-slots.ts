/**
 * SlotTable: a broker consumer group's slots, one per (topic, partition), numbered in the order
 * they were first subscribed, and the reader of each. The table is stored with the group
 * (`<broker>/@groups/<id>/slots.json`, replaced atomically) because the group's offsets log keys
 * committed offsets by slot: a topic found in another order after a reopen must not inherit another
 * topic's offsets. Only the group's owner adds slots (and writes the file, before the coordinator
 * learns of them); every other handle loads the file when it meets a slot it does not know yet.
 *
 * A slot whose topic was deleted stays in the table (its offsets stay meaningful) and reads as empty.
 */
import fs from 'node:fs'
import path from 'node:path'
import { LogError, ioError } from './errors.js'
import { writeFileAtomic } from './fs-util.js'
import type { ConsumedRecord, PartitionReader } from './partition.js'
import type { Topic } from './topic.js'

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

const SLOTS_FILE = 'slots.json'

export class SlotTable {
  readonly slots: TopicPartition[] = []
  /** Indexed by slot: what members read (grows in place as topics are found). */
  readonly readers: PartitionReader[] = []
  private readonly slotByKey = new Map<string, number>()
  /** Loads and additions run one at a time, so slots are appended in the stored order. */
  private queue: Promise<unknown> = Promise.resolve()
  private loading: Promise<void> | undefined

  constructor(
    private readonly dir: string,
    private readonly source: TopicSource,
    private readonly groupId: string,
  ) {}

  /** The slot of a topic's partition (UNKNOWN_PARTITION when the group does not subscribe it). */
  slotOf(topic: string | undefined, partition: number): number {
    const slot = this.slotByKey.get(`${String(topic)}\u0000${partition}`)
    if (slot === undefined) throw new LogError('UNKNOWN_PARTITION', `partition ${String(partition)} of topic '${String(topic)}' is not subscribed by group '${this.groupId}'`)
    return slot
  }

  /** Whether every slot in `slots` has its reader here. */
  covers(slots: readonly number[]): boolean {
    for (const slot of slots) if (slot >= this.readers.length) return false
    return true
  }

  /** Reads the stored table and opens a reader for each slot not known yet. */
  load(): Promise<void> {
    this.loading ??= this.serially(async () => {
      const stored = readSlots(this.dir)
      for (let slot = this.slots.length; slot < stored.length; slot++) this.add(stored[slot]!, await this.readerFor(stored[slot]!))
    }).finally(() => (this.loading = undefined))
    return this.loading
  }

  /**
   * The owner's part: adds the partitions of topics present that `matches` accepts and the table
   * lacks, stores the table, and resolves to how many slots were added.
   */
  addTopics(matches: (name: string) => boolean, stopped: () => boolean): Promise<number> {
    return this.serially(async () => {
      const known = new Set(this.slots.map((slot) => slot.topic))
      let added = 0
      for (const name of this.source.topics()) {
        if (stopped() || known.has(name) || !matches(name)) continue
        const topic = await this.source.topic(name)
        for (let partition = 0; partition < topic.partitionCount; partition++) this.add({ topic: name, partition }, topic.partition(partition))
        added += topic.partitionCount
      }
      if (added > 0) writeFileAtomic(path.join(this.dir, SLOTS_FILE), Buffer.from(`${JSON.stringify({ slots: this.slots.map(({ topic, partition }) => [topic, partition]) })}\n`))
      return added
    })
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work)
    this.queue = result.catch(() => undefined)
    return result
  }

  private add(slot: TopicPartition, reader: PartitionReader): void {
    this.slotByKey.set(`${slot.topic}\u0000${slot.partition}`, this.slots.length)
    this.slots.push(slot)
    this.readers.push(reader)
  }

  private async readerFor({ topic, partition }: TopicPartition): Promise<PartitionReader> {
    if (!this.source.topics().includes(topic)) return new AbsentPartition()
    const opened = await this.source.topic(topic)
    return partition < opened.partitionCount ? opened.partition(partition) : new AbsentPartition()
  }
}

/** Stands in for the partition of a subscribed topic that was deleted: empty, and never wakes anyone. */
class AbsentPartition implements PartitionReader {
  readonly startOffset = 0
  readonly highWatermark = 0

  read(offset: number): ConsumedRecord {
    throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} of a deleted topic`, { offset })
  }

  readInto(from: number, end: number): number {
    if (from < end) this.read(from) // throws: a deleted topic has no records
    return from
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
