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
import { setTimeout as sleep } from 'node:timers/promises'
import { ConsumerGroup, type ConsumerGroupOptions, resolveGroupOptions } from './consumer-group.js'
import { LogError, ioError } from './errors.js'
import type { GroupOptions } from './group-coordinator.js'
import { type GroupLink, LocalGroupLink, SwitchableGroupLink } from './group-link.js'
import { DirectoryLock } from './lock.js'
import { checkGroupId } from './offset-store.js'
import { type SegmentedLogOptions, resolveOptions } from './options.js'
import { OwnerClient, RemoteGroupLink, RetryElsewhere, encodeForwarded, ownerAddress } from './owner-client.js'
import { Partition } from './partition.js'
import { type Placement, type ProducerRecord, encodeRecords } from './producer-record.js'
import { SegmentedLog } from './segmented-log.js'
import { type ShareGroupConfig, type ShareGroupOptions, resolveShareGroupOptions } from './share-coordinator.js'
import { ShareGroup } from './share-group.js'
import { LocalShareLink, RemoteShareLink, type ShareLink, SwitchableShareLink } from './share-link.js'
import { checkPartitionCount, guardAsync, guard, openLogs, readMetadata, readOrCreateMetadata, tryLock } from './topic-files.js'
import { TopicOwner, appendForwarded } from './topic-owner.js'

export interface TopicOptions extends SegmentedLogOptions {
  /** Partition count, fixed at creation (default 1, at most 10,000). Reopening with another count is TOPIC_MISMATCH. */
  partitions?: number
}

export interface SendResult {
  partition: number
  offset: number
}

/** How long opening (or taking over after the owner died) keeps trying before it gives up. */
const OWNER_WAIT_MS = 10_000
const OWNER_RETRY_MS = 5

/**
 * What this handle is: the topic's owner (it writes; others forward to it), a forwarder (another
 * thread or process owns the topic), a readOnly reader, or between two of those after its owner went away.
 */
type Role =
  | { kind: 'owner'; owner: TopicOwner; lock: DirectoryLock }
  | { kind: 'forwarder'; client: OwnerClient; links: Map<string, RemoteGroupLink>; shareLinks: Map<string, RemoteShareLink> }
  | { kind: 'reader' }
  | { kind: 'switching' }
  | { kind: 'failed'; error: LogError }

interface GroupEntry {
  options: GroupOptions
  explicit: boolean
  link: Promise<SwitchableGroupLink>
}

interface ShareGroupEntry {
  options: ShareGroupConfig
  explicit: boolean
  link: Promise<SwitchableShareLink>
}

export class Topic {
  readonly name: string
  private readonly partitionList: Partition[]
  private readonly groups = new Map<string, GroupEntry>()
  private readonly shareGroups = new Map<string, ShareGroupEntry>()
  private role: Role = { kind: 'switching' }
  /** Settles when the handle has a role again after its owner went away. */
  private ready: Promise<void> = Promise.resolve()
  private roleWaiters: (() => void)[] = []
  private nextPartition = 0
  private closed = false
  private readonly checkPartitionOf = (partition: number): number => this.checkPartition(partition)

  private constructor(
    readonly dir: string,
    logs: SegmentedLog[],
    private readonly logOptions: SegmentedLogOptions,
  ) {
    this.name = path.basename(dir)
    const append = (partition: number, record: ProducerRecord): Promise<number> => this.sendRecords([record], partition).then((results) => results[0]!.offset)
    const keepAlive = (): (() => void) => (this.role.kind === 'forwarder' ? this.role.client.hold() : () => undefined)
    this.partitionList = logs.map((log, id) => new Partition(this.name, id, log, append, keepAlive))
  }

  /**
   * Opens the topic in `dir`, creating it (with `partitions`, default 1) if it does not exist. The
   * first handle on the machine becomes the owner; a handle opened while another thread or process
   * owns the topic forwards its writes and group calls to that owner and reads the files itself.
   */
  static async open(dir: string, options: TopicOptions = {}): Promise<Topic> {
    if (typeof dir !== 'string' || dir.length === 0) throw new LogError('INVALID_ARGUMENT', 'dir must be a non-empty string')
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'options must be an object')
    const { partitions, ...logOptions } = options
    resolveOptions(logOptions) // refuse bad options before touching the disk
    checkPartitionCount(partitions)
    const absolute = path.resolve(dir)
    if (logOptions.readOnly) {
      const metadata = readMetadata(absolute, partitions)
      if (!metadata) throw new LogError('INVALID_ARGUMENT', 'readOnly open of a topic that does not exist', { path: absolute })
      const topic = new Topic(absolute, await openLogs(absolute, metadata.partitions, { mmap: logOptions.mmap, readOnly: true }), logOptions)
      topic.role = { kind: 'reader' }
      return topic
    }
    try {
      fs.mkdirSync(absolute, { recursive: true })
    } catch (error) {
      throw ioError('could not create the topic directory', error, absolute)
    }
    const deadline = Date.now() + OWNER_WAIT_MS
    for (;;) {
      const lock = tryLock(absolute)
      if (lock) {
        const metadata = guard(lock, () => readOrCreateMetadata(absolute, partitions, logOptions))
        const logs = await guardAsync(lock, () => openLogs(absolute, metadata.partitions, { ...metadata.logOptions, ...logOptions }))
        const topic = new Topic(absolute, logs, logOptions)
        await topic.becomeOwner(lock)
        return topic
      }
      const metadata = readMetadata(absolute, partitions)
      if (metadata) {
        const topic = new Topic(absolute, await openLogs(absolute, metadata.partitions, { mmap: logOptions.mmap, readOnly: true }), logOptions)
        if (await topic.connect()) return topic
        await topic.closeLogs()
      }
      if (Date.now() > deadline) throw new LogError('LOCKED', 'the topic is held by an owner that does not answer', { path: absolute })
      await sleep(OWNER_RETRY_MS)
    }
  }

  get partitionCount(): number {
    return this.partitionList.length
  }

  /** Whether this handle owns the topic (writes it and serves the others). */
  get isOwner(): boolean {
    return this.role.kind === 'owner'
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
    return this.sendRecords(records, undefined)
  }

  /**
   * The consumer group `groupId` of this topic. Every handle of one group id shares one
   * coordinator (the owner's); the first call's options define the group (different options later are refused).
   */
  consumerGroup(groupId: string, options?: ConsumerGroupOptions): ConsumerGroup {
    this.checkOpen()
    checkGroupId(groupId)
    if (this.role.kind === 'reader') throw new LogError('READ_ONLY', 'consumer groups need a handle that is not readOnly', { path: this.dir })
    const resolved = resolveGroupOptions(options)
    let entry = this.groups.get(groupId)
    if (entry && options !== undefined && JSON.stringify(entry.options) !== JSON.stringify(resolved)) {
      throw new LogError('INVALID_ARGUMENT', `consumer group '${groupId}' is already open with other options`)
    }
    if (!entry) {
      const explicit = options !== undefined
      const link = this.linkFor(groupId, resolved, explicit).then((inner) => new SwitchableGroupLink(inner))
      link.catch(() => this.groups.delete(groupId))
      entry = { options: resolved, explicit, link }
      this.groups.set(groupId, entry)
    }
    const { link } = entry
    return new ConsumerGroup(groupId, () => this.whileOpen(link), this.partitionList)
  }

  /**
   * The share group `groupId` of this topic (queue semantics: members take records from the same
   * partitions at once, each record held by one member at a time). Every handle of one group id
   * shares the owner's coordinator; the first call's options define the group.
   */
  shareGroup(groupId: string, options?: ShareGroupOptions): ShareGroup {
    this.checkOpen()
    checkGroupId(groupId)
    if (this.role.kind === 'reader') throw new LogError('READ_ONLY', 'share groups need a handle that is not readOnly', { path: this.dir })
    const resolved = resolveShareGroupOptions(options)
    if (resolved.deadLetterTopic === this.name) throw new LogError('INVALID_ARGUMENT', `a share group's deadLetterTopic cannot be its own topic '${this.name}'`)
    let entry = this.shareGroups.get(groupId)
    if (entry && options !== undefined && JSON.stringify(entry.options) !== JSON.stringify(resolved)) {
      throw new LogError('INVALID_ARGUMENT', `share group '${groupId}' is already open with other options`)
    }
    if (!entry) {
      const explicit = options !== undefined
      const link = this.shareLinkFor(groupId, resolved, explicit).then((inner) => new SwitchableShareLink(inner))
      link.catch(() => this.shareGroups.delete(groupId))
      entry = { options: resolved, explicit, link }
      this.shareGroups.set(groupId, entry)
    }
    const { link } = entry
    return new ShareGroup(groupId, () => this.whileOpen(link), this.partitionList)
  }

  /** Closes the topic's groups and partitions (an owner first finishes what it was asked). Later calls throw LOG_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const role = this.role
    this.setRole({ kind: 'failed', error: new LogError('LOG_CLOSED', `topic '${this.name}' is closed`) })
    if (role.kind === 'owner') await role.owner.close()
    if (role.kind === 'forwarder') {
      role.client.close()
      for (const link of role.links.values()) link.close()
      for (const link of role.shareLinks.values()) link.close()
    }
    await this.closeLogs()
    if (role.kind === 'owner') role.lock.release()
  }

  // -------------------------------------------------------------------------------------------
  // Roles

  /** Starts serving other handles; `lock` (the topic's) is held until close. */
  private async becomeOwner(lock: DirectoryLock): Promise<void> {
    // Dead letters are written before the share group stores the record as archived: this handle's
    // appends to the dead-letter topic are durable when acknowledged (sync 'always'), whatever its stored mode.
    const openSibling = (name: string): Promise<Topic> => Topic.open(path.join(path.dirname(this.dir), name), { sync: 'always' })
    const owner = new TopicOwner(this.dir, this.partitionList, openSibling)
    try {
      await owner.listen(ownerAddress(this.dir))
    } catch (error) {
      await owner.close()
      await this.closeLogs()
      lock.release()
      throw ioError("could not listen for the topic's other handles", error, this.dir)
    }
    this.setRole({ kind: 'owner', owner, lock })
    for (const [groupId, entry] of this.groups) {
      const coordinator = await owner.coordinator(groupId, entry.options, entry.explicit)
      ;(await entry.link).switchTo(new LocalGroupLink(coordinator))
    }
    for (const [groupId, entry] of this.shareGroups) {
      const coordinator = await owner.shareCoordinator(groupId, entry.options, entry.explicit)
      ;(await entry.link).switchTo(new LocalShareLink(coordinator))
    }
  }

  /** Connects to the owner; false when nobody answers (the owner is starting or just died). */
  private async connect(): Promise<boolean> {
    let client: OwnerClient
    try {
      client = await OwnerClient.connect(ownerAddress(this.dir), {
        ends: (ends) => {
          for (const [partition, end] of ends) this.partitionList[partition]?.announceEnd(end)
        },
        group: (groupId, states, closed) => {
          if (this.role.kind === 'forwarder' && this.role.client === client) this.role.links.get(groupId)?.receiveStates(states, closed)
        },
        share: (groupId, version) => {
          if (this.role.kind === 'forwarder' && this.role.client === client) this.role.shareLinks.get(groupId)?.receiveVersion(version)
        },
        lost: () => this.ownerLost(client),
      })
    } catch {
      return false
    }
    let hello: { partitions: number; ends: number[] }
    try {
      hello = (await client.request({ op: 'hello' })) as typeof hello
    } catch {
      client.close()
      return false
    }
    if (hello.partitions !== this.partitionList.length) {
      client.close()
      throw new LogError('TOPIC_MISMATCH', `the owner serves ${hello.partitions} partitions, topic.json says ${this.partitionList.length}`, { path: this.dir })
    }
    const links = new Map<string, RemoteGroupLink>()
    this.partitionList.forEach((partition, i) => partition.attach(partition.log, true, hello.ends[i]))
    this.setRole({ kind: 'forwarder', client, links, shareLinks: new Map() })
    for (const [groupId, entry] of this.groups) (await entry.link).switchTo(this.remoteLink(groupId, entry.options, entry.explicit))
    for (const [groupId, entry] of this.shareGroups) (await entry.link).switchTo(this.remoteShareLink(groupId, entry.options, entry.explicit))
    return true
  }

  /** The owner went away: take its place, or forward to whoever did. */
  private ownerLost(client: OwnerClient): void {
    const role = this.role
    if (this.closed || role.kind !== 'forwarder' || role.client !== client) return
    for (const link of role.links.values()) link.detach()
    for (const link of role.shareLinks.values()) link.detach()
    this.setRole({ kind: 'switching' })
    this.ready = this.takeOverOrReconnect()
  }

  private async takeOverOrReconnect(): Promise<void> {
    const deadline = Date.now() + OWNER_WAIT_MS
    let lastError: unknown
    while (!this.closed) {
      try {
        const lock = tryLock(this.dir)
        if (lock) {
          const writers = await guardAsync(lock, () => openLogs(this.dir, this.partitionList.length, { ...readMetadata(this.dir, this.partitionList.length)!.logOptions, ...this.logOptions }))
          const readers = this.partitionList.map((partition) => partition.log)
          this.partitionList.forEach((partition, i) => partition.attach(writers[i]!, false))
          await Promise.all(readers.map((reader) => reader.close()))
          return await this.becomeOwner(lock)
        }
        if (await this.connect()) return
      } catch (error) {
        lastError = error
      }
      if (Date.now() > deadline) break
      await sleep(OWNER_RETRY_MS)
    }
    if (this.closed) return
    const error = new LogError('DISCONNECTED', 'the topic lost its owner and no handle could take its place', { cause: lastError, path: this.dir })
    this.setRole({ kind: 'failed', error })
  }

  private setRole(role: Role): void {
    this.role = role
    for (const wake of this.roleWaiters.splice(0)) wake()
    for (const partition of this.partitionList) partition.wakeEndWaiters()
  }

  /** Resolves once the role is no longer `role`. */
  private roleChange(role: Role): Promise<void> {
    if (this.role !== role) return Promise.resolve()
    return new Promise((resolve) => this.roleWaiters.push(resolve))
  }

  private linkFor(groupId: string, options: GroupOptions, explicit: boolean): Promise<GroupLink> {
    const role = this.role
    if (role.kind === 'owner') return role.owner.coordinator(groupId, options, explicit).then((coordinator) => new LocalGroupLink(coordinator))
    if (role.kind === 'forwarder') return Promise.resolve(this.remoteLink(groupId, options, explicit))
    return this.ready.then(() => this.linkFor(groupId, options, explicit))
  }

  private remoteLink(groupId: string, options: GroupOptions, explicit: boolean): RemoteGroupLink {
    const role = this.role
    if (role.kind !== 'forwarder') throw new LogError('DISCONNECTED', 'no owner connection')
    const link = new RemoteGroupLink(groupId, options, explicit, (header) => this.requestOwner(role, header))
    role.links.set(groupId, link)
    return link
  }

  private shareLinkFor(groupId: string, options: ShareGroupConfig, explicit: boolean): Promise<ShareLink> {
    const role = this.role
    if (role.kind === 'owner') return role.owner.shareCoordinator(groupId, options, explicit).then((coordinator) => new LocalShareLink(coordinator))
    if (role.kind === 'forwarder') return Promise.resolve(this.remoteShareLink(groupId, options, explicit))
    return this.ready.then(() => this.shareLinkFor(groupId, options, explicit))
  }

  private remoteShareLink(groupId: string, options: ShareGroupConfig, explicit: boolean): RemoteShareLink {
    const role = this.role
    if (role.kind !== 'forwarder') throw new LogError('DISCONNECTED', 'no owner connection')
    const link = new RemoteShareLink(groupId, options, explicit, (header) => this.requestOwner(role, header))
    role.shareLinks.set(groupId, link)
    return link
  }

  /** A request to the owner behind `role`; DISCONNECTED once that owner is gone (callers retry through the current link). */
  private async requestOwner(role: Role & { kind: 'forwarder' }, header: Record<string, unknown>): Promise<unknown> {
    try {
      return await role.client.request(header)
    } catch (error) {
      if (!(error instanceof RetryElsewhere)) throw error
      throw new LogError('DISCONNECTED', "the topic's owner is closing; retry")
    }
  }

  /**
   * Checks, places and encodes `records` (all on `forcedPartition` when given), then appends each
   * partition's share: at once as the owner, else forwarded to the owner. The envelopes live in shared
   * scratches, so they are appended (copied) or put into the forwarded body before any await.
   */
  private async sendRecords(records: readonly ProducerRecord[], forcedPartition: number | undefined): Promise<SendResult[]> {
    this.checkOpen()
    if (!Array.isArray(records)) throw new LogError('INVALID_ARGUMENT', 'sendBatch takes an array of records')
    if (records.length === 0) return []
    // A new placement per batch: a getter of a record may send meanwhile (a batch of its own).
    const placement: Placement = { partitionCount: this.partitionList.length, forced: forcedPartition, spread: this.nextPartition, check: this.checkPartitionOf }
    const encoded = encodeRecords(records, this.partitionList[0]!.log.options.batchBytesMax, placement)
    // Only keyless records without a partition take a turn in the spread, one turn per batch
    // (taken once every record is known good, so a refused batch leaves the turn where it was).
    if (encoded.spreadUsed) this.takeNextPartition()
    const partitions = encoded.partitions.slice()
    let firsts: Promise<number[]>
    try {
      const role = this.role
      if (role.kind === 'owner') firsts = Promise.all(partitions.map((partition) => this.partitionList[partition]!.appendEncoded(encoded)))
      else if (role.kind === 'reader') throw new LogError('READ_ONLY', 'this topic handle was opened readOnly', { path: this.dir })
      else firsts = this.forward(partitions.map((partition) => [partition, encoded.countOf(partition)]), encodeForwarded(encoded))
    } catch (error) {
      encoded.release()
      throw error
    }
    // The share's batch indexes are read before release: they belong to the scratches.
    const results: SendResult[] = new Array(records.length)
    const shares = partitions.map((partition) => encoded.indexesOf(partition)?.slice())
    encoded.release()
    const found = await firsts
    partitions.forEach((partition, s) => {
      const first = found[s]!
      const indexes = shares[s]
      if (indexes === undefined) for (let i = 0; i < results.length; i++) results[i] = { partition, offset: first + i }
      else for (let i = 0; i < indexes.length; i++) results[indexes[i]!] = { partition, offset: first + i }
    })
    return results
  }

  /** Sends a forwarded body to the owner (resent if the owner was closing); appends it here if this handle took over meanwhile. */
  private async forward(groups: [number, number][], body: Buffer): Promise<number[]> {
    for (;;) {
      await this.ready
      const role = this.role
      switch (role.kind) {
        case 'owner':
          return appendForwarded(this.partitionList, groups, body)
        case 'reader':
          throw new LogError('READ_ONLY', 'this topic handle was opened readOnly', { path: this.dir })
        case 'failed':
          throw role.error
        case 'switching':
          await this.roleChange(role)
          continue
        case 'forwarder':
          try {
            return (await role.client.request({ op: 'send', groups }, body)) as number[]
          } catch (error) {
            if (!(error instanceof RetryElsewhere)) throw error
            await this.roleChange(role) // the owner closed before starting it: send it to the next one
          }
      }
    }
  }

  private async closeLogs(): Promise<void> {
    await Promise.all(this.partitionList.map((partition) => partition.log.close()))
  }

  // -------------------------------------------------------------------------------------------

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
