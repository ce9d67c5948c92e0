/**
 * TopicOwner: the one handle that writes a topic. Every other handle (other threads and processes
 * of the machine) forwards to it over a local socket (wire.ts), so the storage layer's single-writer
 * rule holds by construction: only the owner's SegmentedLogs append, and offsets are handed out by
 * one event loop.
 *
 * The owner also keeps the topic's consumer-group coordinators: members anywhere join, heartbeat,
 * commit and leave here, and the owner pushes each connection the new state of its members after
 * every rebalance, and the partitions' high watermarks after every acknowledged append, so that
 * waiting consumers elsewhere wake at once (no polling). A connection that closes (its process
 * died, even by SIGKILL) takes its members with it: their partitions move to the live members at
 * once instead of after sessionTimeoutMs.
 *
 * Closing the owner is graceful: requests that arrive once it started closing are answered with
 * `retry` (never applied), so forwarders resend them to whichever handle owns the topic next.
 */
import net from 'node:net'
import path from 'node:path'
import { resolveGroupOptions } from './consumer-group.js'
import { LogError } from './errors.js'
import { assert } from './assert.js'
import { FRAME_HEADER_BYTES, envelopeProblem } from './format.js'
import { GroupCoordinator, type GroupOptions } from './group-coordinator.js'
import { GROUP_OPS, GroupSessions } from './group-sessions.js'
import { OffsetStore } from './offset-store.js'
import type { Partition } from './partition.js'
import { type DeadLetterOpener, type SettleKind, ShareCoordinator, type ShareGroupConfig, resolveShareGroupOptions } from './share-coordinator.js'
import { ServedConnection, listenLocal } from './served-connection.js'
import { EnvelopeRun } from './producer-record.js'
import { FORWARDED_SLOT_BYTES, type WireHeader, forwardedSlotEnvelopeBytes, forwardedSlotTimestampMs } from './wire.js'

interface GroupEntry {
  options: GroupOptions
  coordinator: Promise<GroupCoordinator>
}

interface ShareGroupEntry {
  options: ShareGroupConfig
  coordinator: Promise<ShareCoordinator>
}

/** How long a closing owner waits for a forwarder to collect its answers and hang up. */
const CLOSE_WAIT_MS = 2000

export class TopicOwner {
  private readonly groups = new Map<string, GroupEntry>()
  private readonly shareGroups = new Map<string, ShareGroupEntry>()
  private readonly connections = new Set<OwnerConnection>()
  private server: net.Server | undefined
  private closing = false
  private readonly stopEnds = new AbortController()

  constructor(
    readonly dir: string,
    readonly partitions: readonly Partition[],
    /** Opens a share group's dead-letter topic (by name, a sibling of this topic). */
    private readonly openDeadLetters: DeadLetterOpener = (name) => Promise.reject(new LogError('INVALID_ARGUMENT', `no dead-letter topic '${name}' here`)),
  ) {}

  /**
   * The group's coordinator, opened with `options` on first use. Later callers that gave options
   * explicitly (`explicit`) must give the same ones.
   */
  coordinator(groupId: string, options: GroupOptions, explicit: boolean): Promise<GroupCoordinator> {
    let entry = this.groups.get(groupId)
    if (entry && explicit && JSON.stringify(entry.options) !== JSON.stringify(options)) {
      return Promise.reject(new LogError('INVALID_ARGUMENT', `consumer group '${groupId}' is already open with other options`))
    }
    if (!entry) {
      const resolved = options
      const groupDir = path.join(this.dir, 'groups', groupId, 'offsets')
      const ends = (partition: number): number => this.partitions[partition]!.highWatermark
      const coordinator = OffsetStore.open(groupDir).then((offsets) => new GroupCoordinator(groupId, this.partitions.length, resolved, offsets, ends))
      coordinator.catch(() => this.groups.delete(groupId))
      entry = { options: resolved, coordinator }
      this.groups.set(groupId, entry)
    }
    return entry.coordinator
  }

  /**
   * The share group's coordinator (its state replayed from `groups/<id>/share/`), opened with
   * `options` on first use. Later callers that gave options explicitly must give the same ones.
   */
  shareCoordinator(groupId: string, options: ShareGroupConfig, explicit: boolean): Promise<ShareCoordinator> {
    let entry = this.shareGroups.get(groupId)
    if (entry && explicit && JSON.stringify(entry.options) !== JSON.stringify(options)) {
      return Promise.reject(new LogError('INVALID_ARGUMENT', `share group '${groupId}' is already open with other options`))
    }
    if (!entry) {
      const dir = path.join(this.dir, 'groups', groupId, 'share')
      const coordinator = ShareCoordinator.open(groupId, dir, this.partitions, options, this.openDeadLetters)
      coordinator.catch(() => this.shareGroups.delete(groupId))
      entry = { options, coordinator }
      this.shareGroups.set(groupId, entry)
    }
    return entry.coordinator
  }

  existingShareCoordinator(groupId: string): Promise<ShareCoordinator> | undefined {
    return this.shareGroups.get(groupId)?.coordinator
  }

  /** The group's coordinator if it was opened. */
  existingCoordinator(groupId: string): Promise<GroupCoordinator> | undefined {
    return this.groups.get(groupId)?.coordinator
  }

  /** Starts serving forwarders on `address`, and announcing high watermarks to them. */
  async listen(address: string): Promise<void> {
    const server = await listenLocal(address, (socket) => this.accept(socket))
    this.server = server
    for (const partition of this.partitions) void this.announceEnds(partition)
  }

  /**
   * Stops serving: every connection is told `closing`; requests from then on are answered `retry`
   * (never applied) until the forwarder, having its answers, hangs up. Then the groups close.
   */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.stopEnds.abort()
    const server = this.server
    server?.close()
    await Promise.all([...this.connections].map((connection) => connection.closeGracefully(CLOSE_WAIT_MS)))
    const coordinators = await Promise.allSettled([...this.groups.values()].map((entry) => entry.coordinator))
    await Promise.all(coordinators.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)))
    const shares = await Promise.allSettled([...this.shareGroups.values()].map((entry) => entry.coordinator))
    await Promise.all(shares.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)))
  }

  get isClosing(): boolean {
    return this.closing
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy()
      return
    }
    const connection = new OwnerConnection(this, socket)
    this.connections.add(connection)
    socket.once('close', () => {
      this.connections.delete(connection)
      void connection.forgetMembers()
    })
  }

  /** Pushes a partition's high watermark to every connection each time it moves. */
  private async announceEnds(partition: Partition): Promise<void> {
    let announced = partition.highWatermark
    const signal = this.stopEnds.signal
    while (!signal.aborted && !partition.log.isClosed) {
      await partition.log.waitForRecords(announced, signal)
      const end = partition.highWatermark
      if (end <= announced) continue
      announced = end
      for (const connection of this.connections) connection.announceEnd(partition.id, end)
    }
  }
}

/** One forwarder's connection: its requests, the members it added, and what it is told. */
class OwnerConnection extends ServedConnection {
  private readonly groupSessions = new GroupSessions((header) => this.send(header))
  /** Share group member ids added over this connection, per group id. */
  private readonly shareMembers = new Map<string, Set<string>>()
  /** Share groups whose members here wait: told (once) when the coordinator's version grows. */
  private readonly shareWaits = new Map<string, () => void>()
  private pendingEnds = new Map<number, number>()

  constructor(
    private readonly owner: TopicOwner,
    socket: net.Socket,
  ) {
    super(socket, () => owner.isClosing)
  }

  announceEnd(partition: number, end: number): void {
    if (this.pendingEnds.size === 0) setImmediate(() => this.flushEnds())
    this.pendingEnds.set(partition, end)
  }

  /** The connection closed: its members leave their groups now (their process may be gone). */
  async forgetMembers(): Promise<void> {
    await this.groupSessions.forget((groupId) => this.owner.existingCoordinator(groupId))
    for (const remove of this.shareWaits.values()) remove()
    this.shareWaits.clear()
    for (const [groupId, memberIds] of this.shareMembers) {
      const coordinator = await this.owner.existingShareCoordinator(groupId)?.catch(() => undefined)
      if (coordinator && !coordinator.isClosed) for (const memberId of memberIds) coordinator.leave(memberId)
    }
    this.shareMembers.clear()
  }

  private flushEnds(): void {
    const ends = [...this.pendingEnds]
    this.pendingEnds = new Map()
    if (ends.length > 0) this.send({ push: 'ends', ends })
  }

  protected async perform(header: WireHeader, body: Buffer): Promise<unknown> {
    if (typeof header.op === 'string' && GROUP_OPS.has(header.op)) return this.groupSessions.perform(header, await this.coordinatorOf(header))
    switch (header.op) {
      case 'hello':
        return { partitions: this.owner.partitions.length, ends: this.owner.partitions.map((partition) => partition.highWatermark) }
      case 'send':
        return appendForwarded(this.owner.partitions, header.groups, body)
      case 'shareJoin':
      case 'shareAcquire':
      case 'shareSettle':
      case 'shareHeartbeat':
      case 'shareLeave':
        return this.performShare(header)
      default:
        throw new LogError('INVALID_ARGUMENT', `unknown operation '${String(header.op)}'`)
    }
  }

  /** Every group request carries the group's options (resolved) and whether the caller chose them. */
  private coordinatorOf(header: WireHeader): Promise<GroupCoordinator> {
    return this.owner.coordinator(String(header.group), resolveGroupOptions(header.options), header.explicit === true)
  }

  /** Share group calls: the coordinator's plain-data protocol (share-link.ts). */
  private async performShare(header: WireHeader): Promise<unknown> {
    const groupId = String(header.group)
    const coordinator = await this.owner.shareCoordinator(groupId, resolveShareGroupOptions(header.options), header.explicit === true)
    const memberId = header.memberId === undefined ? undefined : String(header.memberId)
    switch (header.op) {
      case 'shareJoin': {
        const joined = coordinator.join(memberId)
        let members = this.shareMembers.get(groupId)
        if (!members) this.shareMembers.set(groupId, (members = new Set()))
        members.add(joined)
        return { memberId: joined }
      }
      case 'shareAcquire': {
        const answer = await coordinator.acquire(String(memberId), Number(header.maxRecords))
        if (answer.records.length === 0) this.watchShare(groupId, coordinator, answer.version)
        const partitions = new Set<number>()
        for (let i = 0; i < answer.records.length; i += 3) partitions.add(answer.records[i]!)
        return { ...answer, ends: [...partitions].map((partition) => [partition, this.owner.partitions[partition]!.highWatermark]) }
      }
      case 'shareSettle':
        if (!Array.isArray(header.items)) throw new LogError('INVALID_ARGUMENT', 'shareSettle needs items')
        await coordinator.settle(String(memberId), header.kind as SettleKind, header.items as number[], Number(header.delayMs ?? 0))
        return null
      case 'shareHeartbeat':
        coordinator.heartbeat(String(memberId))
        return null
      default:
        coordinator.leave(String(memberId))
        this.shareMembers.get(groupId)?.delete(String(memberId))
        return null
    }
  }

  /** A member here found nothing: push the coordinator's version once it grows (records may be available again). */
  private watchShare(groupId: string, coordinator: ShareCoordinator, answered: number): void {
    if (coordinator.version > answered) return this.send({ push: 'share', group: groupId, version: coordinator.version })
    if (this.shareWaits.has(groupId)) return
    const remove = coordinator.onChange(() => {
      remove()
      this.shareWaits.delete(groupId)
      this.send({ push: 'share', group: groupId, version: coordinator.version })
    })
    this.shareWaits.set(groupId, remove)
  }
}

/** Appends a forwarded body, partition by partition (each share atomic); resolves to each share's first offset. */
export function appendForwarded(partitions: readonly Partition[], groups: unknown, body: Buffer): Promise<number[]> {
  if (!Array.isArray(groups)) throw new LogError('INVALID_ARGUMENT', 'send needs partition groups')
  for (const group of groups as unknown[]) {
    const [partitionId, count] = Array.isArray(group) ? (group as unknown[]) : []
    if (typeof partitionId !== 'number' || !partitions[partitionId] || !Number.isInteger(count) || (count as number) < 1) {
      throw new LogError('UNKNOWN_PARTITION', `partition ${String(partitionId)} does not exist`)
    }
  }
  const shares: [Partition, ForwardedShare][] = []
  let at = 0
  for (const [partitionId, count] of groups as [number, number][]) {
    const share = new ForwardedShare(body, at, count)
    at = share.end
    shares.push([partitions[partitionId]!, share])
  }
  if (at !== body.length) throw new LogError('INVALID_ARGUMENT', 'forwarded batch has trailing bytes')
  const now = Date.now()
  return Promise.all(shares.map(([partition, share]) => partition.log.appendFrom(share.count, new EnvelopeRun(body, share.ends), { timestampMs: share.timestampsMs(now) })))
}

/**
 * One share of a forwarded body: `count` slots and envelopes from `start`, each envelope checked
 * before use. Laid out as the owner's own scratches are (EnvelopeRun reads both).
 */
class ForwardedShare {
  /** Envelope i is bytes [ends[i] + FORWARDED_SLOT_BYTES, ends[i + 1]) of the body. */
  readonly ends: number[] = []
  /** Given timestamps (NaN: append time), only when some record has one. */
  private timestamps: number[] | undefined
  readonly end: number

  constructor(
    body: Buffer,
    start: number,
    readonly count: number,
  ) {
    let at = start
    this.ends.push(at)
    const view = new DataView(body.buffer, body.byteOffset, body.length)
    for (let i = 0; i < count; i++) {
      if (at + FORWARDED_SLOT_BYTES > body.length) throw new LogError('INVALID_ARGUMENT', 'forwarded batch is cut short')
      const envelopeStart = at + FORWARDED_SLOT_BYTES
      const envelopeEnd = envelopeStart + forwardedSlotEnvelopeBytes(view, at)
      if (envelopeEnd > body.length) throw new LogError('INVALID_ARGUMENT', 'forwarded batch is cut short')
      const problem = envelopeProblem(body, envelopeStart, envelopeEnd)
      if (problem !== undefined) throw new LogError('INVALID_ARGUMENT', `forwarded record ${i} is not a valid envelope (${problem})`)
      const timestampMs = forwardedSlotTimestampMs(view, at)
      if (!Number.isNaN(timestampMs)) (this.timestamps ??= new Array<number>(count).fill(Number.NaN))[i] = timestampMs
      this.ends.push(envelopeEnd)
      at = envelopeEnd
    }
    this.end = at
  }

  timestampsMs(now: number): number | number[] {
    if (this.timestamps === undefined) return now
    return this.timestamps.map((timestampMs) => (Number.isNaN(timestampMs) ? now : timestampMs))
  }
}

assert(FORWARDED_SLOT_BYTES === FRAME_HEADER_BYTES, "a forwarded record's slot is where its frame header goes")
