/**
 * GroupCoordinator: the state of one consumer group on one topic: its members, the generation, who
 * owns which partition, and the fencing of commits.
 *
 * Every change of membership (join, leave, a member silent for sessionTimeoutMs) is a rebalance: the
 * generation grows by one and partitions are reassigned at once by the group's strategy, so at any
 * moment each partition has at most one owner. A commit is accepted only from the partition's owner
 * and only for the current generation; anything else is FENCED. Offsets never move backwards
 * unless the member sought (`rewind`). The coordinator speaks in plain data (ids, numbers, arrays)
 * so that the same protocol can later be carried over a MessagePort or IPC to another thread.
 */
import { randomUUID } from 'node:crypto'
import { type AssignmentStrategy, assignPartitions } from './assignment.js'
import { LogError } from './errors.js'
import type { OffsetStore } from './offset-store.js'

export interface GroupOptions {
  assignmentStrategy: AssignmentStrategy
  sessionTimeoutMs: number
  autoOffsetReset: 'earliest' | 'latest'
}

interface Member {
  id: string
  lastSeenMs: number
}

export interface MemberView {
  memberId: string
  generation: number
  assignment: readonly number[]
}

export class GroupCoordinator {
  private readonly members = new Map<string, Member>()
  private assignment = new Map<string, number[]>()
  private owners = new Map<number, string>()
  private latestResets = new Map<number, number>()
  private generationValue: number
  private readonly listeners = new Set<() => void>()
  private readonly expiryTimer: NodeJS.Timeout
  private closed = false

  private partitionCountValue: number

  constructor(
    readonly groupId: string,
    partitionCount: number,
    readonly options: GroupOptions,
    private readonly offsets: OffsetStore,
    /** A partition's end now (its high watermark): where 'latest' starts, fixed when it is assigned. */
    private readonly partitionEnd: (partition: number) => number,
  ) {
    this.partitionCountValue = partitionCount
    this.generationValue = offsets.generation
    this.expiryTimer = setInterval(() => this.expireSilentMembers(Date.now()), Math.max(10, Math.floor(options.sessionTimeoutMs / 2)))
    this.expiryTimer.unref()
  }

  get generation(): number {
    return this.generationValue
  }

  /** Partitions the group shares (a group over several topics counts every topic's partitions). */
  get partitionCount(): number {
    return this.partitionCountValue
  }

  /** More partitions to share (a group subscribed to a pattern found a new topic): a rebalance. */
  addPartitions(count: number): void {
    this.checkOpen()
    if (count <= 0) return
    this.partitionCountValue += count
    this.rebalance()
  }

  get memberIds(): string[] {
    return [...this.members.keys()]
  }

  /** Adds a member (a new id unless one is given) and rebalances. */
  join(memberId?: string): MemberView {
    this.checkOpen()
    const id = memberId ?? `${this.groupId}-${randomUUID()}`
    if (typeof id !== 'string' || id.length === 0 || id.length > 255) throw new LogError('INVALID_ARGUMENT', 'memberId must be a string of 1–255 characters')
    if (this.members.has(id)) throw new LogError('INVALID_ARGUMENT', `member '${id}' is already in group '${this.groupId}'`)
    this.members.set(id, { id, lastSeenMs: Date.now() })
    this.rebalance()
    return this.view(id)
  }

  /** Removes a member; its partitions move to the others. */
  leave(memberId: string): void {
    if (this.members.delete(memberId)) this.rebalance()
  }

  /** A member shows it is alive; returns its current view, or throws UNKNOWN_MEMBER if it was removed. */
  heartbeat(memberId: string): MemberView {
    this.checkOpen()
    const member = this.members.get(memberId)
    if (!member) throw new LogError('UNKNOWN_MEMBER', `member '${memberId}' is not in group '${this.groupId}' (it left or was silent too long)`)
    member.lastSeenMs = Date.now()
    return this.view(memberId)
  }

  isMember(memberId: string): boolean {
    return this.members.has(memberId)
  }

  assignmentOf(memberId: string): readonly number[] {
    return this.assignment.get(memberId) ?? []
  }

  committed(partition: number): number | undefined {
    return this.offsets.committed(partition)
  }

  /**
   * Where the owner of `partition` starts: the newest committed offset, counting a commit still
   * being written (the previous owner's last commit must not be delivered or refused again), else
   * the end as of the assignment for 'latest', else undefined ('earliest': the partition's start).
   */
  startingOffset(partition: number): number | undefined {
    return this.offsets.latestRequested(partition) ?? this.latestResets.get(partition)
  }

  /**
   * Stores offsets for `memberId` in `generation`. Refused with FENCED when the generation is not
   * the current one or the member does not own a partition; an offset below the newest committed
   * one is refused unless `rewind` lists the partition (the member sought back).
   */
  async commit(memberId: string, generation: number, offsets: readonly [number, number][], rewind: ReadonlySet<number>): Promise<void> {
    this.checkOpen()
    if (!this.members.has(memberId)) throw new LogError('FENCED', `member '${memberId}' is no longer in group '${this.groupId}'`)
    if (generation !== this.generationValue) {
      throw new LogError('FENCED', `commit from generation ${generation}, but group '${this.groupId}' is at generation ${this.generationValue}`)
    }
    for (const [partition, offset] of offsets) {
      if (this.owners.get(partition) !== memberId) {
        throw new LogError('FENCED', `member '${memberId}' does not own partition ${partition} in generation ${generation}`)
      }
      const previous = this.offsets.latestRequested(partition)
      if (previous !== undefined && offset < previous && !rewind.has(partition)) {
        throw new LogError('INVALID_ARGUMENT', `commit would move partition ${partition} back from ${previous} to ${offset}; seek first to replay`)
      }
    }
    this.members.get(memberId)!.lastSeenMs = Date.now()
    await this.offsets.commit(generation, offsets)
  }

  /** Calls `listener` after every rebalance and on close; returns a function that removes it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  expireSilentMembers(nowMs: number): void {
    let removed = false
    for (const member of this.members.values()) {
      if (nowMs - member.lastSeenMs > this.options.sessionTimeoutMs) {
        this.members.delete(member.id)
        removed = true
      }
    }
    if (removed) this.rebalance()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.expiryTimer)
    this.members.clear()
    this.notify()
    await this.offsets.close()
  }

  get isClosed(): boolean {
    return this.closed
  }

  private rebalance(): void {
    this.generationValue++
    this.assignment = assignPartitions(this.options.assignmentStrategy, [...this.members.keys()], this.partitionCount, this.assignment)
    this.owners = new Map()
    for (const [memberId, partitions] of this.assignment) for (const partition of partitions) this.owners.set(partition, memberId)
    if (this.options.autoOffsetReset === 'latest') {
      for (let partition = 0; partition < this.partitionCount; partition++) {
        if (this.offsets.latestRequested(partition) === undefined && !this.latestResets.has(partition)) {
          this.latestResets.set(partition, this.partitionEnd(partition))
        }
      }
    }
    this.notify()
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener()
  }

  private view(memberId: string): MemberView {
    return { memberId, generation: this.generationValue, assignment: this.assignmentOf(memberId) }
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `consumer group '${this.groupId}' is closed`)
  }
}
