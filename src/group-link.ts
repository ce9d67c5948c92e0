/**
 * GroupLink: how a Consumer and a ConsumerGroup reach their group's coordinator, wherever it lives.
 *
 * The coordinator (group-coordinator.ts) lives with the topic's owner. A handle in the owner's own
 * thread talks to it directly (LocalGroupLink: every answer is exact and immediate); a handle in
 * another thread or process talks to it over the owner connection (owner-client.ts), keeping the
 * newest state the owner pushed. Either way a member sees its state as plain data: generation,
 * assignment and where each assigned partition starts. A handle whose owner changes (the owner died
 * and this handle or another took over) switches links; its members then rejoin the new owner.
 */
import { LogError } from './errors.js'
import type { GroupCoordinator, GroupOptions } from './group-coordinator.js'

export interface MemberState {
  generation: number
  assignment: readonly number[]
  /** Per assigned partition: where the member starts (committed offset or 'latest' reset), if known. */
  starts: ReadonlyMap<number, number | undefined>
}

export interface GroupInfo {
  generation: number
  members: { memberId: string; assignment: readonly number[] }[]
  /** Per partition: the committed offset (the next offset to read), or undefined. */
  committed: (number | undefined)[]
}

export interface GroupLink {
  readonly groupId: string
  readonly options: GroupOptions
  readonly isClosed: boolean
  /** Adds a member (a new id unless one is given) and resolves to its id once its state is known. */
  join(memberId: string | undefined): Promise<string>
  /** The member's newest known state; undefined when it is not (or no longer) a member. */
  state(memberId: string): MemberState | undefined
  /** Tells the coordinator the member is alive (may be rate-limited; never throws). */
  heartbeat(memberId: string): void
  commit(memberId: string, generation: number, offsets: readonly [number, number][], rewinds: ReadonlySet<number>): Promise<void>
  leave(memberId: string): Promise<void>
  info(): Promise<GroupInfo>
  /** Calls `listener` when any member state may have changed (rebalance, removal, close). */
  onChange(listener: () => void): () => void
}

/** Plain data describing `memberId` in `coordinator` right now. */
export function memberState(coordinator: GroupCoordinator, memberId: string): MemberState | undefined {
  if (!coordinator.isMember(memberId)) return undefined
  const assignment = coordinator.assignmentOf(memberId)
  return { generation: coordinator.generation, assignment, starts: new Map(assignment.map((partition) => [partition, coordinator.startingOffset(partition)])) }
}

export function groupInfo(coordinator: GroupCoordinator): GroupInfo {
  return {
    generation: coordinator.generation,
    members: coordinator.memberIds.map((memberId) => ({ memberId, assignment: coordinator.assignmentOf(memberId) })),
    committed: Array.from({ length: coordinator.partitionCount }, (_, partition) => coordinator.committed(partition)),
  }
}

/** The owner's own thread: calls go straight to the coordinator. */
export class LocalGroupLink implements GroupLink {
  /** The last state built per member, reused while the generation stays (poll asks on every call). */
  private readonly states = new Map<string, MemberState>()

  constructor(private readonly coordinator: GroupCoordinator) {}

  get groupId(): string {
    return this.coordinator.groupId
  }

  get options(): GroupOptions {
    return this.coordinator.options
  }

  get isClosed(): boolean {
    return this.coordinator.isClosed
  }

  async join(memberId: string | undefined): Promise<string> {
    return this.coordinator.join(memberId).memberId
  }

  state(memberId: string): MemberState | undefined {
    if (!this.coordinator.isMember(memberId)) {
      this.states.delete(memberId)
      return undefined
    }
    const known = this.states.get(memberId)
    if (known && known.generation === this.coordinator.generation) return known
    const state = memberState(this.coordinator, memberId)!
    this.states.set(memberId, state)
    return state
  }

  heartbeat(memberId: string): void {
    if (this.coordinator.isClosed || !this.coordinator.isMember(memberId)) return
    this.coordinator.heartbeat(memberId)
  }

  commit(memberId: string, generation: number, offsets: readonly [number, number][], rewinds: ReadonlySet<number>): Promise<void> {
    return this.coordinator.commit(memberId, generation, offsets, rewinds)
  }

  async leave(memberId: string): Promise<void> {
    this.coordinator.leave(memberId)
  }

  async info(): Promise<GroupInfo> {
    return groupInfo(this.coordinator)
  }

  onChange(listener: () => void): () => void {
    return this.coordinator.onChange(listener)
  }
}

/**
 * The part of a link that survives a change of owner: it forwards to the current link, and when the
 * handle switches owners (switchTo) its members find themselves removed and rejoin the next one.
 */
export abstract class SwitchableLink<L extends { onChange(listener: () => void): () => void }> {
  private readonly listeners = new Set<() => void>()
  private removeInner: () => void

  constructor(protected inner: L) {
    this.removeInner = inner.onChange(() => this.notify())
  }

  switchTo(inner: L): void {
    this.removeInner()
    this.inner = inner
    this.removeInner = inner.onChange(() => this.notify())
    this.notify()
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener()
  }
}

/** A handle's link to one consumer group that survives a change of owner. */
export class SwitchableGroupLink extends SwitchableLink<GroupLink> implements GroupLink {
  get groupId(): string {
    return this.inner.groupId
  }

  get options(): GroupOptions {
    return this.inner.options
  }

  get isClosed(): boolean {
    return this.inner.isClosed
  }

  join(memberId: string | undefined): Promise<string> {
    return this.inner.join(memberId)
  }

  state(memberId: string): MemberState | undefined {
    return this.inner.state(memberId)
  }

  heartbeat(memberId: string): void {
    this.inner.heartbeat(memberId)
  }

  commit(memberId: string, generation: number, offsets: readonly [number, number][], rewinds: ReadonlySet<number>): Promise<void> {
    return this.inner.commit(memberId, generation, offsets, rewinds)
  }

  leave(memberId: string): Promise<void> {
    return this.inner.leave(memberId)
  }

  info(): Promise<GroupInfo> {
    return this.inner.info()
  }
}

export function closedGroupError(groupId: string): LogError {
  return new LogError('LOG_CLOSED', `consumer group '${groupId}' is closed`)
}
