/**
 * Consumer group specs: assignment as members join and leave (every strategy, never two owners),
 * generations and fencing, committed offsets (monotonic unless sought, durable across reopen), lag,
 * poll (bounds, waiting for records and for rebalances), async iteration with at-least-once
 * redelivery, and bad input that changes nothing.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ENVELOPE_FIXED_BYTES, FILE_HEADER_BYTES, FRAME_HEADER_BYTES, STORE_SUFFIX, segmentFileName } from '../src/format.js'
import {
  type AssignmentStrategy,
  type ConsumedRecord,
  type Consumer,
  type ConsumerGroup,
  LogError,
  type LogErrorCode,
  Topic,
  type TopicOptions,
} from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

const openTopics: Topic[] = []
const openConsumers: Consumer[] = []

afterEach(async () => {
  for (const consumer of openConsumers.splice(0)) await consumer.close().catch(() => undefined)
  for (const topic of openTopics.splice(0)) await topic.close().catch(() => undefined)
})

async function openTopic(dir: string, options?: TopicOptions): Promise<Topic> {
  const topic = await Topic.open(dir, options)
  openTopics.push(topic)
  return topic
}

async function join(group: ConsumerGroup, memberId?: string): Promise<Consumer> {
  const consumer = await group.join(memberId === undefined ? {} : { memberId })
  openConsumers.push(consumer)
  return consumer
}

/** Appends `count` records to `partition`, valued `p<partition>-<offset>`. */
async function fill(topic: Topic, partition: number, count: number): Promise<void> {
  const first = topic.partition(partition).endOffset
  const records = Array.from({ length: count }, (_, i) => ({ value: `p${partition}-${first + i}`, partition }))
  if (count > 0) await topic.sendBatch(records)
}

/** "partition:offset" for each record, the form most expectations below are written in. */
const ids = (records: readonly ConsumedRecord[]): string[] => records.map((record) => `${record.partition}:${record.offset}`)
const idRange = (partition: number, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${partition}:${from + i}`)
const sortedIds = (records: readonly ConsumedRecord[]): string[] => ids(records).sort(byId)

function byId(a: string, b: string): number {
  const [pa, oa] = a.split(':').map(Number)
  const [pb, ob] = b.split(':').map(Number)
  return pa! - pb! || oa! - ob!
}

/** The rejection of a call that must return a promise (a synchronous throw fails the test). */
async function rejectionOf(action: () => unknown): Promise<unknown> {
  const pending = action()
  expect(pending).toBeInstanceOf(Promise)
  return (pending as Promise<unknown>).then(
    () => undefined,
    (error: unknown) => error,
  )
}

async function expectRejection(action: () => unknown, code: LogErrorCode): Promise<void> {
  const error = await rejectionOf(action)
  expect(error).toBeInstanceOf(LogError)
  expect(error).toMatchObject({ code })
}

function thrownBy(action: () => unknown): unknown {
  try {
    action()
  } catch (error) {
    return error
  }
  return undefined
}

/** The record at partition:offset among `records` (fails the test if it is missing). */
function recordAt(records: readonly ConsumedRecord[], partition: number, offset: number): ConsumedRecord {
  const record = records.find((candidate) => candidate.partition === partition && candidate.offset === offset)
  if (!record) throw new Error(`record ${partition}:${offset} was not polled`)
  return record
}

/** Waits (event loop turns, no clock) until `condition` holds; the test's timeout bounds it. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setImmediate(resolve))
}

/** Anything, typed as whatever the parameter wants: the point of these calls is the wrong type. */
function bad<T>(value: unknown): T {
  return value as T
}

/** Checks that the group's partitions are shared out exactly as `expected` says, with one owner each. */
async function expectAssignment(group: ConsumerGroup, consumers: ReadonlyMap<string, Consumer>, expected: Record<string, number[]>, partitions: number): Promise<void> {
  const members = await group.members()
  const fromGroup = Object.fromEntries(members.map((member) => [member.memberId, [...member.assignment]]))
  expect(fromGroup).toEqual(expected)
  for (const [memberId, consumer] of consumers) expect(consumer.assignment).toEqual(expected[memberId])
  const owned = Object.values(fromGroup).flat()
  expect(owned.length).toBe(new Set(owned).size) // nobody shares a partition
  expect([...owned].sort((a, b) => a - b)).toEqual(Array.from({ length: partitions }, (_, i) => i))
}

type Step = { join: string } | { leave: string }

/** A run of joins and leaves on 3 partitions, with the exact assignment after each step. */
const RUNS: { strategy: AssignmentStrategy; steps: [Step, Record<string, number[]>][] }[] = [
  {
    strategy: 'range',
    steps: [
      [{ join: 'a' }, { a: [0, 1, 2] }],
      [{ join: 'b' }, { a: [0, 1], b: [2] }],
      [{ join: 'c' }, { a: [0], b: [1], c: [2] }],
      [{ leave: 'a' }, { b: [0, 1], c: [2] }],
      [{ join: 'a' }, { a: [0], b: [1], c: [2] }],
      [{ leave: 'c' }, { a: [0, 1], b: [2] }],
      [{ leave: 'a' }, { b: [0, 1, 2] }],
    ],
  },
  {
    strategy: 'round-robin',
    steps: [
      [{ join: 'a' }, { a: [0, 1, 2] }],
      [{ join: 'b' }, { a: [0, 2], b: [1] }],
      [{ join: 'c' }, { a: [0], b: [1], c: [2] }],
      [{ leave: 'a' }, { b: [0, 2], c: [1] }],
      [{ join: 'a' }, { a: [0], b: [1], c: [2] }],
      [{ leave: 'c' }, { a: [0, 2], b: [1] }],
      [{ leave: 'a' }, { b: [0, 1, 2] }],
    ],
  },
  {
    strategy: 'sticky',
    steps: [
      [{ join: 'a' }, { a: [0, 1, 2] }],
      [{ join: 'b' }, { a: [0, 1], b: [2] }],
      [{ join: 'c' }, { a: [0], b: [2], c: [1] }],
      [{ leave: 'a' }, { b: [0, 2], c: [1] }],
      [{ join: 'a' }, { a: [2], b: [0], c: [1] }],
      [{ leave: 'c' }, { a: [1, 2], b: [0] }],
      [{ leave: 'a' }, { b: [0, 1, 2] }],
    ],
  },
]

describe('ConsumerGroup', () => {
  describe('assignment', () => {
    it.each(RUNS)('$strategy: shares 3 partitions exactly, one owner each, and bumps the generation at every join and leave', async ({ strategy, steps }) => {
      const topic = await openTopic(tempDir('group'), { partitions: 3 })
      const group = topic.consumerGroup('g', { assignmentStrategy: strategy })
      const consumers = new Map<string, Consumer>()
      expect(await group.generation()).toBe(0)
      expect(await group.members()).toEqual([])
      let generation = 0
      for (const [step, expected] of steps) {
        if ('join' in step) {
          const consumer = await join(group, step.join)
          expect(consumer.memberId).toBe(step.join)
          consumers.set(step.join, consumer)
        } else {
          await consumers.get(step.leave)!.close()
          consumers.delete(step.leave)
        }
        generation++
        expect(await group.generation()).toBe(generation)
        await expectAssignment(group, consumers, expected, 3)
      }
    })

    it.each(['range', 'round-robin', 'sticky'] as const)('%s: a third member of a 2-partition group gets nothing, and reads nothing', async (strategy) => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 2)
      await fill(topic, 1, 2)
      const group = topic.consumerGroup('g', { assignmentStrategy: strategy })
      const consumers = new Map<string, Consumer>()
      for (const id of ['a', 'b', 'c']) consumers.set(id, await join(group, id))
      const members = await group.members()
      expect(members.map((member) => member.assignment.length).sort()).toEqual([0, 1, 1])
      const idle = members.find((member) => member.assignment.length === 0)!
      const idleConsumer = consumers.get(idle.memberId)!
      await expectAssignment(group, consumers, Object.fromEntries(members.map((member) => [member.memberId, [...member.assignment]])), 2)
      expect(await idleConsumer.poll()).toEqual([])
      await fill(topic, 0, 1)
      await fill(topic, 1, 1)
      expect(await idleConsumer.poll()).toEqual([])
      const busy = [...consumers.values()].filter((consumer) => consumer !== idleConsumer)
      const read = (await Promise.all(busy.map((consumer) => consumer.poll()))).flat()
      expect(sortedIds(read)).toEqual([...idRange(0, 0, 3), ...idRange(1, 0, 3)])
    })

    it('gives every member a distinct generated id when none is given', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      const group = topic.consumerGroup('g')
      const first = await join(group)
      const second = await join(group)
      expect(first.memberId).not.toBe(second.memberId)
      expect((await group.members()).map((member) => member.memberId).sort()).toEqual([first.memberId, second.memberId].sort())
      expect([...first.assignment, ...second.assignment].sort()).toEqual([0, 1])
    })

    it('shares one coordinator between the handles of one group id', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      const a = await join(topic.consumerGroup('g'), 'a')
      const b = await join(topic.consumerGroup('g'), 'b')
      expect(a.assignment).toEqual([0])
      expect(b.assignment).toEqual([1])
      expect(await topic.consumerGroup('g').generation()).toBe(2)
      expect(await topic.consumerGroup('other').members()).toEqual([])
    })
  })

  describe('fencing', () => {
    it('refuses a commit after another member joined, until the member polls again (FENCED)', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 3)
      await fill(topic, 1, 3)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const polled = await a.poll()
      expect(sortedIds(polled)).toEqual([...idRange(0, 0, 3), ...idRange(1, 0, 3)])
      const fromP0 = recordAt(polled, 0, 2)
      await join(group, 'b')
      expect(a.assignment).toEqual([0])

      await expectRejection(() => a.commit(fromP0), 'FENCED')
      await expectRejection(() => a.commit(), 'FENCED')
      expect(await group.committed(0)).toBeUndefined()
      expect(await group.committed(1)).toBeUndefined()

      // After a poll the member is in the new generation; its uncommitted records come again.
      expect(ids(await a.poll())).toEqual(idRange(0, 0, 3))
      await a.commit(fromP0)
      expect(await group.committed(0)).toBe(3)
    })

    it('refuses a commit for a partition the member no longer owns (FENCED)', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 3)
      await fill(topic, 1, 3)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const polled = await a.poll()
      const fromP1 = recordAt(polled, 1, 0)
      const b = await join(group, 'b')
      await a.poll() // a catches up with the new generation: it owns [0] now
      expect(a.assignment).toEqual([0])
      await expectRejection(() => a.commit(fromP1), 'FENCED')
      await expectRejection(() => a.commit({ partition: 1, offset: 0 }), 'FENCED')
      expect(await group.committed(1)).toBeUndefined()
      // The owner's commit of the same partition goes through.
      expect(ids(await b.poll())).toEqual(idRange(1, 0, 3))
      await b.commit(fromP1)
      expect(await group.committed(1)).toBe(1)
    })

    it('refuses everything from a closed member (LOG_CLOSED) and hands its partitions over', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 2)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const b = await join(group, 'b')
      const [record] = await a.poll()
      expect(record).toMatchObject({ partition: 0, offset: 0 })
      await a.close()
      await a.close()
      expect(a.isClosed).toBe(true)
      await expectRejection(() => a.commit(record), 'LOG_CLOSED')
      await expectRejection(() => a.commit(), 'LOG_CLOSED')
      await expectRejection(() => a.poll(), 'LOG_CLOSED')
      expect(thrownBy(() => a.seek(0, 0))).toMatchObject({ code: 'LOG_CLOSED' })
      expect(await group.committed(0)).toBeUndefined()
      expect(b.assignment).toEqual([0, 1])
      expect((await group.members()).map((member) => member.memberId)).toEqual(['b'])
    })

    it('numbers generations on from the stored ones after the topic reopens', async () => {
      const dir = tempDir('group')
      let topic = await openTopic(dir, { partitions: 1 })
      await fill(topic, 0, 3)
      let group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      await a.commit((await a.poll())[0]!)
      const before = await group.generation()
      await topic.close()
      topic = await openTopic(dir)
      group = topic.consumerGroup('g')
      expect(await group.generation()).toBeGreaterThanOrEqual(before)
      await join(group, 'b')
      expect(await group.generation()).toBeGreaterThan(before)
    })
  })

  describe('committed offsets', () => {
    it('never move backwards (INVALID_ARGUMENT) unless the member sought first; then it replays from there', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 5)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const first = await a.poll()
      expect(ids(first)).toEqual(idRange(0, 0, 5))
      await a.commit(first[4]!)
      expect(await group.committed(0)).toBe(5)

      await expectRejection(() => a.commit(first[1]!), 'INVALID_ARGUMENT')
      expect(await group.committed(0)).toBe(5)
      await a.commit(first[4]!) // the same offset again is not backwards
      expect(await group.committed(0)).toBe(5)

      a.seek(0, 1)
      expect(a.position(0)).toBe(1)
      const replay = await a.poll()
      expect(ids(replay)).toEqual(idRange(0, 1, 5))
      expect(replay.map((record) => text(record.value))).toEqual(first.slice(1).map((record) => text(record.value)))
      await a.commit(replay[0]!)
      expect(await group.committed(0)).toBe(2)
      // The seek allowed one move back, not every later one.
      await expectRejection(() => a.commit(first[0]!), 'INVALID_ARGUMENT')
      expect(await group.committed(0)).toBe(2)
      await a.commit()
      expect(await group.committed(0)).toBe(5)
    })

    it("lets a new owner commit what it polled while the previous owner's last commit was still being written", async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 5)
      const group = topic.consumerGroup('g')
      const z = await join(group, 'z')
      const polledByZ = await z.poll()
      expect(ids(polledByZ)).toEqual(idRange(0, 0, 5))
      // z commits everything; before that commit is durable, 'a' joins and (range, sorted ids) takes partition 0.
      const inFlight = z.commit(polledByZ[4]!)
      const a = await join(group, 'a')
      expect(a.assignment).toEqual([0])
      const polledByA = await a.poll()
      await inFlight
      expect(await group.committed(0)).toBe(5)
      // Whatever the new owner was given, it can commit after processing it, as any member does.
      for (const record of polledByA) await a.commit(record)
      expect(await group.committed(0)).toBe(5)
      expect(await a.poll()).toEqual([])
    })

    it('seek forward skips records, and seek to the end waits for new ones', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 6)
      const a = await join(topic.consumerGroup('g'), 'a')
      a.seek(0, 4)
      expect(ids(await a.poll())).toEqual(idRange(0, 4, 6))
      a.seek(0, 6)
      expect(await a.poll()).toEqual([])
      a.seek(0, 0)
      expect(ids(await a.poll({ maxRecords: 2 }))).toEqual(idRange(0, 0, 2))
    })

    it('reports committed() and lag() exactly before and after commits', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 3)
      await fill(topic, 1, 2)
      const group = topic.consumerGroup('g')
      expect(await group.committed(0)).toBeUndefined()
      expect(await group.lag()).toEqual([
        { partition: 0, committed: undefined, endOffset: 3, lag: 3 },
        { partition: 1, committed: undefined, endOffset: 2, lag: 2 },
      ])
      const a = await join(group, 'a')
      const polled = await a.poll()
      expect(await group.lag()).toEqual([
        { partition: 0, committed: undefined, endOffset: 3, lag: 3 },
        { partition: 1, committed: undefined, endOffset: 2, lag: 2 },
      ])
      await a.commit(recordAt(polled, 0, 1))
      expect(await group.committed(0)).toBe(2)
      expect(await group.committed(1)).toBeUndefined()
      expect(await group.lag()).toEqual([
        { partition: 0, committed: 2, endOffset: 3, lag: 1 },
        { partition: 1, committed: undefined, endOffset: 2, lag: 2 },
      ])
      await a.commit()
      expect(await group.lag()).toEqual([
        { partition: 0, committed: 3, endOffset: 3, lag: 0 },
        { partition: 1, committed: 2, endOffset: 2, lag: 0 },
      ])
      await fill(topic, 1, 4)
      expect(await group.lag()).toEqual([
        { partition: 0, committed: 3, endOffset: 3, lag: 0 },
        { partition: 1, committed: 2, endOffset: 6, lag: 4 },
      ])
      // Another group of the same topic has its own offsets.
      expect(await topic.consumerGroup('other').committed(0)).toBeUndefined()
    })

    it('survive closing and reopening the topic, and a new member resumes from them', async () => {
      const dir = tempDir('group')
      let topic = await openTopic(dir, { partitions: 2 })
      await fill(topic, 0, 4)
      await fill(topic, 1, 4)
      let group = topic.consumerGroup('g', { assignmentStrategy: 'round-robin' })
      const a = await join(group, 'a')
      const polled = await a.poll()
      await a.commit(recordAt(polled, 0, 2))
      await a.commit(recordAt(polled, 1, 0))
      await topic.close()

      topic = await openTopic(dir)
      group = topic.consumerGroup('g', { assignmentStrategy: 'round-robin' })
      expect(await group.committed(0)).toBe(3)
      expect(await group.committed(1)).toBe(1)
      expect(await group.lag()).toEqual([
        { partition: 0, committed: 3, endOffset: 4, lag: 1 },
        { partition: 1, committed: 1, endOffset: 4, lag: 3 },
      ])
      expect(await topic.consumerGroup('never-used').committed(0)).toBeUndefined()
      const b = await join(group, 'b')
      expect(sortedIds(await b.poll())).toEqual([...idRange(0, 3, 4), ...idRange(1, 1, 4)])
    })
  })

  describe('autoOffsetReset', () => {
    it("'earliest' starts at the first record; 'latest' skips what exists and then sees new records", async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 3)
      const early = await join(topic.consumerGroup('early', { autoOffsetReset: 'earliest' }), 'e')
      const late = await join(topic.consumerGroup('late', { autoOffsetReset: 'latest' }), 'l')
      expect(ids(await early.poll())).toEqual(idRange(0, 0, 3))
      expect(await late.poll()).toEqual([])
      expect(late.position(0)).toBe(3)
      await fill(topic, 0, 2)
      expect(ids(await late.poll())).toEqual(idRange(0, 3, 5))
      expect(ids(await early.poll())).toEqual(idRange(0, 3, 5))
      expect(await topic.consumerGroup('late').committed(0)).toBeUndefined()
    })

    it("'latest' starts at the end as of the assignment: records sent after join, before the first poll, are delivered", async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 3)
      const late = await join(topic.consumerGroup('late', { autoOffsetReset: 'latest' }), 'l')
      await fill(topic, 0, 2)
      expect(ids(await late.poll())).toEqual(idRange(0, 3, 5))
    })

    it("'latest' does not skip past a committed offset", async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 3)
      const group = topic.consumerGroup('late', { autoOffsetReset: 'latest' })
      const first = await join(group, 'first')
      expect(await first.poll()).toEqual([])
      first.seek(0, 0)
      const records = await first.poll()
      await first.commit(records[0]!)
      await first.close()
      await fill(topic, 0, 1)
      const second = await join(group, 'second')
      expect(ids(await second.poll())).toEqual(idRange(0, 1, 4))
    })
  })

  describe('poll', () => {
    it('returns at most maxRecords, continuing where the previous poll stopped', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 10)
      await fill(topic, 1, 10)
      const a = await join(topic.consumerGroup('g'), 'a')
      const seen: ConsumedRecord[] = []
      for (const maxRecords of [3, 3, 1, 7, 4]) {
        const records = await a.poll({ maxRecords })
        expect(records.length).toBe(maxRecords)
        seen.push(...records)
      }
      const rest = await a.poll({ maxRecords: 100 })
      expect(rest.length).toBe(2)
      seen.push(...rest)
      expect(await a.poll()).toEqual([])
      expect(sortedIds(seen)).toEqual([...idRange(0, 0, 10), ...idRange(1, 0, 10)])
      // In offset order within each partition.
      for (const partition of [0, 1]) {
        const offsets = seen.filter((record) => record.partition === partition).map((record) => record.offset)
        expect(offsets).toEqual([...offsets].sort((x, y) => x - y))
      }
    })

    it('gives each record with its topic, partition, key, value, headers and timestamp', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await topic.send({ value: 'v', key: 'k', headers: { h: 'x' }, timestamp: 1234, partition: 1 })
      const a = await join(topic.consumerGroup('g'), 'a')
      const [record] = await a.poll()
      expect(record).toMatchObject({ topic: topic.name, partition: 1, offset: 0, timestamp: 1234 })
      expect(text(record!.key!)).toBe('k')
      expect(text(record!.value)).toBe('v')
      expect(Object.keys(record!.headers)).toEqual(['h'])
      expect(text(record!.headers.h!)).toBe('x')
    })

    it('waits with timeoutMs for a record sent later and returns it', { timeout: 10_000 }, async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      const a = await join(topic.consumerGroup('g'), 'a')
      // Far longer than the test may run: only the send can end this poll in time.
      const pending = a.poll({ timeoutMs: 60_000 })
      await new Promise((resolve) => setImmediate(resolve))
      await topic.send({ value: 'late', partition: 1 })
      const records = await pending
      expect(ids(records)).toEqual(['1:0'])
      expect(text(records[0]!.value)).toBe('late')
    })

    it('returns [] once timeoutMs passes with nothing sent', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      const a = await join(topic.consumerGroup('g'), 'a')
      expect(await a.poll({ timeoutMs: 30 })).toEqual([])
      expect(await a.poll()).toEqual([])
      await topic.send({ value: 'after', partition: 0 })
      expect(ids(await a.poll({ timeoutMs: 30 }))).toEqual(['0:0'])
    })

    it('wakes a waiting poll when a rebalance gives the member partitions that hold records', { timeout: 10_000 }, async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 2)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const b = await join(group, 'b')
      expect(b.assignment).toEqual([])
      expect(await b.poll()).toEqual([])
      const pending = b.poll({ timeoutMs: 60_000 })
      await new Promise((resolve) => setImmediate(resolve))
      await a.close()
      expect(ids(await pending)).toEqual(idRange(0, 0, 2))
      expect(b.assignment).toEqual([0])
    })

    it('ends a waiting poll with [] when the member closes', { timeout: 10_000 }, async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      const a = await join(topic.consumerGroup('g'), 'a')
      const pending = a.poll({ timeoutMs: 60_000 })
      await new Promise((resolve) => setImmediate(resolve))
      await a.close()
      expect(await pending).toEqual([])
    })
  })

  describe('read-ahead', () => {
    /** One turn of the event loop: the read-ahead that a full poll scheduled has run by then. */
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

    it('hands out the batch read ahead in order and only once; commit() commits what was polled, not what was read ahead', async () => {
      const topic = await openTopic(tempDir('group'))
      await fill(topic, 0, 30)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 0, 10))
      await turn()
      expect(a.position(0)).toBe(10)
      await a.commit()
      expect(await group.committed(0)).toBe(10)
      expect(ids(await a.poll({ maxRecords: 4 }))).toEqual(idRange(0, 10, 14)) // part of the batch read ahead
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 14, 24)) // the rest of it, then fresh reads
      await turn()
      expect(ids(await a.poll({ maxRecords: 100 }))).toEqual(idRange(0, 24, 30))
      expect(await a.poll()).toEqual([])
    })

    it('delivers records appended after the read-ahead ran, right after the ones it read', async () => {
      const topic = await openTopic(tempDir('group'))
      await fill(topic, 0, 10)
      const a = await join(topic.consumerGroup('g'), 'a')
      expect(ids(await a.poll({ maxRecords: 5 }))).toEqual(idRange(0, 0, 5))
      await turn()
      await fill(topic, 0, 10)
      expect(ids(await a.poll({ maxRecords: 100 }))).toEqual(idRange(0, 5, 20))
    })

    it('is dropped by seek: the next poll starts where seek put the position', async () => {
      const topic = await openTopic(tempDir('group'))
      await fill(topic, 0, 30)
      const a = await join(topic.consumerGroup('g'), 'a')
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 0, 10))
      await turn()
      a.seek(0, 3)
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 3, 13))
      await turn()
      a.seek(0, 25)
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 25, 30))
    })

    it('is dropped by a rebalance: each owner restarts from the committed offsets, nothing skipped', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 20)
      await fill(topic, 1, 20)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const first = await a.poll({ maxRecords: 10 })
      await a.commit()
      await turn() // reads the next 10 ahead
      const z = await join(group, 'z') // range: a keeps partition 0, z takes partition 1
      const fromA = await a.poll({ maxRecords: 100 })
      const fromZ = await z.poll({ maxRecords: 100 })
      const committedBefore = new Map([0, 1].map((partition) => [partition, first.filter((record) => record.partition === partition).length]))
      expect(ids(fromA)).toEqual(idRange(0, committedBefore.get(0)!, 20))
      expect(ids(fromZ)).toEqual(idRange(1, committedBefore.get(1)!, 20))
    })

    it('stops before a damaged record: the records before it are handed out, then poll reports it (CORRUPT_RECORD)', async () => {
      const dir = tempDir('group')
      const writer = await Topic.open(dir)
      await writer.sendBatch(Array.from({ length: 20 }, (_, i) => ({ value: `v-${String(i).padStart(2, '0')}` })))
      await writer.close()
      // Every frame has the same size (no key or headers, equal values): flip the last value byte of record 13.
      const store = path.join(dir, 'partition-0', segmentFileName(0, STORE_SUFFIX))
      const frameBytes = FRAME_HEADER_BYTES + ENVELOPE_FIXED_BYTES + 4
      const bytes = fs.readFileSync(store)
      expect(bytes.length).toBe(FILE_HEADER_BYTES + 20 * frameBytes)
      bytes[FILE_HEADER_BYTES + 14 * frameBytes - 1]! ^= 0xff
      fs.writeFileSync(store, bytes)
      const topic = await openTopic(dir)
      const a = await join(topic.consumerGroup('g'), 'a')
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 0, 10))
      await turn()
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 10, 13))
      await expectRejection(() => a.poll({ maxRecords: 10 }), 'CORRUPT_RECORD')
      await expectRejection(() => a.poll({ maxRecords: 10 }), 'CORRUPT_RECORD') // the position stays at the damage
      expect(a.position(0)).toBe(13)
      a.seek(0, 14)
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 14, 20))
    })
    it.each([
      ['a sealed (mapped) segment', true],
      ['the active segment', false],
    ])('stops before a record whose frame checks out but whose envelope does not, in %s (CORRUPT_RECORD)', async (_where, sealed) => {
      const dir = tempDir('group')
      const writer = await Topic.open(dir, { segmentRecordsMax: 8 })
      await writer.sendBatch(Array.from({ length: 5 }, (_, i) => ({ value: `v-${i}` })))
      // Record 5: a frame with a good CRC-32C whose payload claims a key longer than itself.
      const badEnvelope = Buffer.from([1, 1, 0, 0, 0xff, 0, 0, 0, 7])
      expect(await writer.partition(0).log.append(badEnvelope)).toBe(5)
      await writer.sendBatch(Array.from({ length: sealed ? 4 : 2 }, (_, i) => ({ value: `v-${6 + i}` })))
      await writer.close()
      const topic = await openTopic(dir)
      expect(topic.partition(0).log.segments.length).toBe(sealed ? 2 : 1)
      const a = await join(topic.consumerGroup('g'), 'a')
      expect(ids(await a.poll({ maxRecords: 10 }))).toEqual(idRange(0, 0, 5))
      const refused = await a.poll({ maxRecords: 10 }).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(refused).toBeInstanceOf(LogError)
      expect((refused as LogError).code).toBe('CORRUPT_RECORD')
      expect((refused as LogError).message).toContain('record 5')
      expect(a.position(0)).toBe(5)
      a.seek(0, 6)
      expect((await a.poll({ maxRecords: 10 })).map((record) => text(record.value))).toEqual(Array.from({ length: sealed ? 4 : 2 }, (_, i) => `v-${6 + i}`))
    })
  })

  describe('close', () => {
    it('closing the topic ends a waiting poll and closes its groups and members (LOG_CLOSED)', { timeout: 10_000 }, async () => {
      const topic = await Topic.open(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 1)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      await a.commit((await a.poll())[0]!)
      const pending = a.poll({ timeoutMs: 60_000 })
      await new Promise((resolve) => setImmediate(resolve))
      await topic.close()
      expect(await pending).toEqual([])
      await expectRejection(() => a.poll(), 'LOG_CLOSED')
      await expectRejection(() => a.commit(), 'LOG_CLOSED')
      await expectRejection(() => group.committed(0), 'LOG_CLOSED')
      await expectRejection(() => group.join(), 'LOG_CLOSED')
    })
  })

  describe('at-least-once delivery', () => {
    it('delivers what a closed member polled but did not commit to the member that remains', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 4)
      await fill(topic, 1, 3)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const b = await join(group, 'b')
      const fromA = await a.poll()
      const fromB = await b.poll()
      expect(ids(fromA)).toEqual(idRange(0, 0, 4))
      expect(ids(fromB)).toEqual(idRange(1, 0, 3))
      await a.commit(fromA[0]!)
      await b.commit(fromB[1]!)
      await a.close()
      // b restarts both partitions from the committed offsets.
      const after = await b.poll()
      expect(sortedIds(after)).toEqual([...idRange(0, 1, 4), ...idRange(1, 2, 3)])
      expect(after.filter((record) => record.partition === 0).map((record) => text(record.value))).toEqual(['p0-1', 'p0-2', 'p0-3'])
    })

    it('delivers a record again to the same member after a rebalance it did not commit before', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 2)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      expect(ids(await a.poll())).toEqual(idRange(0, 0, 2))
      const z = await join(group, 'z') // range: a keeps partition 0
      expect(a.assignment).toEqual([0])
      expect(ids(await a.poll())).toEqual(idRange(0, 0, 2))
      expect(await z.poll()).toEqual([])
    })
  })

  describe('async iteration', () => {
    it('yields records in offset order per partition, commits what was processed, and re-delivers the record it broke on', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 125)
      await fill(topic, 1, 125)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const seen: ConsumedRecord[] = []
      for await (const record of a) {
        seen.push(record)
        if (seen.length === 230) break
      }
      const broken = seen[seen.length - 1]!
      for (const partition of [0, 1]) {
        const offsets = seen.filter((record) => record.partition === partition).map((record) => record.offset)
        expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i))
      }
      expect(seen.map((record) => text(record.value))).toEqual(seen.map((record) => `p${record.partition}-${record.offset}`))
      // Every record before the one it broke on is committed; that one is not.
      const processed = seen.slice(0, -1)
      const expectedCommitted = [0, 1].map((partition) => {
        const offsets = processed.filter((record) => record.partition === partition).map((record) => record.offset)
        return offsets.length === 0 ? undefined : Math.max(...offsets) + 1
      })
      expect([await group.committed(0), await group.committed(1)]).toEqual(expectedCommitted)
      expect(await group.committed(broken.partition)).toBe(broken.offset)

      // The next poll of the same member starts each partition right after what was processed.
      const next = await a.poll({ maxRecords: 1000 })
      const brokenPartition = next.filter((record) => record.partition === broken.partition)
      expect(brokenPartition[0]).toMatchObject({ partition: broken.partition, offset: broken.offset })
      expect(sortedIds(next)).toEqual(
        [0, 1].flatMap((partition) => {
          const from = partition === broken.partition ? broken.offset : expectedCommitted[partition] ?? 0
          return idRange(partition, from, 125)
        }),
      )
    })

    it('re-delivers the record being processed when the loop throws, to another member after the first leaves', async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 1 })
      await fill(topic, 0, 10)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const seen: number[] = []
      const failure = new Error('processing failed')
      await expect(
        (async () => {
          for await (const record of a) {
            seen.push(record.offset)
            if (record.offset === 6) throw failure
          }
        })(),
      ).rejects.toBe(failure)
      expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6])
      expect(await group.committed(0)).toBe(6)
      await a.close()
      const b = await join(group, 'b')
      expect(ids(await b.poll())).toEqual(idRange(0, 6, 10))
    })

    it('commits batch after batch in order, and the loop ends only once every commit it started is durable', async () => {
      const dir = tempDir('group')
      const topic = await openTopic(dir, { partitions: 1 })
      await fill(topic, 0, 1200)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const committedSeen: (number | undefined)[] = []
      const failure = new Error('processing failed')
      await expect(
        (async () => {
          for await (const record of a) {
            if (record.offset % 500 === 0) committedSeen.push(await group.committed(0))
            if (record.offset === 1100) throw failure
          }
        })(),
      ).rejects.toBe(failure)
      // Never ahead of what was processed: batch n's commit is at most in flight while batch n+1 runs.
      expect(committedSeen.length).toBe(3)
      committedSeen.forEach((committed, n) => expect(committed ?? 0).toBeLessThanOrEqual(n * 500))
      expect(await group.committed(0)).toBe(1100)
      await a.close()
      await topic.close()
      const reopened = await openTopic(dir)
      expect(await reopened.consumerGroup('g').committed(0)).toBe(1100)
    })

    it('ends when the member closes, with everything it processed committed', { timeout: 20_000 }, async () => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 3)
      await fill(topic, 1, 3)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const seen: ConsumedRecord[] = []
      const loop = (async () => {
        for await (const record of a) seen.push(record)
      })()
      await until(async () => seen.length === 6 && (await group.committed(0)) === 3 && (await group.committed(1)) === 3)
      await topic.send({ value: 'more', partition: 1 })
      await until(async () => (await group.committed(1)) === 4)
      await a.close()
      await loop
      expect(sortedIds(seen)).toEqual([...idRange(0, 0, 3), ...idRange(1, 0, 4)])
      expect(await group.lag()).toEqual([
        { partition: 0, committed: 3, endOffset: 3, lag: 0 },
        { partition: 1, committed: 4, endOffset: 4, lag: 0 },
      ])
    })
  })

  describe('bad input', () => {
    interface Fixture {
      topic: Topic
      group: ConsumerGroup
      /** Owns partition 0 (committed 2 of 3 records); 'b' owns partition 1 (2 records, nothing committed). */
      a: Consumer
    }
    interface BadCall {
      name: string
      code: LogErrorCode
      fails: 'throws' | 'rejects'
      call: (fixture: Fixture) => unknown
    }
    const row = (name: string, code: LogErrorCode, fails: BadCall['fails'], call: BadCall['call']): BadCall => ({ name, code, fails, call })
    const groupRow = (name: string, groupId: unknown, options?: unknown): BadCall =>
      row(name, 'INVALID_ARGUMENT', 'throws', ({ topic }) => topic.consumerGroup(bad(groupId), bad(options)))

    const BAD_CALLS: BadCall[] = [
      groupRow("group id ''", ''),
      groupRow("group id '.'", '.'),
      groupRow("group id '..'", '..'),
      groupRow("group id 'a/b'", 'a/b'),
      groupRow("group id 'a b'", 'a b'),
      groupRow('group id of 250 characters', 'g'.repeat(250)),
      groupRow('group id 5', 5),
      groupRow('group id undefined', undefined),
      groupRow("assignmentStrategy 'x'", 'h', { assignmentStrategy: 'x' }),
      groupRow('sessionTimeoutMs 5', 'h', { sessionTimeoutMs: 5 }),
      groupRow('sessionTimeoutMs 1000.5', 'h', { sessionTimeoutMs: 1000.5 }),
      groupRow("autoOffsetReset 'middle'", 'h', { autoOffsetReset: 'middle' }),
      groupRow('an unknown group option', 'h', { sessionTimeout: 1000 }),
      groupRow('group options null', 'h', null),
      groupRow('the same group id with other options', 'g', { assignmentStrategy: 'sticky' }),
      row('poll({ maxRecords: 0 })', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.poll({ maxRecords: 0 })),
      row('poll({ maxRecords: 1.5 })', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.poll({ maxRecords: 1.5 })),
      row('poll({ maxRecords: 100001 })', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.poll({ maxRecords: 100_001 })),
      row('poll({ timeoutMs: -1 })', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.poll({ timeoutMs: -1 })),
      row('poll({ timeoutMs: NaN })', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.poll({ timeoutMs: NaN })),
      row('poll(null)', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.poll(bad(null))),
      row('seek on a partition owned by another member', 'UNKNOWN_PARTITION', 'throws', ({ a }) => a.seek(1, 0)),
      row('seek on partition 7', 'UNKNOWN_PARTITION', 'throws', ({ a }) => a.seek(7, 0)),
      row('seek past the high watermark', 'OFFSET_OUT_OF_RANGE', 'throws', ({ a }) => a.seek(0, 4)),
      row('seek to -1', 'OFFSET_OUT_OF_RANGE', 'throws', ({ a }) => a.seek(0, -1)),
      row('committed(7)', 'UNKNOWN_PARTITION', 'rejects', ({ group }) => group.committed(7)),
      row('committed(-1)', 'UNKNOWN_PARTITION', 'rejects', ({ group }) => group.committed(-1)),
      row('committed(0.5)', 'UNKNOWN_PARTITION', 'rejects', ({ group }) => group.committed(0.5)),
      row('join with the id of a live member', 'INVALID_ARGUMENT', 'rejects', ({ group }) => group.join({ memberId: 'a' })),
      row("join with memberId ''", 'INVALID_ARGUMENT', 'rejects', ({ group }) => group.join({ memberId: '' })),
      row('join with memberId 5', 'INVALID_ARGUMENT', 'rejects', ({ group }) => group.join(bad({ memberId: 5 }))),
      row('join(null)', 'INVALID_ARGUMENT', 'rejects', ({ group }) => group.join(bad(null))),
      row('commit a negative offset', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.commit({ partition: 0, offset: -1 })),
      row('commit a fractional partition', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.commit({ partition: 0.5, offset: 2 })),
      row('commit null', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.commit(bad(null))),
      row('commit below the committed offset without seek', 'INVALID_ARGUMENT', 'rejects', ({ a }) => a.commit({ partition: 0, offset: 0 })),
      row("commit of the other member's partition", 'FENCED', 'rejects', ({ a }) => a.commit({ partition: 1, offset: 1 })),
    ]

    it.each(BAD_CALLS)('$name → $code, and the group is unchanged', async ({ code, fails, call }) => {
      const topic = await openTopic(tempDir('group'), { partitions: 2 })
      await fill(topic, 0, 3)
      await fill(topic, 1, 2)
      const group = topic.consumerGroup('g')
      const a = await join(group, 'a')
      const b = await join(group, 'b')
      const polled = await a.poll()
      expect(ids(polled)).toEqual(idRange(0, 0, 3))
      await a.commit(polled[1]!)
      const generation = await group.generation()

      let thrown: unknown
      let result: unknown
      try {
        result = call({ topic, group, a })
      } catch (error) {
        thrown = error
      }
      if (fails === 'throws') {
        expect(thrown).toBeInstanceOf(LogError)
        expect(thrown).toMatchObject({ code })
      } else {
        expect(thrown).toBeUndefined()
        const error = await rejectionOf(() => result)
        expect(error).toBeInstanceOf(LogError)
        expect(error).toMatchObject({ code })
      }

      expect(await group.generation()).toBe(generation)
      expect((await group.members()).map((member) => member.memberId)).toEqual(['a', 'b'])
      expect(await group.committed(0)).toBe(2)
      expect(await group.committed(1)).toBeUndefined()
      expect(a.assignment).toEqual([0])
      expect(b.assignment).toEqual([1])
      expect(a.position(0)).toBe(3)
      await a.commit()
      expect(await group.committed(0)).toBe(3)
    })
  })
})
