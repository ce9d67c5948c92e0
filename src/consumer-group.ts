/**
 * ConsumerGroup: the application's handle on one group of a topic. Members `join` and share the
 * partitions; the group's committed offsets and lag are readable without joining. All handles of
 * one group id on one Topic share a single coordinator (see group-coordinator.ts).
 */
import { ASSIGNMENT_STRATEGIES, type AssignmentStrategy } from './assignment.js'
import { Consumer } from './consumer.js'
import { LogError } from './errors.js'
import type { GroupOptions } from './group-coordinator.js'
import type { GroupLink } from './group-link.js'
import type { Partition } from './partition.js'

export interface ConsumerGroupOptions {
  /** Where a member starts on a partition with no committed offset. Default 'earliest'. */
  autoOffsetReset?: 'earliest' | 'latest'
  /** How partitions are shared. Default 'range'. */
  assignmentStrategy?: AssignmentStrategy
  /** How long a silent member keeps its partitions. Default 30,000 ms. */
  sessionTimeoutMs?: number
}

export interface PartitionLag {
  partition: number
  /** The next offset to read, or undefined if the group never committed on this partition. */
  committed: number | undefined
  /** The partition's end (its high watermark). */
  endOffset: number
  /** endOffset − committed (from the partition's start when nothing was committed). */
  lag: number
}

export const DEFAULT_GROUP_OPTIONS: GroupOptions = {
  autoOffsetReset: 'earliest',
  assignmentStrategy: 'range',
  sessionTimeoutMs: 30_000,
}

export function resolveGroupOptions(options: unknown): GroupOptions {
  if (options === undefined) return { ...DEFAULT_GROUP_OPTIONS }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new LogError('INVALID_ARGUMENT', 'group options must be an object')
  const resolved: Record<string, unknown> = { ...DEFAULT_GROUP_OPTIONS }
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue
    if (!(name in DEFAULT_GROUP_OPTIONS)) throw new LogError('INVALID_ARGUMENT', `unknown group option '${name}'`)
    resolved[name] = value
  }
  const { autoOffsetReset, assignmentStrategy, sessionTimeoutMs } = resolved as unknown as GroupOptions
  if (autoOffsetReset !== 'earliest' && autoOffsetReset !== 'latest') {
    throw new LogError('INVALID_ARGUMENT', `autoOffsetReset must be 'earliest' or 'latest', got ${String(autoOffsetReset)}`)
  }
  if (!ASSIGNMENT_STRATEGIES.includes(assignmentStrategy)) {
    throw new LogError('INVALID_ARGUMENT', `assignmentStrategy must be one of ${ASSIGNMENT_STRATEGIES.join(', ')}, got ${String(assignmentStrategy)}`)
  }
  if (!Number.isInteger(sessionTimeoutMs) || sessionTimeoutMs < 10 || sessionTimeoutMs > 2 ** 31 - 1) {
    throw new LogError('INVALID_ARGUMENT', `sessionTimeoutMs must be an integer in [10, 2^31-1], got ${String(sessionTimeoutMs)}`)
  }
  return { autoOffsetReset, assignmentStrategy, sessionTimeoutMs }
}

export class ConsumerGroup {
  constructor(
    readonly groupId: string,
    /** Resolves to the group's link (the coordinator is opened on first use). */
    private readonly link: () => Promise<GroupLink>,
    private readonly partitions: readonly Partition[],
  ) {}

  /** Joins the group as a new member (or with the given id); resolves to the member. */
  async join(options: { memberId?: string } = {}): Promise<Consumer> {
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'join options must be an object')
    const link = await this.link()
    const memberId = await link.join(options.memberId)
    return new Consumer(memberId, link, this.partitions)
  }

  /** The group's committed offset (the next offset to read) on `partition`, or undefined. */
  async committed(partition: number): Promise<number | undefined> {
    this.checkPartition(partition)
    return (await (await this.link()).info()).committed[partition]
  }

  /** Per partition: how far the committed offset is behind the end. */
  async lag(): Promise<PartitionLag[]> {
    const info = await (await this.link()).info()
    return this.partitions.map((partition) => {
      const committed = info.committed[partition.id]
      const endOffset = partition.highWatermark
      return { partition: partition.id, committed, endOffset, lag: endOffset - Math.max(committed ?? partition.startOffset, partition.startOffset) }
    })
  }

  /** The current generation (grows by one at every rebalance). */
  async generation(): Promise<number> {
    return (await (await this.link()).info()).generation
  }

  /** Member ids and what each owns now. */
  async members(): Promise<{ memberId: string; assignment: readonly number[] }[]> {
    return (await (await this.link()).info()).members
  }

  private checkPartition(partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitions.length) {
      throw new LogError('UNKNOWN_PARTITION', `partition ${String(partition)} does not exist (the topic has ${this.partitions.length})`)
    }
  }
}
