/**
 * seglog/http, topics over real HTTP on loopback: create, list, describe, delete; produce (JSON
 * single and batch, base64 and utf8, raw with Seglog-* headers); read a range and one record raw;
 * follow with SSE (new records arrive, Last-Event-ID resumes, a closing server ends the stream);
 * malformed requests and limits get 4xx with the code, and nothing acknowledged is lost.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openApiDocument } from '../src/http/openapi.js'
import { REPO } from './helpers/build-dist.js'
import { type Fixture, openSse, startFixture } from './helpers/http.js'

let fixture: Fixture | undefined
afterEach(async () => {
  await fixture?.close()
  fixture = undefined
})

const b64 = (text: string) => Buffer.from(text).toString('base64')

async function withTopic(partitions = 1, options = {}): Promise<Fixture> {
  fixture = await startFixture(options)
  const created = await fixture.call('POST', '/topics', { json: { name: 'events', partitions } })
  expect(created.status).toBe(201)
  return fixture
}

describe('seglog/http topics', () => {
  it('creates, lists, describes and deletes a topic', async () => {
    const f = await withTopic(3)
    expect((await f.call('GET', '/topics')).json).toEqual({ topics: ['events'] })
    const described = await f.call('GET', '/topics/events')
    expect(described.status).toBe(200)
    expect(described.json.partitions).toHaveLength(3)
    expect(described.json.partitions[0]).toMatchObject({ partition: 0, startOffset: 0, endOffset: 0, highWatermark: 0, segments: 1 })
    expect((await f.call('POST', '/topics', { json: { name: 'events' } })).json.error.code).toBe('TOPIC_EXISTS')
    expect((await f.call('DELETE', '/topics/events')).status).toBe(204)
    expect((await f.call('GET', '/topics')).json).toEqual({ topics: [] })
    const gone = await f.call('GET', '/topics/events')
    expect([gone.status, gone.json.error.code]).toEqual([404, 'UNKNOWN_TOPIC'])
  })

  it('sees a topic deleted or created through the library broker itself', async () => {
    const f = await withTopic()
    expect((await f.call('POST', '/topics/events/records', { json: { records: [{ value: b64('a') }] } })).status).toBe(200)
    await f.broker.deleteTopic('events')
    const gone = await f.call('POST', '/topics/events/records', { json: { records: [{ value: b64('b') }] } })
    expect([gone.status, gone.json.error.code]).toEqual([404, 'UNKNOWN_TOPIC'])
    await f.broker.topic('later')
    expect((await f.call('POST', '/topics/later/records', { json: { records: [{ value: b64('c') }] } })).json.count).toBe(1)
  })

  it('produces one record and a batch as JSON, and reads them back by offset', async () => {
    const f = await withTopic()
    const one = await f.call('POST', '/topics/events/records', { json: { key: b64('k1'), value: b64('first'), headers: { model: b64('v3') } } })
    expect(one.json).toEqual({ count: 1, offsets: [{ partition: 0, offset: 0, count: 1 }] })
    const batch = await f.call('POST', '/topics/events/records', { json: { encoding: 'utf8', records: [{ value: 'second' }, { value: 'third', key: 'k3' }] } })
    expect(batch.json).toEqual({ count: 2, offsets: [{ partition: 0, offset: 1, count: 2 }] })
    const read = await f.call('GET', '/topics/events/partitions/0/records?from=0&max=10&encoding=utf8')
    expect(read.json.records.map((r: { value: string }) => r.value)).toEqual(['first', 'second', 'third'])
    expect(read.json.records[0]).toMatchObject({ topic: 'events', partition: 0, offset: 0, key: 'k1', headers: { model: 'v3' } })
    expect(read.json.nextOffset).toBe(3)
    const page = await f.call('GET', '/topics/events/partitions/0/records?from=1&max=1')
    expect(page.json.records.map((r: { value: string }) => Buffer.from(r.value, 'base64').toString())).toEqual(['second'])
    expect((await f.call('GET', '/topics/events/partitions/0/records?from=3')).json.records).toEqual([])
  })

  it('answers where a batch went as runs of consecutive records on one partition', async () => {
    const f = await withTopic(3)
    const records = [{ value: 'a', partition: 2 }, { value: 'b', partition: 2 }, { value: 'c', partition: 0 }, { value: 'd', partition: 2 }]
    const sent = await f.call('POST', '/topics/events/records', { json: { encoding: 'utf8', records } })
    expect(sent.json).toEqual({
      count: 4,
      offsets: [
        { partition: 2, offset: 0, count: 2 },
        { partition: 0, offset: 0, count: 1 },
        { partition: 2, offset: 2, count: 1 },
      ],
    })
    const read = await f.call('GET', '/topics/events/partitions/2/records?encoding=utf8')
    expect(read.json.records.map((r: { value: string }) => r.value)).toEqual(['a', 'b', 'd'])
  })

  it('produces and reads a raw record, key and headers in Seglog-* headers (percent-encoded)', async () => {
    const f = await withTopic()
    const bytes = Buffer.from([0, 1, 2, 255, 254])
    const sent = await f.call('POST', '/topics/events/records', {
      body: bytes,
      headers: { 'content-type': 'application/octet-stream', 'seglog-key': 'user%2F7', 'seglog-header-trace': 'a%20b', 'seglog-partition': '0' },
    })
    expect(sent.json.offsets).toEqual([{ partition: 0, offset: 0, count: 1 }])
    const raw = await f.call('GET', '/topics/events/partitions/0/records/0')
    expect(raw.status).toBe(200)
    expect(raw.body.equals(bytes)).toBe(true)
    expect(raw.headers.get('seglog-key')).toBe('user%2F7')
    expect(raw.headers.get('seglog-header-trace')).toBe('a%20b')
    expect(raw.headers.get('seglog-offset')).toBe('0')
  })

  it.each([
    ['malformed JSON', { body: '{"records": [', headers: { 'content-type': 'application/json' } }, 400, 'INVALID_ARGUMENT'],
    ['bad base64', { json: { value: '***=' } }, 400, 'INVALID_ARGUMENT'],
    ['unpadded base64', { json: { value: 'eA' } }, 400, 'INVALID_ARGUMENT'],
    ['base64 with a space', { json: { value: 'eA= =' } }, 400, 'INVALID_ARGUMENT'],
    ['an unknown field', { json: { valu: 'eA==' } }, 400, 'INVALID_ARGUMENT'],
    ['an empty batch', { json: { records: [] } }, 400, 'INVALID_ARGUMENT'],
    ['an unknown partition', { json: { value: 'eA==', partition: 5 } }, 404, 'UNKNOWN_PARTITION'],
    ['too many records', { json: { records: [{ value: 'eA==' }, { value: 'eA==' }, { value: 'eA==' }] } }, 413, 'TOO_MANY_RECORDS'],
    ['a body over bodyBytesMax', { json: { value: b64('x'.repeat(3000)) } }, 413, 'BODY_TOO_LARGE'],
  ])('refuses %s with a JSON error and writes nothing', async (_name, request, status, code) => {
    const f = await withTopic(1, { limits: { recordsPerRequestMax: 2, bodyBytesMax: 2048 } })
    await f.call('POST', '/topics/events/records', { json: { value: b64('kept') } })
    const answer = await f.call('POST', '/topics/events/records', request)
    expect(answer.status).toBe(status)
    expect(answer.json.error.code).toBe(code)
    expect(typeof answer.json.error.message).toBe('string')
    const read = await f.call('GET', '/topics/events/partitions/0/records?encoding=utf8')
    expect(read.json.records.map((r: { value: string }) => r.value)).toEqual(['kept'])
  })

  it.each([
    ['POST', '/topics/nope/records', 404, 'UNKNOWN_TOPIC'],
    ['GET', '/topics/events/partitions/0/records?from=9', 416, 'OFFSET_OUT_OF_RANGE'],
    ['GET', '/topics/events/partitions/0/records/0', 416, 'OFFSET_OUT_OF_RANGE'],
    ['GET', '/topics/events/partitions/0/records?from=-1', 400, 'INVALID_ARGUMENT'],
    ['GET', '/topics/events/partitions/x/records', 400, 'INVALID_ARGUMENT'],
    ['GET', '/topics/events/partitions/1/records', 404, 'UNKNOWN_PARTITION'],
    ['GET', '/topics/bad%2Fname', 400, 'INVALID_ARGUMENT'],
    ['GET', '/topics/%ZZ', 400, 'INVALID_ARGUMENT'],
    ['GET', '/nowhere', 404, 'NOT_FOUND'],
    ['PUT', '/topics', 405, 'METHOD_NOT_ALLOWED'],
  ])('%s %s answers %i %s', async (method, path, status, code) => {
    const f = await withTopic()
    const answer = await f.call(method, path, method === 'POST' ? { json: { value: 'eA==' } } : {})
    expect([answer.status, answer.json.error.code]).toEqual([status, code])
  })

  it('answers 415 to a JSON endpoint given another content type', async () => {
    const f = await withTopic()
    const answer = await f.call('POST', '/groups/g/members', { body: 'topics=events', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    expect([answer.status, answer.json.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE'])
  })

  it('survives a client that cuts its request mid-body, and appends nothing for it', async () => {
    const f = await withTopic()
    const { port } = new URL(f.url)
    const socket = net.connect(Number(port), '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write('POST /topics/events/records HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"records": [{"value": "eA=="}')
    await new Promise((resolve) => setTimeout(resolve, 100))
    socket.destroy()
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await f.call('POST', '/topics/events/records', { json: { value: 'eA==' } })).json.offsets).toEqual([{ partition: 0, offset: 0, count: 1 }])
    expect((await f.call('GET', '/topics/events')).json.partitions[0].highWatermark).toBe(1)
  })

  it('answers a request with oversized headers 431 and keeps serving', async () => {
    const f = await withTopic(1, { limits: { headerBytesMax: 1024 } })
    const big = await f.call('GET', '/topics', { headers: { 'x-filler': 'y'.repeat(4096) } })
    expect(big.status).toBe(431)
    expect((await f.call('GET', '/topics')).status).toBe(200)
  })

  it('serves its OpenAPI document and /health without a token', async () => {
    const f = await withTopic()
    const doc = await f.call('GET', '/openapi.json')
    expect(doc.json.openapi).toMatch(/^3\./)
    expect(Object.keys(doc.json.paths)).toContain('/topics/{topic}/partitions/{partition}/follow')
    expect((await f.call('GET', '/health')).json).toEqual({ status: 'ok' })
  })

  it('keeps docs/openapi.json equal to the served document, with every routed path in it', async () => {
    const onDisk = JSON.parse(fs.readFileSync(path.join(REPO, 'docs', 'openapi.json'), 'utf8'))
    expect(onDisk).toEqual(openApiDocument())
    const source = fs.readdirSync(path.join(REPO, 'src', 'http')).map((file) => fs.readFileSync(path.join(REPO, 'src', 'http', file), 'utf8')).join('\n')
    const routed = [...source.matchAll(/router\.add\('(\w+)', [`'](\/[^`']*)[`']/g)].map(([, method, route]) => `${method!.toLowerCase()} ${route!.replace(/:(\w+)/g, '{$1}').replace('${action}', 'ACTION')}`)
    const documented = Object.entries(onDisk.paths as Record<string, object>).flatMap(([route, ops]) => Object.keys(ops).map((method) => `${method} ${route}`))
    for (const route of routed) {
      if (route.includes('ACTION')) for (const action of ['ack', 'release', 'reject']) expect(documented).toContain(route.replace('ACTION', action))
      else expect(documented).toContain(route)
    }
    expect(routed.length).toBeGreaterThan(20)
  })
})

describe('seglog/http follow (SSE)', () => {
  it('streams records from an offset, then new ones as they are produced, with id = offset', async () => {
    const f = await withTopic()
    await f.call('POST', '/topics/events/records', { json: { encoding: 'utf8', records: [{ value: 'a' }, { value: 'b' }] } })
    const stream = openSse(f.url, '/topics/events/partitions/0/follow?from=1&encoding=utf8')
    const [first] = await stream.waitFor(1)
    expect(stream.status).toBe(200)
    expect(first).toMatchObject({ id: '1', event: 'record' })
    expect(JSON.parse(first!.data!).value).toBe('b')
    await f.call('POST', '/topics/events/records', { json: { encoding: 'utf8', records: [{ value: 'c' }, { value: 'd' }] } })
    const events = await stream.waitFor(3)
    expect(events.map((e) => [e.id, JSON.parse(e.data!).value])).toEqual([
      ['1', 'b'],
      ['2', 'c'],
      ['3', 'd'],
    ])
    stream.close()
  })

  it('resumes after Last-Event-ID, sends heartbeats, and refuses a start past the end', async () => {
    const f = await withTopic(1, { limits: { heartbeatMs: 20 } })
    await f.call('POST', '/topics/events/records', { json: { encoding: 'utf8', records: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] } })
    const stream = openSse(f.url, '/topics/events/partitions/0/follow?encoding=utf8', { 'last-event-id': '0' })
    const events = await stream.waitFor(2)
    expect(events.map((e) => e.id)).toEqual(['1', '2'])
    await stream.until(() => stream.comments.includes('heartbeat'))
    stream.close()
    const past = await f.call('GET', '/topics/events/partitions/0/follow?from=10')
    expect([past.status, past.json.error.code]).toEqual([416, 'OFFSET_OUT_OF_RANGE'])
  })

  it('limits open streams, and ends them when the server closes', async () => {
    const f = await withTopic(1, { limits: { streamsMax: 1 } })
    const stream = openSse(f.url, '/topics/events/partitions/0/follow')
    await stream.until(() => f.server.stats.streams === 1)
    const second = await f.call('GET', '/topics/events/partitions/0/follow')
    expect([second.status, second.json.error.code]).toEqual([429, 'TOO_MANY_STREAMS'])
    await f.server.close()
    await stream.waitEnded()
    expect(f.server.stats.streams).toBe(0)
  })

  it('ends the streams of a deleted topic', async () => {
    const f = await withTopic()
    const stream = openSse(f.url, '/topics/events/partitions/0/follow')
    await stream.until(() => f.server.stats.streams === 1)
    expect((await f.call('DELETE', '/topics/events')).status).toBe(204)
    await stream.waitEnded()
  })
})
