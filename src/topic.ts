/**
 * Topic: a directory holding `topic.json` (partition count, log options, format version), one
 * SegmentedLog per partition (`partition-<i>/`) and the state of its consumer groups
 * (`groups/<id>/`). The partition count is fixed when the topic is created.
 *
 * Placement: an explicit `partition`; else a key → Kafka's murmur2 (`(murmur2(key) & 0x7fffffff) %
 * partitions`), so keyed records land where Kafka would put them; else keyless records are spread:
 * `send` takes partitions in turn, `sendBatch` puts a batch's keyless records on one partition and
 * moves on for the next batch (sticky batches, as Kafka's producer does).
 */
import fs from 'node:fs'
import path from 'node:path'
import { ConsumerGroup, type ConsumerGroupOptions, resolveGroupOptions } from './consumer-group.js'
import { LogError, ioError } from './errors.js'
import { TOPIC_METADATA_FILE, type TopicMetadata, decodeTopicMetadata, encodeTopicMetadata } from './format.js'
import { writeFileAtomic } from './fs-util.js'
import { GroupCoordinator, type GroupOptions } from './group-coordinator.js'
import { OffsetStore, checkGroupId } from './offset-store.js'
import { type SegmentedLogOptions, resolveOptions } from './options.js'
import { Partition } from './partition.js'
import { type EncodedRecords, type ProducerRecord, encodeRecords } from './producer-record.js'
import { SegmentedLog } from './segmented-log.js'

export interface TopicOptions extends SegmentedLogOptions {
  /** Partition count, fixed at creation (default 1, at most 10,000). Reopening with another count is TOPIC_MISMATCH. */
  partitions?: number
}

export interface SendResult {
  partition: number
  offset: number
}

const PARTITIONS_MAX = 10_000
/** A keyless record without a partition, until the batch's spread partition is known. */
const NO_PARTITION_YET = -1

/** One partition's share of a batch: its records (all of the batch when undefined) and the append. */
interface PartitionAppend {
  partition: number
  indexes: readonly number[] | undefined
  firstOffset: Promise<number>
}
/** Options that describe one open handle, not the topic, and are never stored in topic.json. */
const PER_OPEN_OPTIONS = ['readOnly', 'mmap'] as const

interface GroupEntry {
  options: GroupOptions
  coordinator: Promise<GroupCoordinator>
}

export class Topic {
  readonly name: string
  private readonly partitionList: Partition[]
  private readonly groups = new Map<string, GroupEntry>()
  private nextPartition = 0
  private closed = false

  private constructor(
    readonly dir: string,
    logs: SegmentedLog[],
  ) {
    this.name = path.basename(dir)
    this.partitionList = logs.map((log, id) => new Partition(this.name, id, log))
  }

  /** Opens the topic in `dir`, creating it (with `partitions`, default 1) if it does not exist. */
  static async open(dir: string, options: TopicOptions = {}): Promise<Topic> {
    if (typeof dir !== 'string' || dir.length === 0) throw new LogError('INVALID_ARGUMENT', 'dir must be a non-empty string')
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'options must be an object')
    const { partitions, ...logOptions } = options
    resolveOptions(logOptions) // refuse bad options before touching the disk
    const absolute = path.resolve(dir)
    const metadata = readOrCreateMetadata(absolute, partitions, logOptions)
    const merged = { ...metadata.logOptions, ...logOptions }
    const logs: SegmentedLog[] = []
    try {
      for (let i = 0; i < metadata.partitions; i++) logs.push(await SegmentedLog.open(path.join(absolute, `partition-${i}`), merged))
    } catch (error) {
      await Promise.all(logs.map((log) => log.close()))
      throw error
    }
    return new Topic(absolute, logs)
  }

  get partitionCount(): number {
    return this.partitionList.length
  }

  /** Partition `i` (UNKNOWN_PARTITION if there is none). */
  partition(i: number): Partition {
    this.checkOpen()
    return this.partitionList[this.checkPartition(i)]!
  }

  /** Appends one record; resolves to where it landed. */
  async send(record: ProducerRecord): Promise<SendResult> {
    return (await this.sendBatch([record]))[0]!
  }

  /**
   * Appends many records; resolves to where each landed, in the order given. Every record is checked
   * before any is written. Records bound for one partition are appended together, all or none;
   * different partitions are independent.
   */
  async sendBatch(records: readonly ProducerRecord[]): Promise<SendResult[]> {
    this.checkOpen()
    if (!Array.isArray(records)) throw new LogError('INVALID_ARGUMENT', 'sendBatch takes an array of records')
    if (records.length === 0) return []
    // A batch larger than partitions × batchBytesMax has a share over batchBytesMax whatever the placement.
    const encoded = encodeRecords(records, this.partitionCount * this.partitionList[0]!.log.options.batchBytesMax)
    let appends: PartitionAppend[]
    try {
      appends = this.appendEncoded(encoded)
    } finally {
      encoded.release()
    }
    const results: SendResult[] = new Array(records.length)
    if (appends.length === 1 && appends[0]!.indexes === undefined) {
      const { partition, firstOffset } = appends[0]!
      const first = await firstOffset
      for (let i = 0; i < results.length; i++) results[i] = { partition, offset: first + i }
      return results
    }
    await Promise.all(
      appends.map(async ({ partition, indexes, firstOffset }) => {
        const first = await firstOffset
        for (let i = 0; i < indexes!.length; i++) results[indexes![i]!] = { partition, offset: first + i }
      }),
    )
    return results
  }

  /**
   * The consumer group `groupId` of this topic. Every handle of one group id shares one
   * coordinator; the first call's options define the group (different options later are refused).
   */
  consumerGroup(groupId: string, options?: ConsumerGroupOptions): ConsumerGroup {
    this.checkOpen()
    checkGroupId(groupId)
    const resolved = resolveGroupOptions(options)
    let entry = this.groups.get(groupId)
    if (entry && options !== undefined && JSON.stringify(entry.options) !== JSON.stringify(resolved)) {
      throw new LogError('INVALID_ARGUMENT', `consumer group '${groupId}' is already open with other options`)
    }
    if (!entry) {
      const groupDir = path.join(this.dir, 'groups', groupId, 'offsets')
      const ends = (partition: number): number => this.partitionList[partition]!.highWatermark
      const coordinator = OffsetStore.open(groupDir).then((offsets) => new GroupCoordinator(groupId, this.partitionCount, resolved, offsets, ends))
      coordinator.catch(() => this.groups.delete(groupId))
      entry = { options: resolved, coordinator }
      this.groups.set(groupId, entry)
    }
    const { coordinator } = entry
    return new ConsumerGroup(groupId, () => this.whileOpen(coordinator), this.partitionList)
  }

  /** Closes the topic's groups and partitions. Later calls throw LOG_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const coordinators = await Promise.allSettled([...this.groups.values()].map((entry) => entry.coordinator))
    await Promise.all(coordinators.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)))
    await Promise.all(this.partitionList.map((partition) => partition.log.close()))
  }

  /**
   * Places encoded records and appends each partition's share, all synchronously (the envelopes are
   * copied before this returns). Every placement is checked before the first append.
   */
  private appendEncoded(encoded: EncodedRecords): PartitionAppend[] {
    if (this.partitionCount === 1 && !encoded.hasExplicitPartition) {
      return [{ partition: 0, indexes: undefined, firstOffset: this.partitionList[0]!.appendEncoded(encoded) }]
    }
    const byPartition = this.place(encoded)
    if (byPartition.size === 1) {
      const [partition] = byPartition.keys()
      return [{ partition: partition!, indexes: undefined, firstOffset: this.partitionList[partition!]!.appendEncoded(encoded) }]
    }
    return [...byPartition].map(([partition, indexes]) => ({ partition, indexes, firstOffset: this.partitionList[partition]!.appendEncoded(encoded, indexes) }))
  }

  /** The records of each partition, in order: explicit partition, else the key's, else the spread. */
  private place(encoded: EncodedRecords): Map<number, number[]> {
    const count = encoded.count
    const partitions: number[] = new Array(count)
    let spreadNeeded = false
    for (let index = 0; index < count; index++) {
      const explicit = encoded.explicitPartition(index)
      const partition = explicit === undefined ? encoded.keyedPartition(index, this.partitionCount) : this.checkPartition(explicit)
      // Only keyless records without a partition take a turn in the spread.
      if (partition === undefined) spreadNeeded = true
      partitions[index] = partition ?? NO_PARTITION_YET
    }
    const spread = spreadNeeded ? this.takeNextPartition() : 0
    const byPartition = new Map<number, number[]>()
    for (let index = 0; index < count; index++) {
      const partition = partitions[index] === NO_PARTITION_YET ? spread : partitions[index]!
      const indexes = byPartition.get(partition)
      if (indexes) indexes.push(index)
      else byPartition.set(partition, [index])
    }
    return byPartition
  }

  private takeNextPartition(): number {
    const partition = this.nextPartition
    this.nextPartition = (partition + 1) % this.partitionCount
    return partition
  }

  private checkPartition(partition: number): number {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitionCount) {
      throw new LogError('UNKNOWN_PARTITION', `partition ${String(partition)} does not exist in topic '${this.name}' (${this.partitionCount} partitions)`)
    }
    return partition
  }

  private async whileOpen<T>(value: Promise<T>): Promise<T> {
    this.checkOpen()
    return value
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `topic '${this.name}' is closed`)
  }
}

function readOrCreateMetadata(dir: string, partitions: number | undefined, logOptions: SegmentedLogOptions): TopicMetadata {
  const file = path.join(dir, TOPIC_METADATA_FILE)
  if (partitions !== undefined && (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX)) {
    throw new LogError('INVALID_ARGUMENT', `partitions must be an integer in [1, ${PARTITIONS_MAX}], got ${String(partitions)}`)
  }
  let bytes: Buffer | undefined
  try {
    bytes = fs.readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('could not read topic metadata', error, file)
  }
  if (bytes) {
    const metadata = decodeTopicMetadata(bytes, file)
    if (partitions !== undefined && partitions !== metadata.partitions) {
      throw new LogError('TOPIC_MISMATCH', `topic has ${metadata.partitions} partitions, opened with ${partitions}`, { path: dir })
    }
    return metadata
  }
  if (logOptions.readOnly) throw new LogError('INVALID_ARGUMENT', 'readOnly open of a topic that does not exist', { path: dir })
  const stored: Record<string, unknown> = { ...logOptions }
  for (const name of PER_OPEN_OPTIONS) delete stored[name]
  const metadata: TopicMetadata = { partitions: partitions ?? 1, createdMs: Date.now(), logOptions: stored }
  try {
    fs.mkdirSync(dir, { recursive: true })
  } catch (error) {
    throw ioError('could not create the topic directory', error, dir)
  }
  writeFileAtomic(file, encodeTopicMetadata(metadata))
  return metadata
}
