/**
 * Share groups over several topics of a Broker: a member takes records from every subscribed topic
 * (records carry their topic and deliveryCount), settles each on the right topic, picks up a topic
 * created later that matches its pattern while it waits, and shares the work with a member in a
 * worker thread; dead letters and bad input as for a topic's share group.
 */
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Broker, type BrokerShareConsumer, LogError } from '../src/index.js'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { Peer } from './helpers/peer.js'
import { tempDir } from './helpers/temp-dir.js'

beforeAll(() => ensureBuilt(), 180_000)

const BROKER_PEER = path.join(REPO, 'test', 'fixtures', 'broker-peer.mjs')

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

async function fill(broker: Broker, name: string, count: number, partitions = 1): Promise<void> {
  const topic = await broker.topic(name, { partitions })
  await topic.sendBatch(Array.from({ length: count }, (_, i) => ({ value: `${name}-${i}`, partition: i % partitions })))
}

/** Polls and acks until `expected` records were taken; returns their values. */
async function drain(member: BrokerShareConsumer, expected: number): Promise<string[]> {
  const values: string[] = []
  while (values.length < expected) {
    const records = await member.poll({ maxRecords: 50, timeoutMs: 500 })
    await member.ack(records)
    values.push(...records.map((record) => text(record.value)))
  }
  return values
}

describe('Broker share groups', () => {
  it('takes records from every listed topic, each delivered once, and acks each on its own topic', async () => {
    const broker = await openBroker()
    await fill(broker, 'jobs.gpu', 10, 2)
    await fill(broker, 'jobs.cpu', 10)
    await fill(broker, 'other', 5)
    const group = broker.shareGroup('workers', { topics: ['jobs.gpu', 'jobs.cpu'] })
    const member = await group.join({ memberId: 'w1' })
    expect(member.topics.sort()).toEqual(['jobs.cpu', 'jobs.gpu'])
    const first = await member.poll({ maxRecords: 100, timeoutMs: 0 })
    expect(first.every((record) => record.deliveryCount === 1)).toBe(true)
    expect(new Set(first.map((record) => record.topic))).toEqual(new Set(['jobs.gpu', 'jobs.cpu']))
    expect(first.map((record) => text(record.value)).sort()).toEqual(
      [...Array.from({ length: 10 }, (_, i) => `jobs.gpu-${i}`), ...Array.from({ length: 10 }, (_, i) => `jobs.cpu-${i}`)].sort(),
    )
    await member.ack(first.filter((record) => record.topic === 'jobs.gpu'))
    await member.release(first.filter((record) => record.topic === 'jobs.cpu'))
    const again = await member.poll({ maxRecords: 100, timeoutMs: 1000 })
    expect(again.map((record) => `${record.topic}:${record.deliveryCount}`)).toEqual(Array.from({ length: 10 }, () => 'jobs.cpu:2'))
    await member.ack(again)
    expect(await member.poll({ maxRecords: 100, timeoutMs: 100 })).toEqual([])
  })

  it('picks up a topic created later that matches its pattern, waking a member that waits, within 5 s', async () => {
    const broker = await openBroker()
    await fill(broker, 'resize.a', 2)
    const member = await broker.shareGroup('resizers', { topics: /^resize\./ }).join()
    expect(await drain(member, 2)).toEqual(['resize.a-0', 'resize.a-1'])
    const started = Date.now()
    const waiting = member.poll({ maxRecords: 10, timeoutMs: 10_000 })
    await fill(broker, 'resize.b', 3)
    const late = await waiting
    expect(late.length).toBeGreaterThan(0)
    expect(late.every((record) => record.topic === 'resize.b')).toBe(true)
    expect(Date.now() - started).toBeLessThan(5000)
    expect(member.topics.sort()).toEqual(['resize.a', 'resize.b'])
  })

  it.each(['thread', 'process'] as const)('hands a topic created later to a member waiting in a %s within 5 s', async (kind) => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 'resize.a', 1)
    const remote = kind === 'thread' ? await Peer.thread(BROKER_PEER) : await Peer.process(BROKER_PEER)
    try {
      await remote.call('open', { dir })
      await remote.call('shareJoin', { group: 'resizers', topics: { pattern: '^resize\\.' }, memberId: 'remote' })
      expect((await remote.call<{ value: string }[]>('sharePoll', { memberId: 'remote', maxRecords: 10, timeoutMs: 2000 })).map((r) => r.value)).toEqual(['resize.a-0'])
      const waiting = remote.call<{ topic: string; value: string }[]>('sharePoll', { memberId: 'remote', maxRecords: 10, timeoutMs: 10_000 })
      const started = Date.now()
      await fill(broker, 'resize.b', 2)
      const late = await waiting
      expect(Date.now() - started).toBeLessThan(5000)
      expect(late.map((r) => `${r.topic}:${r.value}`)).toEqual(['resize.b:resize.b-0', 'resize.b:resize.b-1'])
    } finally {
      await remote.close()
    }
  })

  it('shares the records with a member in a worker thread: each acknowledged exactly once between them', async () => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 't1', 200, 2)
    await fill(broker, 't2', 200, 2)
    const local = await broker.shareGroup('g', { topics: /^t\d$/ }).join({ memberId: 'local' })
    const script = `
      import { parentPort } from 'node:worker_threads'
      import { Broker } from ${JSON.stringify(path.join(REPO, 'dist', 'index.js'))}
      const broker = await Broker.open(${JSON.stringify(dir)})
      const member = await broker.shareGroup('g', { topics: /^t\\d$/ }).join({ memberId: 'worker' })
      parentPort.postMessage('joined')
      const taken = []
      for (let idle = 0; idle < 3; ) {
        const records = await member.poll({ maxRecords: 20, timeoutMs: 200 })
        if (records.length === 0) { idle++; continue }
        idle = 0
        await member.ack(records)
        taken.push(...records.map((record) => Buffer.from(record.value).toString()))
      }
      await broker.close()
      parentPort.postMessage(taken)
    `
    const worker = new Worker(script, { eval: true, type: 'module' } as never)
    const joined = new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve())
      worker.once('error', reject)
    })
    await joined
    const fromWorker = new Promise<string[]>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    const mine: string[] = []
    for (let idle = 0; idle < 3; ) {
      const records = await local.poll({ maxRecords: 20, timeoutMs: 200 })
      if (records.length === 0) {
        idle++
        continue
      }
      idle = 0
      await new Promise((resolve) => setTimeout(resolve, 5)) // some work, so that the worker gets its share
      await local.ack(records)
      mine.push(...records.map((record) => text(record.value)))
    }
    const theirs = await fromWorker
    const all = [...mine, ...theirs]
    expect(all.length).toBe(400)
    expect(new Set(all).size).toBe(400)
    expect(theirs.length).toBeGreaterThan(0)
  })

  it('dead-letters a record delivered maxDeliveries times, with its topic in the seglog.dlq headers', async () => {
    const broker = await openBroker()
    await fill(broker, 'in.a', 1)
    await fill(broker, 'in.b', 1)
    const member = await broker.shareGroup('g', { topics: ['in.a', 'in.b'], maxDeliveries: 2, deadLetterTopic: 'in.dlq' }).join()
    for (let delivery = 1; delivery <= 2; delivery++) {
      const records = await member.poll({ maxRecords: 10, timeoutMs: 1000 })
      const poisoned = records.find((record) => record.topic === 'in.b')!
      expect(poisoned.deliveryCount).toBe(delivery)
      await member.ack(records.filter((record) => record !== poisoned))
      await member.release(poisoned)
    }
    const dlq = await broker.topic('in.dlq')
    const letters = []
    for await (const record of dlq.partition(0).records()) letters.push(record)
    expect(letters).toHaveLength(1)
    expect(text(letters[0]!.value)).toBe('in.b-0')
    expect(text(letters[0]!.headers['seglog.dlq.topic']!)).toBe('in.b')
    expect(text(letters[0]!.headers['seglog.dlq.deliveries']!)).toBe('2')
  })

  describe('bad input', () => {
    it.each([
      ['no topics', {}],
      ['an empty list', { topics: [] }],
      ['a bad lockMs', { topics: ['a'], lockMs: -1 }],
      ['a bad maxDeliveries', { topics: ['a'], maxDeliveries: 0 }],
    ])('refuses %s (INVALID_ARGUMENT)', async (_label, options) => {
      const broker = await openBroker()
      expect(() => broker.shareGroup('g', options as never)).toThrow(LogError)
      expect(() => broker.shareGroup('g', options as never)).toThrow(/INVALID_ARGUMENT/)
    })

    it('refuses to settle a record of a topic the member does not take from (UNKNOWN_PARTITION)', async () => {
      const broker = await openBroker()
      await fill(broker, 'a', 1)
      const member = await broker.shareGroup('g', { topics: ['a'] }).join()
      await expect(member.ack({ topic: 'b', partition: 0, offset: 0 })).rejects.toMatchObject({ code: 'UNKNOWN_PARTITION' })
    })

    it('refuses other options for a group already open, and calls on a closed member (LOG_CLOSED)', async () => {
      const broker = await openBroker()
      await fill(broker, 'a', 1)
      const group = broker.shareGroup('g', { topics: ['a'], lockMs: 1000 })
      expect(() => broker.shareGroup('g', { topics: ['a'], lockMs: 2000 })).toThrow(/already open with other options/)
      const member = await group.join()
      await member.close()
      await expect(member.poll()).rejects.toMatchObject({ code: 'LOG_CLOSED' })
    })
  })
})
