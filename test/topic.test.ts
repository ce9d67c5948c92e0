/**
 * Topic specs: creation and reopen (the partition count is part of the topic), placement (explicit
 * partition, Kafka's murmur2 for keys, an even spread for keyless records, sticky keyless batches),
 * the record envelope round trip, sendBatch ordering and atomicity, and bad input that never changes
 * a partition.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type ConsumedRecord, LogError, type LogErrorCode, type ProducerRecord, type SendResult, Topic, type TopicOptions, murmur2, partitionForKey } from '../src/index.js'
import { HEADER_NAME_ENCODE_CACHE_ENTRIES, encodedHeaderNameCount } from '../src/format.js'
import { tempDir } from './helpers/temp-dir.js'

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
const hex = (bytes: Uint8Array | null): string | null => (bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'))
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

const openTopics: Topic[] = []

afterEach(async () => {
  for (const topic of openTopics.splice(0)) await topic.close().catch(() => undefined)
})

async function openTopic(dir: string, options?: TopicOptions): Promise<Topic> {
  const topic = await Topic.open(dir, options)
  openTopics.push(topic)
  return topic
}

function endOffsets(topic: Topic): number[] {
  return Array.from({ length: topic.partitionCount }, (_, i) => topic.partition(i).endOffset)
}

/** Resolves to the rejection (or undefined); a synchronous throw is reported as such. */
async function rejectionOf(action: () => unknown): Promise<unknown> {
  let pending: unknown
  try {
    pending = action()
  } catch (error) {
    return { thrownSynchronously: error }
  }
  try {
    await pending
  } catch (error) {
    return error
  }
  return undefined
}

/** Anything, typed as whatever the parameter wants: the point of these calls is the wrong type. */
function bad<T>(value: unknown): T {
  return value as T
}

async function valuesOf(topic: Topic, partition: number): Promise<string[]> {
  const values: string[] = []
  for await (const record of topic.partition(partition).records()) values.push(text(record.value))
  return values
}

describe('Topic', () => {
  describe('open', () => {
    it('creates topic.json and one log directory per partition, and is named after its directory', async () => {
      const dir = path.join(tempDir('topic'), 'orders.v1')
      const topic = await openTopic(dir, { partitions: 3 })
      expect(topic.name).toBe('orders.v1')
      expect(topic.partitionCount).toBe(3)
      expect(fs.existsSync(path.join(dir, 'topic.json'))).toBe(true)
      expect(fs.readdirSync(dir).filter((name) => name.startsWith('partition-')).sort()).toEqual(['partition-0', 'partition-1', 'partition-2'])
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'topic.json'), 'utf8'))).toMatchObject({ partitions: 3 })
      expect(endOffsets(topic)).toEqual([0, 0, 0])
    })

    it('has one partition unless told otherwise', async () => {
      const topic = await openTopic(tempDir('topic'))
      expect(topic.partitionCount).toBe(1)
      expect(await topic.send({ value: 'only' })).toEqual({ partition: 0, offset: 0 })
    })

    it('reopens with the stored partition count and log options, and keeps the records', async () => {
      const dir = tempDir('topic')
      const first = await openTopic(dir, { partitions: 4, segmentRecordsMax: 2 })
      await first.sendBatch([0, 1, 2, 3].map((partition) => ({ value: `p${partition}`, partition })))
      await first.close()

      const reopened = await openTopic(dir)
      expect(reopened.partitionCount).toBe(4)
      expect(endOffsets(reopened)).toEqual([1, 1, 1, 1])
      expect(await Promise.all([0, 1, 2, 3].map((partition) => valuesOf(reopened, partition)))).toEqual([['p0'], ['p1'], ['p2'], ['p3']])
      // segmentRecordsMax: 2 was stored with the topic: five records make three segments.
      for (let i = 0; i < 4; i++) await reopened.send({ value: `more ${i}`, partition: 0 })
      expect(reopened.partition(0).log.segments.map((segment) => segment.count)).toEqual([2, 2, 1])
      await reopened.close()

      const sameCount = await openTopic(dir, { partitions: 4 })
      expect(sameCount.partitionCount).toBe(4)
      expect(endOffsets(sameCount)).toEqual([5, 1, 1, 1])
    })

    it.each([1, 2, 5])('refuses to reopen a 3-partition topic with %i partitions (TOPIC_MISMATCH) and leaves it as it was', async (partitions) => {
      const dir = tempDir('topic')
      const topic = await openTopic(dir, { partitions: 3 })
      await topic.sendBatch([0, 1, 2].map((partition) => ({ value: 'x', partition })))
      await topic.close()
      const before = fs.readFileSync(path.join(dir, 'topic.json'))

      const error = await rejectionOf(() => Topic.open(dir, { partitions }))
      expect(error).toBeInstanceOf(LogError)
      expect(error).toMatchObject({ code: 'TOPIC_MISMATCH' })
      expect(fs.readFileSync(path.join(dir, 'topic.json'))).toEqual(before)
      expect(fs.readdirSync(dir).filter((name) => name.startsWith('partition-')).length).toBe(3)

      const reopened = await openTopic(dir)
      expect(reopened.partitionCount).toBe(3)
      expect(endOffsets(reopened)).toEqual([1, 1, 1])
    })
  })

  describe('placement', () => {
    it('puts a record on its explicit partition, whatever its key', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 3 })
      const key = 'some key'
      const keyed = partitionForKey(utf8(key), 3)
      const other = (keyed + 1) % 3
      expect(await topic.send({ value: 'a', key, partition: other })).toEqual({ partition: other, offset: 0 })
      expect(await topic.send({ value: 'b', partition: 2 })).toEqual({ partition: 2, offset: other === 2 ? 1 : 0 })
      expect(text(topic.partition(other).read(0).value)).toBe('a')
    })

    it('puts keyed records where partitionForKey says, for send and sendBatch alike, and again after reopen', async () => {
      const dir = tempDir('topic')
      const partitions = 7
      const keys: (string | Uint8Array)[] = Array.from({ length: 40 }, (_, i) => `customer-${i}`)
      keys.push(Uint8Array.from([0, 1, 2, 255]), Uint8Array.from([0x80]), '', 'ключ', '🔑')
      const expected = keys.map((key) => partitionForKey(typeof key === 'string' ? utf8(key) : key, partitions))
      // The keys do reach more than one partition (else the check below proves little).
      expect(new Set(expected).size).toBeGreaterThan(3)

      let topic = await openTopic(dir, { partitions })
      const bySend: number[] = []
      for (const key of keys) bySend.push((await topic.send({ key, value: 'send' })).partition)
      const byBatch = (await topic.sendBatch(keys.map((key) => ({ key, value: 'batch' })))).map((result) => result.partition)
      await topic.close()
      topic = await openTopic(dir)
      const afterReopen: number[] = []
      for (const key of keys) afterReopen.push((await topic.send({ key, value: 'reopened' })).partition)

      expect(bySend).toEqual(expected)
      expect(byBatch).toEqual(expected)
      expect(afterReopen).toEqual(expected)
      // Each partition holds exactly the keys that hash to it, three times.
      for (let partition = 0; partition < partitions; partition++) {
        const stored: (string | null)[] = []
        for await (const record of topic.partition(partition).records()) stored.push(hex(record.key))
        const wanted = keys.filter((_, i) => expected[i] === partition).map((key) => hex(typeof key === 'string' ? utf8(key) : key))
        expect(stored).toEqual([...wanted, ...wanted, ...wanted])
      }
    })

    it('puts key "21" on partition 0 of 10, where Kafka puts it (murmur2 -973932308)', async () => {
      expect(murmur2(utf8('21'))).toBe(-973932308)
      const topic = await openTopic(tempDir('topic'), { partitions: 10 })
      expect(await topic.send({ key: '21', value: 'v' })).toEqual({ partition: 0, offset: 0 })
      expect(await topic.send({ key: utf8('21'), value: 'v' })).toEqual({ partition: 0, offset: 1 })
      expect(await topic.sendBatch([{ key: '21', value: 'v' }])).toEqual([{ partition: 0, offset: 2 }])
    })

    it.each([
      { partitions: 3, sends: 30, counts: [10, 10, 10] },
      { partitions: 4, sends: 10, counts: [2, 2, 3, 3] },
      { partitions: 5, sends: 1000, counts: [200, 200, 200, 200, 200] },
      { partitions: 1, sends: 7, counts: [7] },
    ])('spreads $sends keyless sends over $partitions partitions evenly, taking partitions in turn', async ({ partitions, sends, counts }) => {
      const topic = await openTopic(tempDir('topic'), { partitions })
      const placed: number[] = []
      for (let i = 0; i < sends; i++) placed.push((await topic.send({ value: `v${i}` })).partition)
      for (let i = 1; i < sends; i++) expect(placed[i]).toBe((placed[i - 1]! + 1) % partitions)
      expect(endOffsets(topic).sort((a, b) => a - b)).toEqual(counts)
    })

    it('keeps keyless sends evenly spread when keyed sends come in between', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 2 })
      const keyless: number[] = []
      for (let i = 0; i < 20; i++) {
        keyless.push((await topic.send({ value: `keyless ${i}` })).partition)
        // One keyed send in between: it must not take a turn from the keyless ones.
        await topic.send({ value: 'keyed', key: i % 2 === 0 ? '21' : 'other' })
      }
      expect(keyless.filter((partition) => partition === 0).length).toBe(10)
      expect(keyless.filter((partition) => partition === 1).length).toBe(10)
    })

    it('puts all keyless records of one sendBatch on one partition, and the next batch on the next partition', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 3 })
      const batches: SendResult[][] = []
      for (let batch = 0; batch < 6; batch++) {
        batches.push(await topic.sendBatch(Array.from({ length: 5 }, (_, i) => ({ value: `b${batch} r${i}` }))))
      }
      const partitionOf = batches.map((results) => results[0]!.partition)
      for (const [batch, results] of batches.entries()) {
        expect(results.map((result) => result.partition)).toEqual(Array(5).fill(partitionOf[batch]))
      }
      for (let batch = 1; batch < 6; batch++) expect(partitionOf[batch]).toBe((partitionOf[batch - 1]! + 1) % 3)
      expect(endOffsets(topic)).toEqual([10, 10, 10])
      // A batch's records are contiguous and in order on their partition.
      const first = batches[0]!
      expect(first.map((result) => result.offset)).toEqual([0, 1, 2, 3, 4])
      expect((await valuesOf(topic, partitionOf[0]!)).slice(0, 5)).toEqual(['b0 r0', 'b0 r1', 'b0 r2', 'b0 r3', 'b0 r4'])
    })

    it('places keyed and explicit records of a batch by key and partition while the keyless ones stick together', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 10 })
      const results = await topic.sendBatch([
        { value: 'keyless 1' },
        { value: 'keyed', key: '21' },
        { value: 'explicit', partition: 7 },
        { value: 'keyless 2' },
      ])
      expect(results[1]!.partition).toBe(0)
      expect(results[2]!.partition).toBe(7)
      expect(results[3]!.partition).toBe(results[0]!.partition)
    })

    it('gives each partition its share of a mixed batch in batch order, with the timestamps given and append time for the rest', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 3 })
      const keys: (string | Uint8Array | undefined)[] = ['k'.repeat(70), 'ключ', Uint8Array.of(1, 2, 3), undefined, 'short', `${'x'.repeat(20)}${'y'.repeat(20)}`, '']
      const records: ProducerRecord[] = Array.from({ length: 42 }, (_, i) => ({
        value: `v${i}`,
        ...(i % 9 === 8 ? { partition: i % 3 } : { key: keys[i % keys.length] }),
        ...(i % 4 === 3 ? { timestamp: 1000 + i } : {}),
        headers: { n: `${i}` },
      }))
      const before = Date.now()
      const results = await topic.sendBatch(records)
      const spread = results[records.findIndex((record) => record.key === undefined && record.partition === undefined)]!.partition
      const nextOffset = [0, 0, 0]
      for (const [i, record] of records.entries()) {
        const { key, partition } = record
        const expected = partition ?? (key === undefined ? spread : partitionForKey(typeof key === 'string' ? utf8(key) : (key as Uint8Array), 3))
        expect({ i, result: results[i] }).toEqual({ i, result: { partition: expected, offset: nextOffset[expected]!++ } })
        const consumed = topic.partition(expected).read(results[i]!.offset)
        expect(text(consumed.value)).toBe(`v${i}`)
        if (record.timestamp !== undefined) expect(consumed.timestamp).toBe(record.timestamp)
        else expect(consumed.timestamp).toBeGreaterThanOrEqual(before)
      }
      expect(endOffsets(topic)).toEqual(nextOffset)
    })
  })

  describe('send and read', () => {
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i)
    const manyHeaders = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`h${i}`, i % 2 === 0 ? `value ${i}` : Uint8Array.of(i & 0xff, 0, 0xff)]))
    const RECORDS: { name: string; record: ProducerRecord }[] = [
      { name: 'no key, string value', record: { value: 'hello' } },
      { name: 'null key', record: { value: 'v', key: null } },
      { name: 'string key and value', record: { value: 'value ☃', key: 'key ✓' } },
      { name: 'binary key and value', record: { value: binary, key: Uint8Array.of(0, 0xff, 0) } },
      { name: 'empty value', record: { value: '' } },
      { name: 'empty binary value, empty key', record: { value: new Uint8Array(0), key: '' } },
      { name: 'string and binary headers', record: { value: 'v', headers: { text: 'plain', bytes: Uint8Array.of(1, 2, 3), empty: '', none: new Uint8Array(0) } } },
      { name: 'unicode header names', record: { value: 'v', headers: { ключ: 'a', 鍵: 'b', '🔑': 'c', naïve: 'd', '': 'empty name', '0': 'digit' } } },
      { name: 'many headers', record: { value: 'v', key: 'k', headers: manyHeaders } },
      { name: 'timestamp 0', record: { value: 'v', timestamp: 0 } },
      { name: 'a late timestamp', record: { value: 'v', timestamp: 1_700_000_000_123 } },
      { name: 'an earlier timestamp after a later one', record: { value: 'v', timestamp: 5 } },
      { name: 'the largest timestamp', record: { value: 'v', timestamp: Number.MAX_SAFE_INTEGER } },
      // Strings are copied four chars at a time while they are ASCII; anything else goes through UTF-8.
      { name: 'non-ASCII closing a four-char word', record: { value: 'abcdefgé', key: 'abcé' } },
      { name: 'non-ASCII in the tail after whole words', record: { value: 'abcde☃', key: 'abcdefghi🔑' } },
      { name: 'Latin-1 chars (below 0x100, above 0x7f)', record: { value: 'ÿ', key: 'café', headers: { ü: 'ñ', 'x\u0080': '\u00ff' } } },
      { name: 'a lone surrogate (written as U+FFFD)', record: { value: 'a\ud800b', key: '\udc00', headers: { h: 'x\ud83d' } } },
      { name: 'ASCII strings around the 64-char short-string limit', record: { value: 'a'.repeat(64), key: 'k'.repeat(65), headers: { ['n'.repeat(64)]: 'v'.repeat(63), ['m'.repeat(65)]: 'w'.repeat(200) } } },
      { name: 'non-ASCII strings around the 64-char limit', record: { value: 'a'.repeat(63) + 'é', key: 'é' + 'b'.repeat(70), headers: { ['ö'.repeat(64)]: '☃'.repeat(65) } } },
    ]

    function expectedOf(record: ProducerRecord): { key: string | null; value: string; headers: Record<string, string> } {
      const bytes = (field: Uint8Array | string): string => hex(typeof field === 'string' ? utf8(field) : field)!
      return {
        key: record.key === undefined || record.key === null ? null : bytes(record.key),
        value: bytes(record.value),
        headers: Object.fromEntries(Object.entries(record.headers ?? {}).map(([name, value]) => [name, bytes(value)])),
      }
    }

    function actualOf(record: { key: Uint8Array | null; value: Uint8Array; headers: Record<string, Uint8Array> }): ReturnType<typeof expectedOf> {
      return {
        key: hex(record.key),
        value: hex(record.value)!,
        headers: Object.fromEntries(Object.entries(record.headers).map(([name, value]) => [name, hex(value)!])),
      }
    }

    it('gives back key, value, headers and timestamp through read() and records(), before and after reopen', async () => {
      const dir = tempDir('topic')
      let topic = await openTopic(dir, { partitions: 2 })
      const results: SendResult[] = []
      for (const { record } of RECORDS) results.push(await topic.send({ ...record, partition: 1 }))
      expect(results.map((result) => result.offset)).toEqual(RECORDS.map((_, i) => i))

      const check = async (): Promise<void> => {
        const iterated: ConsumedRecord[] = []
        for await (const record of topic.partition(1).records()) iterated.push(record)
        expect(iterated.length).toBe(RECORDS.length)
        for (const [offset, { name, record }] of RECORDS.entries()) {
          for (const consumed of [topic.partition(1).read(offset), iterated[offset]!]) {
            expect({ name, ...actualOf(consumed) }).toEqual({ name, ...expectedOf(record) })
            expect(consumed).toMatchObject({ topic: topic.name, partition: 1, offset })
            if (record.timestamp !== undefined) expect(consumed.timestamp).toBe(record.timestamp)
            expect(consumed.key === null).toBe(record.key === undefined || record.key === null)
          }
        }
      }
      await check()
      await topic.close()
      topic = await openTopic(dir)
      await check()
      expect(topic.partition(0).endOffset).toBe(0)
    })

    it('gives a record without a timestamp the time of its send', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 2 })
      const before = Date.now()
      const single = await topic.send({ value: 'now' })
      const batch = await topic.sendBatch([{ value: 'a', partition: 0 }, { value: 'b', partition: 1 }, { value: 'c', timestamp: 42, partition: 1 }])
      const after = Date.now()
      for (const { partition, offset } of [single, batch[0]!, batch[1]!]) {
        const { timestamp } = topic.partition(partition).read(offset)
        expect(timestamp).toBeGreaterThanOrEqual(before)
        expect(timestamp).toBeLessThanOrEqual(after)
      }
      expect(topic.partition(1).read(batch[2]!.offset).timestamp).toBe(42)
    })

    it('keeps a header named __proto__ as an ordinary header', async () => {
      const topic = await openTopic(tempDir('topic'))
      const headers: Record<string, string> = JSON.parse('{"__proto__":"p","constructor":"c"}') as Record<string, string>
      expect(Object.keys(headers)).toEqual(['__proto__', 'constructor'])
      await topic.send({ value: 'v', headers })
      const read = topic.partition(0).read(0)
      expect(Object.keys(read.headers).sort()).toEqual(['__proto__', 'constructor'])
      expect(Object.getPrototypeOf(read.headers)).toBe(Object.prototype)
      expect(text(Object.getOwnPropertyDescriptor(read.headers, '__proto__')?.value as Uint8Array)).toBe('p')
    })
  })

  describe('Partition', () => {
    it('finds the first offset at or after a timestamp with offsetForTimestamp', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 2, segmentRecordsMax: 2 })
      const timestamps = [1000, 2000, 2000, 3000, 5000]
      await topic.sendBatch(timestamps.map((timestamp) => ({ value: `t${timestamp}`, timestamp, partition: 1 })))
      await topic.send({ value: 'elsewhere', timestamp: 1500, partition: 0 })
      const partition = topic.partition(1)
      expect(partition.log.segments.length).toBe(3)
      expect(partition.offsetForTimestamp(0)).toBe(0)
      expect(partition.offsetForTimestamp(1000)).toBe(0)
      expect(partition.offsetForTimestamp(1001)).toBe(1)
      expect(partition.offsetForTimestamp(2000)).toBe(1)
      expect(partition.offsetForTimestamp(2500)).toBe(3)
      expect(partition.offsetForTimestamp(4000)).toBe(4)
      expect(partition.offsetForTimestamp(5000)).toBe(4)
      expect(partition.offsetForTimestamp(5001)).toBeUndefined()
      expect(topic.partition(0).offsetForTimestamp(1200)).toBe(0)
      expect(topic.partition(0).offsetForTimestamp(1600)).toBeUndefined()
    })

    it('reads a range with records({ from, to }) and appends through append()', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 2 })
      for (let i = 0; i < 5; i++) expect(await topic.partition(1).append({ value: `r${i}`, key: 'k' })).toBe(i)
      const read: string[] = []
      for await (const record of topic.partition(1).records({ from: 1, to: 4 })) read.push(`${record.offset}:${text(record.value)}`)
      expect(read).toEqual(['1:r1', '2:r2', '3:r3'])
      expect(endOffsets(topic)).toEqual([0, 5])
      expect(topic.partition(1).startOffset).toBe(0)
      expect(topic.partition(1).highWatermark).toBe(5)
    })
  })

  describe('sendBatch', () => {
    it('answers in input order, with contiguous offsets per partition, across mixed partitions', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 3 })
      await topic.send({ value: 'first', partition: 2 })
      const order = [2, 0, 2, 1, 0, 2, 2, 1]
      const results = await topic.sendBatch(order.map((partition, i) => ({ value: `r${i}`, partition })))
      expect(results).toEqual([
        { partition: 2, offset: 1 },
        { partition: 0, offset: 0 },
        { partition: 2, offset: 2 },
        { partition: 1, offset: 0 },
        { partition: 0, offset: 1 },
        { partition: 2, offset: 3 },
        { partition: 2, offset: 4 },
        { partition: 1, offset: 1 },
      ])
      for (const [i, { partition, offset }] of results.entries()) expect(text(topic.partition(partition).read(offset).value)).toBe(`r${i}`)
    })

    it('answers [] to an empty batch and writes nothing', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 2 })
      expect(await topic.sendBatch([])).toEqual([])
      expect(endOffsets(topic)).toEqual([0, 0])
    })

    it.each([
      { name: 'a value that is a number', last: { value: 1 } },
      { name: 'a header value that is null', last: { value: 'v', headers: { h: null } } },
      { name: 'a partition that does not exist', last: { value: 'v', partition: 3 } },
      { name: 'a fractional timestamp', last: { value: 'v', timestamp: 1.5 } },
    ])('writes nothing on any partition when one record has $name', async ({ last }) => {
      const topic = await openTopic(tempDir('topic'), { partitions: 3 })
      await topic.send({ value: 'before', partition: 1 })
      const error = await rejectionOf(() => topic.sendBatch([{ value: 'a', partition: 0 }, { value: 'b', partition: 1 }, { value: 'c', partition: 2 }, { value: 'd', key: 'k' }, bad(last)]))
      expect(error).toBeInstanceOf(LogError)
      expect(endOffsets(topic)).toEqual([0, 1, 0])
      // The topic still takes batches afterwards, at the same offsets.
      expect(await topic.sendBatch([{ value: 'a', partition: 0 }, { value: 'b', partition: 1 }])).toEqual([
        { partition: 0, offset: 0 },
        { partition: 1, offset: 1 },
      ])
    })

    it('appends the records bound for one partition all or none (RECORD_TOO_LARGE on that partition)', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 2, recordBytesMax: 100 })
      const error = await rejectionOf(() =>
        topic.sendBatch([
          { value: 'small 0', partition: 1 },
          { value: 'small 1', partition: 1 },
          { value: 'x'.repeat(200), partition: 1 },
          { value: 'small 2', partition: 1 },
        ]),
      )
      expect(error).toMatchObject({ code: 'RECORD_TOO_LARGE' })
      expect(endOffsets(topic)).toEqual([0, 0])
    })
  })

  describe('bad input', () => {
    /** Which topic handle a row calls: the open one, or the same one after close(). */
    type Given = 'open' | 'closed'

    interface BadCall {
      name: string
      code: LogErrorCode
      /** 'throws': a synchronous throw; 'rejects': a returned promise that rejects (no synchronous throw). */
      fails: 'throws' | 'rejects'
      given: Given
      call: (topic: Topic, dir: string) => unknown
    }

    const row = (name: string, code: LogErrorCode, fails: BadCall['fails'], call: BadCall['call'], given: Given = 'open'): BadCall => ({ name, code, fails, given, call })
    const send = (record: unknown) => (topic: Topic) => topic.send(bad(record))
    /** Topic.open on a directory that does not exist yet, next to the topic. */
    const openFresh = (options: unknown) => (_topic: Topic, dir: string) => Topic.open(path.join(dir, '..', 'fresh'), bad(options))

    const BAD_CALLS: BadCall[] = [
      // records
      row('send(null)', 'INVALID_ARGUMENT', 'rejects', send(null)),
      row('send(string)', 'INVALID_ARGUMENT', 'rejects', send('text')),
      row('send(array)', 'INVALID_ARGUMENT', 'rejects', send([{ value: 'v' }])),
      row('send without value', 'INVALID_ARGUMENT', 'rejects', send({ key: 'k' })),
      row('send with a number value', 'INVALID_ARGUMENT', 'rejects', send({ value: 42 })),
      row('send with a null value', 'INVALID_ARGUMENT', 'rejects', send({ value: null })),
      row('send with an ArrayBuffer value', 'INVALID_ARGUMENT', 'rejects', send({ value: new ArrayBuffer(2) })),
      row('send with a number key', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', key: 7 })),
      row('send with a number header value', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', headers: { h: 1 } })),
      row('send with a null header value', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', headers: { ok: 'fine', h: null } })),
      row('send with headers that are a string', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', headers: 'h=1' })),
      row('send with headers that are an array', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', headers: [['h', '1']] })),
      row('send with a header name over 65535 bytes', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', headers: { ['n'.repeat(65_536)]: 'v' } })),
      row('send with a negative timestamp', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', timestamp: -1 })),
      row('send with a NaN timestamp', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', timestamp: NaN })),
      row('send with a fractional timestamp', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', timestamp: 1.5 })),
      row('send with an infinite timestamp', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', timestamp: Infinity })),
      row('send with a string timestamp', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', timestamp: '5' })),
      row('send with a Date timestamp', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', timestamp: new Date(5) })),
      row('send to partition -1', 'UNKNOWN_PARTITION', 'rejects', send({ value: 'v', partition: -1 })),
      row('send to partition 99', 'UNKNOWN_PARTITION', 'rejects', send({ value: 'v', partition: 99 })),
      row('send to partition 3 of 3', 'UNKNOWN_PARTITION', 'rejects', send({ value: 'v', partition: 3 })),
      row('send to partition 1.5', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', partition: 1.5 })),
      row("send to partition '1'", 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', partition: '1' })),
      row('send to partition NaN', 'INVALID_ARGUMENT', 'rejects', send({ value: 'v', partition: NaN })),
      row('send a record over recordBytesMax', 'RECORD_TOO_LARGE', 'rejects', send({ value: 'x'.repeat(2000) })),
      row('sendBatch(string)', 'INVALID_ARGUMENT', 'rejects', (topic) => topic.sendBatch(bad('records'))),
      row('sendBatch(null)', 'INVALID_ARGUMENT', 'rejects', (topic) => topic.sendBatch(bad(null))),
      row('sendBatch with a bad second record', 'INVALID_ARGUMENT', 'rejects', (topic) => topic.sendBatch(bad([{ value: 'ok' }, { value: 5 }]))),
      row('sendBatch with a null record', 'INVALID_ARGUMENT', 'rejects', (topic) => topic.sendBatch(bad([{ value: 'ok', partition: 0 }, null]))),
      row('sendBatch with partition 99', 'UNKNOWN_PARTITION', 'rejects', (topic) => topic.sendBatch([{ value: 'ok', partition: 0 }, { value: 'ok', partition: 99 }])),
      row('Partition.append with a number value', 'INVALID_ARGUMENT', 'rejects', (topic) => topic.partition(0).append(bad({ value: 5 }))),
      // partitions
      row('partition(5)', 'UNKNOWN_PARTITION', 'throws', (topic) => topic.partition(5)),
      row('partition(3)', 'UNKNOWN_PARTITION', 'throws', (topic) => topic.partition(3)),
      row('partition(-1)', 'UNKNOWN_PARTITION', 'throws', (topic) => topic.partition(-1)),
      row('partition(1.5)', 'UNKNOWN_PARTITION', 'throws', (topic) => topic.partition(1.5)),
      row("partition('0')", 'UNKNOWN_PARTITION', 'throws', (topic) => topic.partition(bad('0'))),
      row('read past the end', 'OFFSET_OUT_OF_RANGE', 'throws', (topic) => topic.partition(0).read(2)),
      // Topic.open
      row('Topic.open with partitions 0', 'INVALID_ARGUMENT', 'rejects', openFresh({ partitions: 0 })),
      row('Topic.open with partitions 1.5', 'INVALID_ARGUMENT', 'rejects', openFresh({ partitions: 1.5 })),
      row('Topic.open with partitions 10001', 'INVALID_ARGUMENT', 'rejects', openFresh({ partitions: 10_001 })),
      row('Topic.open with partitions -3', 'INVALID_ARGUMENT', 'rejects', openFresh({ partitions: -3 })),
      row("Topic.open with partitions '3'", 'INVALID_ARGUMENT', 'rejects', openFresh({ partitions: '3' })),
      row('Topic.open with an unknown log option', 'INVALID_ARGUMENT', 'rejects', openFresh({ partitions: 2, segmentSize: 4096 })),
      row('Topic.open with a log option out of range', 'INVALID_ARGUMENT', 'rejects', openFresh({ partitions: 2, segmentBytesMax: 10 })),
      row("Topic.open with sync: 'sometimes'", 'INVALID_ARGUMENT', 'rejects', openFresh({ sync: 'sometimes' })),
      row('Topic.open with options null', 'INVALID_ARGUMENT', 'rejects', openFresh(null)),
      row("Topic.open('')", 'INVALID_ARGUMENT', 'rejects', () => Topic.open('')),
      row('Topic.open(5)', 'INVALID_ARGUMENT', 'rejects', () => Topic.open(bad(5))),
      row('Topic.open(undefined)', 'INVALID_ARGUMENT', 'rejects', () => Topic.open(bad(undefined))),
      row('Topic.open of the topic with 4 partitions', 'TOPIC_MISMATCH', 'rejects', (_topic, dir) => Topic.open(dir, { partitions: 4 })),
      // closed
      row('send after close', 'LOG_CLOSED', 'rejects', send({ value: 'v' }), 'closed'),
      row('sendBatch after close', 'LOG_CLOSED', 'rejects', (topic) => topic.sendBatch([{ value: 'v' }]), 'closed'),
      row('partition(0) after close', 'LOG_CLOSED', 'throws', (topic) => topic.partition(0), 'closed'),
      row('consumerGroup after close', 'LOG_CLOSED', 'throws', (topic) => topic.consumerGroup('g'), 'closed'),
    ]

    it('has at least 20 rows', () => {
      expect(BAD_CALLS.length).toBeGreaterThanOrEqual(20)
      expect(new Set(BAD_CALLS.map((call) => call.name)).size).toBe(BAD_CALLS.length)
    })

    it.each(BAD_CALLS)('$name → $code, and no partition changes', async ({ code, fails, given, call }) => {
      const root = tempDir('topic')
      const dir = path.join(root, 'topic')
      const topic = await openTopic(dir, { partitions: 3, recordBytesMax: 1024 })
      await topic.sendBatch([{ value: 'zero', partition: 0 }, { value: 'one', partition: 0 }, { value: 'two', partition: 1 }])
      if (given === 'closed') await topic.close()

      let thrown: unknown
      let result: unknown
      try {
        result = call(topic, dir)
      } catch (error) {
        thrown = error
      }
      if (fails === 'throws') {
        expect(thrown).toBeInstanceOf(LogError)
        expect(thrown).toMatchObject({ code })
      } else {
        expect(thrown).toBeUndefined()
        expect(result).toBeInstanceOf(Promise)
        const error = await (result as Promise<unknown>).then(
          (value) => {
            if (value instanceof Topic) openTopics.push(value)
            return undefined
          },
          (rejection: unknown) => rejection,
        )
        expect(error).toBeInstanceOf(LogError)
        expect(error).toMatchObject({ code })
      }

      if (given === 'open') expect(endOffsets(topic)).toEqual([2, 1, 0])
      expect(fs.existsSync(path.join(root, 'fresh', 'topic.json'))).toBe(false)
      await topic.close()
      const reopened = await openTopic(dir)
      expect(reopened.partitionCount).toBe(3)
      expect(endOffsets(reopened)).toEqual([2, 1, 0])
      expect(await valuesOf(reopened, 0)).toEqual(['zero', 'one'])
      expect(await valuesOf(reopened, 1)).toEqual(['two'])
    })
  })

  describe('producer encoding', () => {
    const batchOf = (count: number, partitions: number): ProducerRecord[] =>
      Array.from({ length: count }, (_, i) => ({ key: `key-${i}`, value: `value ${i}`, headers: { 'content-type': 'text/plain', n: String(i) }, ...(i % 7 === 0 ? { partition: i % partitions } : {}) }))

    const BAD_RECORDS: { name: string; record: unknown; code: LogErrorCode }[] = [
      { name: 'null', record: null, code: 'INVALID_ARGUMENT' },
      { name: 'a number value', record: { value: 5 }, code: 'INVALID_ARGUMENT' },
      { name: 'a number key', record: { value: 'v', key: 5 }, code: 'INVALID_ARGUMENT' },
      { name: 'a null header value after a good one', record: { value: 'v', headers: { a: 'ok', b: null } }, code: 'INVALID_ARGUMENT' },
      { name: 'a header name over 65535 bytes', record: { value: 'v', headers: { ['é'.repeat(40_000)]: 'v' } }, code: 'INVALID_ARGUMENT' },
      { name: 'a fractional timestamp', record: { value: 'v', timestamp: 1.5 }, code: 'INVALID_ARGUMENT' },
      { name: 'partition 99', record: { value: 'v', partition: 99 }, code: 'UNKNOWN_PARTITION' },
      { name: 'partition -1', record: { value: 'v', partition: -1 }, code: 'UNKNOWN_PARTITION' },
    ]
    const CASES = [1, 3].flatMap((partitions) => [0, 500, 999].flatMap((index) => BAD_RECORDS.map((bad) => ({ ...bad, partitions, index }))))

    it.each(CASES)('refuses a batch of 1,000 with $name at record $index ($partitions partitions) and writes nothing', async ({ record, code, partitions, index }) => {
      const topic = await openTopic(tempDir('topic'), { partitions })
      const records: unknown[] = batchOf(1000, partitions)
      records[index] = record
      const error = await rejectionOf(() => topic.sendBatch(bad(records)))
      expect(error).toBeInstanceOf(LogError)
      expect(error).toMatchObject({ code })
      if (code === 'INVALID_ARGUMENT') expect((error as Error).message).toMatch(new RegExp(`: record ${index}\\b`))
      expect(endOffsets(topic)).toEqual(new Array(partitions).fill(0))
      // The next batch goes through whole, from offset 0.
      const results = await topic.sendBatch(batchOf(1000, partitions))
      expect(results.filter((result) => result.offset === 0).length).toBe(new Set(results.map((result) => result.partition)).size)
      expect(endOffsets(topic).reduce((sum, count) => sum + count, 0)).toBe(1000)
    })

    it('keeps at most HEADER_NAME_ENCODE_CACHE_ENTRIES encoded header names, and names past the bound still round-trip', async () => {
      const topic = await openTopic(tempDir('topic'))
      const names = Array.from({ length: HEADER_NAME_ENCODE_CACHE_ENTRIES * 3 }, (_, i) => `header-${i}-${'é'.repeat(i % 3)}`)
      const records = names.map((name, i) => ({ value: `v${i}`, headers: { [name]: `x${i}`, common: 'c' } }))
      await topic.sendBatch(records)
      expect(encodedHeaderNameCount()).toBeGreaterThan(0)
      expect(encodedHeaderNameCount()).toBeLessThanOrEqual(HEADER_NAME_ENCODE_CACHE_ENTRIES)
      await topic.sendBatch(records)
      expect(encodedHeaderNameCount()).toBeLessThanOrEqual(HEADER_NAME_ENCODE_CACHE_ENTRIES)
      for (let offset = 0; offset < records.length * 2; offset++) {
        const i = offset % records.length
        const headers = topic.partition(0).read(offset).headers
        expect(Object.keys(headers)).toEqual([names[i], 'common'])
        expect(text(headers[names[i]!]!)).toBe(`x${i}`)
      }
    })

    it('round-trips a batch larger than the scratch it keeps (about 6 MB), and a small batch after it', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 2 })
      const big = Array.from({ length: 6 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(1000 * 1024, i + 1) }))
      const placed = await topic.sendBatch(big)
      const small = await topic.sendBatch([{ value: 'small', partition: 0 }])
      for (const [i, { partition, offset }] of placed.entries()) expect(Buffer.from(topic.partition(partition).read(offset).value).equals(big[i]!.value)).toBe(true)
      expect(text(topic.partition(0).read(small[0]!.offset).value)).toBe('small')
    })

    it('applies a timestamp or a partition given only by later records of a batch', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 3 })
      const before = Date.now()
      const results = await topic.sendBatch([{ value: 'a', partition: 1 }, { value: 'b', partition: 1 }, { value: 'c', partition: 1, timestamp: 7 }, { value: 'd', partition: 2 }])
      expect(results).toEqual([
        { partition: 1, offset: 0 },
        { partition: 1, offset: 1 },
        { partition: 1, offset: 2 },
        { partition: 2, offset: 0 },
      ])
      expect(topic.partition(1).read(0).timestamp).toBeGreaterThanOrEqual(before)
      expect(topic.partition(1).read(2).timestamp).toBe(7)
      expect(topic.partition(2).read(0).timestamp).toBeGreaterThanOrEqual(before)
    })

    it('encodes a batch sent from inside another batch being encoded (a getter that sends) without mixing them up', async () => {
      const topic = await openTopic(tempDir('topic'))
      let inner: Promise<SendResult[]> | undefined
      const sneaky = {
        get value(): string {
          inner ??= topic.sendBatch([{ value: 'inner 0' }, { value: 'inner 1' }])
          return 'outer 1'
        },
      }
      const outer = await topic.sendBatch([{ value: 'outer 0' }, bad(sneaky), { value: 'outer 2' }])
      expect(await inner).toEqual([
        { partition: 0, offset: 0 },
        { partition: 0, offset: 1 },
      ])
      expect(outer.map((result) => result.offset)).toEqual([2, 3, 4])
      expect(await valuesOf(topic, 0)).toEqual(['inner 0', 'inner 1', 'outer 0', 'outer 1', 'outer 2'])
    })

    it('keeps the placement of a batch when a getter appends to a partition meanwhile', async () => {
      const topic = await openTopic(tempDir('topic'), { partitions: 3 })
      let inner: Promise<number> | undefined
      const sneaky = {
        get value(): string {
          inner ??= topic.partition(2).append({ value: 'inner' })
          return 'outer 1'
        },
      }
      const outer = await topic.sendBatch([{ value: 'outer 0' }, bad(sneaky), { value: 'outer 2', key: '21' }, { value: 'outer 3' }])
      expect(await inner).toBe(0)
      // The keyless records stay together on the spread partition (0, the first turn), the keyed one goes by its key.
      expect(outer.map((result) => result.partition)).toEqual([0, 0, partitionForKey(utf8('21'), 3), 0])
      expect(await valuesOf(topic, 2)).toEqual(partitionForKey(utf8('21'), 3) === 2 ? ['inner', 'outer 2'] : ['inner'])
    })

    it('refuses a batch with LOG_CLOSED when a getter closes the topic while the batch is encoded, and writes nothing', async () => {
      const dir = tempDir('topic')
      const topic = await openTopic(dir, { partitions: 2 })
      let closing: Promise<void> | undefined
      const closer = {
        key: 'k',
        get value(): string {
          closing ??= topic.close()
          return 'v'
        },
      }
      const error = await rejectionOf(() => topic.sendBatch([{ value: 'a', key: 'x' }, bad(closer), { value: 'c', key: 'y' }]))
      expect(error).toMatchObject({ code: 'LOG_CLOSED' })
      await closing
      const reopened = await openTopic(dir)
      expect(endOffsets(reopened)).toEqual([0, 0])
    })
  })

  describe('producer encoding within a batch', () => {
    /** Records whose headers repeat, change, swap places and change kind from one record to the next. */
    const HEADER_RUNS: ProducerRecord[] = [
      { value: 'r0', key: 'k0', headers: { 'content-type': 'text/plain', 'trace-id': 'aaaa' } },
      { value: 'r1', key: 'k1', headers: { 'content-type': 'text/plain', 'trace-id': 'bbbb' } },
      { value: 'r2', headers: { 'content-type': 'text/plain', 'trace-id': Uint8Array.of(1, 2) } },
      { value: 'r3', key: null, headers: { 'content-type': Uint8Array.of(9), 'trace-id': Uint8Array.of(1, 2) } },
      { value: 'r4', key: '', headers: { 'content-type': 'text/plain', 'trace-id': 'bbbb' } },
      { value: 'r5', key: 'k5', headers: { 'trace-id': 'bbbb', 'content-type': 'text/plain' } },
      { value: 'r6', key: 'k6', headers: { 'trace-id': 'bbbb' } },
      { value: 'r7', key: 'k7' },
      { value: 'r8', key: 'k8', headers: { 'trace-id': 'bbbb', 'content-type': 'text/plain', extra: 'e' } },
      { value: 'r9', key: 'ключ', headers: { 'trace-id': 'бббб', 'content-type': 'text/plain', extra: '' } },
      { value: 'r10', key: 'ключ', headers: { 'trace-id': 'бббб', 'content-type': 'text/☃', extra: '' } },
      { value: 'r11', key: '🔑', headers: { 'trace-id': 'x'.repeat(70_000), 'content-type': 'text/☃', extra: '' } },
      { value: 'r12', key: '🔑', headers: { 'trace-id': 'x'.repeat(70_000), 'content-type': 'é'.repeat(100), extra: '' } },
      { value: Uint8Array.of(0, 1), key: Uint8Array.of(7), headers: { 'trace-id': 'x'.repeat(70_000), 'content-type': 'é'.repeat(100), extra: 'e' } },
      { value: '', headers: {} },
      { value: 'r15', headers: { 'trace-id': 'bbbb', 'content-type': 'text/plain', extra: 'e' } },
      { value: 'r16', headers: { naïve: 'a', 'trace-id': 'bbbb', 'content-type': 'text/plain' } },
      { value: 'r17', headers: { naïve: 'a', 'trace-id': 'bbbb', 'content-type': 'text/plain' } },
    ]

    const hexOf = (field: Uint8Array | string): string => hex(typeof field === 'string' ? utf8(field) : field)!
    function expectRecord(consumed: ConsumedRecord, record: ProducerRecord, where: string): void {
      const key = record.key === undefined || record.key === null ? null : hexOf(record.key)
      const headers = Object.entries(record.headers ?? {}).map(([name, value]) => [name, hexOf(value)])
      expect({ where, key: hex(consumed.key), value: hex(consumed.value), headers: Object.entries(consumed.headers).map(([name, value]) => [name, hex(value)]) }).toEqual({
        where,
        key,
        value: hexOf(record.value),
        headers,
      })
    }

    it.each([1, 3])('round-trips headers that repeat, change and move from record to record in one batch (%i partitions), twice over', async (partitions) => {
      const dir = tempDir('topic')
      let topic = await openTopic(dir, { partitions })
      const batch = [...HEADER_RUNS, ...HEADER_RUNS, ...HEADER_RUNS.slice().reverse()]
      const placed = await topic.sendBatch(batch)
      const check = (): void => {
        for (const [i, { partition, offset }] of placed.entries()) expectRecord(topic.partition(partition).read(offset), batch[i]!, `record ${i}`)
      }
      check()
      await topic.close()
      topic = await openTopic(dir)
      check()
    })

    it('round-trips header names over 8 places per record (the remembered ones and those past them)', async () => {
      const topic = await openTopic(tempDir('topic'))
      const records = Array.from({ length: 20 }, (_, i) => ({
        value: `v${i}`,
        headers: Object.fromEntries(Array.from({ length: 12 }, (_, h) => [`h${h}`, h % 3 === 0 ? 'same' : `r${i}h${h}`])),
      }))
      await topic.sendBatch(records)
      for (const [offset, record] of records.entries()) expectRecord(topic.partition(0).read(offset), record, `record ${offset}`)
    })

    it.each([
      { partitions: 1, writeBufferBytes: 4096, segmentBytesMax: 64 * 1024 },
      { partitions: 3, writeBufferBytes: 4096, segmentBytesMax: 64 * 1024 },
      { partitions: 1, writeBufferBytes: 64 * 1024, segmentBytesMax: 20_000 },
    ])(
      'writes batches that cross write buffer flushes and segment rolls byte for byte ($partitions partitions, $writeBufferBytes B buffer, $segmentBytesMax B segments)',
      async ({ partitions, writeBufferBytes, segmentBytesMax }) => {
        const dir = tempDir('topic')
        let topic = await openTopic(dir, { partitions, writeBufferBytes, segmentBytesMax })
        const sizes = [1, 100, 4000, 10, 5000, 0, 333, 3900, 77]
        const batches = [0, 1, 2].map((b) =>
          Array.from({ length: 400 }, (_, i) => ({
            key: i % 5 === 4 ? undefined : `key-${b}-${i}`,
            value: Buffer.alloc(sizes[(i + b) % sizes.length]!, (i * 7 + b) & 0xff),
            headers: { 'content-type': 'application/octet-stream', 'trace-id': `${b}:${i}` },
          })),
        )
        const placed: Awaited<ReturnType<typeof topic.sendBatch>>[] = []
        for (const batch of batches) placed.push(await topic.sendBatch(batch))
        expect(topic.partition(0).log.segments.length).toBeGreaterThan(1)
        const check = (): void => {
          for (const [b, batch] of batches.entries()) {
            for (const [i, { partition, offset }] of placed[b]!.entries()) expectRecord(topic.partition(partition).read(offset), batch[i]!, `batch ${b} record ${i}`)
          }
        }
        check()
        await topic.close()
        topic = await openTopic(dir)
        check()
        expect(endOffsets(topic).reduce((sum, count) => sum + count, 0)).toBe(1200)
      },
    )
  })

  describe('close', () => {
    it('closes its partitions and can be called twice; the directory opens again at once', async () => {
      const dir = tempDir('topic')
      const topic = await openTopic(dir, { partitions: 2 })
      await topic.send({ value: 'v', partition: 1 })
      await topic.close()
      await topic.close()
      const reopened = await openTopic(dir)
      expect(endOffsets(reopened)).toEqual([0, 1])
    })
  })
})
