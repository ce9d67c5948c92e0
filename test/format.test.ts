/**
 * The golden fixture in test/fixtures/format-v1/ pins format version 1 byte for byte (docs/format.md
 * describes the same layout). If format.ts changes how anything is encoded, these tests fail.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import CRC32C from 'crc-32/crc32c.js'
import { describe, expect, it } from 'vitest'
import { LogError, SegmentedLog } from '../src/index.js'
import {
  CHECKPOINT_BYTES,
  FILE_HEADER_BYTES,
  FLAG_BATCH_END,
  FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  decodeCheckpoint,
  decodeEnvelopeRecord,
  decodeFileHeader,
  decodeFrameHeader,
  decodeIndexEntry,
  encodeCheckpoint,
  encodeFileHeader,
  encodeFrame,
  encodeIndexEntry,
  EnvelopeWriter,
  parseSegmentFileName,
  segmentFileName,
  STORE_MAGIC,
  INDEX_MAGIC,
} from '../src/format.js'
import { tempDir } from './helpers/temp-dir.js'

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'format-v1')
const T0 = 1_700_000_000_000
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

/** What make-format-v1.mjs wrote: segment base, then each record's payload, timestamp and flags. */
const EXPECTED = [
  {
    base: 0,
    records: [
      { payload: text('alpha'), timestampMs: T0, flags: FLAG_BATCH_END },
      { payload: text('beta'), timestampMs: T0 + 1, flags: FLAG_BATCH_END },
      { payload: text('gamma'), timestampMs: T0 + 2, flags: 0 },
    ],
  },
  {
    base: 3,
    records: [
      { payload: text('delta'), timestampMs: T0 + 3, flags: 0 },
      { payload: new Uint8Array(0), timestampMs: T0 + 1, flags: FLAG_BATCH_END },
      { payload: Uint8Array.from([0, 1, 2, 253, 254, 255]), timestampMs: T0 + 10, flags: FLAG_BATCH_END },
    ],
  },
]

function fixtureFile(name: string): Buffer {
  return fs.readFileSync(path.join(FIXTURE, name))
}

describe('format v1', () => {
  describe('file names', () => {
    it('names segment files by the 20-digit zero-padded base offset', () => {
      expect(segmentFileName(0, '.log')).toBe('00000000000000000000.log')
      expect(segmentFileName(1234, '.index')).toBe('00000000000000001234.index')
      expect(parseSegmentFileName('00000000000000001234.index')).toEqual({ baseOffset: 1234, kind: 'index' })
    })

    it.each(['0000000000000000001.log', '00000000000000000001.log.tmp', 'LOCK', '00000000000000000001.idx'])(
      'does not take %s for a segment file',
      (name) => expect(parseSegmentFileName(name)).toBeUndefined(),
    )
  })

  describe('golden fixture', () => {
    it('holds exactly the files of two segments, the checkpoint and the clean-shutdown marker', () => {
      expect(fs.readdirSync(FIXTURE).sort()).toEqual([
        '00000000000000000000.index',
        '00000000000000000000.log',
        '00000000000000000003.index',
        '00000000000000000003.log',
        'clean-shutdown',
        'log-start-offset.checkpoint',
      ])
    })

    it('starts store and index files with the magic, version and header length', () => {
      const store = fixtureFile('00000000000000000000.log')
      const index = fixtureFile('00000000000000000000.index')
      expect(store.subarray(0, 4).toString('latin1')).toBe('SGLS')
      expect(index.subarray(0, 4).toString('latin1')).toBe('SGLI')
      expect(store.readUInt16LE(4)).toBe(1)
      expect(store.readUInt16LE(6)).toBe(32)
      expect(FORMAT_VERSION).toBe(1)
      expect(FILE_HEADER_BYTES).toBe(32)
      expect(FRAME_HEADER_BYTES).toBe(24)
      expect(INDEX_ENTRY_BYTES).toBe(16)
    })

    it.each(EXPECTED)('decodes the frames of segment $base with CRC-32C over bytes 4..end', ({ base, records }) => {
      const store = fixtureFile(segmentFileName(base, '.log'))
      const header = decodeFileHeader(store, 0, STORE_MAGIC, 'store')
      expect(header.baseOffset).toBe(base)
      let position = FILE_HEADER_BYTES
      records.forEach((record, relativeOffset) => {
        const frame = decodeFrameHeader(store, position)
        expect(frame).toMatchObject({ payloadBytes: record.payload.length, relativeOffset, flags: record.flags, timestampMs: record.timestampMs })
        const end = position + FRAME_HEADER_BYTES + record.payload.length
        expect(CRC32C.buf(store.subarray(position + 4, end)) >>> 0).toBe(frame.crc)
        expect(new Uint8Array(store.subarray(position + FRAME_HEADER_BYTES, end))).toEqual(record.payload)
        position = end
      })
      expect(position).toBe(store.length)
    })

    it.each(EXPECTED)('indexes segment $base with positions, lengths and running-maximum timestamps', ({ base, records }) => {
      const index = fixtureFile(segmentFileName(base, '.index'))
      expect(decodeFileHeader(index, 0, INDEX_MAGIC, 'index').baseOffset).toBe(base)
      expect(index.length).toBe(FILE_HEADER_BYTES + records.length * INDEX_ENTRY_BYTES)
      let position = FILE_HEADER_BYTES
      let timestampMax = 0 // the running maximum starts afresh in each segment
      records.forEach((record, relativeOffset) => {
        timestampMax = Math.max(timestampMax, record.timestampMs)
        const entry = decodeIndexEntry(index, FILE_HEADER_BYTES + relativeOffset * INDEX_ENTRY_BYTES)
        expect(entry).toEqual({ position, payloadBytes: record.payload.length, timestampMs: timestampMax })
        position += FRAME_HEADER_BYTES + record.payload.length
      })
    })

    it.each(EXPECTED)('re-encodes segment $base to identical bytes', ({ base, records }) => {
      const storeFile = fixtureFile(segmentFileName(base, '.log'))
      const createdMs = decodeFileHeader(storeFile, 0, STORE_MAGIC, 'store').createdMs
      const store = Buffer.alloc(storeFile.length)
      const index = Buffer.alloc(FILE_HEADER_BYTES + records.length * INDEX_ENTRY_BYTES)
      encodeFileHeader(store, 0, { magic: STORE_MAGIC, baseOffset: base, createdMs })
      encodeFileHeader(index, 0, { magic: INDEX_MAGIC, baseOffset: base, createdMs })
      let position = FILE_HEADER_BYTES
      let timestampMax = 0
      records.forEach((record, relativeOffset) => {
        encodeFrame(store, position, relativeOffset, record.flags, record.timestampMs, record.payload)
        timestampMax = Math.max(timestampMax, record.timestampMs)
        encodeIndexEntry(index, FILE_HEADER_BYTES + relativeOffset * INDEX_ENTRY_BYTES, { position, payloadBytes: record.payload.length, timestampMs: timestampMax })
        position += FRAME_HEADER_BYTES + record.payload.length
      })
      expect(store.equals(storeFile)).toBe(true)
      expect(index.equals(fixtureFile(segmentFileName(base, '.index')))).toBe(true)
    })

    it('stores the start offset in a checksummed checkpoint', () => {
      const checkpoint = fixtureFile('log-start-offset.checkpoint')
      expect(checkpoint.length).toBe(CHECKPOINT_BYTES)
      expect(checkpoint.subarray(0, 4).toString('latin1')).toBe('SGLC')
      expect(decodeCheckpoint(checkpoint, 'checkpoint')).toBe(1)
      expect(encodeCheckpoint(1).equals(checkpoint)).toBe(true)
    })

    it('opens as a log with the fixture records, timestamps and start offset', async () => {
      const dir = tempDir('fixture')
      fs.cpSync(FIXTURE, dir, { recursive: true })
      const log = await SegmentedLog.open(dir)
      expect(log.recovery.scanned).toBe(false)
      expect([log.startOffset, log.endOffset]).toEqual([1, 6])
      const all = EXPECTED.flatMap((segment) => segment.records)
      for (let offset = 1; offset < 6; offset++) {
        const record = log.readRecord(offset)
        expect(new Uint8Array(record.value)).toEqual(all[offset]!.payload)
        expect(record.timestampMs).toBe(all[offset]!.timestampMs)
      }
      expect(log.offsetForTimestamp(T0 + 3)).toBe(3)
      await log.close()
    })
  })

  describe('headers', () => {
    type Damage = (header: Buffer) => Buffer
    const flip = (at: number): Damage => (header) => {
      header[at] = header[at]! ^ 0x01
      return header
    }
    const cases: [string, Damage, string][] = [
      ['a flipped magic byte', flip(0), 'CORRUPT_FILE'],
      ['a flipped base offset byte', flip(8), 'CORRUPT_FILE'],
      ['a flipped checksum byte', flip(29), 'CORRUPT_FILE'],
      ['a truncated header', (header) => header.subarray(0, 20), 'CORRUPT_FILE'],
    ]
    it.each(cases)('refuses %s with %s', (_label, damage, code) => {
      const header = Buffer.alloc(FILE_HEADER_BYTES)
      encodeFileHeader(header, 0, { magic: STORE_MAGIC, baseOffset: 7, createdMs: T0 })
      const damaged = damage(header)
      expect(() => decodeFileHeader(damaged, 0, STORE_MAGIC, 'x')).toThrowError(expect.objectContaining({ code }))
    })

    it('refuses an unknown format version with UNSUPPORTED_VERSION', () => {
      const header = Buffer.alloc(FILE_HEADER_BYTES)
      encodeFileHeader(header, 0, { magic: STORE_MAGIC, baseOffset: 7, createdMs: T0 })
      header.writeUInt16LE(2, 4)
      header.writeUInt32LE(CRC32C.buf(header.subarray(0, 28)) >>> 0, 28)
      const error = (() => {
        try {
          decodeFileHeader(header, 0, STORE_MAGIC, 'x')
        } catch (caught) {
          return caught
        }
      })()
      expect(error).toBeInstanceOf(LogError)
      expect((error as LogError).code).toBe('UNSUPPORTED_VERSION')
    })
  })

  describe('record envelope', () => {
    type Field = Uint8Array | string
    type Record = { key?: Field; headers?: { [name: string]: Field }; value: Field }
    const bytesOf = (field: Field): Buffer => (typeof field === 'string' ? Buffer.from(field, 'utf8') : Buffer.from(field))

    /** The layout of docs/format.md, spelled out with Buffer methods. */
    function reference({ key, headers = {}, value }: Record): Buffer {
      const parts: Buffer[] = []
      const fixed = Buffer.alloc(8)
      fixed[0] = 1
      fixed[1] = key === undefined ? 0 : 1
      fixed.writeUInt16LE(Object.keys(headers).length, 2)
      fixed.writeUInt32LE(key === undefined ? 0 : bytesOf(key).length, 4)
      parts.push(fixed)
      if (key !== undefined) parts.push(bytesOf(key))
      for (const [name, field] of Object.entries(headers)) {
        const nameBytes = bytesOf(name)
        const valueBytes = bytesOf(field)
        const lengths = Buffer.alloc(6)
        lengths.writeUInt16LE(nameBytes.length, 0)
        parts.push(lengths.subarray(0, 2), nameBytes)
        lengths.writeUInt32LE(valueBytes.length, 2)
        parts.push(lengths.subarray(2, 6), valueBytes)
      }
      parts.push(bytesOf(value))
      return Buffer.concat(parts)
    }

    // Headers that repeat (copied from the previous envelope's entry), change value or kind, move,
    // grow past the 64-char short-string path, and more places than the writer remembers.
    const RECORDS: Record[] = [
      { key: 'key-0', headers: { 'content-type': 'text/plain', 'trace-id': '01' }, value: 'a' },
      { key: 'key-1', headers: { 'content-type': 'text/plain', 'trace-id': '02' }, value: Uint8Array.of(1, 2, 3) },
      { headers: { 'content-type': 'text/plain', 'trace-id': Uint8Array.of(7) }, value: '' },
      { key: '', headers: { 'content-type': Uint8Array.of(7), 'trace-id': Uint8Array.of(7) }, value: 'b' },
      { key: 'ключ', headers: { 'trace-id': '02', 'content-type': 'text/plain' }, value: 'é' },
      { key: '🔑', headers: { 'trace-id': 'ü'.repeat(40), 'content-type': 'x'.repeat(300) }, value: 'c' },
      { key: '🔑', headers: { 'trace-id': 'ü'.repeat(40), 'content-type': 'x'.repeat(300) }, value: 'c' },
      { value: 'no headers' },
      { headers: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}`, i % 2 ? 'same' : `v${i}`])), value: 'd' },
      { headers: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}`, i % 2 ? 'same' : `w${i}`])), value: 'e' },
      { headers: { naïve: 'a', '': '' }, value: 'f' },
      { headers: { naïve: 'a', '': '' }, value: 'f' },
    ]

    it.each([0, FRAME_HEADER_BYTES])('writes each envelope of a batch exactly as docs/format.md lays it out (gap of %i bytes before each)', (gapBytes) => {
      // A small first buffer, so the batch also grows it in the middle of envelopes.
      const writer = new EnvelopeWriter(16)
      writer.reset(1 << 20, gapBytes)
      const ends = RECORDS.map(({ key, headers, value }) => writer.envelope(key, headers, value))
      let start = 0
      for (const [i, end] of ends.entries()) {
        expect({ i, bytes: writer.bytes.subarray(start + gapBytes, end).toString('hex') }).toEqual({ i, bytes: reference(RECORDS[i]!).toString('hex') })
        start = end
      }
      expect(writer.position).toBe(start)
    })

    // Header names that are special to objects, numeric, or repeated, and envelopes with more headers
    // than the decoder builds in one literal (4), with '__proto__' inside and past those.
    const DECODED: Record[] = [
      ...RECORDS,
      { headers: JSON.parse('{"__proto__":"p","constructor":"c"}') as Record['headers'], value: 'g' },
      { headers: JSON.parse('{"a":"1","b":"2","c":"3","d":"4","__proto__":"5","e":"6"}') as Record['headers'], value: 'h' },
      { headers: JSON.parse('{"__proto__":"0","b":"2","c":"3","d":"4","e":"5"}') as Record['headers'], value: 'i' },
      { headers: { '7': 'seven', x: 'x', '0': 'zero' }, value: 'j' },
      { key: Uint8Array.of(0, 255), headers: { x: 'other value', '7': Uint8Array.of(9) }, value: Uint8Array.of() },
    ]

    it('decodes each envelope into its key, own headers (in object order) and value, as Buffer views of the payload', () => {
      for (const [i, record] of DECODED.entries()) {
        const bytes = reference(record)
        // A plain Uint8Array at an odd place of a larger buffer, so no view can assume offset 0.
        const holder = new Uint8Array(bytes.length + 3)
        holder.set(bytes, 3)
        const payload = new Uint8Array(holder.buffer, 3, bytes.length)
        const decoded = decodeEnvelopeRecord('t', 2, 40 + i, 1234, payload)
        expect(decoded).toMatchObject({ topic: 't', partition: 2, offset: 40 + i, timestamp: 1234 })
        expect(decoded.key === null ? null : Buffer.from(decoded.key).toString('hex')).toBe(record.key === undefined ? null : bytesOf(record.key).toString('hex'))
        expect(Buffer.from(decoded.value).toString('hex')).toBe(bytesOf(record.value).toString('hex'))
        const headers = record.headers ?? {}
        const assigned: { [name: string]: string } = {}
        for (const name of Object.keys(headers)) Object.defineProperty(assigned, name, { value: bytesOf(headers[name]!).toString('hex'), enumerable: true, writable: true, configurable: true })
        expect(Object.getPrototypeOf(decoded.headers)).toBe(Object.prototype)
        expect(Object.keys(decoded.headers)).toEqual(Object.keys(assigned))
        for (const name of Object.keys(assigned)) expect({ i, name, hex: Buffer.from(decoded.headers[name]!).toString('hex') }).toEqual({ i, name, hex: assigned[name] })
        for (const view of [decoded.value, ...Object.values(decoded.headers), ...(decoded.key ? [decoded.key] : [])]) {
          expect(Buffer.isBuffer(view)).toBe(true)
          expect(view.buffer).toBe(holder.buffer) // a view, not a copy
        }
        expect(decoded.value).toEqual(Buffer.from(bytesOf(record.value)))
        expect((decoded.value as Buffer).toString('hex')).toBe(bytesOf(record.value).toString('hex'))
      }
    })

    it.each([
      ['shorter than the fixed part', (bytes: Buffer) => bytes.subarray(0, 7)],
      ['an unknown version', (bytes: Buffer) => Buffer.concat([Buffer.of(2), bytes.subarray(1)])],
      ['a key past the end', (bytes: Buffer) => bytes.subarray(0, 10)],
      ['a header past the end', (bytes: Buffer) => bytes.subarray(0, 12)],
    ])('refuses an envelope %s with CORRUPT_RECORD', (_label, damage) => {
      const bytes = damage(reference({ key: 'key', headers: { name: 'value', other: 'x' }, value: 'v' }))
      expect(() => decodeEnvelopeRecord('t', 0, 5, 0, bytes)).toThrowError(expect.objectContaining({ code: 'CORRUPT_RECORD', offset: 5 }))
    })

    it('forgets the headers of the previous batch on reset (a repeat after reset is encoded afresh)', () => {
      const writer = new EnvelopeWriter(1024)
      writer.reset(1024)
      writer.envelope('k', { h: 'value one' }, 'v')
      writer.reset(1024)
      writer.bytes.fill(0xee)
      const end = writer.envelope('k', { h: 'value one' }, 'v')
      expect(writer.bytes.subarray(0, end).toString('hex')).toBe(reference({ key: 'k', headers: { h: 'value one' }, value: 'v' }).toString('hex'))
    })
  })
})
