/**
 * Consumer groups over several topics of a Broker: partitions of every subscribed topic are shared
 * out (records carry their topic), a pattern picks up topics created later without restarting the
 * members, committed offsets keep their meaning across reopen (the slot table is stored), a deleted
 * topic reads as empty, and bad input is a typed error.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Broker, type BrokerConsumer, type ConsumedRecord, LogError } from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const brokers: Broker[] = []
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close()
})

async function openBroker(dir = tempDir()): Promise<Broker> {
  const broker = await Broker.open(dir)
  brokers.push(broker)
  return broker
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8')
const where = (record: ConsumedRecord): string => `${record.topic}/${record.partition}:${record.offset}`

/** Sends `count` records to each partition of `name`, valued `<name>/<partition>:<offset>`. */
async function fill(broker: Broker, name: string, partitions: number, count: number): Promise<void> {
  const topic = await broker.topic(name, { partitions })
  for (let partition = 0; partition < partitions; partition++) {
    const first = topic.partition(partition).endOffset
    await topic.sendBatch(Array.from({ length: count }, (_, i) => ({ value: `${name}/${partition}:${first + i}`, partition })))
  }
}

/** Polls until `expected` records were seen (the test's timeout bounds it). */
async function pollUntil(member: BrokerConsumer, expected: number): Promise<ConsumedRecord[]> {
  const seen: ConsumedRecord[] = []
  while (seen.length < expected) seen.push(...(await member.poll({ maxRecords: 1000, timeoutMs: 200 })))
  return seen
}

describe('Broker consumer groups', () => {
  it('shares the partitions of every listed topic between the members; records carry their topic', async () => {
    const broker = await openBroker()
    await fill(broker, 'a', 2, 3)
    await fill(broker, 'b', 1, 3)
    await fill(broker, 'c', 1, 3)
    await fill(broker, 'not-listed', 1, 3)
    const group = broker.consumerGroup('g', { topics: ['a', 'b', 'c'], assignmentStrategy: 'round-robin' })
    const first = await group.join({ memberId: 'm1' })
    const second = await group.join({ memberId: 'm2' })
    expect(await group.subscribed()).toEqual([
      { topic: 'a', partition: 0 },
      { topic: 'a', partition: 1 },
      { topic: 'b', partition: 0 },
      { topic: 'c', partition: 0 },
    ])
    expect(first.assignment).toHaveLength(2)
    expect(second.assignment).toHaveLength(2)
    const owned = [...first.assignment, ...second.assignment].map((tp) => `${tp.topic}/${tp.partition}`).sort()
    expect(owned).toEqual(['a/0', 'a/1', 'b/0', 'c/0'])
    const records = [...(await pollUntil(first, 6)), ...(await pollUntil(second, 6))]
    expect(records.map(where).sort()).toEqual(records.map((record) => text(record.value)).sort())
    expect(records.every((record) => text(record.value) === where(record))).toBe(true)
    expect(new Set(records.map((record) => record.topic))).toEqual(new Set(['a', 'b', 'c']))
    await first.commit()
    await second.commit()
    expect((await group.lag()).map(({ topic, partition, committed, lag }) => ({ topic, partition, committed, lag }))).toEqual([
      { topic: 'a', partition: 0, committed: 3, lag: 0 },
      { topic: 'a', partition: 1, committed: 3, lag: 0 },
      { topic: 'b', partition: 0, committed: 3, lag: 0 },
      { topic: 'c', partition: 0, committed: 3, lag: 0 },
    ])
  })

  it('picks up a topic created later that matches its pattern, without restarting the member, within 5 s', async () => {
    const broker = await openBroker()
    await fill(broker, 'disease.rust', 1, 2)
    await fill(broker, 'photos', 1, 2)
    const group = broker.consumerGroup('graders', { topics: /^disease\./ })
    const member = await group.join()
    expect((await pollUntil(member, 2)).map(where)).toEqual(['disease.rust/0:0', 'disease.rust/0:1'])
    const started = Date.now()
    const waiting = pollUntil(member, 1)
    await fill(broker, 'disease.mildew', 2, 1) // created by another handle of the directory would do the same
    const late = await waiting
    expect(late.map((record) => record.topic)).toContain('disease.mildew')
    expect(Date.now() - started).toBeLessThan(5000)
    expect(member.assignment.map((tp) => `${tp.topic}/${tp.partition}`).sort()).toEqual(['disease.mildew/0', 'disease.mildew/1', 'disease.rust/0'])
  })

  it('finds a topic another handle created in the directory', async () => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    const member = await broker.consumerGroup('g', { topics: /^t/ }).join()
    const other = await openBroker(dir)
    await fill(other, 'tx', 1, 1)
    expect((await pollUntil(member, 1)).map(where)).toEqual(['tx/0:0'])
  })

  it('keeps committed offsets across reopen, however the topics are listed afterwards', async () => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 'x', 1, 5)
    await fill(broker, 'y', 1, 5)
    const member = await broker.consumerGroup('g', { topics: ['y', 'x'] }).join()
    const records = await pollUntil(member, 10)
    await member.commit(records.find((record) => record.topic === 'x' && record.offset === 2)!)
    await member.commit(records.find((record) => record.topic === 'y' && record.offset === 3)!)
    await broker.close()
    brokers.splice(brokers.indexOf(broker), 1)
    const again = await openBroker(dir)
    await fill(again, 'w', 1, 1) // a new topic found first this time: slots of x and y keep their numbers
    const group = again.consumerGroup('g', { topics: /^[wxy]$/ })
    expect(await group.committed('x', 0)).toBe(3)
    expect(await group.committed('y', 0)).toBe(4)
    const resumed = await group.join()
    expect((await pollUntil(resumed, 4)).map(where).sort()).toEqual(['w/0:0', 'x/0:3', 'x/0:4', 'y/0:4'])
  })

  it('reads a deleted topic as empty and keeps consuming the others', async () => {
    const broker = await openBroker()
    await fill(broker, 'keep', 1, 2)
    await fill(broker, 'drop', 1, 2)
    const group = broker.consumerGroup('g', { topics: ['keep', 'drop'] })
    const member = await group.join()
    await pollUntil(member, 4)
    await member.commit()
    await member.close()
    await broker.deleteTopic('drop')
    await broker.close()
    brokers.splice(brokers.indexOf(broker), 1)
    const again = await openBroker(broker.dir)
    const regroup = again.consumerGroup('g', { topics: ['keep', 'drop'] })
    const next = await regroup.join()
    await fill(again, 'keep', 1, 1)
    expect((await pollUntil(next, 1)).map(where)).toEqual(['keep/0:2'])
    expect((await regroup.lag()).map(({ topic, lag }) => [topic, lag])).toEqual([
      ['drop', 0], // slots are numbered in the order topics were found: by name
      ['keep', 1],
    ])
  })

  describe('bad input', () => {
    it.each([
      ['no topics', {}],
      ['an empty list', { topics: [] }],
      ['a name that is not a string', { topics: ['a', 3] }],
      ['a string instead of a list', { topics: 'a' }],
      ['an unknown option', { topics: ['a'], colour: 'red' }],
      ['a bad strategy', { topics: ['a'], assignmentStrategy: 'fastest' }],
    ])('refuses %s (INVALID_ARGUMENT)', async (_label, options) => {
      const broker = await openBroker()
      expect(() => broker.consumerGroup('g', options as never)).toThrow(LogError)
      expect(() => broker.consumerGroup('g', options as never)).toThrow(/INVALID_ARGUMENT/)
    })

    it('refuses a bad group id, and other options for a group already open', async () => {
      const broker = await openBroker()
      expect(() => broker.consumerGroup('../g', { topics: ['a'] })).toThrow(/INVALID_ARGUMENT/)
      broker.consumerGroup('g', { topics: /^a/ })
      expect(() => broker.consumerGroup('g', { topics: /^b/ })).toThrow(/already open with other options/)
      expect(broker.consumerGroup('g', { topics: /^a/ })).toBe(broker.consumerGroup('g', { topics: /^a/ }))
    })

    it('refuses commits and seeks on partitions the group does not subscribe (UNKNOWN_PARTITION)', async () => {
      const broker = await openBroker()
      await fill(broker, 'a', 1, 1)
      const member = await broker.consumerGroup('g', { topics: ['a'] }).join()
      await expect(member.commit({ topic: 'b', partition: 0, offset: 0 })).rejects.toMatchObject({ code: 'UNKNOWN_PARTITION' })
      expect(() => member.seek('a', 1, 0)).toThrow(/UNKNOWN_PARTITION/)
    })

    it('reports a damaged slot table (CORRUPT_FILE) instead of guessing', async () => {
      const dir = tempDir()
      const broker = await openBroker(dir)
      await fill(broker, 'a', 1, 1)
      await (await broker.consumerGroup('g', { topics: ['a'] }).join()).close()
      await broker.close()
      brokers.splice(brokers.indexOf(broker), 1)
      fs.writeFileSync(path.join(dir, '@groups', 'g', 'slots.json'), '{"slots": [["a", -1]]}')
      const again = await openBroker(dir)
      await expect(again.consumerGroup('g', { topics: ['a'] }).join()).rejects.toMatchObject({ code: 'CORRUPT_FILE' })
    })
  })
})
