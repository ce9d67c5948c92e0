/**
 * Bad input never changes a log: every invalid call below fails with its LogError code, and
 * afterwards the log still ends at the same offset and reads back the same bytes.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LogError, type LogErrorCode, SegmentedLog, type SegmentedLogOptions } from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

/** Small limits, so that the limit rows stay cheap. Five records make two segments: [0,3) and [3,5). */
const OPTIONS: SegmentedLogOptions = {
  segmentRecordsMax: 3,
  segmentBytesMax: 4096,
  recordBytesMax: 64,
  batchRecordsMax: 4,
  batchBytesMax: 100,
}
const RECORD_BYTES_LIMIT = 64

const RECORDS: readonly Uint8Array[] = [
  Buffer.from('zero'),
  new Uint8Array(0),
  Uint8Array.from([0, 255, 1, 254, 0]),
  Buffer.from('three'),
  new Uint8Array(RECORD_BYTES_LIMIT).fill(0xab),
]

const ok = (length = 1): Uint8Array => new Uint8Array(length).fill(1)
const records = (count: number, length = 1): Uint8Array[] => Array.from({ length: count }, () => ok(length))

/** Which handle a row calls: the writer, the writer after close(), or a readOnly handle on the directory. */
type Given = 'writer' | 'closed writer' | 'reader'

interface BadCall {
  name: string
  given: Given
  code: LogErrorCode
  /** 'throws': a synchronous throw; 'rejects': a returned promise that rejects (and no synchronous throw). */
  fails: 'throws' | 'rejects'
  call: (log: SegmentedLog, dir: string) => unknown
}

function row(name: string, code: LogErrorCode, fails: BadCall['fails'], call: BadCall['call'], given: Given = 'writer'): BadCall {
  return { name, given, code, fails, call }
}

/** Anything, typed as whatever the parameter wants: the point of these calls is the wrong type. */
function bad<T>(value: unknown): T {
  return value as T
}

const BAD_CALLS: BadCall[] = [
  // append
  row('append(string)', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(bad('text'))),
  row('append(number)', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(bad(42))),
  row('append(null)', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(bad(null))),
  row('append(undefined)', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(bad(undefined))),
  row('append(ArrayBuffer)', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(bad(new ArrayBuffer(4)))),
  row('append(number[])', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(bad([1, 2, 3]))),
  row('append(DataView)', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(bad(new DataView(new ArrayBuffer(4))))),
  row('append(recordBytesMax + 1 bytes)', 'RECORD_TOO_LARGE', 'rejects', (log) => log.append(ok(RECORD_BYTES_LIMIT + 1))),
  row('append(1 MiB) under recordBytesMax 64', 'RECORD_TOO_LARGE', 'rejects', (log) => log.append(ok(1024 * 1024))),
  row('append with timestampMs -1', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(ok(), { timestampMs: -1 })),
  row('append with timestampMs NaN', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(ok(), { timestampMs: NaN })),
  row('append with timestampMs 1.5', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(ok(), { timestampMs: 1.5 })),
  row('append with timestampMs Infinity', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(ok(), { timestampMs: Infinity })),
  row('append with timestampMs 2^53', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(ok(), { timestampMs: 2 ** 53 })),
  row('append with timestampMs as a string', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(ok(), { timestampMs: bad('1000') })),
  row('append with a timestampMs array', 'INVALID_ARGUMENT', 'rejects', (log) => log.append(ok(), { timestampMs: [1000] })),
  // appendBatch
  row('appendBatch([])', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch([])),
  row('appendBatch(string)', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(bad('abc'))),
  row('appendBatch(Uint8Array) instead of an array', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(bad(ok(3)))),
  row('appendBatch(undefined)', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(bad(undefined))),
  row('appendBatch with a string element last', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch([ok(), ok(), bad('x')])),
  row('appendBatch with a null element', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch([ok(), bad(null)])),
  row('appendBatch with a hole', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(bad([ok(), , ok()]))),
  row('appendBatch with an oversized last record', 'RECORD_TOO_LARGE', 'rejects', (log) =>
    log.appendBatch([ok(), ok(), ok(RECORD_BYTES_LIMIT + 1)]),
  ),
  row('appendBatch of batchRecordsMax + 1 records', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(records(5))),
  row('appendBatch over batchBytesMax', 'RECORD_TOO_LARGE', 'rejects', (log) => log.appendBatch(records(2, 60))),
  row('appendBatch with too few timestamps', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(records(3), { timestampMs: [1, 2] })),
  row('appendBatch with too many timestamps', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(records(2), { timestampMs: [1, 2, 3] })),
  row('appendBatch with an empty timestamp array', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(records(1), { timestampMs: [] })),
  row('appendBatch with a negative timestamp in the array', 'INVALID_ARGUMENT', 'rejects', (log) =>
    log.appendBatch(records(2), { timestampMs: [1, -1] }),
  ),
  row('appendBatch with a fractional timestamp', 'INVALID_ARGUMENT', 'rejects', (log) => log.appendBatch(records(2), { timestampMs: 0.5 })),
  // read, readRecord
  row('read(1.5)', 'INVALID_ARGUMENT', 'throws', (log) => log.read(1.5)),
  row('read(NaN)', 'INVALID_ARGUMENT', 'throws', (log) => log.read(NaN)),
  row('read(Infinity)', 'INVALID_ARGUMENT', 'throws', (log) => log.read(Infinity)),
  row('read(2^53)', 'INVALID_ARGUMENT', 'throws', (log) => log.read(2 ** 53)),
  row("read('1')", 'INVALID_ARGUMENT', 'throws', (log) => log.read(bad('1'))),
  row('read(undefined)', 'INVALID_ARGUMENT', 'throws', (log) => log.read(bad(undefined))),
  row('read(-1)', 'OFFSET_OUT_OF_RANGE', 'throws', (log) => log.read(-1)),
  row('read(endOffset)', 'OFFSET_OUT_OF_RANGE', 'throws', (log) => log.read(log.endOffset)),
  row('read(10^12)', 'OFFSET_OUT_OF_RANGE', 'throws', (log) => log.read(1e12)),
  row('readRecord(2.5)', 'INVALID_ARGUMENT', 'throws', (log) => log.readRecord(2.5)),
  row('readRecord(endOffset)', 'OFFSET_OUT_OF_RANGE', 'throws', (log) => log.readRecord(log.endOffset)),
  // records
  row('records({ from: -1 })', 'INVALID_ARGUMENT', 'rejects', (log) => log.records({ from: -1 }).next()),
  row('records({ from: 0.5 })', 'INVALID_ARGUMENT', 'rejects', (log) => log.records({ from: 0.5 }).next()),
  row('records({ to: NaN })', 'INVALID_ARGUMENT', 'rejects', (log) => log.records({ to: NaN }).next()),
  row("records({ from: '1' })", 'INVALID_ARGUMENT', 'rejects', (log) => log.records({ from: bad('1') }).next()),
  // offsetForTimestamp
  row('offsetForTimestamp(NaN)', 'INVALID_ARGUMENT', 'throws', (log) => log.offsetForTimestamp(NaN)),
  row("offsetForTimestamp('0')", 'INVALID_ARGUMENT', 'throws', (log) => log.offsetForTimestamp(bad('0'))),
  // truncate
  row('truncate(-1)', 'INVALID_ARGUMENT', 'rejects', (log) => log.truncate(-1)),
  row('truncate(1.5)', 'INVALID_ARGUMENT', 'rejects', (log) => log.truncate(1.5)),
  row('truncate(NaN)', 'INVALID_ARGUMENT', 'rejects', (log) => log.truncate(NaN)),
  row("truncate('1')", 'INVALID_ARGUMENT', 'rejects', (log) => log.truncate(bad('1'))),
  row('truncate(endOffset + 1)', 'OFFSET_OUT_OF_RANGE', 'rejects', (log) => log.truncate(log.endOffset + 1)),
  row('truncate(2^53 - 1)', 'OFFSET_OUT_OF_RANGE', 'rejects', (log) => log.truncate(Number.MAX_SAFE_INTEGER)),
  // deleteBefore
  row('deleteBefore(-1)', 'INVALID_ARGUMENT', 'rejects', (log) => log.deleteBefore(-1)),
  row('deleteBefore(2.5)', 'INVALID_ARGUMENT', 'rejects', (log) => log.deleteBefore(2.5)),
  row('deleteBefore(Infinity)', 'INVALID_ARGUMENT', 'rejects', (log) => log.deleteBefore(Infinity)),
  row('deleteBefore(null)', 'INVALID_ARGUMENT', 'rejects', (log) => log.deleteBefore(bad(null))),
  row('deleteBefore(endOffset + 1)', 'OFFSET_OUT_OF_RANGE', 'rejects', (log) => log.deleteBefore(log.endOffset + 1)),
  // open (on the directory the writer holds: options are checked before the lock)
  row('open with an unknown option', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, bad({ segmentBytes: 4096 }))),
  row('open with a misspelt option', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, bad({ retentionMS: 1000 }))),
  row('open with segmentBytesMax 56', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentBytesMax: 56 })),
  row('open with segmentBytesMax 2 GiB', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentBytesMax: 2 ** 31 })),
  row('open with segmentBytesMax Infinity', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentBytesMax: Infinity })),
  row('open with segmentRecordsMax 0', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentRecordsMax: 0 })),
  row('open with segmentRecordsMax 1.5', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentRecordsMax: 1.5 })),
  row('open with segmentRecordsMax NaN', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentRecordsMax: NaN })),
  row("open with segmentRecordsMax '10'", 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentRecordsMax: bad('10') })),
  row('open with segmentAgeMsMax 0', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { segmentAgeMsMax: 0 })),
  row('open with recordBytesMax -1', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { recordBytesMax: -1 })),
  row('open with recordBytesMax 1 GiB', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { recordBytesMax: 2 ** 30 })),
  row('open with retentionMs -1', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { retentionMs: -1 })),
  row('open with retentionBytesMax -Infinity', 'INVALID_ARGUMENT', 'rejects', (_log, dir) =>
    SegmentedLog.open(dir, { retentionBytesMax: -Infinity }),
  ),
  row('open with syncIntervalMs 0', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { syncIntervalMs: 0 })),
  row('open with writeBufferBytes 1', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { writeBufferBytes: 1 })),
  row('open with openSegmentsMax 0', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { openSegmentsMax: 0 })),
  row("open with sync 'sometimes'", 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { sync: bad('sometimes') })),
  row('open with mmap true', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { mmap: bad(true) })),
  row("open with readOnly 'yes'", 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { readOnly: bad('yes') })),
  row('open with verifyChecksums 1', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, { verifyChecksums: bad(1) })),
  row('open with options that are a string', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, bad('fast'))),
  row('open with options that are null', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, bad(null))),
  row('open with options that are an array', 'INVALID_ARGUMENT', 'rejects', (_log, dir) => SegmentedLog.open(dir, bad([]))),
  row("open('')", 'INVALID_ARGUMENT', 'rejects', () => SegmentedLog.open('')),
  row('open(42)', 'INVALID_ARGUMENT', 'rejects', () => SegmentedLog.open(bad(42))),
  row('open readOnly of a missing directory', 'INVALID_ARGUMENT', 'rejects', (_log, dir) =>
    SegmentedLog.open(path.join(dir, 'missing'), { readOnly: true }),
  ),
  row('open of the held directory by a second writer', 'LOCKED', 'rejects', (_log, dir) => SegmentedLog.open(dir, OPTIONS)),
  // a closed handle
  row('append after close', 'LOG_CLOSED', 'rejects', (log) => log.append(ok()), 'closed writer'),
  row('appendBatch after close', 'LOG_CLOSED', 'rejects', (log) => log.appendBatch([ok()]), 'closed writer'),
  row('read after close', 'LOG_CLOSED', 'throws', (log) => log.read(0), 'closed writer'),
  row('readRecord after close', 'LOG_CLOSED', 'throws', (log) => log.readRecord(0), 'closed writer'),
  row('offsetForTimestamp after close', 'LOG_CLOSED', 'throws', (log) => log.offsetForTimestamp(0), 'closed writer'),
  row('truncate after close', 'LOG_CLOSED', 'rejects', (log) => log.truncate(1), 'closed writer'),
  row('deleteBefore after close', 'LOG_CLOSED', 'rejects', (log) => log.deleteBefore(1), 'closed writer'),
  row('sync after close', 'LOG_CLOSED', 'rejects', (log) => log.sync(), 'closed writer'),
  row('records() after close', 'LOG_CLOSED', 'rejects', (log) => log.records().next(), 'closed writer'),
  row('a bad append after close', 'LOG_CLOSED', 'rejects', (log) => log.append(bad('text')), 'closed writer'),
  // a readOnly handle
  row('append on a readOnly handle', 'READ_ONLY', 'rejects', (log) => log.append(ok()), 'reader'),
  row('appendBatch on a readOnly handle', 'READ_ONLY', 'rejects', (log) => log.appendBatch([ok(), ok()]), 'reader'),
  row('truncate on a readOnly handle', 'READ_ONLY', 'rejects', (log) => log.truncate(1), 'reader'),
  row('deleteBefore on a readOnly handle', 'READ_ONLY', 'rejects', (log) => log.deleteBefore(1), 'reader'),
  row('sync on a readOnly handle', 'READ_ONLY', 'rejects', (log) => log.sync(), 'reader'),
  row('read(endOffset) on a readOnly handle', 'OFFSET_OUT_OF_RANGE', 'throws', (log) => log.read(log.endOffset), 'reader'),
]

/** Calls `call` and reports how it failed: synchronously, by a rejected promise, or not at all. */
async function outcome(call: () => unknown): Promise<{ how: 'throws' | 'rejects' | 'succeeds'; error: unknown }> {
  let result: unknown
  try {
    result = call()
  } catch (error) {
    return { how: 'throws', error }
  }
  try {
    await result
  } catch (error) {
    return { how: 'rejects', error }
  }
  if (result instanceof SegmentedLog) await result.close()
  return { how: 'succeeds', error: undefined }
}

function expectContents(log: SegmentedLog): void {
  expect(log.startOffset).toBe(0)
  expect(log.endOffset).toBe(RECORDS.length)
  expect(log.segments.map((segment) => [segment.baseOffset, segment.count])).toEqual([
    [0, 3],
    [3, 2],
  ])
  RECORDS.forEach((value, offset) => {
    expect(Buffer.from(log.read(offset)).equals(Buffer.from(value))).toBe(true)
    expect(log.readRecord(offset).timestampMs).toBe(1000 + offset)
  })
}

describe('SegmentedLog', () => {
  describe('bad input', () => {
    const opened: SegmentedLog[] = []
    afterEach(async () => {
      for (const log of opened.splice(0)) await log.close()
    })

    it('has a table of at least 30 invalid calls', () => {
      expect(BAD_CALLS.length).toBeGreaterThanOrEqual(30)
      expect(new Set(BAD_CALLS.map((entry) => entry.name)).size).toBe(BAD_CALLS.length)
    })

    it.each(BAD_CALLS.map((entry) => [entry.name, entry.code, entry] as const))('%s fails with %s and changes nothing', async (_name, _code, entry) => {
      const dir = tempDir('bad-input')
      const writer = await SegmentedLog.open(dir, OPTIONS)
      opened.push(writer)
      await writer.appendBatch(RECORDS.slice(0, 3), { timestampMs: [1000, 1001, 1002] })
      await writer.appendBatch(RECORDS.slice(3), { timestampMs: [1003, 1004] })
      expectContents(writer)
      const filesBefore = fs.readdirSync(dir).sort()

      let target = writer
      if (entry.given === 'closed writer') await writer.close()
      if (entry.given === 'reader') {
        await writer.close() // the reader alone: what a reader sees of a live writer is the contract suite's job
        target = await SegmentedLog.open(dir, { readOnly: true })
        opened.push(target)
        expectContents(target)
      }

      const { how, error } = await outcome(() => entry.call(target, dir))
      expect(how).toBe(entry.fails)
      expect(error).toBeInstanceOf(LogError)
      expect((error as LogError).code).toBe(entry.code)

      // nothing changed, for this handle and on disk
      await new Promise((resolve) => setTimeout(resolve, 5)) // let anything the call scheduled run
      if (!writer.isClosed) {
        expectContents(writer)
        expect(writer.isReadOnly).toBe(false)
        expect(await writer.append(Buffer.from('next'))).toBe(RECORDS.length)
        await writer.close()
      }
      if (entry.given === 'reader') expectContents(target)
      const reopened = await SegmentedLog.open(dir, OPTIONS)
      opened.push(reopened)
      expect(reopened.recovery.uncleanShutdown).toBe(false)
      const appendedAfter = reopened.endOffset - RECORDS.length
      expect(appendedAfter).toBe(entry.given === 'writer' ? 1 : 0)
      RECORDS.forEach((value, offset) => expect(Buffer.from(reopened.read(offset)).equals(Buffer.from(value))).toBe(true))
      expect(fs.readdirSync(dir).filter((name) => !filesBefore.includes(name) && name !== 'clean-shutdown' && name !== 'LOCK')).toEqual([])
    })

    it('leaves no segment files behind when open refuses its options', async () => {
      const dir = path.join(tempDir('bad-open'), 'log')
      await expect(SegmentedLog.open(dir, { segmentRecordsMax: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
      const left = fs.existsSync(dir) ? fs.readdirSync(dir) : []
      expect(left).toEqual([])
      const log = await SegmentedLog.open(dir, OPTIONS)
      opened.push(log)
      expect([log.startOffset, log.endOffset]).toEqual([0, 0])
    })

    it('a refused batch leaves no partial records, also inside the batch', async () => {
      const dir = tempDir('bad-batch')
      const log = await SegmentedLog.open(dir, OPTIONS)
      opened.push(log)
      await log.append(Buffer.from('a'))
      const results = await Promise.allSettled([
        log.append(Buffer.from('b')),
        log.appendBatch([Buffer.from('c'), Buffer.from('d'), ok(RECORD_BYTES_LIMIT + 1)]),
        log.append(Buffer.from('e')),
      ])
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
      expect(results.map((result) => (result.status === 'fulfilled' ? result.value : (result.reason as LogError).code))).toEqual([
        1,
        'RECORD_TOO_LARGE',
        2,
      ])
      expect([0, 1, 2].map((offset) => Buffer.from(log.read(offset)).toString())).toEqual(['a', 'b', 'e'])
      expect(log.endOffset).toBe(3)
    })
  })
})
