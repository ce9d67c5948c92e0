/**
 * Records on the wire, both ways. JSON: `key`, `value` and header values are base64 (or UTF-8 text
 * with `encoding: 'utf8'`); raw: the body is the value, and key, partition, timestamp and headers
 * travel in `Seglog-*` HTTP headers, percent-encoded (bytes outside RFC 3986's unreserved set are
 * `%XX`), so any bytes fit in an HTTP header. Node lowercases HTTP header names, so headers sent raw
 * arrive with lowercase names.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ConsumedRecord } from '../partition.js'
import type { ProducerRecord } from '../producer-record.js'
import { LogError } from '../errors.js'
import { HttpError } from './errors.js'

export type Encoding = 'base64' | 'utf8'

export const RAW_KEY = 'seglog-key'
export const RAW_PARTITION = 'seglog-partition'
export const RAW_TIMESTAMP = 'seglog-timestamp'
export const RAW_OFFSET = 'seglog-offset'
export const RAW_HEADER_PREFIX = 'seglog-header-'

const RECORD_FIELDS = new Set(['key', 'value', 'headers', 'partition', 'timestamp'])

export function parseEncoding(value: unknown): Encoding {
  if (value === undefined || value === 'base64') return 'base64'
  if (value === 'utf8') return 'utf8'
  throw new LogError('INVALID_ARGUMENT', `encoding must be 'base64' or 'utf8', got ${JSON.stringify(value)}`)
}

function decodeBytes(value: unknown, what: string, encoding: Encoding): Uint8Array {
  if (typeof value !== 'string') throw new LogError('INVALID_ARGUMENT', `${what} must be a string (${encoding})`)
  if (encoding === 'utf8') return Buffer.from(value, 'utf8')
  // Node's decoder skips characters outside the alphabet, so damaged text decodes to fewer bytes
  // than its length promises: comparing the lengths is a strict check without a second pass.
  const bytes = Buffer.from(value, 'base64')
  if (value.length % 4 !== 0 || bytes.length !== (value.length / 4) * 3 - padding(value)) throw new LogError('INVALID_ARGUMENT', `${what} is not valid base64 (padded, standard or URL-safe alphabet)`)
  return bytes
}

function padding(text: string): number {
  if (text.endsWith('==')) return 2
  return text.endsWith('=') ? 1 : 0
}

function encodeBytes(bytes: Uint8Array, encoding: Encoding): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(encoding)
}

/** One JSON record of a produce body as a ProducerRecord (checked field by field). */
function parseJsonRecord(value: unknown, index: number, encoding: Encoding): ProducerRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new LogError('INVALID_ARGUMENT', `records[${index}] must be an object`)
  const fields = value as Record<string, unknown>
  for (const name in fields) if (!RECORD_FIELDS.has(name)) throw new LogError('INVALID_ARGUMENT', `records[${index}]: unknown field '${name}'`)
  const record: ProducerRecord = { value: decodeBytes(fields.value ?? '', `records[${index}].value`, encoding) }
  if (fields.key !== undefined && fields.key !== null) record.key = decodeBytes(fields.key, `records[${index}].key`, encoding)
  if (fields.partition !== undefined) record.partition = fields.partition as number // checked by the topic
  if (fields.timestamp !== undefined) record.timestamp = fields.timestamp as number
  if (fields.headers !== undefined) {
    const headers = fields.headers
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) throw new LogError('INVALID_ARGUMENT', `records[${index}].headers must be an object`)
    record.headers = Object.fromEntries(Object.entries(headers).map(([name, text]) => [name, decodeBytes(text, `records[${index}].headers.${name}`, encoding)]))
  }
  return record
}

/** A produce body: `{ records: [...], encoding? }` or one record `{ value, key?, ..., encoding? }`. */
export function parseProduceBody(body: Record<string, unknown>, recordsMax: number): ProducerRecord[] {
  const encoding = parseEncoding(body.encoding)
  if (body.records === undefined) {
    const { encoding: _encoding, ...single } = body
    return [parseJsonRecord(single, 0, encoding)]
  }
  for (const name of Object.keys(body)) if (name !== 'records' && name !== 'encoding') throw new LogError('INVALID_ARGUMENT', `unknown field '${name}' next to records`)
  if (!Array.isArray(body.records) || body.records.length === 0) throw new LogError('INVALID_ARGUMENT', 'records must be a non-empty list')
  if (body.records.length > recordsMax) throw new HttpError('TOO_MANY_RECORDS', `${body.records.length} records in one request, more than recordsPerRequestMax (${recordsMax})`)
  return body.records.map((record, i) => parseJsonRecord(record, i, encoding))
}

/** A raw produce request: the body is the value, the rest comes from `Seglog-*` headers. */
export function parseRawRecord(req: IncomingMessage, body: Buffer): ProducerRecord {
  const record: ProducerRecord = { value: body }
  const headers: Record<string, Uint8Array> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value !== 'string') continue
    if (name === RAW_KEY) record.key = percentDecode(value, name)
    else if (name === RAW_PARTITION) record.partition = headerInteger(value, name)
    else if (name === RAW_TIMESTAMP) record.timestamp = headerInteger(value, name)
    else if (name.startsWith(RAW_HEADER_PREFIX) && name.length > RAW_HEADER_PREFIX.length) headers[name.slice(RAW_HEADER_PREFIX.length)] = percentDecode(value, name)
  }
  if (Object.keys(headers).length > 0) record.headers = headers
  return record
}

function headerInteger(text: string, name: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(value)) throw new LogError('INVALID_ARGUMENT', `header ${name} must be a non-negative integer`)
  return value
}

/**
 * Where a produce request's records went, compactly: runs of consecutive records of the request
 * that landed on one partition at consecutive offsets, `{ partition, offset, count }` each (a batch
 * onto one partition is one run). Record i of the request is at `offset + (i − start of its run)`.
 */
export function offsetRuns(results: readonly { partition: number; offset: number }[]): { partition: number; offset: number; count: number }[] {
  const runs: { partition: number; offset: number; count: number }[] = []
  let last: { partition: number; offset: number; count: number } | undefined
  for (const { partition, offset } of results) {
    if (last && last.partition === partition && last.offset + last.count === offset) last.count++
    else runs.push((last = { partition, offset, count: 1 }))
  }
  return runs
}

/** A consumed record as JSON. */
export function recordToJson(record: ConsumedRecord & { deliveryCount?: number }, encoding: Encoding): Record<string, unknown> {
  const json: Record<string, unknown> = {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key === null ? null : encodeBytes(record.key, encoding),
    value: encodeBytes(record.value, encoding),
    headers: Object.fromEntries(Object.entries(record.headers).map(([name, value]) => [name, encodeBytes(value, encoding)])),
  }
  if (record.deliveryCount !== undefined) json.deliveryCount = record.deliveryCount
  return json
}

/** A consumed record as a raw response: the value as the body, the rest in `Seglog-*` headers. */
export function sendRawRecord(res: ServerResponse, record: ConsumedRecord, contentType = 'application/octet-stream'): void {
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'content-length': record.value.byteLength,
    [RAW_PARTITION]: record.partition,
    [RAW_OFFSET]: record.offset,
    [RAW_TIMESTAMP]: record.timestamp,
  }
  if (record.key !== null) headers[RAW_KEY] = percentEncode(record.key)
  for (const [name, value] of Object.entries(record.headers)) {
    if (/^[a-z0-9!#$%&'*+.^_`|~-]+$/i.test(name)) headers[RAW_HEADER_PREFIX + name.toLowerCase()] = percentEncode(value)
  }
  res.writeHead(200, headers).end(record.value)
}

const UNRESERVED = /[A-Za-z0-9\-._~]/

export function percentEncode(bytes: Uint8Array): string {
  let text = ''
  for (const byte of bytes) {
    const char = String.fromCharCode(byte)
    text += UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return text
}

export function percentDecode(text: string, what: string): Uint8Array {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0x25) {
      const hex = text.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new LogError('INVALID_ARGUMENT', `header ${what}: bad percent-encoding`)
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (code > 0xff) {
      throw new LogError('INVALID_ARGUMENT', `header ${what}: not a byte string`)
    } else bytes.push(code)
  }
  return Uint8Array.from(bytes)
}
