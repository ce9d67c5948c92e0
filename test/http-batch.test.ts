/**
 * seglog/http, the binary produce body (application/vnd.seglog.batch, src/http/batch-format.ts):
 * encodeBatch and decodeBatch agree field by field with zero-copy views; a batch produced over HTTP
 * reads back as sent; malformed bodies (truncated, lengths past the end, trailing bytes, bad magic,
 * too many records, a record too large) get a 4xx with the code and append nothing.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { BATCH_CONTENT_TYPE, BATCH_HEADER_BYTES, RECORD_FIXED_BYTES, decodeBatch, encodeBatch } from '../src/http/batch-format.js'
import { type Fixture, startFixture } from './helpers/http.js'

let fixture: Fixture | undefined
afterEach(async () => {
  await fixture?.close()
  fixture = undefined
})

async function withTopic(options = {}): Promise<Fixture> {
  fixture = await startFixture(options)
  expect((await fixture.call('POST', '/topics', { json: { name: 'events', partitions: 2 } })).status).toBe(201)
  return fixture
}

const produce = (f: Fixture, body: Buffer) => f.call('POST', '/topics/events/records', { body, headers: { 'content-type': BATCH_CONTENT_TYPE } })

async function recordCount(f: Fixture): Promise<number> {
  const { json } = await f.call('GET', '/topics/events')
  return json.partitions.reduce((sum: number, p: { endOffset: number }) => sum + p.endOffset, 0)
}

describe('seglog/http binary batch', () => {
  it('decodes what encodeBatch wrote, as views of the body', () => {
    const body = encodeBatch([{ key: 'k1', value: Buffer.from('one'), headers: { model: 'v3', empty: '' }, partition: 1, timestamp: 1_700_000_000_123 }, { value: 'two' }, { key: '', value: '' }])
    const records = decodeBatch(body, 10)
    expect(records).toHaveLength(3)
    expect(Buffer.from(records[0]!.key as Uint8Array).toString()).toBe('k1')
    expect(Buffer.from(records[0]!.value as Uint8Array).toString()).toBe('one')
    expect(Object.fromEntries(Object.entries(records[0]!.headers!).map(([n, v]) => [n, Buffer.from(v as Uint8Array).toString()]))).toEqual({ model: 'v3', empty: '' })
    expect([records[0]!.partition, records[0]!.timestamp]).toEqual([1, 1_700_000_000_123])
    expect(records[1]).toEqual({ value: Buffer.from('two') })
    expect(records[2]!.key).toEqual(Buffer.alloc(0))
    expect((records[0]!.value as Buffer).buffer).toBe(body.buffer)
  })

  it('produces a batch over HTTP and reads it back', async () => {
    const f = await withTopic()
    const answer = await produce(f, encodeBatch([{ key: 'a', value: 'first', partition: 1, headers: { h: 'x' } }, { value: 'second', partition: 1 }]))
    expect(answer.json).toEqual({ count: 2, offsets: [{ partition: 1, offset: 0, count: 2 }] })
    const read = await f.call('GET', '/topics/events/partitions/1/records?from=0&encoding=utf8')
    expect(read.json.records.map((r: { value: string }) => r.value)).toEqual(['first', 'second'])
    expect(read.json.records[0]).toMatchObject({ key: 'a', headers: { h: 'x' } })
  })

  const good = encodeBatch([{ key: 'k', value: 'v', headers: { h: 'x' } }, { value: 'w' }])
  const withU32 = (at: number, value: number): Buffer => {
    const copy = Buffer.from(good)
    copy.writeUInt32LE(value, at)
    return copy
  }
  it.each([
    ['an empty body', Buffer.alloc(0), 400, 'INVALID_ARGUMENT'],
    ['a bad magic', withU32(0, 0x12345678), 400, 'INVALID_ARGUMENT'],
    ['zero records', withU32(4, 0), 400, 'INVALID_ARGUMENT'],
    ['a body cut inside a record header', good.subarray(0, BATCH_HEADER_BYTES + 10), 400, 'INVALID_ARGUMENT'],
    ['a body cut inside the last value', good.subarray(0, good.length - 1), 400, 'INVALID_ARGUMENT'],
    ['a value length past the end', withU32(BATCH_HEADER_BYTES + 19, 1_000_000), 400, 'INVALID_ARGUMENT'],
    ['a key length past the end', withU32(BATCH_HEADER_BYTES + 15, 0xffffffff), 400, 'INVALID_ARGUMENT'],
    ['more records than the body holds', withU32(4, 3), 400, 'INVALID_ARGUMENT'],
    ['bytes after the last record', Buffer.concat([good, Buffer.from([0])]), 400, 'INVALID_ARGUMENT'],
    ['more records than recordsPerRequestMax', withU32(4, 11), 413, 'TOO_MANY_RECORDS'],
  ])('refuses %s with %i %s and appends nothing', async (_name, body, status, code) => {
    const f = await withTopic({ limits: { recordsPerRequestMax: 10 } })
    const answer = await produce(f, body as Buffer)
    expect([answer.status, answer.json.error.code]).toEqual([status, code])
    expect(await recordCount(f)).toBe(0)
  })

  it('refuses a batch with one record too large (413 RECORD_TOO_LARGE) and appends none of it', async () => {
    const f = await withTopic()
    const body = encodeBatch([{ value: 'small', partition: 0 }, { value: Buffer.alloc(2 * 1024 * 1024, 1), partition: 0 }])
    const answer = await produce(f, body)
    expect([answer.status, answer.json.error.code]).toEqual([413, 'RECORD_TOO_LARGE'])
    expect(await recordCount(f)).toBe(0)
  })

  it('keeps the fixed record header at its documented width', () => {
    expect(encodeBatch([{ value: '' }]).length).toBe(BATCH_HEADER_BYTES + RECORD_FIXED_BYTES)
  })
})
