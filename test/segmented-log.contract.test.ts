/**
 * The SegmentedLog contract: the same scenarios run unchanged against every read mode (sealed
 * segments memory-mapped, and read with pread). Each scenario owns a fresh disk-backed directory.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LogError, type LogErrorCode, SegmentedLog, type SegmentedLogOptions, mmapAvailable } from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const HOUR_MS = 60 * 60 * 1000
const FILE_HEADER_BYTES = 32
const FRAME_HEADER_BYTES = 24

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

function text(value: Uint8Array): string {
  return new TextDecoder().decode(value)
}

/** A record whose bytes say which offset it was written at, padded to `size` bytes. */
function recordFor(offset: number, size = 10): Uint8Array {
  return bytes(`r${offset}`.padEnd(size, '.'))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function codeOf(error: unknown): LogErrorCode | string {
  if (error instanceof LogError) return error.code
  return `not a LogError: ${String(error)}`
}

function thrownCode(action: () => unknown): LogErrorCode | string {
  try {
    action()
  } catch (error) {
    return codeOf(error)
  }
  return 'no error'
}

async function rejectedCode(action: () => Promise<unknown>): Promise<LogErrorCode | string> {
  try {
    await action()
  } catch (error) {
    return codeOf(error)
  }
  return 'no error'
}

interface Snapshot {
  startOffset: number
  endOffset: number
  segments: { baseOffset: number; nextOffset: number; bytes: number }[]
  records: { offset: number; timestampMs: number; value: string }[]
}

/** Everything a reopen must preserve: offsets, segment layout and sizes, every record and timestamp. */
function snapshot(log: SegmentedLog): Snapshot {
  const records: Snapshot['records'] = []
  for (let offset = log.startOffset; offset < log.endOffset; offset++) {
    const record = log.readRecord(offset)
    records.push({ offset: record.offset, timestampMs: record.timestampMs, value: Buffer.from(record.value).toString('hex') })
  }
  return {
    startOffset: log.startOffset,
    endOffset: log.endOffset,
    segments: log.segments.map((segment) => ({ baseOffset: segment.baseOffset, nextOffset: segment.nextOffset, bytes: segment.bytes })),
    records,
  }
}

function bases(log: SegmentedLog): number[] {
  return log.segments.map((segment) => segment.baseOffset)
}

function counts(log: SegmentedLog): number[] {
  return log.segments.map((segment) => segment.count)
}

/** Segments are ordered, contiguous, end at endOffset, and only the newest one is active. */
function expectWellFormed(log: SegmentedLog): void {
  const segments = log.segments
  expect(segments.length).toBeGreaterThan(0)
  for (let i = 0; i + 1 < segments.length; i++) {
    expect(segments[i]!.nextOffset).toBe(segments[i + 1]!.baseOffset)
    expect(segments[i]!.isActive).toBe(false)
  }
  expect(segments[segments.length - 1]!.isActive).toBe(true)
  expect(segments[segments.length - 1]!.nextOffset).toBe(log.endOffset)
  expect(segments[0]!.baseOffset).toBeLessThanOrEqual(log.startOffset)
}

async function collect(iterable: AsyncIterable<{ offset: number; value: Uint8Array }>): Promise<{ offset: number; value: string }[]> {
  const seen: { offset: number; value: string }[] = []
  for await (const record of iterable) seen.push({ offset: record.offset, value: text(record.value) })
  return seen
}

export function describeSegmentedLog(name: string, extraOptions: SegmentedLogOptions): void {
  describe(`SegmentedLog (${name})`, () => {
    const opened: SegmentedLog[] = []

    async function open(dir: string, options: SegmentedLogOptions = {}): Promise<SegmentedLog> {
      const log = await SegmentedLog.open(dir, { ...extraOptions, ...options })
      opened.push(log)
      return log
    }

    async function reopen(log: SegmentedLog, options: SegmentedLogOptions = {}): Promise<SegmentedLog> {
      await log.close()
      return open(log.dir, options)
    }

    /** Appends records for offsets endOffset..endOffset+count-1, one append each. */
    async function appendRecords(log: SegmentedLog, count: number, size = 10): Promise<void> {
      for (let i = 0; i < count; i++) {
        const offset = log.endOffset
        expect(await log.append(recordFor(offset, size))).toBe(offset)
      }
    }

    function expectRecordsReadable(log: SegmentedLog, from: number, to: number, size = 10): void {
      for (let offset = from; offset < to; offset++) expect(text(log.read(offset))).toBe(text(recordFor(offset, size)))
    }

    afterEach(async () => {
      for (const log of opened.splice(0)) await log.close()
    })

    describe('open', () => {
      it(`reads sealed segments ${extraOptions.mmap === 'never' ? 'without' : 'through'} memory maps`, async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 2 })
        expect(log.usesMmap).toBe(extraOptions.mmap !== 'never')
        if (extraOptions.mmap === 'always') expect(mmapAvailable()).toBe(true)
        await appendRecords(log, 5)
        expect(text(log.read(0))).toBe(text(recordFor(0)))
        const sealed = log.segments[0]!
        expect(sealed.isActive).toBe(false)
        if (extraOptions.mmap === 'never') expect(sealed.mappedBytes).toBe(0)
        else expect(sealed.mappedBytes).toBe(sealed.bytes)
      })

      it('starts an empty log at offset 0 with one empty active segment', async () => {
        const log = await open(tempDir())
        expect(log.startOffset).toBe(0)
        expect(log.endOffset).toBe(0)
        expect(bases(log)).toEqual([0])
        expect(counts(log)).toEqual([0])
        expect(log.isReadOnly).toBe(false)
        expect(log.isClosed).toBe(false)
      })
    })

    describe('append', () => {
      it.each([
        ['a short text', bytes('hello, log')],
        ['an empty payload', new Uint8Array(0)],
        ['every byte value', Uint8Array.from({ length: 256 }, (_, i) => i)],
        ['zeros', new Uint8Array(1000)],
        ['a Buffer', Buffer.from([0xff, 0x00, 0xfe, 0x01])],
      ])('round-trips %s byte for byte', async (_label, value) => {
        const log = await open(tempDir())
        await log.append(bytes('before'))
        const offset = await log.append(value)
        await log.append(bytes('after'))
        expect(offset).toBe(1)
        expect(Buffer.from(log.read(1)).equals(Buffer.from(value))).toBe(true)
        expect(text(log.read(0))).toBe('before')
        expect(text(log.read(2))).toBe('after')
        const reopened = await reopen(log)
        expect(Buffer.from(reopened.read(1)).equals(Buffer.from(value))).toBe(true)
        expect(reopened.read(1).length).toBe(value.length)
      })

      it('hands out contiguous offsets to appends that run concurrently', async () => {
        const log = await open(tempDir())
        const offsets = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(recordFor(i))))
        expect(offsets).toEqual(Array.from({ length: 20 }, (_, i) => i))
        expect(log.endOffset).toBe(20)
        expectRecordsReadable(log, 0, 20)
      })

      it('makes a record readable as soon as its append resolves', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 3 })
        for (let i = 0; i < 10; i++) {
          const offset = await log.append(recordFor(i))
          expect(offset).toBe(i)
          expect(text(log.read(offset))).toBe(text(recordFor(i)))
          expect(log.highWatermark).toBeGreaterThanOrEqual(offset + 1)
        }
      })

      it('keeps the given timestampMs and defaults it to now', async () => {
        const log = await open(tempDir())
        const before = Date.now()
        await log.append(bytes('now'))
        const after = Date.now()
        await log.append(bytes('then'), { timestampMs: 1234 })
        const first = log.readRecord(0)
        expect(first.offset).toBe(0)
        expect(first.timestampMs).toBeGreaterThanOrEqual(before)
        expect(first.timestampMs).toBeLessThanOrEqual(after)
        expect(log.readRecord(1).timestampMs).toBe(1234)
      })
    })

    describe('appendBatch', () => {
      it('resolves to the first offset; the rest follow contiguously', async () => {
        const log = await open(tempDir())
        await log.append(bytes('zero'))
        const first = await log.appendBatch([bytes('one'), new Uint8Array(0), bytes('three')])
        expect(first).toBe(1)
        expect(log.endOffset).toBe(4)
        expect(await log.appendBatch([bytes('four')])).toBe(4)
        expect([0, 1, 2, 3, 4].map((offset) => text(log.read(offset)))).toEqual(['zero', 'one', '', 'three', 'four'])
      })

      it('gives concurrent batches disjoint contiguous ranges', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 4 })
        const batches = [0, 1, 2, 3].map((b) => Array.from({ length: 5 }, (_, i) => bytes(`b${b}-${i}`)))
        const firsts = await Promise.all(batches.map((batch) => log.appendBatch(batch)))
        expect(firsts).toEqual([0, 5, 10, 15])
        for (let b = 0; b < 4; b++) for (let i = 0; i < 5; i++) expect(text(log.read(b * 5 + i))).toBe(`b${b}-${i}`)
      })

      it('stores one timestamp for all records or one per record', async () => {
        const log = await open(tempDir())
        await log.appendBatch([bytes('a'), bytes('b')], { timestampMs: 500 })
        await log.appendBatch([bytes('c'), bytes('d')], { timestampMs: [600, 700] })
        expect([0, 1, 2, 3].map((offset) => log.readRecord(offset).timestampMs)).toEqual([500, 500, 600, 700])
      })
    })

    describe('rolling', () => {
      it('rolls once segmentBytesMax would be exceeded', async () => {
        // Each 10-byte record is a 34-byte frame: three fit after the 32-byte header.
        const segmentBytesMax = FILE_HEADER_BYTES + 3 * (FRAME_HEADER_BYTES + 10)
        const log = await open(tempDir(), { segmentBytesMax })
        await appendRecords(log, 7)
        expect(bases(log)).toEqual([0, 3, 6])
        expect(counts(log)).toEqual([3, 3, 1])
        expect(log.segments.map((segment) => segment.bytes)).toEqual([segmentBytesMax, segmentBytesMax, FILE_HEADER_BYTES + 34])
        expectRecordsReadable(log, 0, 7)
      })

      it('fits a record of exactly segmentBytesMax - 56 bytes alone in a segment', async () => {
        const segmentBytesMax = 100
        const log = await open(tempDir(), { segmentBytesMax })
        const big = new Uint8Array(segmentBytesMax - FILE_HEADER_BYTES - FRAME_HEADER_BYTES).fill(7)
        expect(await log.append(big)).toBe(0)
        expect(await log.append(big)).toBe(1)
        expect(await log.append(new Uint8Array(0))).toBe(2)
        expect(bases(log)).toEqual([0, 1, 2])
        expect(log.segments[0]!.bytes).toBe(segmentBytesMax)
        expect(Buffer.from(log.read(1)).equals(Buffer.from(big))).toBe(true)
      })

      it('rolls after segmentRecordsMax records, also inside a batch', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 3 })
        await appendRecords(log, 2)
        expect(await log.appendBatch([recordFor(2), recordFor(3), recordFor(4), recordFor(5), recordFor(6)])).toBe(2)
        await appendRecords(log, 1)
        expect(bases(log)).toEqual([0, 3, 6])
        expect(counts(log)).toEqual([3, 3, 2])
        expect(log.endOffset).toBe(8)
        expectRecordsReadable(log, 0, 8)
      })

      it('puts one record in each segment with segmentRecordsMax 1', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 1 })
        await appendRecords(log, 4)
        expect(bases(log)).toEqual([0, 1, 2, 3])
        expect(counts(log)).toEqual([1, 1, 1, 1])
      })

      it('rolls once the active segment is older than segmentAgeMsMax', async () => {
        const log = await open(tempDir(), { segmentAgeMsMax: 50 })
        await log.append(bytes('old'))
        await sleep(120)
        await log.append(bytes('new'))
        expect(bases(log)).toEqual([0, 1])
        expect(counts(log)).toEqual([1, 1])
        expect(text(log.read(0))).toBe('old')
        expect(text(log.read(1))).toBe('new')
      })

      it("does not roll by age while the active segment's first record is young", async () => {
        // API: roll "when the active segment's first record is older than" segmentAgeMsMax.
        const log = await open(tempDir(), { segmentAgeMsMax: 100 })
        await sleep(250) // the log sits idle and empty
        await Promise.all([log.append(bytes('a')), log.append(bytes('b'))])
        expect(bases(log)).toEqual([0])
        expect(counts(log)).toEqual([2])
      })

      it('reads every record across many sealed segments', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 4 })
        const total = 200
        for (let i = 0; i < total; i += 10) {
          await log.appendBatch(Array.from({ length: 10 }, (_, j) => recordFor(i + j, 10 + ((i + j) % 7))))
        }
        expect(log.segments.length).toBe(total / 4)
        expect(log.segments.filter((segment) => !segment.isActive).length).toBe(total / 4 - 1)
        for (let offset = total - 1; offset >= 0; offset -= 3) expect(text(log.read(offset))).toBe(text(recordFor(offset, 10 + (offset % 7))))
        expect((await collect(log.records())).map((record) => record.value)).toEqual(
          Array.from({ length: total }, (_, offset) => text(recordFor(offset, 10 + (offset % 7)))),
        )
        const mapped = log.segments.filter((segment) => segment.mappedBytes > 0).length
        if (extraOptions.mmap === 'never') expect(mapped).toBe(0)
        else expect(mapped).toBe(total / 4 - 1)
        const reopened = await reopen(log, { segmentRecordsMax: 4 })
        for (let offset = 0; offset < total; offset += 5) expect(text(reopened.read(offset))).toBe(text(recordFor(offset, 10 + (offset % 7))))
      })
    })

    describe('records', () => {
      it('iterates [from, to) in offset order across segments', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 3 })
        await appendRecords(log, 10)
        const all = await collect(log.records())
        expect(all.map((record) => record.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        expect(all.map((record) => record.value)).toEqual(Array.from({ length: 10 }, (_, i) => text(recordFor(i))))
        expect((await collect(log.records({ from: 2, to: 7 }))).map((record) => record.offset)).toEqual([2, 3, 4, 5, 6])
        expect((await collect(log.records({ from: 8 }))).map((record) => record.offset)).toEqual([8, 9])
        expect((await collect(log.records({ to: 2 }))).map((record) => record.offset)).toEqual([0, 1])
        expect(await collect(log.records({ from: 10 }))).toEqual([])
        expect(await collect(log.records({ from: 5, to: 5 }))).toEqual([])
      })

      it('carries timestamps', async () => {
        const log = await open(tempDir())
        await log.appendBatch([bytes('a'), bytes('b')], { timestampMs: [11, 22] })
        const seen = []
        for await (const record of log.records()) seen.push([record.offset, record.timestampMs, text(record.value)])
        expect(seen).toEqual([
          [0, 11, 'a'],
          [1, 22, 'b'],
        ])
      })

      it('with follow, wakes for new appends and ends when the signal aborts', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 2 })
        await appendRecords(log, 1)
        const controller = new AbortController()
        const seen: number[] = []
        let woke: (() => void) | undefined
        const done = (async () => {
          for await (const record of log.records({ follow: true, signal: controller.signal })) {
            expect(text(record.value)).toBe(text(recordFor(record.offset)))
            seen.push(record.offset)
            woke?.()
          }
        })()
        const waitFor = async (count: number): Promise<void> => {
          while (seen.length < count) await new Promise<void>((resolve) => (woke = resolve))
        }
        await waitFor(1)
        await appendRecords(log, 2) // rolls a segment too
        await waitFor(3)
        await log.appendBatch([recordFor(3), recordFor(4)])
        await waitFor(5)
        controller.abort()
        await done
        expect(seen).toEqual([0, 1, 2, 3, 4])
      })

      it('with follow on an empty log, waits for the first record', async () => {
        const log = await open(tempDir())
        const controller = new AbortController()
        const iterator = log.records({ follow: true, signal: controller.signal })[Symbol.asyncIterator]()
        const next = iterator.next()
        await sleep(20)
        await log.append(bytes('first'))
        const result = await next
        expect(result.done).toBe(false)
        if (!result.done) expect([result.value.offset, text(result.value.value)]).toEqual([0, 'first'])
        const pending = iterator.next()
        controller.abort()
        expect((await pending).done).toBe(true)
      })

      it('with follow and to, ends at to', async () => {
        const log = await open(tempDir())
        await appendRecords(log, 1)
        const done = collect(log.records({ from: 0, to: 3, follow: true }))
        await appendRecords(log, 4)
        expect((await done).map((record) => record.offset)).toEqual([0, 1, 2])
      })

      it('serves next() calls made before the previous one settled in order', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 2 })
        await appendRecords(log, 3)
        const iterator = log.records()
        const results = await Promise.all([iterator.next(), iterator.next(), iterator.next(), iterator.next()])
        expect(results.map((result) => (result.done ? 'done' : result.value.offset))).toEqual([0, 1, 2, 'done'])
      })

      it('ends at return(), and later next() calls are done', async () => {
        const log = await open(tempDir())
        await appendRecords(log, 3)
        const iterator = log.records()
        expect((await iterator.next()).done).toBe(false)
        expect((await iterator.return()).done).toBe(true)
        expect((await iterator.next()).done).toBe(true)
        const seen = []
        for await (const record of log.records()) {
          seen.push(record.offset)
          if (seen.length === 2) break
        }
        expect(seen).toEqual([0, 1])
      })

      it('with an already aborted signal yields nothing', async () => {
        const log = await open(tempDir())
        await appendRecords(log, 3)
        expect(await collect(log.records({ follow: true, signal: AbortSignal.abort() }))).toEqual([])
      })
    })

    describe('recordBatches', () => {
      type Batch = { offset: number; timestampMs: number; value: Uint8Array }[]
      async function batchesOf(iterable: AsyncIterable<Batch>): Promise<number[][]> {
        const seen: number[][] = []
        for await (const batch of iterable) {
          for (const record of batch) expect(text(record.value)).toBe(text(recordFor(record.offset)))
          seen.push(batch.map((record) => record.offset))
        }
        return seen
      }

      /** A log of 7 records whose sealed first segment [0, 6) has record `damaged` flipped on disk. */
      async function logWithDamagedRecord(damaged: number): Promise<SegmentedLog> {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 6 })
        await appendRecords(writer, 7)
        await writer.close()
        const store = path.join(dir, '00000000000000000000.log')
        const bytesOnDisk = fs.readFileSync(store)
        bytesOnDisk[FILE_HEADER_BYTES + damaged * (FRAME_HEADER_BYTES + 10) + FRAME_HEADER_BYTES + 1]! ^= 0xff
        fs.writeFileSync(store, bytesOnDisk)
        return open(dir, { segmentRecordsMax: 6 })
      }

      it('hands out the records of records() in arrays of at most maxRecords, none across a segment end', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 4 })
        await appendRecords(log, 10)
        expect(await batchesOf(log.recordBatches({ maxRecords: 3 }))).toEqual([[0, 1, 2], [3], [4, 5, 6], [7], [8, 9]])
        expect(await batchesOf(log.recordBatches({ from: 5, to: 9 }))).toEqual([[5, 6, 7], [8]])
        const flattened = []
        for await (const batch of log.recordBatches()) flattened.push(...batch)
        const iterated = []
        for await (const record of log.records()) iterated.push(record)
        expect(flattened).toEqual(iterated)
        expect(await batchesOf(log.recordBatches({ from: 10 }))).toEqual([])
      })

      it.each([0, -1, 1.5, Number.NaN, '10'])('refuses maxRecords %s with INVALID_ARGUMENT', async (maxRecords) => {
        const log = await open(tempDir())
        await appendRecords(log, 2)
        expect(await rejectedCode(() => batchesOf(log.recordBatches({ maxRecords: maxRecords as number })))).toBe('INVALID_ARGUMENT')
      })

      it('with follow, hands out new appends as they come and ends when the signal aborts', async () => {
        const log = await open(tempDir())
        await appendRecords(log, 2)
        const controller = new AbortController()
        const iterator = log.recordBatches({ follow: true, signal: controller.signal })[Symbol.asyncIterator]()
        const first = await iterator.next()
        expect(first.done ? [] : first.value.map((record) => record.offset)).toEqual([0, 1])
        const next = iterator.next()
        await sleep(10)
        await log.appendBatch([recordFor(2), recordFor(3), recordFor(4)])
        const second = await next
        expect(second.done ? [] : second.value.map((record) => record.offset)).toEqual([2, 3, 4])
        const pending = iterator.next()
        controller.abort()
        expect((await pending).done).toBe(true)
      })

      it('throws a damaged record after a batch of the intact ones before it, and never skips it', async () => {
        const log = await logWithDamagedRecord(3)
        const seen: number[][] = []
        let thrown: unknown
        try {
          for await (const batch of log.recordBatches()) seen.push(batch.map((record) => record.offset))
        } catch (error) {
          thrown = error
        }
        expect(seen).toEqual([[0, 1, 2]])
        expect(codeOf(thrown)).toBe('CORRUPT_RECORD')
        expect(await rejectedCode(() => batchesOf(log.recordBatches({ from: 3 })))).toBe('CORRUPT_RECORD')
        expect(await batchesOf(log.recordBatches({ from: 4 }))).toEqual([[4, 5], [6]])
      })

      it('makes records() yield the intact records before a damaged one, then throw', async () => {
        const log = await logWithDamagedRecord(0)
        expect(await rejectedCode(() => collect(log.records()))).toBe('CORRUPT_RECORD')
        const late = await logWithDamagedRecord(4)
        const seen: number[] = []
        expect(await rejectedCode(async () => {
          for await (const record of late.records()) seen.push(record.offset)
        })).toBe('CORRUPT_RECORD')
        expect(seen).toEqual([0, 1, 2, 3])
      })

      it("gives a readOnly reader the writer's records up to its high watermark", async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 4 })
        await appendRecords(writer, 6)
        const reader = await open(dir, { readOnly: true })
        await appendRecords(writer, 3)
        reader.refresh()
        expect(reader.highWatermark).toBe(9)
        expect(await batchesOf(reader.recordBatches({ maxRecords: 3 }))).toEqual([[0, 1, 2], [3], [4, 5, 6], [7], [8]])
      })
    })

    describe('reopen', () => {
      type Operation = (log: SegmentedLog) => Promise<unknown>
      const operations: [string, SegmentedLogOptions, Operation][] = [
        ['append', {}, (log) => appendRecords(log, 5)],
        ['append with sync always', { sync: 'always' }, (log) => appendRecords(log, 5)],
        ['appendBatch', {}, (log) => log.appendBatch([recordFor(0), new Uint8Array(0), recordFor(2)], { timestampMs: [7, 8, 9] })],
        ['roll', { segmentRecordsMax: 2 }, (log) => appendRecords(log, 7)],
        ['roll by bytes', { segmentBytesMax: 120 }, (log) => appendRecords(log, 7)],
        [
          'truncate into a sealed segment',
          { segmentRecordsMax: 3 },
          async (log) => {
            await appendRecords(log, 8)
            await log.truncate(4)
          },
        ],
        [
          'truncate in the active segment',
          { segmentRecordsMax: 3 },
          async (log) => {
            await appendRecords(log, 8)
            await log.truncate(7)
          },
        ],
        [
          'truncate then append',
          { segmentRecordsMax: 3 },
          async (log) => {
            await appendRecords(log, 8)
            await log.truncate(2)
            await appendRecords(log, 3)
          },
        ],
        [
          'deleteBefore',
          { segmentRecordsMax: 3 },
          async (log) => {
            await appendRecords(log, 8)
            expect(await log.deleteBefore(4)).toBe(1)
          },
        ],
        [
          'deleteBefore the end',
          { segmentRecordsMax: 3 },
          async (log) => {
            await appendRecords(log, 8)
            await log.deleteBefore(8)
          },
        ],
        [
          'retention by bytes',
          { segmentRecordsMax: 2, retentionBytesMax: 150 },
          async (log) => {
            await appendRecords(log, 9)
            await log.sync()
          },
        ],
        [
          'retention by time',
          { segmentRecordsMax: 2, retentionMs: HOUR_MS },
          async (log) => {
            await log.appendBatch([recordFor(0), recordFor(1), recordFor(2)], { timestampMs: Date.now() - 3 * HOUR_MS })
            await appendRecords(log, 4)
          },
        ],
      ]

      it.each(operations)('after %s keeps offsets, segments and records', async (_label, options, operation) => {
        const log = await open(tempDir(), options)
        await operation(log)
        expectWellFormed(log)
        const before = snapshot(log)
        expect(before.records.length).toBe(before.endOffset - before.startOffset)
        const reopened = await reopen(log, options)
        expect(reopened.recovery.uncleanShutdown).toBe(false)
        expect(snapshot(reopened)).toEqual(before)
        expectWellFormed(reopened)
        // and the reopened log goes on where the old one stopped
        expect(await reopened.append(bytes('next'))).toBe(before.endOffset)
        const again = await reopen(reopened, options)
        expect(again.endOffset).toBe(before.endOffset + 1)
        expect(text(again.read(before.endOffset))).toBe('next')
      })

      it.each(['always', 'interval', 'never'] as const)('keeps every record across close and reopen with sync %s', async (sync) => {
        const log = await open(tempDir(), { sync, segmentRecordsMax: 5, syncIntervalMs: 5 })
        await appendRecords(log, 12)
        await log.appendBatch([recordFor(12), recordFor(13)])
        if (sync === 'interval') await sleep(20)
        const reopened = await reopen(log, { sync })
        expect(reopened.endOffset).toBe(14)
        expectRecordsReadable(reopened, 0, 14)
        expect(bases(reopened)).toEqual([0, 5, 10])
      })

      it('keeps data flushed by sync() under sync never', async () => {
        const log = await open(tempDir(), { sync: 'never' })
        await appendRecords(log, 3)
        await log.sync()
        const reopened = await reopen(log)
        expectRecordsReadable(reopened, 0, 3)
      })
    })

    describe('truncate', () => {
      // 9 records in segments [0,3) [3,6) [6,9); the last one is active.
      async function nineRecords(): Promise<SegmentedLog> {
        const log = await open(tempDir(), { segmentRecordsMax: 3 })
        await appendRecords(log, 9)
        expect(bases(log)).toEqual([0, 3, 6])
        return log
      }

      it.each<[string, number]>([
        ['in the middle of a sealed segment', 4],
        ['at the start of a sealed segment', 3],
        ['at the start of the active segment', 6],
        ['in the middle of the active segment', 7],
        ['at offset 0', 0],
        ['at the last record', 8],
      ])('cuts %s (offset %i) and appends continue there', async (_label, offset) => {
        const log = await nineRecords()
        await log.truncate(offset)
        expect(log.endOffset).toBe(offset)
        expect(log.startOffset).toBe(0)
        expectWellFormed(log)
        expectRecordsReadable(log, 0, offset)
        expect(thrownCode(() => log.read(offset))).toBe('OFFSET_OUT_OF_RANGE')
        expect(await log.append(bytes('after'))).toBe(offset)
        expect(text(log.read(offset))).toBe('after')
        await appendRecords(log, 4)
        expectWellFormed(log)
        const reopened = await reopen(log, { segmentRecordsMax: 3 })
        expect(reopened.endOffset).toBe(offset + 5)
        expectRecordsReadable(reopened, 0, offset)
        expect(text(reopened.read(offset))).toBe('after')
        expectRecordsReadable(reopened, offset + 1, offset + 5)
      })

      it('at endOffset changes nothing', async () => {
        const log = await nineRecords()
        const before = snapshot(log)
        await log.truncate(9)
        expect(snapshot(log)).toEqual(before)
        expect(await log.append(bytes('x'))).toBe(9)
      })

      it('at startOffset after deleteBefore empties the log but keeps the start', async () => {
        const log = await nineRecords()
        expect(await log.deleteBefore(4)).toBe(1)
        await log.truncate(4)
        expect(log.startOffset).toBe(4)
        expect(log.endOffset).toBe(4)
        expect(thrownCode(() => log.read(3))).toBe('OFFSET_OUT_OF_RANGE')
        expect(await log.append(bytes('four'))).toBe(4)
        const reopened = await reopen(log)
        expect([reopened.startOffset, reopened.endOffset]).toEqual([4, 5])
        expect(text(reopened.read(4))).toBe('four')
      })

      it('refuses offsets below startOffset and past endOffset', async () => {
        const log = await nineRecords()
        await log.deleteBefore(3)
        expect(await rejectedCode(() => log.truncate(2))).toBe('OFFSET_OUT_OF_RANGE')
        expect(await rejectedCode(() => log.truncate(10))).toBe('OFFSET_OUT_OF_RANGE')
        expect([log.startOffset, log.endOffset]).toEqual([3, 9])
      })

      it('keeps reads of the sealed segment it cut valid for views handed out before', async () => {
        const log = await nineRecords()
        const view = log.read(1)
        const copy = Buffer.from(view)
        await log.truncate(1)
        await appendRecords(log, 2)
        expect(Buffer.from(view).equals(copy)).toBe(true)
      })
    })

    describe('deleteBefore', () => {
      async function nineRecords(): Promise<SegmentedLog> {
        const log = await open(tempDir(), { segmentRecordsMax: 3 })
        await appendRecords(log, 9)
        return log
      }

      it.each<[string, number, number, number[]]>([
        ['in the middle of a segment', 4, 1, [3, 6]],
        ['exactly at a segment boundary', 3, 1, [3, 6]],
        ['at a later boundary', 6, 2, [6]],
        ['at startOffset', 0, 0, [0, 3, 6]],
        ['in the active segment', 7, 2, [6]],
        ['at endOffset', 9, 3, [9]],
      ])('%s (offset %i) deletes %i segments and moves startOffset', async (_label, offset, deleted, expectedBases) => {
        const log = await nineRecords()
        expect(await log.deleteBefore(offset)).toBe(deleted)
        expect(log.startOffset).toBe(offset)
        expect(log.endOffset).toBe(9)
        expect(bases(log)).toEqual(expectedBases)
        expectWellFormed(log)
        expectRecordsReadable(log, offset, 9)
        if (offset > 0) expect(thrownCode(() => log.read(offset - 1))).toBe('OFFSET_OUT_OF_RANGE')
        expect((await collect(log.records())).map((record) => record.offset)).toEqual(
          Array.from({ length: 9 - offset }, (_, i) => offset + i),
        )
        const reopened = await reopen(log, { segmentRecordsMax: 3 })
        expect(reopened.startOffset).toBe(offset)
        expect(reopened.endOffset).toBe(9)
        expect(bases(reopened)).toEqual(expectedBases)
        expectRecordsReadable(reopened, offset, 9)
        expect(await reopened.append(recordFor(9))).toBe(9)
        expectRecordsReadable(reopened, offset, 10)
      })

      it('never moves startOffset backwards', async () => {
        const log = await nineRecords()
        await log.deleteBefore(5)
        expect(await log.deleteBefore(2)).toBe(0)
        expect(log.startOffset).toBe(5)
        const reopened = await reopen(log)
        expect(reopened.startOffset).toBe(5)
      })

      it('refuses offsets past endOffset', async () => {
        const log = await nineRecords()
        expect(await rejectedCode(() => log.deleteBefore(10))).toBe('OFFSET_OUT_OF_RANGE')
        expect([log.startOffset, log.endOffset]).toEqual([0, 9])
      })

      it('keeps startOffset of an emptied log across reopen', async () => {
        const log = await nineRecords()
        await log.deleteBefore(9)
        const reopened = await reopen(log)
        expect([reopened.startOffset, reopened.endOffset]).toEqual([9, 9])
        expect(await reopened.append(bytes('nine'))).toBe(9)
      })
    })

    describe('retention', () => {
      // 10-byte records, two per segment: each full segment's store holds 32 + 2 × 34 = 100 bytes.
      async function tenRecordsInFiveSegments(): Promise<string> {
        const dir = tempDir()
        const log = await open(dir, { segmentRecordsMax: 2 })
        await appendRecords(log, 10)
        expect(log.segments.map((segment) => segment.bytes)).toEqual([100, 100, 100, 100, 100])
        await log.close()
        return dir
      }

      it.each<[number, number[]]>([
        [450, [2, 4, 6, 8]],
        [250, [6, 8]],
        [200, [6, 8]],
        [199, [8]],
        [0, [8]],
      ])('retentionBytesMax %i deletes the oldest whole segments at open', async (retentionBytesMax, expectedBases) => {
        const dir = await tenRecordsInFiveSegments()
        const log = await open(dir, { segmentRecordsMax: 2, retentionBytesMax })
        expect(bases(log)).toEqual(expectedBases)
        expect(log.startOffset).toBe(expectedBases[0])
        expect(log.endOffset).toBe(10)
        expectRecordsReadable(log, log.startOffset, 10)
        expect(thrownCode(() => log.read(log.startOffset - 1))).toBe('OFFSET_OUT_OF_RANGE')
        const reopened = await reopen(log)
        expect(reopened.startOffset).toBe(expectedBases[0])
      })

      it('retentionBytesMax deletes segments as the log rolls, never the active one', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 2, retentionBytesMax: 120 })
        await appendRecords(log, 9)
        await log.sync()
        expect(bases(log)).toEqual([8])
        expect(log.startOffset).toBe(8)
        expect(text(log.read(8))).toBe(text(recordFor(8)))
        const whole = await open(tempDir(), { segmentBytesMax: 1000, retentionBytesMax: 0 })
        await appendRecords(whole, 5)
        expect(bases(whole)).toEqual([0])
        expectRecordsReadable(whole, 0, 5)
      })

      it('retentionMs deletes segments whose newest persisted timestamp is too old', async () => {
        const dir = tempDir()
        const now = Date.now()
        const writer = await open(dir, { segmentRecordsMax: 2 })
        await writer.appendBatch([recordFor(0), recordFor(1), recordFor(2)], { timestampMs: now - 5 * HOUR_MS })
        await writer.append(recordFor(3), { timestampMs: now - 3 * HOUR_MS })
        await writer.appendBatch([recordFor(4), recordFor(5), recordFor(6)], { timestampMs: now - 60_000 })
        expect(bases(writer)).toEqual([0, 2, 4, 6])
        await writer.close()

        const log = await open(dir, { segmentRecordsMax: 2, retentionMs: 2 * HOUR_MS })
        expect(bases(log)).toEqual([4, 6])
        expect(log.startOffset).toBe(4)
        expectRecordsReadable(log, 4, 7)
        const reopened = await reopen(log, { segmentRecordsMax: 2, retentionMs: 4 * HOUR_MS })
        expect(bases(reopened)).toEqual([4, 6])
        expect(reopened.startOffset).toBe(4)
      })

      it('retentionMs applies when the log rolls, never to the active segment', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 2, retentionMs: HOUR_MS })
        const old = Date.now() - 2 * HOUR_MS
        await log.appendBatch([recordFor(0), recordFor(1), recordFor(2)], { timestampMs: old })
        await log.sync()
        expect(bases(log)).toEqual([2])
        expect(log.startOffset).toBe(2)
        await log.append(recordFor(3), { timestampMs: old })
        await log.sync()
        expect(bases(log)).toEqual([2]) // still active: kept although old
        expectRecordsReadable(log, 2, 4)
        await appendRecords(log, 3) // rolls twice: [2,4) is old, [4,6) is new
        await log.sync()
        expect(bases(log)).toEqual([4, 6])
        expectRecordsReadable(log, 4, 7)
      })
    })

    describe('offsetForTimestamp', () => {
      // Records 0..8 with timestamps 1000, 2000, ..., 9000, three per segment.
      async function timedLog(dir = tempDir()): Promise<SegmentedLog> {
        const log = await open(dir, { segmentRecordsMax: 3 })
        for (let i = 0; i < 9; i++) await log.append(recordFor(i), { timestampMs: (i + 1) * 1000 })
        return log
      }

      const cases: [string, number, number | undefined][] = [
        ['an exact first timestamp', 1000, 0],
        ['before every record', 5, 0],
        ['zero', 0, 0],
        ['between two records', 1500, 1],
        ['the last record of a segment', 3000, 2],
        ['just past a segment', 3001, 3],
        ['inside the active segment', 8500, 8],
        ['the last record', 9000, 8],
        ['after every record', 9001, undefined],
        ['far in the future', Number.MAX_SAFE_INTEGER, undefined],
      ]

      it.each(cases)('finds %s (%i → %s)', async (_label, timestampMs, expected) => {
        const log = await timedLog()
        expect(log.offsetForTimestamp(timestampMs)).toBe(expected)
        const reopened = await reopen(log, { segmentRecordsMax: 3 })
        expect(reopened.offsetForTimestamp(timestampMs)).toBe(expected)
      })

      it('answers undefined on an empty log', async () => {
        const log = await open(tempDir())
        expect(log.offsetForTimestamp(0)).toBe(undefined)
      })

      it('never answers below startOffset', async () => {
        const log = await timedLog()
        await log.deleteBefore(4)
        expect(log.offsetForTimestamp(1000)).toBe(4)
        expect(log.offsetForTimestamp(6000)).toBe(5)
      })

      it('uses the running maximum of timestamps, also across reopen', async () => {
        const log = await open(tempDir())
        await log.append(bytes('a'), { timestampMs: 5000 })
        await log.append(bytes('b'), { timestampMs: 1000 }) // clock went back
        await log.append(bytes('c'), { timestampMs: 7000 })
        expect(log.offsetForTimestamp(3000)).toBe(0)
        expect(log.offsetForTimestamp(6000)).toBe(2)
        const reopened = await reopen(log)
        await reopened.append(bytes('d'), { timestampMs: 2000 }) // back again, after a reopen
        expect(reopened.offsetForTimestamp(3000)).toBe(0)
        expect(reopened.offsetForTimestamp(6000)).toBe(2)
        expect(reopened.offsetForTimestamp(7000)).toBe(2)
        expect(reopened.offsetForTimestamp(7001)).toBe(undefined)
      })

      it('sees records appended after a truncate into a sealed segment', async () => {
        const log = await timedLog()
        await log.truncate(4) // [3,6) becomes active again holding 3
        await log.append(bytes('late'), { timestampMs: 3500 }) // its running maximum stays 4000
        expect(log.offsetForTimestamp(3800)).toBe(3)
        expect(log.offsetForTimestamp(4000)).toBe(3)
        expect(log.offsetForTimestamp(4001)).toBe(undefined)
      })
    })

    describe('errors', () => {
      it('reports OFFSET_OUT_OF_RANGE below startOffset and at or past endOffset', async () => {
        const log = await open(tempDir(), { segmentRecordsMax: 2 })
        await appendRecords(log, 6)
        await log.deleteBefore(2)
        for (const offset of [0, 1, 6, 7, 1000]) {
          expect(thrownCode(() => log.read(offset))).toBe('OFFSET_OUT_OF_RANGE')
          expect(thrownCode(() => log.readRecord(offset))).toBe('OFFSET_OUT_OF_RANGE')
        }
        try {
          log.read(6)
        } catch (error) {
          expect(error).toBeInstanceOf(LogError)
          expect((error as LogError).offset).toBe(6)
        }
        expect(await rejectedCode(() => collect(log.records({ from: 1 })))).toBe('OFFSET_OUT_OF_RANGE')
      })

      it('reports LOG_CLOSED after close', async () => {
        const log = await open(tempDir())
        await appendRecords(log, 2)
        await log.close()
        await log.close() // idempotent
        expect(log.isClosed).toBe(true)
        expect(thrownCode(() => log.read(0))).toBe('LOG_CLOSED')
        expect(thrownCode(() => log.readRecord(0))).toBe('LOG_CLOSED')
        expect(thrownCode(() => log.offsetForTimestamp(0))).toBe('LOG_CLOSED')
        expect(await rejectedCode(() => log.append(bytes('x')))).toBe('LOG_CLOSED')
        expect(await rejectedCode(() => log.appendBatch([bytes('x')]))).toBe('LOG_CLOSED')
        expect(await rejectedCode(() => log.truncate(0))).toBe('LOG_CLOSED')
        expect(await rejectedCode(() => log.deleteBefore(1))).toBe('LOG_CLOSED')
        expect(await rejectedCode(() => log.sync())).toBe('LOG_CLOSED')
      })

      it('ends a following iterator when the log closes', async () => {
        const log = await open(tempDir())
        await appendRecords(log, 1)
        const done = collect(log.records({ follow: true }))
        await sleep(10)
        await log.close()
        expect((await done).map((record) => record.offset)).toEqual([0])
      })
    })

    describe('readOnly', () => {
      /**
       * Refreshes `reader` until it ends at `endOffset` (at most 5 s): for the tests below that are
       * about rolls, cuts and deletions rather than how fast a reader sees an append.
       */
      async function caughtUp(reader: SegmentedLog, endOffset: number): Promise<void> {
        const deadline = Date.now() + 5000
        for (;;) {
          reader.refresh()
          if (reader.endOffset === endOffset || Date.now() > deadline) return
          await sleep(2)
        }
      }

      it('sees what the writer wrote, and refuses to write', async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 3 })
        await appendRecords(writer, 7)
        await writer.close()
        const reader = await open(dir, { readOnly: true })
        expect(reader.isReadOnly).toBe(true)
        expect([reader.startOffset, reader.endOffset]).toEqual([0, 7])
        expectRecordsReadable(reader, 0, 7)
        expect(await rejectedCode(() => reader.append(bytes('no')))).toBe('READ_ONLY')
        expect(await rejectedCode(() => reader.appendBatch([bytes('no')]))).toBe('READ_ONLY')
        expect(await rejectedCode(() => reader.truncate(1))).toBe('READ_ONLY')
        expect(await rejectedCode(() => reader.deleteBefore(1))).toBe('READ_ONLY')
        expect(await rejectedCode(() => reader.sync())).toBe('READ_ONLY')
        const writerAgain = await open(dir, { segmentRecordsMax: 3 })
        expect(writerAgain.endOffset).toBe(7)
      })

      it('sees every record whose append resolved when it opens', async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 3 })
        await appendRecords(writer, 7)
        const reader = await open(dir, { readOnly: true })
        expect([reader.startOffset, reader.endOffset]).toEqual([0, 7])
        expectRecordsReadable(reader, 0, 7)
      })

      it("reads a record as soon as the writer's append resolved", async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 3 })
        await appendRecords(writer, 1)
        const reader = await open(dir, { readOnly: true })
        await caughtUp(reader, 1)
        for (let offset = 1; offset < 10; offset++) {
          expect(await writer.append(recordFor(offset))).toBe(offset)
          expect(text(reader.read(offset))).toBe(text(recordFor(offset))) // rolls at 3, 6 and 9 too
        }
        expect(reader.endOffset).toBe(10)
        expect(bases(reader)).toEqual([0, 3, 6, 9])
      })

      it('sees rolls made after it opened', async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 3 })
        await appendRecords(writer, 2)
        const reader = await open(dir, { readOnly: true })
        await caughtUp(reader, 2)
        await appendRecords(writer, 8) // rolls at 3, 6 and 9
        await caughtUp(reader, 10)
        expect(reader.endOffset).toBe(10)
        expect(bases(reader)).toEqual([0, 3, 6, 9])
        expectRecordsReadable(reader, 0, 10)
      })

      it('follows new records with records({ follow })', async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 2 })
        await appendRecords(writer, 1)
        const reader = await open(dir, { readOnly: true })
        const controller = new AbortController()
        const seen: number[] = []
        let woke: (() => void) | undefined
        const done = (async () => {
          for await (const record of reader.records({ follow: true, signal: controller.signal })) {
            expect(text(record.value)).toBe(text(recordFor(record.offset)))
            seen.push(record.offset)
            woke?.()
          }
        })()
        const waitFor = async (count: number): Promise<void> => {
          while (seen.length < count) await new Promise<void>((resolve) => (woke = resolve))
        }
        await waitFor(1)
        await appendRecords(writer, 3) // rolls at 2
        await waitFor(4)
        await writer.appendBatch([recordFor(4), recordFor(5), recordFor(6)])
        await waitFor(7)
        controller.abort()
        await done
        expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6])
      })

      it('sees retention deletions and truncation', async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 2, retentionBytesMax: 250 })
        await appendRecords(writer, 3)
        const reader = await open(dir, { readOnly: true })
        await caughtUp(reader, 3)
        expect(bases(reader)).toEqual([0, 2])
        expect(text(reader.read(0))).toBe(text(recordFor(0)))
        // rolls at 4, 6 and 8; each roll leaves two full sealed segments + one record (266 > 250 bytes)
        await appendRecords(writer, 6)
        expect(bases(writer)).toEqual([6, 8])
        await caughtUp(reader, 9)
        expect(bases(reader)).toEqual([6, 8])
        expect([reader.startOffset, reader.endOffset]).toEqual([6, 9])
        expect(thrownCode(() => reader.read(1))).toBe('OFFSET_OUT_OF_RANGE')
        expect(thrownCode(() => reader.read(5))).toBe('OFFSET_OUT_OF_RANGE')
        expectRecordsReadable(reader, 6, 9)
        await writer.truncate(7)
        expect(await writer.append(bytes('seven again'))).toBe(7)
        await caughtUp(reader, 8)
        expect(reader.endOffset).toBe(8)
        expect(text(reader.read(7))).toBe('seven again')
        expect(thrownCode(() => reader.read(8))).toBe('OFFSET_OUT_OF_RANGE')
      })

      it("sees the writer's deleteBefore inside a segment", async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 4 })
        await appendRecords(writer, 10)
        const reader = await open(dir, { readOnly: true })
        await caughtUp(reader, 10)
        expect(reader.startOffset).toBe(0)
        expect(await writer.deleteBefore(6)).toBe(1)
        reader.refresh()
        expect(bases(reader)).toEqual([4, 8])
        expect(reader.startOffset).toBe(6)
        expect(thrownCode(() => reader.read(5))).toBe('OFFSET_OUT_OF_RANGE')
        expectRecordsReadable(reader, 6, 10)
        const fresh = await open(dir, { readOnly: true })
        expect(fresh.startOffset).toBe(6)
      })

      it('opens a log whose writer has closed', async () => {
        const dir = tempDir()
        const writer = await open(dir, { segmentRecordsMax: 2 })
        await appendRecords(writer, 5)
        await writer.deleteBefore(2)
        await writer.close()
        const reader = await open(dir, { readOnly: true })
        expect([reader.startOffset, reader.endOffset]).toEqual([2, 5])
        expectRecordsReadable(reader, 2, 5)
        await reader.close()
        expect(thrownCode(() => reader.read(2))).toBe('LOG_CLOSED')
      })
    })
  })
}

describeSegmentedLog('mmap', { mmap: 'always' })
describeSegmentedLog('pread', { mmap: 'never' })
