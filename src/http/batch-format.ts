/**
 * The binary produce body, `Content-Type: application/vnd.seglog.batch` (docs/http.md): a batch of
 * length-prefixed records, little-endian. This module owns every byte of it (src/format.ts owns the
 * on-disk bytes, which this layout does not share).
 *
 *   batch   = magic u32 'SLB1' | recordCount u32 | record * recordCount      (nothing after)
 *   record  = flags u8 | partition u32 | timestampMs f64 | headerCount u16
 *             | keyBytes u32 | valueBytes u32 | key | value | header * headerCount
 *   header  = nameBytes u16 | name (UTF-8) | valueBytes u32 | value
 *
 * `flags`: bit 0 the record has a key (else `keyBytes` must be 0), bit 1 `partition` is given,
 * bit 2 `timestampMs` is given; the other bits are 0. Fields not given are written as 0.
 *
 * Decoding checks every length against the bytes left before it reads, and hands out views
 * (`subarray`) of the body, no copies: the topic copies them into its envelopes during sendBatch.
 * A malformed body is INVALID_ARGUMENT naming the record and the byte position; nothing is
 * appended, because the topic gets the records only once the whole body decoded.
 */
import { assert } from '../assert.js'
import { LogError } from '../errors.js'
import type { ProducerRecord } from '../producer-record.js'
import { HttpError } from './errors.js'

export const BATCH_CONTENT_TYPE = 'application/vnd.seglog.batch'
/** 'SLB1' read as a little-endian u32: the layout's name and version. */
export const BATCH_MAGIC = 0x31424c53
export const BATCH_HEADER_BYTES = 8
export const RECORD_FIXED_BYTES = 1 + 4 + 8 + 2 + 4 + 4
export const HEADER_FIXED_BYTES = 2 + 4
export const FLAG_KEY = 1
export const FLAG_PARTITION = 2
export const FLAG_TIMESTAMP = 4
const FLAGS_KNOWN = FLAG_KEY | FLAG_PARTITION | FLAG_TIMESTAMP
const U16_MAX = 0xffff
const U32_MAX = 0xffffffff

assert(RECORD_FIXED_BYTES === 23, 'record header layout')
assert(HEADER_FIXED_BYTES === 6, 'header layout')

type Bytes = Uint8Array | string

function byteLength(bytes: Bytes): number {
  return typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength
}

function checkWidth(value: number, max: number, what: string): void {
  if (value > max) throw new LogError('INVALID_ARGUMENT', `${what} is ${value}, more than the batch format holds (${max})`)
}

/** Bytes of `records` in the batch layout. */
function encodedBytes(records: readonly ProducerRecord[]): number {
  let bytes = BATCH_HEADER_BYTES
  for (const record of records) {
    bytes += RECORD_FIXED_BYTES + byteLength(record.value) + (record.key == null ? 0 : byteLength(record.key))
    for (const name in record.headers) bytes += HEADER_FIXED_BYTES + Buffer.byteLength(name) + byteLength(record.headers[name]!)
  }
  return bytes
}

function writeBytes(buf: Buffer, at: number, bytes: Bytes): number {
  if (typeof bytes === 'string') return at + buf.write(bytes, at, 'utf8')
  buf.set(bytes, at)
  return at + bytes.byteLength
}

function encodeRecord(buf: Buffer, at: number, record: ProducerRecord): number {
  const names = record.headers ? Object.keys(record.headers) : []
  checkWidth(names.length, U16_MAX, 'headerCount')
  const keyBytes = record.key == null ? 0 : byteLength(record.key)
  const valueBytes = byteLength(record.value)
  checkWidth(keyBytes, U32_MAX, 'keyBytes')
  checkWidth(valueBytes, U32_MAX, 'valueBytes')
  const flags = (record.key == null ? 0 : FLAG_KEY) | (record.partition === undefined ? 0 : FLAG_PARTITION) | (record.timestamp === undefined ? 0 : FLAG_TIMESTAMP)
  buf.writeUInt8(flags, at)
  buf.writeUInt32LE(record.partition ?? 0, at + 1)
  buf.writeDoubleLE(record.timestamp ?? 0, at + 5)
  buf.writeUInt16LE(names.length, at + 13)
  buf.writeUInt32LE(keyBytes, at + 15)
  buf.writeUInt32LE(valueBytes, at + 19)
  at += RECORD_FIXED_BYTES
  if (record.key != null) at = writeBytes(buf, at, record.key)
  at = writeBytes(buf, at, record.value)
  for (const name of names) {
    const nameBytes = Buffer.byteLength(name)
    const value = record.headers![name]!
    checkWidth(nameBytes, U16_MAX, 'a header name')
    buf.writeUInt16LE(nameBytes, at)
    at = buf.write(name, at + 2, 'utf8') + at + 2
    buf.writeUInt32LE(byteLength(value), at)
    at = writeBytes(buf, at + 4, value)
  }
  return at
}

/**
 * `records` as a `application/vnd.seglog.batch` body (one allocation). Keys, values and header
 * values are bytes or strings (UTF-8); `partition` must fit a u32.
 */
export function encodeBatch(records: readonly ProducerRecord[]): Buffer {
  checkWidth(records.length, U32_MAX, 'the record count')
  const buf = Buffer.allocUnsafe(encodedBytes(records))
  buf.writeUInt32LE(BATCH_MAGIC, 0)
  buf.writeUInt32LE(records.length, 4)
  let at = BATCH_HEADER_BYTES
  for (const record of records) at = encodeRecord(buf, at, record)
  assert(at === buf.length, 'encodeBatch wrote the bytes it counted')
  return buf
}

/** Reads a batch body; `at` moves past each field once its length was checked. */
class BatchReader {
  at = BATCH_HEADER_BYTES
  constructor(private readonly body: Buffer) {}

  need(bytes: number, what: string, index: number): void {
    if (bytes > this.body.length - this.at) {
      throw new LogError('INVALID_ARGUMENT', `record ${index}: ${what} (${bytes} bytes at byte ${this.at}) runs past the end of the body (${this.body.length} bytes)`)
    }
  }

  /** A u16 or u32 length prefix (`width` bytes), checked to be there. */
  length(width: 2 | 4, what: string, index: number): number {
    this.need(width, what, index)
    const length = width === 2 ? this.body.readUInt16LE(this.at) : this.body.readUInt32LE(this.at)
    this.at += width
    return length
  }

  view(bytes: number, what: string, index: number): Buffer {
    this.need(bytes, what, index)
    const view = this.body.subarray(this.at, this.at + bytes)
    this.at += bytes
    return view
  }

  record(index: number): ProducerRecord {
    const body = this.body
    this.need(RECORD_FIXED_BYTES, 'the record header', index)
    const at = this.at
    const flags = body[at]!
    if ((flags & ~FLAGS_KNOWN) !== 0) throw new LogError('INVALID_ARGUMENT', `record ${index}: unknown flags 0x${flags.toString(16)} at byte ${at}`)
    const headerCount = body.readUInt16LE(at + 13)
    const keyBytes = body.readUInt32LE(at + 15)
    const valueBytes = body.readUInt32LE(at + 19)
    if ((flags & FLAG_KEY) === 0 && keyBytes !== 0) throw new LogError('INVALID_ARGUMENT', `record ${index}: keyBytes is ${keyBytes} but the key flag is not set`)
    this.at += RECORD_FIXED_BYTES
    const key = this.view(keyBytes, 'the key', index)
    const record: ProducerRecord = { value: this.view(valueBytes, 'the value', index) }
    if ((flags & FLAG_KEY) !== 0) record.key = key
    if ((flags & FLAG_PARTITION) !== 0) record.partition = body.readUInt32LE(at + 1) // checked by the topic
    if ((flags & FLAG_TIMESTAMP) !== 0) record.timestamp = body.readDoubleLE(at + 5) // checked by the topic
    if (headerCount > 0) record.headers = this.headers(headerCount, index)
    return record
  }

  headers(count: number, index: number): Record<string, Uint8Array> {
    const headers: Record<string, Uint8Array> = {}
    for (let i = 0; i < count; i++) {
      const name = this.view(this.length(2, 'a header name length', index), 'a header name', index).toString('utf8')
      headers[name] = this.view(this.length(4, 'a header value length', index), 'a header value', index)
    }
    return headers
  }
}

/**
 * The records of a batch body, as views of `body`. INVALID_ARGUMENT for a body that is not the
 * layout (bad magic, truncated, lengths past the end, bytes after the last record);
 * TOO_MANY_RECORDS past `recordsMax`.
 */
export function decodeBatch(body: Buffer, recordsMax: number): ProducerRecord[] {
  if (body.length < BATCH_HEADER_BYTES) throw new LogError('INVALID_ARGUMENT', `a batch body is at least ${BATCH_HEADER_BYTES} bytes, got ${body.length}`)
  if (body.readUInt32LE(0) !== BATCH_MAGIC) throw new LogError('INVALID_ARGUMENT', `the body does not start with the batch magic 'SLB1' (${BATCH_CONTENT_TYPE})`)
  const count = body.readUInt32LE(4)
  if (count === 0) throw new LogError('INVALID_ARGUMENT', 'a batch holds at least one record')
  if (count > recordsMax) throw new HttpError('TOO_MANY_RECORDS', `${count} records in one request, more than recordsPerRequestMax (${recordsMax})`)
  const reader = new BatchReader(body)
  const records: ProducerRecord[] = new Array(count)
  for (let i = 0; i < count; i++) records[i] = reader.record(i)
  if (reader.at !== body.length) throw new LogError('INVALID_ARGUMENT', `${body.length - reader.at} bytes after the last of ${count} records`)
  return records
}
