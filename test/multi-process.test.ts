/**
 * Specs for one topic open in several threads and processes at once: the first handle owns the
 * topic and the others forward to it (src/topic-owner.ts, src/owner-client.ts). Producers in worker
 * threads and processes never collide (offsets contiguous, nothing lost or duplicated), consumer-group
 * members anywhere share partitions, a member that dies (terminate, SIGKILL) or hangs loses its
 * partitions and what it did not commit is delivered again, and the owner itself can die: a
 * forwarder takes its place without losing a committed offset or an acknowledged record.
 */
import { spawn } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ConsumedRecord, LogError, Topic } from '../src/index.js'
import { ownerAddress } from '../src/owner-client.js'
import { FORWARDED_SLOT_BYTES, MessageReader, writeMessage } from '../src/wire.js'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { Peer, type PeerRecord } from './helpers/peer.js'
import { tempDir } from './helpers/temp-dir.js'

beforeAll(() => ensureBuilt(), 180_000)

const peers: Peer[] = []
const topics: Topic[] = []
afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.kill()))
  for (const topic of topics.splice(0)) await topic.close().catch(() => undefined)
})

async function peer(kind: 'thread' | 'process'): Promise<Peer> {
  const created = kind === 'thread' ? await Peer.thread() : await Peer.process()
  peers.push(created)
  return created
}

async function openTopic(dir: string, options?: Parameters<typeof Topic.open>[1]): Promise<Topic> {
  const topic = await Topic.open(dir, options)
  topics.push(topic)
  return topic
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8')

/** Every record of every partition as "value" strings, checking offsets run 0..end-1 with no gap. */
async function allValues(topic: Topic): Promise<string[]> {
  const values: string[] = []
  for (let p = 0; p < topic.partitionCount; p++) {
    let expected = 0
    for await (const record of topic.partition(p).records()) {
      expect(record.offset).toBe(expected++)
      values.push(text(record.value))
    }
    expect(expected).toBe(topic.partition(p).endOffset)
  }
  return values
}

const range = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}-${i}`)

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('Topic shared by threads and processes', () => {
  describe('producers', () => {
    it.each(['thread', 'process'] as const)('takes sends from 4 %s handles and the owner at once: contiguous offsets, each record once', async (kind) => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 3 })
      expect(owner.isOwner).toBe(true)
      const producers = await Promise.all([0, 1, 2, 3].map(() => peer(kind)))
      const opened = await Promise.all(producers.map((p) => p.call<{ isOwner: boolean }>('open', { dir })))
      expect(opened.map((o) => o.isOwner)).toEqual([false, false, false, false])
      const ownSends = (async () => {
        for (let b = 0; b < 10; b++) await owner.sendBatch(range(`main-${b}`, 20).map((value) => ({ value, key: value })))
      })()
      const results = await Promise.all(producers.map((p, i) => p.call<{ partition: number; offset: number }[]>('produce', { prefix: `w${i}`, batches: 10, size: 50, key: true })))
      await ownSends
      const where = results.flat().map((r) => `${r.partition}:${r.offset}`)
      expect(new Set(where).size).toBe(where.length) // no offset handed out twice
      const values = await allValues(owner)
      const expected = [...[0, 1, 2, 3].flatMap((i) => range(`w${i}`, 500)), ...Array.from({ length: 10 }, (_, b) => range(`main-${b}`, 20)).flat()]
      expect([...values].sort()).toEqual([...expected].sort())
      // keyed placement is the same wherever the record was sent from
      for (const result of results[0]!.slice(0, 50)) {
        const record = owner.partition(result.partition).read(result.offset)
        expect(text(record.key!)).toBe(text(record.value))
      }
    })

    it('reads what others sent, through its own handle, in a thread that does not own the topic', async () => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 2 })
      const reader = await peer('thread')
      await reader.call('open', { dir })
      await owner.sendBatch(range('v', 10).map((value, i) => ({ value, partition: i % 2 })))
      const polled = await reader.call<{ memberId: string }>('join', { group: 'g', memberId: 'r' }).then(() => reader.call<PeerRecord[]>('poll', { memberId: 'r', maxRecords: 100, timeoutMs: 1000 }))
      expect(polled.map((r) => r.value).sort()).toEqual(range('v', 10).sort())
    })
  })

  describe('consumer groups', () => {
    it('shares partitions between members in two processes and the owner, and moves them when one joins or leaves', async () => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 4 })
      const [a, b] = await Promise.all([peer('process'), peer('process')])
      await Promise.all([a, b].map((p) => p.call('open', { dir })))
      const local = await owner.consumerGroup('g', { assignmentStrategy: 'range' }).join({ memberId: 'local' })
      await a.call('join', { group: 'g', options: { assignmentStrategy: 'range' }, memberId: 'a' })
      await b.call('join', { group: 'g', options: { assignmentStrategy: 'range' }, memberId: 'b' })
      const members = await owner.consumerGroup('g').members()
      expect(members.map((m) => m.memberId).sort()).toEqual(['a', 'b', 'local'])
      const owned = members.flatMap((m) => m.assignment)
      expect(owned.sort()).toEqual([0, 1, 2, 3])
      await until(async () => (await a.call<number[]>('assignment', { memberId: 'a' })).length > 0, "a learns its partitions")
      expect(await a.call('assignment', { memberId: 'a' })).toEqual(members.find((m) => m.memberId === 'a')!.assignment)
      await local.close()
      await until(async () => (await a.call<number[]>('assignment', { memberId: 'a' })).length + (await b.call<number[]>('assignment', { memberId: 'b' })).length === 4, 'a and b own all 4')
    })

    it('drains a topic with members in 2 threads and 1 process: every record delivered, every offset committed', async () => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 4 })
      for (let b = 0; b < 10; b++) await owner.sendBatch(range(`r${b}`, 40).map((value) => ({ value, key: value })))
      const members = await Promise.all([peer('thread'), peer('thread'), peer('process')])
      await Promise.all(members.map((m) => m.call('open', { dir })))
      await Promise.all(members.map((m, i) => m.call('join', { group: 'drain', memberId: `m${i}` })))
      const seen = await Promise.all(members.map((m, i) => m.call<PeerRecord[]>('drain', { memberId: `m${i}`, group: 'drain', total: 400 })))
      const delivered = new Set(seen.flat().map((r) => r.value))
      expect(delivered.size).toBe(400)
      const lag = await owner.consumerGroup('drain').lag()
      expect(lag.map((p) => p.committed)).toEqual(lag.map((p) => p.endOffset))
    })

    it('wakes a member waiting in another thread as soon as a record arrives (no polling interval)', async () => {
      const dir = tempDir()
      const owner = await openTopic(dir)
      const member = await peer('thread')
      await member.call('open', { dir })
      await member.call('join', { group: 'g', memberId: 'w' })
      const started = Date.now()
      const polled = member.call<PeerRecord[]>('poll', { memberId: 'w', maxRecords: 10, timeoutMs: 30_000 })
      await new Promise((resolve) => setTimeout(resolve, 100))
      await owner.send({ value: 'wake' })
      const records = await polled
      expect(records.map((r) => r.value)).toEqual(['wake'])
      expect(Date.now() - started).toBeLessThan(20_000) // woken by the record, far before the poll's timeout
    })

    it('keeps a process that follows a topic it does not own alive until the record it waits for arrives', async () => {
      const dir = tempDir()
      const owner = await openTopic(dir)
      const script = [
        `import { Topic } from ${JSON.stringify(path.join(REPO, 'dist', 'index.js'))}`,
        `const topic = await Topic.open(${JSON.stringify(dir)})`,
        `process.send('following')`,
        `process.channel.unref()`, // only the topic may keep this process alive
        `for await (const record of topic.partition(0).records({ follow: true })) { console.log(Buffer.from(record.value).toString()); process.exit(0) }`,
      ].join('\n')
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
      let stdout = ''
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
      await new Promise((resolve) => child.once('message', resolve))
      await new Promise((resolve) => setTimeout(resolve, 300))
      await owner.send({ value: 'awaited' })
      expect(await exited).toBe(0)
      expect(stdout.trim()).toBe('awaited')
    })

    it.each(['thread', 'process'] as const)('gives the partitions of a member whose %s dies to the live members, and delivers its uncommitted records again', async (kind) => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 2 })
      await owner.sendBatch(range('x', 20).map((value, i) => ({ value, partition: i % 2 })))
      const doomed = await peer(kind)
      await doomed.call('open', { dir })
      await doomed.call('join', { group: 'g', options: { sessionTimeoutMs: 60_000 }, memberId: 'doomed' })
      const taken = await doomed.call<PeerRecord[]>('poll', { memberId: 'doomed', maxRecords: 100, timeoutMs: 1000 })
      expect(taken).toHaveLength(20) // took everything, committed nothing
      const survivor = await owner.consumerGroup('g', { sessionTimeoutMs: 60_000 }).join({ memberId: 'survivor' })
      expect(survivor.assignment).toHaveLength(1) // shared with the live doomed member
      await doomed.kill()
      // the dead member's connection closed: its partition moves at once, far sooner than the 60 s session timeout
      await until(() => survivor.assignment.length === 2, 'the survivor owns both partitions')
      const again: ConsumedRecord[] = []
      while (again.length < 20) again.push(...(await survivor.poll({ maxRecords: 100, timeoutMs: 1000 })))
      expect(again.map((r) => text(r.value)).sort()).toEqual(range('x', 20).sort())
      await survivor.commit()
      expect((await owner.consumerGroup('g').lag()).map((p) => p.lag)).toEqual([0, 0])
    })

    it('expires a member whose thread hangs (connection open, no heartbeats) after sessionTimeoutMs', async () => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 2 })
      const hung = await peer('thread')
      await hung.call('open', { dir })
      await hung.call('join', { group: 'g', options: { sessionTimeoutMs: 300 }, memberId: 'hung' })
      const live = await owner.consumerGroup('g', { sessionTimeoutMs: 300 }).join({ memberId: 'live' })
      expect(live.assignment).toHaveLength(1)
      const blocking = hung.call('block', { ms: 3000 })
      await until(() => live.assignment.length === 2, 'the hung member is expired', 2800)
      expect((await owner.consumerGroup('g').members()).map((m) => m.memberId)).toEqual(['live'])
      await blocking
    })
  })

  describe('owner failure', () => {
    it('lets a forwarder take over when the owner process is SIGKILLed: acknowledged records and committed offsets survive', async () => {
      const dir = tempDir()
      const first = await peer('process')
      expect((await first.call<{ isOwner: boolean }>('open', { dir, options: { partitions: 2 } })).isOwner).toBe(true)
      const acked = await first.call<{ partition: number; offset: number }[]>('produce', { prefix: 'before', batches: 5, size: 20 })
      expect(acked).toHaveLength(100)
      await first.call('join', { group: 'g', memberId: 'old' })
      const polled = await first.call<PeerRecord[]>('poll', { memberId: 'old', maxRecords: 30, timeoutMs: 1000 })
      await first.call('commit', { memberId: 'old' })

      const second = await openTopic(dir)
      expect(second.isOwner).toBe(false)
      const member = await second.consumerGroup('g').join({ memberId: 'new' })
      await first.kill()
      await until(() => second.isOwner, 'the forwarder becomes the owner')
      // the new owner appends after exactly what was acknowledged
      const after = await second.sendBatch(range('after', 10).map((value, i) => ({ value, partition: i % 2 })))
      for (const partition of [0, 1]) {
        const ackedHere = acked.filter((r) => r.partition === partition).length
        expect(after.filter((r) => r.partition === partition).map((r) => r.offset)).toEqual([0, 1, 2, 3, 4].map((i) => ackedHere + i))
      }
      const values = await allValues(second)
      expect(values.filter((v) => v.startsWith('before')).sort()).toEqual(range('before', 100).sort())
      // the member rejoins the new owner and resumes at the committed offsets
      const committed = new Map<number, number>()
      for (const record of polled) committed.set(record.partition, Math.max(committed.get(record.partition) ?? 0, record.offset + 1))
      const next = await member.poll({ maxRecords: 1000, timeoutMs: 1000 })
      for (const [partition, offset] of committed) {
        expect(Math.min(...next.filter((r) => r.partition === partition).map((r) => r.offset))).toBe(offset)
        expect(await second.consumerGroup('g').committed(partition)).toBe(offset)
      }
      await member.close()
    })

    it('hands the topic over when the owner closes while others send: nothing lost, nothing twice', async () => {
      const dir = tempDir()
      const owner = await Topic.open(dir, { partitions: 2 })
      const producers = await Promise.all([peer('thread'), peer('process')])
      await Promise.all(producers.map((p) => p.call('open', { dir })))
      const sending = producers.map((p, i) => p.call<unknown[]>('produce', { prefix: `p${i}`, batches: 400, size: 10 }))
      await until(() => owner.partition(0).endOffset + owner.partition(1).endOffset > 500, 'the forwarders are sending')
      await owner.close()
      const results = await Promise.all(sending)
      expect(results.map((r) => r.length)).toEqual([4000, 4000])
      const owners = await Promise.all(producers.map((p) => p.call<boolean>('isOwner')))
      expect(owners.filter(Boolean)).toHaveLength(1)
      const reader = await openTopic(dir, { readOnly: true })
      const values = await allValues(reader)
      expect([...values].sort()).toEqual([...range('p0', 4000), ...range('p1', 4000)].sort())
    })

    it('fails a forwarded send whose owner died before answering with DISCONNECTED, never silently', async () => {
      const dir = tempDir()
      const first = await peer('process')
      await first.call('open', { dir })
      const second = await openTopic(dir)
      first.call('block', { ms: 60_000 }).catch(() => undefined) // the owner hangs, then dies with the request unanswered
      await new Promise((resolve) => setTimeout(resolve, 300))
      const pending = second.send({ value: 'in flight' }).then(
        () => undefined,
        (error: unknown) => error,
      )
      await new Promise((resolve) => setTimeout(resolve, 100))
      await first.kill()
      const error = await pending
      expect(error).toBeInstanceOf(LogError)
      expect(error).toMatchObject({ code: 'DISCONNECTED' })
      // and the handle carries on as the new owner
      await until(() => second.isOwner, 'the forwarder becomes the owner')
      expect(await second.send({ value: 'next' })).toEqual({ partition: 0, offset: 0 })
    })
  })

  describe('forwarded bodies', () => {
    const good = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0x68, 0x69]) // version 1, no key, no headers, value "hi"
    const bad = Buffer.from([1, 0, 1, 0, 0, 0, 0, 0, 0x68, 0x69]) // claims a header that is not there
    /** A record of a forwarded body: its slot (docs: wire.ts), then its envelope. */
    const slotted = (envelope: Buffer, timestampMs = Number.NaN, envelopeBytes = envelope.length): Buffer => {
      const slot = Buffer.alloc(FORWARDED_SLOT_BYTES)
      slot.writeUInt32LE(envelopeBytes, 0)
      slot.writeDoubleLE(timestampMs, 8)
      return Buffer.concat([slot, envelope])
    }
    /** Sends one raw forwarded batch to the owner of `dir`; resolves to the owner's answer. */
    const sendRaw = async (dir: string, groups: unknown, body: Buffer): Promise<Record<string, unknown>> => {
      const socket = net.connect(ownerAddress(dir))
      await new Promise((resolve) => socket.once('connect', resolve))
      const reader = new MessageReader()
      const answers: Record<string, unknown>[] = []
      socket.on('data', (chunk: Buffer) => answers.push(...reader.push(chunk).map((message) => message.header).filter((header) => header.id === 1)))
      writeMessage(socket, { id: 1, op: 'send', groups }, body)
      await until(() => answers.length > 0, 'the owner answers')
      socket.destroy()
      return answers[0]!
    }

    it.each([
      { name: 'a malformed envelope', groups: [[0, 2]], body: () => Buffer.concat([slotted(good), slotted(bad)]) },
      { name: 'a body cut inside a slot', groups: [[0, 2]], body: () => Buffer.concat([slotted(good), slotted(good)]).subarray(0, 40) },
      { name: 'an envelope past the end', groups: [[0, 2]], body: () => Buffer.concat([slotted(good), slotted(good, Number.NaN, 99)]) },
      { name: 'trailing bytes', groups: [[0, 1]], body: () => Buffer.concat([slotted(good), slotted(good)]) },
      { name: 'a negative timestamp', groups: [[0, 2]], body: () => Buffer.concat([slotted(good), slotted(good, -5)]) },
      { name: 'an unknown partition', groups: [[7, 1]], body: () => slotted(good), code: 'UNKNOWN_PARTITION' },
      { name: 'a group that is not a pair', groups: ['x'], body: () => slotted(good), code: 'UNKNOWN_PARTITION' },
    ])('refuses a forwarded batch with $name, and appends none of it', async ({ groups, body, code = 'INVALID_ARGUMENT' }) => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 1 })
      await owner.send({ value: 'before' })
      expect(await sendRaw(dir, groups, body())).toMatchObject({ id: 1, ok: false, error: { code } })
      expect(owner.partition(0).endOffset).toBe(1)
    })

    it('appends a well-formed one with the timestamps its slots give (NaN: append time)', async () => {
      const dir = tempDir()
      const owner = await openTopic(dir, { partitions: 2 })
      const before = Date.now()
      const answer = await sendRaw(dir, [[1, 2], [0, 1]], Buffer.concat([slotted(good, 1234), slotted(good), slotted(good, 99)]))
      expect(answer).toMatchObject({ id: 1, ok: true, result: [0, 0] })
      expect(owner.partition(1).read(0)).toMatchObject({ timestamp: 1234, key: null, headers: {} })
      expect(owner.partition(1).read(1).timestamp).toBeGreaterThanOrEqual(before)
      expect(Buffer.from(owner.partition(1).read(1).value).toString()).toBe('hi')
      expect(owner.partition(0).read(0).timestamp).toBe(99)
    })
  })

  it('refuses a handle that asks for another partition count than the owner serves', async () => {
    const dir = tempDir()
    await openTopic(dir, { partitions: 2 })
    const other = await peer('thread')
    await expect(other.call('open', { dir, options: { partitions: 3 } })).rejects.toMatchObject({ code: 'TOPIC_MISMATCH' })
  })
})
