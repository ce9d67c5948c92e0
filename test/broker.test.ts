/**
 * Broker specs: topics live in subdirectories named by Kafka's rule; `topic(name)` creates or opens
 * (once per broker), with the broker's defaults under the caller's options; `topics()` lists what is
 * on disk; `deleteTopic` removes a topic and its groups' state, and refuses while another process
 * owns the topic; bad names and closed brokers are typed errors.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Broker, LogError, Topic } from '../src/index.js'
import { ensureBuilt } from './helpers/build-dist.js'
import { Peer } from './helpers/peer.js'
import { tempDir } from './helpers/temp-dir.js'

beforeAll(() => ensureBuilt(), 180_000)

const brokers: Broker[] = []
const peers: Peer[] = []
afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.kill()))
  for (const broker of brokers.splice(0)) await broker.close()
})

async function openBroker(dir = tempDir(), defaults?: Parameters<typeof Broker.open>[1]): Promise<Broker> {
  const broker = await Broker.open(dir, defaults)
  brokers.push(broker)
  return broker
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}

describe('Broker', () => {
  describe('topic names', () => {
    it.each(['a', 'jobs', 'jobs.dlq', 'plant_disease-rust.v2', 'A9', '..a', 'x'.repeat(249)])('accepts %j', async (name) => {
      const broker = await openBroker()
      const topic = await broker.topic(name)
      expect(topic.dir).toBe(path.join(broker.dir, name))
      expect(broker.topics()).toEqual([name])
    })

    it.each([
      ['empty', ''],
      ['"."', '.'],
      ['".."', '..'],
      ['a slash', 'a/b'],
      ['a backslash', 'a\\b'],
      ['a space', 'a b'],
      ['an @', '@deleting-x'],
      ['non-ASCII', 'grüne'],
      ['250 characters', 'x'.repeat(250)],
      ['a number', 7],
      ['null', null],
    ])('refuses a name with %s (INVALID_ARGUMENT), creating nothing', async (_label, name) => {
      const broker = await openBroker()
      const error = await rejection(broker.topic(name as string))
      expect(error).toBeInstanceOf(LogError)
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' })
      expect(fs.readdirSync(broker.dir)).toEqual([])
    })
  })

  describe('topic', () => {
    it('creates a topic with the broker defaults under the options given, and reopens it as stored', async () => {
      const dir = tempDir()
      const broker = await openBroker(dir, { partitions: 3, segmentRecordsMax: 10 })
      const jobs = await broker.topic('jobs')
      const results = await broker.topic('results', { partitions: 2 })
      expect(jobs.partitionCount).toBe(3)
      expect(results.partitionCount).toBe(2)
      await jobs.sendBatch(Array.from({ length: 25 }, (_, i) => ({ value: `v${i}`, partition: 0 })))
      expect(jobs.partition(0).log.segments.length).toBe(3) // segmentRecordsMax: 10 from the defaults
      await broker.close()
      brokers.splice(brokers.indexOf(broker), 1)
      const again = await openBroker(dir)
      const reopened = await again.topic('jobs')
      expect(reopened.partitionCount).toBe(3)
      expect(reopened.partition(0).endOffset).toBe(25)
    })

    it('opens a topic once per broker: concurrent callers share one handle', async () => {
      const broker = await openBroker()
      const [a, b] = await Promise.all([broker.topic('t'), broker.topic('t')])
      expect(a).toBe(b)
      expect(await broker.topic('t')).toBe(a)
    })

    it('refuses a partition count other than the stored one (TOPIC_MISMATCH)', async () => {
      const dir = tempDir()
      const first = await openBroker(dir)
      await first.topic('t', { partitions: 2 })
      await first.close()
      const second = await openBroker(dir)
      expect(await rejection(second.topic('t', { partitions: 3 }))).toMatchObject({ code: 'TOPIC_MISMATCH' })
    })
  })

  describe('topics', () => {
    it('lists the topics on disk, created by any handle, and nothing else', async () => {
      const dir = tempDir()
      const broker = await openBroker(dir)
      await broker.topic('b')
      const elsewhere = await Topic.open(path.join(dir, 'a'))
      await elsewhere.close()
      fs.mkdirSync(path.join(dir, 'not-a-topic'))
      fs.writeFileSync(path.join(dir, 'stray.txt'), 'x')
      expect(broker.topics()).toEqual(['a', 'b'])
    })
  })

  describe('deleteTopic', () => {
    it('removes the topic, its partitions and its groups; a new topic of that name starts empty', async () => {
      const broker = await openBroker()
      const topic = await broker.topic('jobs', { partitions: 2 })
      await topic.sendBatch([{ value: 'a' }, { value: 'b' }])
      const member = await topic.consumerGroup('workers').join()
      await member.poll({ maxRecords: 10 })
      await member.commit()
      await broker.deleteTopic('jobs')
      expect(broker.topics()).toEqual([])
      expect(fs.readdirSync(broker.dir)).toEqual([])
      const fresh = await broker.topic('jobs', { partitions: 4 })
      expect(fresh.partitionCount).toBe(4)
      expect(fresh.partition(0).endOffset + fresh.partition(1).endOffset).toBe(0)
      expect(await fresh.consumerGroup('workers').committed(0)).toBeUndefined()
    })

    it('refuses while another process owns the topic (LOCKED), and keeps it', async () => {
      const dir = tempDir()
      const broker = await openBroker(dir)
      await (await broker.topic('busy')).send({ value: 'kept' })
      await broker.close()
      brokers.splice(brokers.indexOf(broker), 1)
      const owner = await Peer.process()
      peers.push(owner)
      expect(await owner.call('open', { dir: path.join(dir, 'busy') })).toMatchObject({ isOwner: true })
      const second = await openBroker(dir)
      expect(await rejection(second.deleteTopic('busy'))).toMatchObject({ code: 'LOCKED' })
      expect(second.topics()).toEqual(['busy'])
    })

    it('refuses a topic that does not exist, and bad names', async () => {
      const broker = await openBroker()
      expect(await rejection(broker.deleteTopic('missing'))).toMatchObject({ code: 'INVALID_ARGUMENT' })
      expect(await rejection(broker.deleteTopic('../etc'))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    })

    it('clears what a crash during a delete left aside when the broker opens', async () => {
      const dir = tempDir()
      fs.mkdirSync(path.join(dir, '@deleting-jobs-1-2', 'partition-0'), { recursive: true })
      const broker = await openBroker(dir)
      expect(fs.readdirSync(dir)).toEqual([])
      expect(broker.topics()).toEqual([])
    })
  })

  it('closes every topic it opened; later calls throw LOG_CLOSED', async () => {
    const broker = await openBroker()
    const topic = await broker.topic('t')
    await broker.close()
    await expect(topic.send({ value: 'x' })).rejects.toMatchObject({ code: 'LOG_CLOSED' })
    expect(await rejection(broker.topic('t'))).toMatchObject({ code: 'LOG_CLOSED' })
    expect(() => broker.topics()).toThrow(LogError)
  })

  it('refuses bad arguments to open with INVALID_ARGUMENT', async () => {
    await expect(Broker.open('')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(Broker.open(tempDir(), null as unknown as object)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
  })
})
