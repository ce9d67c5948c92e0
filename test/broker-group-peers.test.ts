/**
 * Broker consumer groups with members in several threads and processes: the first handle of a group
 * owns its state and serves the others (src/broker-group-owner.ts). Members anywhere share the
 * partitions of every subscribed topic, each record is delivered and committed, a member whose
 * process dies loses its partitions at once and its uncommitted records are delivered again, topics
 * created later reach remote members within 5 s, and the owner can die or close: another handle
 * takes its place and members resume at the committed offsets.
 */
import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Broker, type BrokerConsumer, type ConsumedRecord } from '../src/index.js'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { Peer } from './helpers/peer.js'
import { tempDir } from './helpers/temp-dir.js'

beforeAll(() => ensureBuilt(), 180_000)

const BROKER_PEER = path.join(REPO, 'test', 'fixtures', 'broker-peer.mjs')

interface PeerRecord {
  topic: string
  partition: number
  offset: number
  value: string
}

const peers: Peer[] = []
const brokers: Broker[] = []
afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.kill()))
  for (const broker of brokers.splice(0)) await broker.close().catch(() => undefined)
})

async function peer(kind: 'thread' | 'process', dir: string): Promise<Peer> {
  const created = kind === 'thread' ? await Peer.thread(BROKER_PEER) : await Peer.process(BROKER_PEER)
  peers.push(created)
  await created.call('open', { dir })
  return created
}

async function openBroker(dir: string): Promise<Broker> {
  const broker = await Broker.open(dir)
  brokers.push(broker)
  return broker
}

async function fill(broker: Broker, name: string, count: number, partitions = 1): Promise<void> {
  const topic = await broker.topic(name, { partitions })
  await topic.sendBatch(Array.from({ length: count }, (_, i) => ({ value: `${name}-${i}`, partition: i % partitions })))
}

const range = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}-${i}`)
const text = (record: ConsumedRecord): string => Buffer.from(record.value).toString('utf8')

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function pollUntil(member: BrokerConsumer, expected: number): Promise<ConsumedRecord[]> {
  const seen: ConsumedRecord[] = []
  while (seen.length < expected) seen.push(...(await member.poll({ maxRecords: 1000, timeoutMs: 200 })))
  return seen
}

const PATTERN = { pattern: '^crops\\.' }
const crops = /^crops\./

describe('Broker consumer groups across threads and processes', () => {
  it('drains pattern-subscribed topics with members here, in a worker thread and in a child process: every record delivered, every offset committed', async () => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 'crops.wheat', 300, 2)
    await fill(broker, 'crops.rice', 300, 2)
    await fill(broker, 'weather', 50)
    const group = broker.consumerGroup('graders', { topics: crops })
    const local = await group.join({ memberId: 'here' })
    expect(group.isOwner).toBe(true)
    const [thread, child] = await Promise.all([peer('thread', dir), peer('process', dir)])
    await thread.call('join', { group: 'graders', topics: PATTERN, memberId: 'thread' })
    await child.call('join', { group: 'graders', topics: PATTERN, memberId: 'child' })
    await until(async () => (await group.members()).length === 3, 'all three members joined')
    const drains = [thread, child].map((p, i) => p.call<PeerRecord[]>('drain', { group: 'graders', topics: PATTERN, memberId: ['thread', 'child'][i], total: 600 }))
    const mine: string[] = []
    for (;;) {
      const records = await local.poll({ maxRecords: 50, timeoutMs: 200 })
      mine.push(...records.map(text))
      if (records.length > 0) await local.commit().catch((error: { code?: string }) => expect(error.code).toBe('FENCED'))
      const lag = await group.lag()
      if (lag.every((partition) => partition.lag === 0) && lag.reduce((sum, p) => sum + p.endOffset, 0) === 600) break
    }
    const [fromThread, fromChild] = await Promise.all(drains)
    expect(fromThread!.length).toBeGreaterThan(0)
    expect(fromChild!.length).toBeGreaterThan(0)
    const all = new Set([...mine, ...fromThread!.map((r) => r.value), ...fromChild!.map((r) => r.value)])
    expect([...all].sort()).toEqual([...range('crops.wheat', 300), ...range('crops.rice', 300)].sort())
    expect((await group.lag()).map(({ topic, partition, committed }) => `${topic}/${partition}:${committed}`).sort()).toEqual([
      'crops.rice/0:150',
      'crops.rice/1:150',
      'crops.wheat/0:150',
      'crops.wheat/1:150',
    ])
  })

  it('gives the partitions of a member whose process is SIGKILLed to the live members at once, and delivers its uncommitted records again', async () => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 'crops.a', 20, 2)
    const group = broker.consumerGroup('g', { topics: crops, sessionTimeoutMs: 60_000 })
    const doomed = await peer('process', dir)
    await doomed.call('join', { group: 'g', topics: PATTERN, options: { sessionTimeoutMs: 60_000 }, memberId: 'doomed' })
    const taken = await doomed.call<PeerRecord[]>('poll', { memberId: 'doomed', maxRecords: 100, timeoutMs: 1000 })
    expect(taken).toHaveLength(20) // took everything, committed nothing
    const survivor = await group.join({ memberId: 'survivor' })
    expect(survivor.assignment).toHaveLength(1)
    await doomed.kill()
    await until(() => survivor.assignment.length === 2, 'the survivor owns both partitions', 5000) // far sooner than the 60 s session
    const again = await pollUntil(survivor, 20)
    expect(again.map(text).sort()).toEqual(range('crops.a', 20).sort())
    await survivor.commit()
    expect((await group.lag()).map((p) => p.lag)).toEqual([0, 0])
  })

  it('keeps a remote member that heartbeats past sessionTimeoutMs, and expires one whose thread hangs', async () => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 'crops.a', 4, 2)
    const group = broker.consumerGroup('g', { topics: crops, sessionTimeoutMs: 300 })
    const live = await group.join({ memberId: 'live' })
    const remote = await peer('thread', dir)
    await remote.call('join', { group: 'g', topics: PATTERN, options: { sessionTimeoutMs: 300 }, memberId: 'remote' })
    await until(() => live.assignment.length === 1, 'the remote member has a partition')
    await new Promise((resolve) => setTimeout(resolve, 1500)) // 5 session timeouts: only heartbeats over the group's socket keep it
    expect((await group.members()).map((m) => m.memberId).sort()).toEqual(['live', 'remote'])
    const blocking = remote.call('block', { ms: 3000 })
    await until(() => live.assignment.length === 2, 'the hung member is expired', 2800)
    expect((await group.members()).map((m) => m.memberId)).toEqual(['live'])
    await blocking
  })

  it.each(['thread', 'process'] as const)('hands a topic created later to a member waiting in a %s within 5 s, without restarting it', async (kind) => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 'crops.old', 2)
    const group = broker.consumerGroup('g', { topics: crops })
    await group.generation() // this handle owns the group
    const remote = await peer(kind, dir)
    await remote.call('join', { group: 'g', topics: PATTERN, memberId: 'remote' })
    const first = await remote.call<PeerRecord[]>('poll', { memberId: 'remote', maxRecords: 10, timeoutMs: 2000 })
    expect(first.map((r) => r.value)).toEqual(['crops.old-0', 'crops.old-1'])
    await remote.call('commit', { memberId: 'remote' }) // else the rebalance that brings the new topic delivers them again
    const waiting = remote.call<PeerRecord[]>('poll', { memberId: 'remote', maxRecords: 10, timeoutMs: 10_000 })
    const started = Date.now()
    await fill(broker, 'crops.new', 3)
    const late = await waiting
    expect(Date.now() - started).toBeLessThan(5000)
    expect(late.map((r) => r.value)).toEqual(range('crops.new', 3))
    expect((await remote.call<{ topic: string }[]>('assignment', { memberId: 'remote' })).map((tp) => tp.topic).sort()).toEqual(['crops.new', 'crops.old'])
  })

  it('lets another handle take the group over when the owner process is SIGKILLed: members resume at the committed offsets', async () => {
    const dir = tempDir()
    const first = await peer('process', dir)
    await first.call('fill', { topic: 'crops.a', partitions: 2, count: 40 })
    await first.call('join', { group: 'g', topics: PATTERN, memberId: 'old' })
    expect(await first.call('isOwner', { group: 'g', topics: PATTERN })).toBe(true)
    const polled = await first.call<PeerRecord[]>('poll', { memberId: 'old', maxRecords: 30, timeoutMs: 1000 })
    expect(polled).toHaveLength(30)
    await first.call('commit', { memberId: 'old' })

    const broker = await openBroker(dir)
    const group = broker.consumerGroup('g', { topics: crops })
    const member = await group.join({ memberId: 'new' })
    expect(group.isOwner).toBe(false)
    await first.kill()
    await until(() => group.isOwner, 'this handle owns the group')
    const committed = new Map<number, number>()
    for (const record of polled) committed.set(record.partition, Math.max(committed.get(record.partition) ?? 0, record.offset + 1))
    const rest = await pollUntil(member, 10)
    for (const [partition, offset] of committed) {
      if (offset < 20) expect(Math.min(...rest.filter((r) => r.partition === partition).map((r) => r.offset))).toBe(offset)
      expect(await group.committed('crops.a', partition)).toBe(offset)
    }
    expect(rest.map(text).sort()).toEqual(range('crops.a', 40).filter((value) => !polled.some((r) => r.value === value)).sort())
    expect(member.assignment).toHaveLength(2)
  })

  it('keeps both forwarders consuming after the owner process dies: one takes the group over, the other reconnects to it', async () => {
    const dir = tempDir()
    const first = await peer('process', dir)
    await first.call('fill', { topic: 'crops.a', partitions: 2, count: 10 })
    await first.call('join', { group: 'g', topics: PATTERN, memberId: 'old' })
    const broker = await openBroker(dir)
    const group = broker.consumerGroup('g', { topics: crops })
    const here = await group.join({ memberId: 'here' })
    const other = await peer('thread', dir)
    await other.call('join', { group: 'g', topics: PATTERN, memberId: 'other' })
    await first.kill()
    await until(async () => group.isOwner || (await other.call<boolean>('isOwner', { group: 'g', topics: PATTERN })), 'a forwarder owns the group')
    await fill(broker, 'crops.b', 30, 2)
    const theirs = other.call<PeerRecord[]>('drain', { group: 'g', topics: PATTERN, memberId: 'other', total: 40 })
    const mine: ConsumedRecord[] = []
    for (;;) {
      const records = await here.poll({ maxRecords: 10, timeoutMs: 200 })
      mine.push(...records)
      if (records.length > 0) await here.commit().catch((error: { code?: string }) => expect(error.code).toBe('FENCED'))
      const lag = await group.lag()
      if (lag.length === 4 && lag.every((partition) => partition.lag === 0)) break
    }
    const all = new Set([...mine.map(text), ...(await theirs).map((r) => r.value)])
    expect([...all].sort()).toEqual([...range('crops.a', 10), ...range('crops.b', 30)].sort())
    expect((await group.members()).map((m) => m.memberId).sort()).toEqual(['here', 'other'])
  })

  it('hands the group over when the owner closes: the remote member keeps consuming, nothing committed is delivered again', async () => {
    const dir = tempDir()
    const broker = await openBroker(dir)
    await fill(broker, 'crops.a', 10)
    const group = broker.consumerGroup('g', { topics: crops })
    const local = await group.join({ memberId: 'local' })
    const remote = await peer('thread', dir)
    await remote.call('join', { group: 'g', topics: PATTERN, memberId: 'remote' })
    await local.close()
    const before = await remote.call<PeerRecord[]>('poll', { memberId: 'remote', maxRecords: 5, timeoutMs: 2000 })
    expect(before.map((r) => r.value)).toEqual(range('crops.a', 5))
    await remote.call('commit', { memberId: 'remote' })
    await group.close()
    await until(async () => (await remote.call<boolean>('isOwner', { group: 'g', topics: PATTERN })) === true, 'the remote handle owns the group')
    const after = await remote.call<PeerRecord[]>('poll', { memberId: 'remote', maxRecords: 10, timeoutMs: 2000 })
    expect(after.map((r) => r.value)).toEqual(range('crops.a', 10).slice(5))
  })

  describe('bad input', () => {
    it('refuses a handle whose subscription differs from the open group (INVALID_ARGUMENT), and a closed group (LOG_CLOSED)', async () => {
      const dir = tempDir()
      const broker = await openBroker(dir)
      const group = broker.consumerGroup('g', { topics: crops })
      await group.generation()
      const [other, another] = await Promise.all([peer('process', dir), peer('thread', dir)])
      await expect(other.call('join', { group: 'g', topics: { pattern: '^weather' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
      await expect(another.call('join', { group: 'g', topics: PATTERN, options: { sessionTimeoutMs: 1234 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
      expect(await another.call('join', { group: 'g', topics: PATTERN, memberId: 'fixed' })).toMatchObject({ memberId: 'fixed' }) // the failed group was not kept
      await group.close()
      await expect(group.join()).rejects.toMatchObject({ code: 'LOG_CLOSED' })
    })
  })
})
