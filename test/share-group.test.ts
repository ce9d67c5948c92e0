/**
 * Specs for share groups (src/share-*.ts): members take records from the same partitions at once,
 * each record held by one member at a time under a lock; unacknowledged records come back with a
 * growing deliveryCount; released records come back after their delay; rejected and exhausted
 * records go to the dead-letter topic with their origin in headers. The state is durable across
 * close, reopen and SIGKILL, and members in worker threads and child processes share the group
 * through the topic's owner.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { LogError, SegmentedLog, type ShareConsumedRecord, type ShareConsumer, type ShareGroupOptions, Topic } from '../src/index.js'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { Peer } from './helpers/peer.js'
import { tempDir } from './helpers/temp-dir.js'

beforeAll(() => ensureBuilt(), 180_000)

const SHARE_PEER = path.join(REPO, 'test', 'fixtures', 'share-peer.mjs')

interface PeerRecord {
  partition: number
  offset: number
  key: string | null
  value: string
  deliveryCount: number
}

/** test/fixtures/share-peer.mjs in a worker thread or a child process (test/helpers/peer.ts). */
async function startPeer(kind: 'thread' | 'process'): Promise<Peer> {
  const peer = kind === 'thread' ? await Peer.thread(SHARE_PEER) : await Peer.process(SHARE_PEER)
  peers.push(peer)
  return peer
}

const peers: Peer[] = []
const topics: Topic[] = []
const members: ShareConsumer[] = []
afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.kill()))
  for (const member of members.splice(0)) await member.close().catch(() => undefined)
  for (const topic of topics.splice(0)) await topic.close().catch(() => undefined)
})

async function openTopic(dir: string, partitions?: number): Promise<Topic> {
  const topic = await Topic.open(dir, partitions === undefined ? {} : { partitions })
  topics.push(topic)
  return topic
}

async function join(topic: Topic, group: string, options?: ShareGroupOptions): Promise<ShareConsumer> {
  const member = await topic.shareGroup(group, options).join()
  members.push(member)
  return member
}

async function produce(topic: Topic, count: number, prefix = 'v'): Promise<void> {
  await topic.sendBatch(Array.from({ length: count }, (_, i) => ({ value: `${prefix}-${i}`, key: `k-${i}`, headers: { origin: 'test' } })))
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8')
const ids = (records: readonly { partition: number; offset: number }[]): string[] => records.map((r) => `${r.partition}:${r.offset}`).sort()

/** Every record of `topic` (a dead-letter topic) with its headers as strings. */
async function allRecords(topic: Topic): Promise<{ key: string | null; value: string; headers: Record<string, string> }[]> {
  const found = []
  for (let p = 0; p < topic.partitionCount; p++) {
    for await (const record of topic.partition(p).records()) {
      found.push({ key: record.key && text(record.key), value: text(record.value), headers: Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, text(v)])) })
    }
  }
  return found
}

async function code(work: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof work === 'function' ? work() : work)
  } catch (error) {
    if (error instanceof LogError) return error.code
    return (error as { code?: string }).code ?? 'NOT_A_LOG_ERROR'
  }
  return undefined
}

describe('ShareGroup', () => {
  describe('locks and redelivery', () => {
    it('delivers a record not acknowledged within lockMs again, to any member, with deliveryCount + 1', async () => {
      const topic = await openTopic(tempDir('share'))
      await produce(topic, 3)
      const first = await join(topic, 'jobs', { lockMs: 150 })
      const second = await join(topic, 'jobs', { lockMs: 150 })
      const taken = await first.poll({ maxRecords: 3 })
      expect(taken.map((r) => [r.offset, r.deliveryCount])).toEqual([[0, 1], [1, 1], [2, 1]])
      await first.ack(taken[1]!)
      expect(await second.poll({ maxRecords: 10 })).toEqual([]) // locked
      const started = Date.now()
      const again = await second.poll({ maxRecords: 10, timeoutMs: 2000 })
      expect(Date.now() - started).toBeGreaterThanOrEqual(100)
      expect(again.map((r) => [r.offset, r.deliveryCount])).toEqual([[0, 2], [2, 2]])
      expect(text(again[0]!.value)).toBe('v-0')
      expect(await code(first.ack(taken[0]!))).toBe('FENCED') // its lock expired: second holds it now
      await second.ack(again)
      expect(await first.poll({ maxRecords: 10, timeoutMs: 300 })).toEqual([])
    })

    it('release({ delayMs }) gives a record back after the delay', async () => {
      const topic = await openTopic(tempDir('share'))
      await produce(topic, 1)
      const member = await join(topic, 'jobs')
      const [record] = await member.poll()
      const released = Date.now()
      await member.release(record!, { delayMs: 300 })
      expect(await member.poll()).toEqual([])
      const [again] = await member.poll({ timeoutMs: 3000 })
      expect(Date.now() - released).toBeGreaterThanOrEqual(290)
      expect(again).toMatchObject({ offset: 0, deliveryCount: 2 })
      await member.release(again!) // no delay: at once
      expect((await member.poll())[0]).toMatchObject({ offset: 0, deliveryCount: 3 })
    })
  })

  describe('reject and dead letters', () => {
    it('writes a rejected record to deadLetterTopic with its key, value, headers and origin headers', async () => {
      const root = tempDir('share')
      const topic = await openTopic(path.join(root, 'jobs'))
      await produce(topic, 2)
      const member = await join(topic, 'workers', { deadLetterTopic: 'jobs.dlq' })
      const records = await member.poll()
      await member.reject(records[1]!)
      await member.ack(records[0]!)
      expect(await member.poll({ timeoutMs: 100 })).toEqual([])
      const dlq = await openTopic(path.join(root, 'jobs.dlq'))
      expect(await allRecords(dlq)).toEqual([
        {
          key: 'k-1',
          value: 'v-1',
          headers: { origin: 'test', 'seglog.dlq.topic': 'jobs', 'seglog.dlq.partition': '0', 'seglog.dlq.offset': '1', 'seglog.dlq.deliveries': '1', 'seglog.dlq.reason': 'rejected' },
        },
      ])
    })

    it('rejects a record delivered maxDeliveries times (lock expiry or release) into the dead-letter topic', async () => {
      const root = tempDir('share')
      const topic = await openTopic(path.join(root, 'jobs'))
      await produce(topic, 2)
      const options = { maxDeliveries: 2, lockMs: 100, deadLetterTopic: 'dead' }
      const member = await join(topic, 'workers', options)
      for (let delivery = 1; delivery <= 2; delivery++) {
        const records: ShareConsumedRecord[] = []
        while (records.length < 2) {
          const polled = await member.poll({ timeoutMs: 2000 })
          for (const record of polled) if (record.offset === 0) await member.release(record) // offset 0 is released, offset 1 left to expire
          records.push(...polled)
        }
        expect(records.map((r) => [r.offset, r.deliveryCount]).sort()).toEqual([[0, delivery], [1, delivery]])
      }
      expect(await member.poll({ timeoutMs: 400 })).toEqual([])
      const dlq = await openTopic(path.join(root, 'dead'))
      const dead = await allRecords(dlq)
      expect(dead.map((r) => [r.value, r.headers['seglog.dlq.deliveries'], r.headers['seglog.dlq.reason']]).sort()).toEqual([
        ['v-0', '2', 'maxDeliveries'],
        ['v-1', '2', 'maxDeliveries'],
      ])
    })
  })

  describe('several members', () => {
    it('shares one partition: members take records at once, and no record is held by two members at once', async () => {
      const topic = await openTopic(tempDir('share'))
      await produce(topic, 300)
      const group = { lockMs: 5_000 }
      const workers = await Promise.all([1, 2, 3].map(() => join(topic, 'jobs', group)))
      const holder = new Map<string, string>()
      const acked: string[] = []
      const counts = new Map<string, number>()
      let round = 0
      await Promise.all(
        workers.map(async (worker) => {
          for (;;) {
            const records = await worker.poll({ maxRecords: 7, timeoutMs: 200 })
            if (records.length === 0) return
            counts.set(worker.memberId, (counts.get(worker.memberId) ?? 0) + records.length)
            for (const id of ids(records)) {
              expect(holder.get(id)).toBeUndefined()
              holder.set(id, worker.memberId)
            }
            await new Promise((resolve) => setTimeout(resolve, 1))
            const release = records.filter(() => ++round % 5 === 0)
            const ack = records.filter((r) => !release.includes(r))
            for (const id of ids(records)) holder.delete(id)
            await Promise.all([worker.ack(ack), worker.release(release)])
            acked.push(...ids(ack))
          }
        }),
      )
      expect(acked.sort()).toEqual(Array.from({ length: 300 }, (_, i) => `0:${i}`).sort())
      for (const worker of workers) expect(counts.get(worker.memberId) ?? 0).toBeGreaterThan(20)
    })

    it('out-of-order acknowledgements advance the start over every done prefix; the window stays full', async () => {
      const dir = tempDir('share')
      const topic = await openTopic(dir)
      await produce(topic, 25)
      const member = await join(topic, 'jobs', { inFlightRecordsMax: 10 })
      const window = await member.poll({ maxRecords: 100 })
      expect(window.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) // bounded by inFlightRecordsMax
      await member.ack(window.slice(1).reverse()) // everything but offset 0
      expect(await member.poll({ maxRecords: 100 })).toEqual([]) // offset 0 holds the start
      await member.ack(window[0]!)
      const next = await member.poll({ maxRecords: 100 })
      expect(next.map((r) => r.offset)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
      await member.ack([next[9]!, next[3]!, next[0]!, next[1]!, next[2]!]) // start moves to 14
      expect((await member.poll({ maxRecords: 100 })).map((r) => r.offset)).toEqual([20, 21, 22, 23])
    })

    it('settles a record listed twice in one call once, across partitions in any order; a call with one record not held changes nothing (FENCED)', async () => {
      const dir = tempDir('share')
      const topic = await openTopic(dir, 3)
      await topic.sendBatch(Array.from({ length: 12 }, (_, i) => ({ value: `v-${i}`, partition: i % 3 })))
      const member = await join(topic, 'jobs')
      const other = await join(topic, 'jobs')
      const mine = await member.poll({ maxRecords: 8 })
      const theirs = await other.poll({ maxRecords: 100 })
      expect(mine).toHaveLength(8)
      expect(theirs).toHaveLength(4)
      expect(await code(member.ack([mine[3]!, theirs[0]!, mine[0]!]))).toBe('FENCED') // one not held: none of them acknowledged
      await member.ack([mine[2]!, mine[0]!, mine[2]!, ...[...mine].reverse()])
      await other.release(theirs)
      const again = await member.poll({ maxRecords: 100 })
      expect(ids(again)).toEqual(ids(theirs)) // the 8 acked (one listed twice) are done; the released come back
      expect(again.every((record) => record.deliveryCount === 2)).toBe(true)
    })

    it('acknowledges records as the iterator moves on and releases the rest of a batch on break', async () => {
      const topic = await openTopic(tempDir('share'))
      await produce(topic, 10)
      const member = await join(topic, 'jobs')
      const seen: number[] = []
      for await (const record of member) {
        seen.push(record.offset)
        if (seen.length === 4) break
      }
      const other = await join(topic, 'jobs')
      const rest = await other.poll({ maxRecords: 100 })
      expect(seen).toEqual([0, 1, 2, 3])
      // The iterator had acquired the whole batch: the record being processed and the rest come back.
      expect(rest.map((r) => [r.offset, r.deliveryCount])).toEqual([3, 4, 5, 6, 7, 8, 9].map((offset) => [offset, 2]))
    })
  })

  describe('durability', () => {
    it('keeps acknowledgements and delivery counts across close and reopen; held records come back', async () => {
      const dir = tempDir('share')
      let topic = await openTopic(dir, 2)
      await produce(topic, 40)
      const member = await join(topic, 'jobs')
      const taken = await member.poll({ maxRecords: 30 })
      const acked = taken.filter((_, i) => i % 3 !== 0)
      await member.ack(acked.reverse())
      await topic.close()
      topic = await openTopic(dir)
      const again = await join(topic, 'jobs')
      const all: ShareConsumedRecord[] = []
      for (let records = await again.poll(); records.length > 0; records = await again.poll()) all.push(...records)
      const heldBefore = taken.filter((_, i) => i % 3 === 0)
      expect(ids(all)).toEqual(ids([...heldBefore, ...(await untouched(topic, taken))]))
      for (const record of all) expect(record.deliveryCount).toBe(heldBefore.some((r) => r.partition === record.partition && r.offset === record.offset) ? 2 : 1)
    })

    it('compacts its state log once it grew past 5,000 updates: replay starts at a snapshot, and the state is intact', async () => {
      const dir = tempDir('share')
      let topic = await openTopic(dir)
      await produce(topic, 2_600)
      const member = await join(topic, 'jobs')
      for (let done = 0; done < 2_600; done++) {
        const [record] = await member.poll({ maxRecords: 1 }) // one acquisition and one ack update per record
        await member.ack(record!)
      }
      await produce(topic, 10, 'late')
      await topic.close()
      const stateLog = await SegmentedLog.open(path.join(dir, 'groups', 'jobs', 'share'), { readOnly: true })
      expect(stateLog.endOffset).toBeGreaterThanOrEqual(5_000)
      expect(stateLog.startOffset).toBeGreaterThan(0) // a snapshot was written and what came before it dropped
      expect(stateLog.endOffset - stateLog.startOffset).toBeLessThan(1_000)
      await stateLog.close()
      topic = await openTopic(dir)
      const again = await join(topic, 'jobs')
      const after = await again.poll({ maxRecords: 100, timeoutMs: 500 })
      expect(after.map((record) => text(record.value))).toEqual(Array.from({ length: 10 }, (_, i) => `late-${i}`))
    })

    it('after SIGKILL of the owning process: no acknowledged record is delivered again, every unacknowledged one is', async () => {
      const dir = tempDir('share')
      const child = await startPeer('process')
      expect(await child.call('open', { dir, options: { partitions: 2 } })).toMatchObject({ isOwner: true })
      await child.call('sendBatch', { records: Array.from({ length: 200 }, (_, i) => ({ value: `v-${i}`, key: `k-${i}` })) })
      const { memberId } = await child.call<{ memberId: string }>('join', { group: 'jobs' })
      const polled = await child.call<PeerRecord[]>('poll', { memberId, maxRecords: 120 })
      const acked = polled.filter((_, i) => i % 4 !== 1)
      await child.call('ack', { memberId, records: acked })
      await child.kill()
      const topic = await openTopic(dir)
      expect(topic.isOwner).toBe(true)
      const member = await join(topic, 'jobs')
      const after: ShareConsumedRecord[] = []
      for (let records = await member.poll(); records.length > 0; records = await member.poll()) after.push(...records)
      const ackedIds = new Set(ids(acked))
      expect(after.filter((r) => ackedIds.has(`${r.partition}:${r.offset}`))).toEqual([])
      expect(after.length).toBe(200 - acked.length)
      const unacked = new Set(ids(polled.filter((_, i) => i % 4 === 1)))
      for (const record of after) expect(record.deliveryCount).toBe(unacked.has(`${record.partition}:${record.offset}`) ? 2 : 1)
    })

    it('after SIGKILL right after a poll (acquisitions written, no fsync since): the polled records come back with deliveryCount 2', async () => {
      const dir = tempDir('share')
      const child = await startPeer('process')
      expect(await child.call('open', { dir, options: { partitions: 2 } })).toMatchObject({ isOwner: true })
      await child.call('sendBatch', { records: Array.from({ length: 60 }, (_, i) => ({ value: `v-${i}`, key: `k-${i}` })) })
      const { memberId } = await child.call<{ memberId: string }>('join', { group: 'jobs', options: { lockMs: 60_000 } })
      const first = await child.call<PeerRecord[]>('poll', { memberId, maxRecords: 20 })
      await child.call('ack', { memberId, records: first.slice(0, 10) }) // its fsync also covers the acquisitions of `first`
      const second = await child.call<PeerRecord[]>('poll', { memberId, maxRecords: 20 })
      await child.kill() // at once: the second poll's acquisitions are in the OS, perhaps not yet fsynced
      const topic = await openTopic(dir)
      const member = await join(topic, 'jobs')
      const after: ShareConsumedRecord[] = []
      for (let records = await member.poll(); records.length > 0; records = await member.poll()) after.push(...records)
      const held = new Set(ids([...first.slice(10), ...second]))
      expect(ids(after)).toEqual(ids((await untouched(topic, [])).filter((r) => !ids(first.slice(0, 10)).includes(`${r.partition}:${r.offset}`))))
      for (const record of after) expect(record.deliveryCount).toBe(held.has(`${record.partition}:${record.offset}`) ? 2 : 1)
    })

    it('after a power loss (the state log cut back to its last fsync): acked records stay acked, the rest come back, counts at most one short', async () => {
      const root = tempDir('share')
      const dir = path.join(root, 'topic')
      const topic = await openTopic(dir, 2)
      await produce(topic, 60)
      await topic.partition(0).log.sync()
      await topic.partition(1).log.sync()
      const durableBytes = watchFdatasync() // per file: its size when the last completed fdatasync began
      const member = await join(topic, 'jobs', { lockMs: 60_000 })
      const first = await member.poll({ maxRecords: 20 })
      await member.ack(first.slice(0, 10)) // resolves after an fsync that covers the acquisitions of `first` too
      const second = await member.poll({ maxRecords: 20 }) // written, not waited for
      const copy = path.join(root, 'after-power-loss')
      fs.cpSync(dir, copy, { recursive: true })
      let cut = 0
      for (const [file, bytes] of durableBytes) {
        if (!file.includes(`${path.sep}share${path.sep}`)) continue
        const twin = path.join(copy, path.relative(dir, file))
        if (fs.statSync(twin).size > bytes) fs.truncateSync(twin, bytes)
        cut++
      }
      expect(cut).toBeGreaterThan(0)
      removeLocks(copy) // nothing runs after a power loss
      const rebooted = await openTopic(copy)
      const again = await join(rebooted, 'jobs')
      const after: ShareConsumedRecord[] = []
      for (let records = await again.poll(); records.length > 0; records = await again.poll()) after.push(...records)
      const acked = new Set(ids(first.slice(0, 10)))
      expect(ids(after)).toEqual(ids((await untouched(rebooted, [])).filter((r) => !acked.has(`${r.partition}:${r.offset}`))))
      const firstHeld = new Set(ids(first.slice(10)))
      const secondHeld = new Set(ids(second))
      for (const record of after) {
        const key = `${record.partition}:${record.offset}`
        if (firstHeld.has(key)) expect(record.deliveryCount).toBe(2) // fsynced with the ack
        else if (secondHeld.has(key)) expect([1, 2]).toContain(record.deliveryCount) // 1 if the cut lost the acquisition
        else expect(record.deliveryCount).toBe(1)
      }
    })
  })

  describe('threads and processes', () => {
    it.each(['thread', 'process'] as const)('members in a worker %s and in the owner share the records, each acknowledged once', async (kind) => {
      const dir = tempDir('share')
      const topic = await openTopic(dir, 3)
      await produce(topic, 600)
      const peer = await startPeer(kind)
      expect(await peer.call('open', { dir })).toMatchObject({ isOwner: false })
      const { memberId } = await peer.call<{ memberId: string }>('join', { group: 'jobs' })
      const local = await join(topic, 'jobs')
      const remoteDrain = peer.call<PeerRecord[]>('drain', { memberId, maxRecords: 20 })
      const localAcked: string[] = []
      for (let records = await local.poll({ maxRecords: 20, timeoutMs: 500 }); records.length > 0; records = await local.poll({ maxRecords: 20, timeoutMs: 500 })) {
        await local.ack(records)
        localAcked.push(...ids(records))
      }
      const remoteAcked = ids(await remoteDrain)
      expect(remoteAcked.length).toBeGreaterThan(0)
      expect(localAcked.length).toBeGreaterThan(0)
      expect([...remoteAcked, ...localAcked].sort()).toEqual(ids(await untouched(topic, [])))
    })

    it('survives the SIGKILL of the owner: the forwarder takes over, acked records never come back, the rest do with their counts', async () => {
      const dir = tempDir('share')
      const first = await startPeer('process')
      expect(await first.call('open', { dir, options: { partitions: 2 } })).toMatchObject({ isOwner: true })
      await first.call('sendBatch', { records: Array.from({ length: 40 }, (_, i) => ({ value: `v-${i}`, key: `k-${i}` })) })
      const second = await openTopic(dir)
      expect(second.isOwner).toBe(false)
      const member = await join(second, 'jobs', { lockMs: 60_000 })
      const taken = await member.poll({ maxRecords: 40, timeoutMs: 2000 })
      expect(taken).toHaveLength(40)
      const acked = taken.slice(0, 25)
      await member.ack(acked) // durable in the owner's share log before this resolves
      await first.kill() // the owner dies holding the group's state; 15 records acquired, not acked
      const deadline = Date.now() + 10_000
      while (!second.isOwner && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      expect(second.isOwner).toBe(true)
      const again: ShareConsumedRecord[] = []
      for (let records = await member.poll({ maxRecords: 40, timeoutMs: 2000 }); records.length > 0; records = await member.poll({ maxRecords: 40, timeoutMs: 300 })) {
        again.push(...records)
        await member.ack(records)
      }
      expect(ids(again)).toEqual(ids(taken.slice(25)))
      expect(again.every((record) => record.deliveryCount === 2)).toBe(true) // the first delivery was counted before it went out
    })

    it('wakes a waiting member in another process when a record is released, and releases a dead member’s records at once', async () => {
      const dir = tempDir('share')
      const topic = await openTopic(dir)
      await produce(topic, 2)
      const owner = await join(topic, 'jobs', { lockMs: 60_000 })
      const peer = await startPeer('process')
      await peer.call('open', { dir })
      const { memberId } = await peer.call<{ memberId: string }>('join', { group: 'jobs', options: { lockMs: 60_000 } })
      const held = await owner.poll({ maxRecords: 1 })
      const pending = peer.call<PeerRecord[]>('poll', { memberId, maxRecords: 1, timeoutMs: 5000 })
      expect((await pending).map((r) => r.offset)).toEqual([1])
      const waiting = peer.call<PeerRecord[]>('poll', { memberId, maxRecords: 5, timeoutMs: 5000 })
      await new Promise((resolve) => setTimeout(resolve, 100))
      const released = Date.now()
      await owner.release(held)
      expect((await waiting).map((r) => [r.offset, r.deliveryCount])).toEqual([[0, 2]])
      expect(Date.now() - released).toBeLessThan(1000) // pushed, not found by a timeout
      await peer.kill() // holding offsets 0 and 1, locked for a minute
      const back = await owner.poll({ maxRecords: 5, timeoutMs: 3000 })
      expect(back.map((r) => [r.offset, r.deliveryCount]).sort()).toEqual([[0, 3], [1, 2]])
    })
  })

  describe('bad input', () => {
    it('refuses bad options, records and calls with typed errors', async () => {
      const dir = tempDir('share')
      const topic = await openTopic(path.join(dir, 'jobs'), 2)
      await produce(topic, 3)
      expect(await code(() => topic.shareGroup('bad id'))).toBe('INVALID_ARGUMENT')
      expect(await code(() => topic.shareGroup('g', { lockMs: 0 }))).toBe('INVALID_ARGUMENT')
      expect(await code(() => topic.shareGroup('g', { maxDeliveries: 0 }))).toBe('INVALID_ARGUMENT')
      expect(await code(() => topic.shareGroup('g', { inFlightRecordsMax: -1 }))).toBe('INVALID_ARGUMENT')
      expect(await code(() => topic.shareGroup('g', { deadLetterTopic: '../x' }))).toBe('INVALID_ARGUMENT')
      expect(await code(() => topic.shareGroup('g', { deadLetterTopic: 'jobs' }))).toBe('INVALID_ARGUMENT')
      expect(await code(() => topic.shareGroup('g', { unknown: 1 } as ShareGroupOptions))).toBe('INVALID_ARGUMENT')
      const member = await join(topic, 'g', { lockMs: 1000 })
      topic.shareGroup('g') // no options: the group as it is
      expect(await code(() => topic.shareGroup('g', { lockMs: 2000 }))).toBe('INVALID_ARGUMENT')
      expect(await code(member.poll({ maxRecords: 0 }))).toBe('INVALID_ARGUMENT')
      expect(await code(member.poll({ timeoutMs: -1 }))).toBe('INVALID_ARGUMENT')
      const records = await member.poll()
      expect(records.length).toBe(3)
      expect(await code(member.ack({ partition: 7, offset: 0 }))).toBe('UNKNOWN_PARTITION')
      expect(await code(member.ack({ partition: 0, offset: -1 }))).toBe('INVALID_ARGUMENT')
      expect(await code(member.ack(null as never))).toBe('INVALID_ARGUMENT')
      expect(await code(member.release(records[0]!, { delayMs: 1.5 }))).toBe('INVALID_ARGUMENT')
      expect(await code(member.ack({ partition: 0, offset: 999 }))).toBe('FENCED') // never delivered
      const other = await join(topic, 'g')
      expect(await code(other.ack(records[0]!))).toBe('FENCED') // held by another member
      expect(await code(member.ack([records[0]!, { partition: 0, offset: 999 }]))).toBe('FENCED')
      await member.ack(records[0]!) // the failed batch changed nothing
      await member.close()
      expect(await code(member.poll())).toBe('LOG_CLOSED')
      expect(await code(member.ack(records[1]!))).toBe('LOG_CLOSED')
      await topic.close()
      expect(await code(() => topic.shareGroup('g'))).toBe('LOG_CLOSED')
      expect(await code(other.poll())).toBe('LOG_CLOSED')
      expect(fs.existsSync(path.join(dir, 'jobs', 'groups', 'g', 'share'))).toBe(true)
    })
  })
})

/** Every record of `topic` except those in `except`, as ids. */
async function untouched(topic: Topic, except: readonly { partition: number; offset: number }[]): Promise<{ partition: number; offset: number }[]> {
  const skip = new Set(ids(except))
  const found = []
  for (let p = 0; p < topic.partitionCount; p++) {
    for await (const record of topic.partition(p).records()) if (!skip.has(`${p}:${record.offset}`)) found.push({ partition: p, offset: record.offset })
  }
  return found
}

/** Watches fs.fdatasync (restored after the test): per file path, its size when the last successful call began. */
function watchFdatasync(): Map<string, number> {
  const durable = new Map<string, number>()
  const original = fs.fdatasync
  const spy = vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
    const file = fs.readlinkSync(`/proc/self/fd/${fd}`)
    const bytes = fs.fstatSync(fd).size
    original(fd, (error) => {
      if (!error) durable.set(file, bytes)
      callback(error)
    })
  }) as typeof fs.fdatasync)
  restores.push(() => spy.mockRestore())
  return durable
}

const restores: (() => void)[] = []
afterEach(() => {
  for (const restore of restores.splice(0)) restore()
})

/** Removes every LOCK file under `dir` (copied from a live handle). */
function removeLocks(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === 'LOCK') fs.rmSync(path.join(entry.parentPath, entry.name))
  }
}
