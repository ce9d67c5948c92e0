/**
 * Partition assignment: which member of a consumer group reads which partitions of one topic
 * (partitions 0..partitionCount-1). Pure functions with no I/O, used by the queue layer's consumer
 * group at each rebalance.
 *
 * Invariants of every result: it has an entry (possibly empty) for every member, each list is sorted
 * ascending, and when there is at least one member every partition appears in exactly one list.
 * Members are sorted by id first, as Kafka's assignors do, so the result never depends on the order
 * members joined. Inputs come from the consumer group, not from users, so bad ones are asserted.
 *
 * - range: Kafka's RangeAssignor for one topic, contiguous runs; the first P % M members get one extra.
 * - round-robin: Kafka's RoundRobinAssignor for one topic, partition p to member p % M.
 * - sticky: balanced like round-robin, but moves only the partitions balance forces to move (in the
 *   spirit of Kafka's StickyAssignor; this is a simpler exact algorithm for the one-topic case).
 */
import { assert } from './assert.js'

export type AssignmentStrategy = 'range' | 'round-robin' | 'sticky'
export const ASSIGNMENT_STRATEGIES: readonly AssignmentStrategy[] = ['range', 'round-robin', 'sticky']

/**
 * members: member ids currently in the group (any order; the function sorts them by id, as Kafka does).
 * previous: the assignment of the previous generation (used by 'sticky'; ignored by the others).
 * Returns a Map with an entry (possibly an empty array) for EVERY member, partition lists sorted ascending.
 * Every partition is assigned to exactly one member when there is at least one member.
 */
export function assignPartitions(
  strategy: AssignmentStrategy,
  members: readonly string[],
  partitionCount: number,
  previous?: ReadonlyMap<string, readonly number[]>,
): Map<string, number[]> {
  assert(Number.isSafeInteger(partitionCount), 'partitionCount must be an integer')
  assert(partitionCount >= 0, 'partitionCount must not be negative')
  const sorted = [...members].sort(compareIds)
  for (let index = 1; index < sorted.length; index++) {
    assert(sorted[index - 1] !== sorted[index], 'member ids must be unique')
  }
  switch (strategy) {
    case 'range':
      return assignRange(sorted, partitionCount)
    case 'round-robin':
      return assignRoundRobin(sorted, partitionCount)
    case 'sticky':
      return assignSticky(sorted, partitionCount, previous ?? new Map())
  }
}

/** Plain code-unit order, like Java's String.compareTo; localeCompare would vary by locale. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function assignRange(members: readonly string[], partitionCount: number): Map<string, number[]> {
  const result = new Map<string, number[]>()
  if (members.length === 0) return result
  const base = Math.floor(partitionCount / members.length)
  const extra = partitionCount % members.length
  members.forEach((member, index) => {
    const start = index * base + Math.min(index, extra)
    const count = base + (index < extra ? 1 : 0)
    result.set(member, Array.from({ length: count }, (_, offset) => start + offset))
  })
  return result
}

function assignRoundRobin(members: readonly string[], partitionCount: number): Map<string, number[]> {
  const result = new Map<string, number[]>(members.map((member) => [member, []]))
  for (let partition = 0; partition < partitionCount; partition++) {
    const member = members[partition % members.length]
    if (member === undefined) break // No members: nothing is assigned.
    ownedBy(result, member).push(partition)
  }
  return result
}

/**
 * A balanced assignment has exactly P % M members at ceil(P/M) and the rest at floor(P/M); each
 * member must give up whatever it keeps beyond its own target. Giving the larger targets to the
 * members that keep the most makes that total as small as it can be, and every partition a member
 * gives up is then needed by someone below target, so nothing else moves: the result is minimal.
 */
function assignSticky(
  members: readonly string[],
  partitionCount: number,
  previous: ReadonlyMap<string, readonly number[]>,
): Map<string, number[]> {
  const result = keptPartitions(members, partitionCount, previous)
  if (members.length === 0) return result
  const targets = stickyTargets(members, partitionCount, result)
  const owned = new Set<number>()
  for (const [member, partitions] of result) {
    // Members above target give up their highest-numbered partitions (lists are sorted ascending).
    partitions.length = Math.min(partitions.length, targetOf(targets, member))
    for (const partition of partitions) owned.add(partition)
  }
  for (let partition = 0; partition < partitionCount; partition++) {
    if (owned.has(partition)) continue
    ownedBy(result, neediestMember(members, result, targets)).push(partition)
  }
  for (const partitions of result.values()) partitions.sort((a, b) => a - b)
  return result
}

/**
 * What each current member owned last generation, sorted ascending. Members that left release theirs;
 * partitions at or past partitionCount (the topic's partition count changed) are dropped.
 */
function keptPartitions(
  members: readonly string[],
  partitionCount: number,
  previous: ReadonlyMap<string, readonly number[]>,
): Map<string, number[]> {
  const result = new Map<string, number[]>(members.map((member) => [member, []]))
  const seen = new Set<number>()
  for (const [member, partitions] of previous) {
    for (const partition of partitions) {
      assert(Number.isSafeInteger(partition), 'previous partitions must be integers')
      assert(partition >= 0, 'previous partitions must not be negative')
      assert(!seen.has(partition), 'previous assignment must give each partition to one member')
      seen.add(partition)
      if (partition < partitionCount) result.get(member)?.push(partition)
    }
  }
  for (const partitions of result.values()) partitions.sort((a, b) => a - b)
  return result
}

/** Each member's target count: the P % M members keeping the most (ties by id) get the extra one. */
function stickyTargets(
  members: readonly string[],
  partitionCount: number,
  kept: ReadonlyMap<string, readonly number[]>,
): Map<string, number> {
  const base = Math.floor(partitionCount / members.length)
  const extra = partitionCount % members.length
  const keptCount = (member: string): number => kept.get(member)?.length ?? 0
  // Array.prototype.sort is stable and members arrive sorted by id, so ties stay in id order.
  const byKeptDescending = [...members].sort((a, b) => keptCount(b) - keptCount(a))
  return new Map(byKeptDescending.map((member, rank) => [member, base + (rank < extra ? 1 : 0)]))
}

/** The member below its target that owns the fewest partitions, ties broken by id. */
function neediestMember(
  members: readonly string[],
  assignment: ReadonlyMap<string, readonly number[]>,
  targets: ReadonlyMap<string, number>,
): string {
  let neediest: string | undefined
  let fewest = Infinity
  for (const member of members) {
    const count = assignment.get(member)?.length ?? 0
    if (count < targetOf(targets, member) && count < fewest) {
      neediest = member
      fewest = count
    }
  }
  assert(neediest !== undefined, 'targets must add up to partitionCount')
  return neediest
}

function targetOf(targets: ReadonlyMap<string, number>, member: string): number {
  const target = targets.get(member)
  assert(target !== undefined, 'every member has a target')
  return target
}

function ownedBy(assignment: ReadonlyMap<string, number[]>, member: string): number[] {
  const partitions = assignment.get(member)
  assert(partitions !== undefined, 'every member has an entry')
  return partitions
}
