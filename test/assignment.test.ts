/**
 * Partition assignment specs: exact Kafka layouts for range and round-robin, coverage and balance for
 * every strategy over many group shapes, and for sticky, that a rebalance moves only the partitions
 * balance forces to move.
 */
import { describe, expect, it } from 'vitest'
import { ASSIGNMENT_STRATEGIES, type AssignmentStrategy, assignPartitions } from '../src/assignment.js'

type Assignment = ReadonlyMap<string, readonly number[]>

const ids = (count: number): string[] => Array.from({ length: count }, (_, index) => `member-${index}`)

/** Every (member count, partition count) with 1..6 members and 0..13 partitions. */
const SHAPES: [number, number][] = []
for (let memberCount = 1; memberCount <= 6; memberCount++) {
  for (let partitionCount = 0; partitionCount <= 13; partitionCount++) SHAPES.push([memberCount, partitionCount])
}

/** An entry for exactly the members; ascending lists; each partition in 0..P-1 exactly once. */
function expectCovers(assignment: Assignment, members: readonly string[], partitionCount: number): void {
  expect([...assignment.keys()].sort()).toEqual([...members].sort())
  const all: number[] = []
  for (const partitions of assignment.values()) {
    expect(partitions).toEqual([...partitions].sort((a, b) => a - b))
    all.push(...partitions)
  }
  expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: partitionCount }, (_, partition) => partition))
}

function expectBalanced(assignment: Assignment): void {
  const counts = [...assignment.values()].map((partitions) => partitions.length)
  expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1)
}

function ownerOf(assignment: Assignment): Map<number, string> {
  const owners = new Map<number, string>()
  for (const [member, partitions] of assignment) for (const partition of partitions) owners.set(partition, member)
  return owners
}

/** Partitions that had an owner before and have a different one now. */
function movedCount(before: Assignment, after: Assignment): number {
  const afterOwners = ownerOf(after)
  let moved = 0
  for (const [partition, owner] of ownerOf(before)) {
    if (afterOwners.has(partition) && afterOwners.get(partition) !== owner) moved++
  }
  return moved
}

/**
 * The fewest moves any balanced assignment can make: every partition of a member that left, plus what
 * each staying member holds beyond its count when the P % M larger counts go to those holding most.
 */
function minimalMoves(before: Assignment, members: readonly string[], partitionCount: number): number {
  const stay = new Set(members)
  let departed = 0
  const heldCounts: number[] = members.map(() => 0)
  for (const [member, partitions] of before) {
    const live = partitions.filter((partition) => partition < partitionCount).length
    if (stay.has(member)) heldCounts[members.indexOf(member)] = live
    else departed += live
  }
  const base = Math.floor(partitionCount / members.length)
  const extra = partitionCount % members.length
  const excess = heldCounts
    .sort((a, b) => b - a)
    .reduce((sum, held, rank) => sum + Math.max(0, held - (base + (rank < extra ? 1 : 0))), 0)
  return departed + excess
}

/** Deterministic pseudo-random integers in [0, bound) (xorshift32), so a failure reproduces. */
function random(seed: number): (bound: number) => number {
  let state = seed | 1
  return (bound) => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) % bound
  }
}

describe('assignPartitions', () => {
  describe.each(ASSIGNMENT_STRATEGIES)('%s', (strategy: AssignmentStrategy) => {
    it.each(SHAPES)('covers every partition once with %i members and %i partitions', (memberCount, partitionCount) => {
      const members = ids(memberCount)
      expectCovers(assignPartitions(strategy, members, partitionCount), members, partitionCount)
    })

    it('returns an empty map for an empty group', () => {
      expect(assignPartitions(strategy, [], 5)).toEqual(new Map())
    })

    it('does not depend on the order members are listed in', () => {
      const sorted = assignPartitions(strategy, ['a', 'b', 'c', 'd'], 11)
      expect(assignPartitions(strategy, ['d', 'b', 'a', 'c'], 11)).toEqual(sorted)
      expect(assignPartitions(strategy, ['c', 'd', 'a', 'b'], 11)).toEqual(sorted)
    })

    it('sorts ids by code unit, like Java, not by locale', () => {
      const assignment = assignPartitions(strategy, ['b', 'B', 'a'], 3)
      expect(assignment.get('B')).toEqual([0])
      expect(assignment.get('a')).toEqual([1])
      expect(assignment.get('b')).toEqual([2])
    })

    it('rejects duplicate member ids as a bug', () => {
      expect(() => assignPartitions(strategy, ['a', 'b', 'a'], 3)).toThrow('member ids must be unique')
    })
  })

  describe('range', () => {
    it.each([
      ['3 members, 7 partitions', ['c', 'a', 'b'], 7, { a: [0, 1, 2], b: [3, 4], c: [5, 6] }],
      ['2 members, 6 partitions', ['a', 'b'], 6, { a: [0, 1, 2], b: [3, 4, 5] }],
      ['1 member', ['solo'], 4, { solo: [0, 1, 2, 3] }],
      ['more members than partitions', ['e', 'd', 'c', 'b', 'a'], 3, { a: [0], b: [1], c: [2], d: [], e: [] }],
      ['no partitions', ['a', 'b'], 0, { a: [], b: [] }],
    ])('assigns %s', (_, members, partitionCount, expected) => {
      expect(Object.fromEntries(assignPartitions('range', members, partitionCount))).toEqual(expected)
    })

    it.each(SHAPES)('gives %i members Kafka’s range sizes of %i partitions', (memberCount, partitionCount) => {
      const members = ids(memberCount)
      const assignment = assignPartitions('range', members, partitionCount)
      let next = 0
      members.forEach((member, index) => {
        const size = Math.floor(partitionCount / memberCount) + (index < partitionCount % memberCount ? 1 : 0)
        expect(assignment.get(member)).toEqual(Array.from({ length: size }, (__, offset) => next + offset))
        next += size
      })
    })
  })

  describe('round-robin', () => {
    it.each([
      ['3 members, 7 partitions', ['c', 'a', 'b'], 7, { a: [0, 3, 6], b: [1, 4], c: [2, 5] }],
      ['2 members, 6 partitions', ['a', 'b'], 6, { a: [0, 2, 4], b: [1, 3, 5] }],
      ['1 member', ['solo'], 4, { solo: [0, 1, 2, 3] }],
      ['more members than partitions', ['e', 'd', 'c', 'b', 'a'], 3, { a: [0], b: [1], c: [2], d: [], e: [] }],
      ['no partitions', ['a', 'b'], 0, { a: [], b: [] }],
    ])('assigns %s', (_, members, partitionCount, expected) => {
      expect(Object.fromEntries(assignPartitions('round-robin', members, partitionCount))).toEqual(expected)
    })

    it.each(SHAPES)('balances %i members over %i partitions, p to member p %% M', (memberCount, partitionCount) => {
      const members = ids(memberCount)
      const assignment = assignPartitions('round-robin', members, partitionCount)
      expectBalanced(assignment)
      for (const [partition, owner] of ownerOf(assignment)) expect(owner).toBe(members[partition % memberCount])
    })

    it('ignores a previous generation', () => {
      const previous = new Map([['b', [0, 1, 2, 3]]])
      expect(assignPartitions('round-robin', ['a', 'b'], 4, previous)).toEqual(assignPartitions('round-robin', ['a', 'b'], 4))
    })
  })

  describe('sticky', () => {
    it.each(SHAPES)('balances %i members over %i partitions', (memberCount, partitionCount) => {
      expectBalanced(assignPartitions('sticky', ids(memberCount), partitionCount))
    })

    it('deals partitions out like round-robin when there is no previous generation', () => {
      expect(assignPartitions('sticky', ['c', 'a', 'b'], 7)).toEqual(assignPartitions('round-robin', ['c', 'a', 'b'], 7))
    })

    // Six partitions through a run of joins and leaves; each step starts from the previous result.
    const STEPS: [string, string[], Record<string, number[]>, number][] = [
      ['a joins', ['a'], { a: [0, 1, 2, 3, 4, 5] }, 0],
      ['b joins', ['a', 'b'], { a: [0, 1, 2], b: [3, 4, 5] }, 3],
      ['c joins', ['a', 'b', 'c'], { a: [0, 1], b: [3, 4], c: [2, 5] }, 2],
      ['a leaves', ['b', 'c'], { b: [0, 3, 4], c: [1, 2, 5] }, 2],
      ['d joins', ['b', 'c', 'd'], { b: [0, 3], c: [1, 2], d: [4, 5] }, 2],
      ['e joins', ['b', 'c', 'd', 'e'], { b: [0, 3], c: [1, 2], d: [4], e: [5] }, 1],
      ['c leaves', ['b', 'd', 'e'], { b: [0, 3], d: [1, 4], e: [2, 5] }, 2],
      ['b and d leave, f joins', ['e', 'f'], { e: [2, 3, 5], f: [0, 1, 4] }, 4],
    ]

    it('moves only what balance requires through a run of joins and leaves', () => {
      let previous: Assignment = new Map()
      for (const [step, members, expected, moves] of STEPS) {
        const next = assignPartitions('sticky', members, 6, previous)
        expect(Object.fromEntries(next), step).toEqual(expected)
        expect(movedCount(previous, next), step).toBe(moves)
        expect(moves, step).toBe(minimalMoves(previous, members, 6))
        previous = next
      }
    })

    it('hands a leaving member’s partitions to the others and moves nothing else', () => {
      const previous = new Map([
        ['a', [0, 1]],
        ['b', [2, 3]],
        ['c', [4, 5]],
      ])
      const next = assignPartitions('sticky', ['a', 'b'], 6, previous)
      expect(Object.fromEntries(next)).toEqual({ a: [0, 1, 4], b: [2, 3, 5] })
      expect(movedCount(previous, next)).toBe(2)
    })

    it('gives the larger share to the members already holding more', () => {
      // 7 partitions over 3 members: one member gets 3. b already holds 3, so nothing moves.
      const previous = new Map([
        ['a', [0, 1]],
        ['b', [2, 3, 4]],
        ['c', [5, 6]],
      ])
      expect(assignPartitions('sticky', ['a', 'b', 'c'], 7, previous)).toEqual(previous)
    })

    it('keeps every owner when partitions are added and drops partitions that no longer exist', () => {
      const previous = new Map([
        ['a', [0, 1, 2]],
        ['b', [3, 4, 5]],
      ])
      expect(Object.fromEntries(assignPartitions('sticky', ['a', 'b'], 8, previous))).toEqual({ a: [0, 1, 2, 6], b: [3, 4, 5, 7] })
      expect(Object.fromEntries(assignPartitions('sticky', ['a', 'b'], 4, previous))).toEqual({ a: [0, 1], b: [2, 3] })
    })

    it('rejects a previous generation that gives a partition to two members as a bug', () => {
      const previous = new Map([
        ['a', [0, 1]],
        ['b', [1, 2]],
      ])
      expect(() => assignPartitions('sticky', ['a', 'b'], 3, previous)).toThrow('one member')
    })

    it.each(Array.from({ length: 14 }, (_, partitionCount) => [partitionCount]))(
      'makes the fewest possible moves over 200 random rebalances of %i partitions',
      (partitionCount) => {
        const next = random(partitionCount + 1)
        const pool = ids(8)
        let members = new Set<string>([pool[0] ?? 'member-0'])
        let previous: Assignment = assignPartitions('sticky', [...members], partitionCount)
        for (let step = 0; step < 200; step++) {
          const candidate = pool[next(pool.length)] ?? 'member-0'
          const changed = new Set(members)
          if (changed.has(candidate) && changed.size > 1) changed.delete(candidate)
          else changed.add(candidate)
          members = changed
          const assignment = assignPartitions('sticky', [...members], partitionCount, previous)
          expectCovers(assignment, [...members], partitionCount)
          expectBalanced(assignment)
          expect(movedCount(previous, assignment)).toBe(minimalMoves(previous, [...members], partitionCount))
          previous = assignment
        }
      },
    )
  })
})
