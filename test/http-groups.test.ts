/**
 * seglog/http consumer and share groups over loopback: join (a session), long poll woken by a
 * produce, commit that survives a rejoin, leave; share poll, ack, release with delay, reject into a
 * dead-letter topic; limits on sessions and poll waits; a closing server ends waiting polls; an
 * idle session is closed.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { type Fixture, startFixture } from './helpers/http.js'

let fixture: Fixture | undefined
afterEach(async () => {
  await fixture?.close()
  fixture = undefined
})

async function withTopics(names: string[], options = {}): Promise<Fixture> {
  fixture = await startFixture(options)
  for (const name of names) expect((await fixture.call('POST', '/topics', { json: { name, partitions: 2 } })).status).toBe(201)
  return fixture
}

const produce = (f: Fixture, topic: string, values: string[]) => f.call('POST', `/topics/${topic}/records`, { json: { encoding: 'utf8', records: values.map((value) => ({ value })) } })
const values = (records: { value: string }[]) => records.map((r) => r.value).sort()

describe('seglog/http consumer groups', () => {
  it('joins, long-polls (woken by a produce), commits, and resumes after the commit on rejoin', async () => {
    const f = await withTopics(['a', 'b'])
    const joined = await f.call('POST', '/groups/g/members', { json: { topics: ['a', 'b'], memberId: 'm1' } })
    expect(joined.status).toBe(201)
    expect(joined.json.assignment).toHaveLength(4)
    const started = Date.now()
    const waiting = f.call('POST', '/groups/g/members/m1/poll', { json: { timeoutMs: 10_000, encoding: 'utf8' } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await produce(f, 'b', ['x'])
    const woken = await waiting
    expect(woken.status).toBe(200)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(woken.json.records.map((r: { topic: string; value: string }) => [r.topic, r.value])).toEqual([['b', 'x']])
    expect((await f.call('POST', '/groups/g/members/m1/commit', { json: {} })).status).toBe(204)
    await produce(f, 'a', ['y', 'z'])
    expect((await f.call('DELETE', '/groups/g/members/m1')).status).toBe(204)
    const again = await f.call('POST', '/groups/g/members', { json: { topics: ['b', 'a'], memberId: 'm2' } })
    expect(again.status).toBe(201)
    const polled = await f.call('POST', '/groups/g/members/m2/poll', { json: { encoding: 'utf8' } })
    expect(values(polled.json.records)).toEqual(['y', 'z'])
  })

  it('commits single records (offset + 1) and refuses refs of other topics', async () => {
    const f = await withTopics(['a'])
    await produce(f, 'a', ['1', '2', '3'])
    await f.call('POST', '/groups/g/members', { json: { topics: ['a'], memberId: 'm' } })
    const polled = (await f.call('POST', '/groups/g/members/m/poll', { json: { maxRecords: 1 } })).json.records
    expect(polled).toHaveLength(1)
    const ref = { topic: 'a', partition: polled[0].partition, offset: polled[0].offset }
    expect((await f.call('POST', '/groups/g/members/m/commit', { json: { records: [ref] } })).status).toBe(204)
    const bad = await f.call('POST', '/groups/g/members/m/commit', { json: { records: [{ topic: 'a', partition: 'x', offset: 0 }] } })
    expect([bad.status, bad.json.error.code]).toEqual([400, 'INVALID_ARGUMENT'])
    const unknown = await f.call('POST', '/groups/g/members/nobody/poll', { json: {} })
    expect([unknown.status, unknown.json.error.code]).toEqual([404, 'UNKNOWN_MEMBER'])
    const missing = await f.call('POST', '/groups/h/members', { json: { topics: ['nope'] } })
    expect([missing.status, missing.json.error.code]).toEqual([404, 'UNKNOWN_TOPIC'])
  })

  it('ends a waiting long poll when the server closes', async () => {
    const f = await withTopics(['a'])
    await f.call('POST', '/groups/g/members', { json: { topics: ['a'], memberId: 'm' } })
    const started = Date.now()
    const waiting = f.call('POST', '/groups/g/members/m/poll', { json: { timeoutMs: 20_000 } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await f.server.close()
    const answer = await waiting
    expect([answer.status, answer.json.error.code]).toEqual([503, 'SHUTTING_DOWN'])
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('gives back records a long poll took for a client that went away (consumer seeks back, share releases)', async () => {
    const f = await withTopics(['a'])
    await f.call('POST', '/groups/g/members', { json: { topics: ['a'], memberId: 'm' } })
    await f.call('POST', '/share-groups/s/members', { json: { topics: ['a'], memberId: 'w' } })
    for (const path of ['/groups/g/members/m/poll', '/share-groups/s/members/w/poll']) {
      const gone = new AbortController()
      const abandoned = fetch(f.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timeoutMs: 10_000 }), signal: gone.signal }).catch((error: Error) => error)
      await new Promise((resolve) => setTimeout(resolve, 100))
      gone.abort()
      expect(await abandoned).toBeInstanceOf(Error)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
    await produce(f, 'a', ['kept'])
    await new Promise((resolve) => setTimeout(resolve, 200))
    const consumed = await f.call('POST', '/groups/g/members/m/poll', { json: { timeoutMs: 5_000, encoding: 'utf8' } })
    expect(values(consumed.json.records)).toEqual(['kept'])
    const shared = await f.call('POST', '/share-groups/s/members/w/poll', { json: { timeoutMs: 5_000, encoding: 'utf8' } })
    expect(shared.json.records.map((r: { value: string; deliveryCount: number }) => [r.value, r.deliveryCount])).toEqual([['kept', 2]])
  })

  it('limits sessions and poll waits, and closes idle sessions', async () => {
    const f = await withTopics(['a'], { limits: { sessionsMax: 1, pollTimeoutMsMax: 1_000, sessionIdleMs: 100 } })
    expect((await f.call('POST', '/groups/g/members', { json: { topics: ['a'], memberId: 'm' } })).status).toBe(201)
    const full = await f.call('POST', '/share-groups/s/members', { json: { topics: ['a'] } })
    expect([full.status, full.json.error.code]).toEqual([429, 'TOO_MANY_SESSIONS'])
    const long = await f.call('POST', '/groups/g/members/m/poll', { json: { timeoutMs: 5_000 } })
    expect([long.status, long.json.error.code]).toEqual([400, 'INVALID_ARGUMENT'])
    const deadline = Date.now() + 5_000
    while (f.server.stats.sessions > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
    expect(f.server.stats.sessions).toBe(0)
    expect((await f.call('POST', '/groups/g/members/m/poll', { json: {} })).json.error.code).toBe('UNKNOWN_MEMBER')
  })
})

describe('seglog/http share groups', () => {
  it('polls, acks, releases with a delay (delivered again with deliveryCount 2), and rejects into a dead-letter topic', async () => {
    const f = await withTopics(['work', 'work.dlq'])
    await produce(f, 'work', ['j1', 'j2', 'j3'])
    const join = (memberId: string) => f.call('POST', '/share-groups/w/members', { json: { topics: ['work'], memberId, deadLetterTopic: 'work.dlq' } })
    expect((await join('w1')).status).toBe(201)
    expect((await join('w2')).status).toBe(201)
    const polled = (await f.call('POST', '/share-groups/w/members/w1/poll', { json: { encoding: 'utf8', maxRecords: 10 } })).json.records
    expect(values(polled)).toEqual(['j1', 'j2', 'j3'])
    expect(polled.every((r: { deliveryCount: number }) => r.deliveryCount === 1)).toBe(true)
    const ref = (value: string) => {
      const r = polled.find((p: { value: string }) => p.value === value)
      return { topic: r.topic, partition: r.partition, offset: r.offset }
    }
    expect((await f.call('POST', '/share-groups/w/members/w1/ack', { json: { records: [ref('j1')] } })).status).toBe(204)
    expect((await f.call('POST', '/share-groups/w/members/w1/release', { json: { records: [ref('j2')], delayMs: 50 } })).status).toBe(204)
    expect((await f.call('POST', '/share-groups/w/members/w1/reject', { json: { records: [ref('j3')] } })).status).toBe(204)
    const again = (await f.call('POST', '/share-groups/w/members/w2/poll', { json: { encoding: 'utf8', timeoutMs: 5_000 } })).json.records
    expect(again.map((r: { value: string; deliveryCount: number }) => [r.value, r.deliveryCount])).toEqual([['j2', 2]])
    const stale = await f.call('POST', '/share-groups/w/members/w1/ack', { json: { records: [ref('j2')] } })
    expect([stale.status, stale.json.error.code]).toEqual([409, 'FENCED'])
    const dead = await f.call('GET', '/topics/work.dlq/partitions/0/records?encoding=utf8')
    const deadAll = [...dead.json.records, ...(await f.call('GET', '/topics/work.dlq/partitions/1/records?encoding=utf8')).json.records]
    expect(deadAll.map((r: { value: string; headers: Record<string, string> }) => [r.value, r.headers['seglog.dlq.reason']])).toEqual([['j3', 'rejected']])
  })

  it('wakes a long poll on a produce and ends it when the member leaves elsewhere', async () => {
    const f = await withTopics(['work'])
    await f.call('POST', '/share-groups/w/members', { json: { topics: ['work'], memberId: 'w1' } })
    const waiting = f.call('POST', '/share-groups/w/members/w1/poll', { json: { timeoutMs: 10_000, encoding: 'utf8' } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await produce(f, 'work', ['late'])
    expect(values((await waiting).json.records)).toEqual(['late'])
    const second = f.call('POST', '/share-groups/w/members/w1/poll', { json: { timeoutMs: 10_000 } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await f.call('DELETE', '/share-groups/w/members/w1')).status).toBe(204)
    expect((await second).json.error.code).toBe('SHUTTING_DOWN')
  })
})
