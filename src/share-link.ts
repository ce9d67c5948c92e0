/**
 * ShareLink: how a ShareConsumer reaches its share group's coordinator, wherever it lives (as
 * group-link.ts does for consumer groups). In the owner's thread calls go straight to the
 * coordinator; elsewhere they travel over the owner connection (ops `shareJoin`, `shareAcquire`,
 * `shareSettle`, `shareHeartbeat`, `shareLeave`), and the owner pushes `share` (the coordinator's
 * new version) to a connection whose members wait, when records become available again (released,
 * lock expired, delay passed, window moved). Records never cross the socket: an acquisition answers
 * flat [partition, offset, deliveryCount] triples (plus the partitions' high watermarks) and the
 * member reads the records from its own files; settlements send flat [partition, offset] pairs.
 */
import { LogError } from './errors.js'
import type { AcquiredRecords, SettleItems, SettleKind, ShareCoordinator, ShareGroupConfig } from './share-coordinator.js'
import { SwitchableLink } from './group-link.js'
import type { WireHeader } from './wire.js'

export interface ShareAcquired {
  /** Flat [partition, offset, deliveryCount] triples. */
  records: AcquiredRecords
  /** The coordinator's version when it answered; a newer `ShareLink.version` means: poll again. */
  version: number
  /** [partition, high watermark] for the partitions of `records` (remote links). */
  ends: [number, number][]
}

export interface ShareLink {
  readonly groupId: string
  readonly options: ShareGroupConfig
  readonly isClosed: boolean
  /** The newest coordinator version this link knows. */
  readonly version: number
  join(memberId: string | undefined): Promise<string>
  acquire(memberId: string, maxRecords: number): Promise<ShareAcquired>
  settle(memberId: string, kind: SettleKind, items: SettleItems, delayMs: number): Promise<void>
  /** Tells the coordinator the member is alive (never throws). */
  heartbeat(memberId: string): void
  leave(memberId: string): Promise<void>
  /** Calls `listener` when the version grows, the link switches owners, or it closes. */
  onChange(listener: () => void): () => void
}

/** The owner's own thread. */
export class LocalShareLink implements ShareLink {
  constructor(private readonly coordinator: ShareCoordinator) {}

  get groupId(): string {
    return this.coordinator.groupId
  }

  get options(): ShareGroupConfig {
    return this.coordinator.options
  }

  get isClosed(): boolean {
    return this.coordinator.isClosed
  }

  get version(): number {
    return this.coordinator.version
  }

  async join(memberId: string | undefined): Promise<string> {
    return this.coordinator.join(memberId)
  }

  async acquire(memberId: string, maxRecords: number): Promise<ShareAcquired> {
    return { ...(await this.coordinator.acquire(memberId, maxRecords)), ends: [] }
  }

  settle(memberId: string, kind: SettleKind, items: SettleItems, delayMs: number): Promise<void> {
    return this.coordinator.settle(memberId, kind, items, delayMs)
  }

  heartbeat(memberId: string): void {
    if (!this.coordinator.isClosed && this.coordinator.isMember(memberId)) this.coordinator.heartbeat(memberId)
  }

  async leave(memberId: string): Promise<void> {
    this.coordinator.leave(memberId)
  }

  onChange(listener: () => void): () => void {
    return this.coordinator.onChange(listener)
  }
}

/** A share group reached over the owner connection. */
export class RemoteShareLink implements ShareLink {
  private readonly listeners = new Set<() => void>()
  private versionValue = 0
  private closed = false

  constructor(
    readonly groupId: string,
    readonly options: ShareGroupConfig,
    private readonly explicit: boolean,
    private readonly request: (header: WireHeader) => Promise<unknown>,
  ) {}

  get isClosed(): boolean {
    return this.closed
  }

  get version(): number {
    return this.versionValue
  }

  async join(memberId: string | undefined): Promise<string> {
    const answer = (await this.shareRequest('shareJoin', memberId === undefined ? {} : { memberId })) as { memberId: string }
    return answer.memberId
  }

  async acquire(memberId: string, maxRecords: number): Promise<ShareAcquired> {
    const answer = (await this.shareRequest('shareAcquire', { memberId, maxRecords })) as ShareAcquired
    this.versionValue = Math.max(this.versionValue, answer.version)
    return answer
  }

  async settle(memberId: string, kind: SettleKind, items: SettleItems, delayMs: number): Promise<void> {
    await this.shareRequest('shareSettle', { memberId, kind, items, delayMs })
  }

  heartbeat(memberId: string): void {
    this.shareRequest('shareHeartbeat', { memberId }).catch(() => undefined) // a removed member finds out at its next poll
  }

  async leave(memberId: string): Promise<void> {
    await this.shareRequest('shareLeave', { memberId })
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The owner pushed the coordinator's new version. */
  receiveVersion(version: number): void {
    if (version <= this.versionValue) return
    this.versionValue = version
    this.notify()
  }

  /** The handle closed: later calls of its members throw LOG_CLOSED. */
  close(): void {
    this.closed = true
    this.notify()
  }

  /** This link's owner is gone: waiting members wake and rejoin through the next link. */
  detach(): void {
    this.notify()
  }

  private shareRequest(op: string, fields: WireHeader): Promise<unknown> {
    return this.request({ op, group: this.groupId, options: this.options, explicit: this.explicit, ...fields })
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener()
  }
}

/** A handle's link to one share group that survives a change of owner (members rejoin the next one). */
export class SwitchableShareLink extends SwitchableLink<ShareLink> implements ShareLink {
  get groupId(): string {
    return this.inner.groupId
  }

  get options(): ShareGroupConfig {
    return this.inner.options
  }

  get isClosed(): boolean {
    return this.inner.isClosed
  }

  get version(): number {
    return this.inner.version
  }

  join(memberId: string | undefined): Promise<string> {
    return this.inner.join(memberId)
  }

  acquire(memberId: string, maxRecords: number): Promise<ShareAcquired> {
    return this.inner.acquire(memberId, maxRecords)
  }

  settle(memberId: string, kind: SettleKind, items: SettleItems, delayMs: number): Promise<void> {
    return this.inner.settle(memberId, kind, items, delayMs)
  }

  heartbeat(memberId: string): void {
    this.inner.heartbeat(memberId)
  }

  leave(memberId: string): Promise<void> {
    return this.inner.leave(memberId)
  }
}

export function closedShareGroupError(groupId: string): LogError {
  return new LogError('LOG_CLOSED', `share group '${groupId}' is closed`)
}
