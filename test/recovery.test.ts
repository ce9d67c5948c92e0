/**
 * Recovery specs: build a real log, stop it cleanly or "crash" it (copy its directory while the
 * writer is open, or remove the clean-shutdown marker after close), damage its files with fs, reopen
 * and check exactly what survives. Every byte position is computed from src/format.ts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LogError, SegmentedLog, type LogErrorCode, type SegmentedLogOptions } from '../src/index.js'
import {
  CHECKPOINT_BYTES,
  CHECKPOINT_FILE,
  CLEAN_SHUTDOWN_FILE,
  FILE_HEADER_BYTES,
  FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  INDEX_SUFFIX,
  LOCK_FILE,
  STORE_SUFFIX,
  TEMP_SUFFIX,
  crc32c,
  segmentFileName,
} from '../src/format.js'
import { tempDir } from './helpers/temp-dir.js'

// ---------------------------------------------------------------------------------------------
// Layout: field positions inside a file header, a frame and the checkpoint, as the layout comments in
// src/format.ts document them (format.ts exports the struct sizes, not the field positions).

const HEADER_MAGIC_AT = 0
const HEADER_VERSION_AT = 4
const HEADER_BASE_OFFSET_AT = 8
const HEADER_CREATED_MS_AT = 16
const HEADER_CRC_AT = FILE_HEADER_BYTES - 4 // u32 crc32c of every header byte before it
const FRAME_RELATIVE_OFFSET_AT = 8
const CHECKPOINT_VERSION_AT = 4
const CHECKPOINT_CRC_AT = CHECKPOINT_BYTES - 4 // u32 crc32c of every checkpoint byte before it

// ---------------------------------------------------------------------------------------------
// Records: payloads and timestamps derive from the offset (and a generation, for records rewritten
// after a cut), so every test can say exactly which bytes belong where.

function payloadFor(offset: number, generation = 0): Buffer {
  const bytes = Buffer.alloc(40 + ((offset * 37 + generation * 11) % 90))
  for (let i = 0; i < bytes.length; i++) bytes[i] = (offset * 31 + generation * 17 + i * 7) & 0xff
  bytes.write(`g${generation}:o${offset}:`, 'latin1')
  return bytes
}

function timestampFor(offset: number): number {
  return 1_700_000_000_000 + offset * 10
}

function frameBytes(offset: number, generation = 0): number {
  return FRAME_HEADER_BYTES + payloadFor(offset, generation).length
}

/** Position of `offset`'s frame in the store of the segment whose first record is `baseOffset`. */
function framePosition(baseOffset: number, offset: number): number {
  let position = FILE_HEADER_BYTES
  for (let o = baseOffset; o < offset; o++) position += frameBytes(o)
  return position
}

function framesBytes(from: number, to: number): number {
  let bytes = 0
  for (let o = from; o < to; o++) bytes += frameBytes(o)
  return bytes
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)
}

async function appendSingles(log: SegmentedLog, from: number, to: number, generation = 0): Promise<void> {
  const offsets = await Promise.all(
    range(from, to).map((offset) => log.append(payloadFor(offset, generation), { timestampMs: timestampFor(offset) })),
  )
  expect(offsets).toEqual(range(from, to))
}

async function appendBatch(log: SegmentedLog, from: number, to: number, generation = 0): Promise<void> {
  const offsets = range(from, to)
  const first = await log.appendBatch(
    offsets.map((offset) => payloadFor(offset, generation)),
    { timestampMs: offsets.map(timestampFor) },
  )
  expect(first).toBe(from)
}

/** Every record in [from, to) reads back as payloadFor(offset, generationOf(offset)). */
function expectIntact(log: SegmentedLog, from: number, to: number, generationOf: (offset: number) => number = () => 0): void {
  const wrong: number[] = []
  for (let offset = from; offset < to; offset++) {
    if (Buffer.compare(log.read(offset), payloadFor(offset, generationOf(offset))) !== 0) wrong.push(offset)
  }
  expect(wrong).toEqual([])
}

// ---------------------------------------------------------------------------------------------
// Handles, errors, files

const openLogs: SegmentedLog[] = []

async function open(dir: string, options?: SegmentedLogOptions): Promise<SegmentedLog> {
  const log = await SegmentedLog.open(dir, options)
  openLogs.push(log)
  return log
}

// Registered after temp-dir's hook, so it runs first: logs close before their directories go.
afterEach(async () => {
  for (const log of openLogs.splice(0)) await log.close().catch(() => undefined)
})

function errorOf(action: () => unknown): unknown {
  try {
    action()
  } catch (error) {
    return error
  }
  return undefined
}

/** The error `SegmentedLog.open` rejects with, or undefined (the log is then closed after the test). */
async function openError(dir: string, options?: SegmentedLogOptions): Promise<unknown> {
  try {
    await open(dir, options)
  } catch (error) {
    return error
  }
  return undefined
}

function expectLogError(error: unknown, expected: { code: LogErrorCode; offset?: number; path?: string }): void {
  expect(error).toBeInstanceOf(LogError)
  expect(error).toMatchObject(expected)
}

async function collectRecords(log: SegmentedLog, from?: number): Promise<{ offsets: number[]; wrong: number[]; error: unknown }> {
  const offsets: number[] = []
  const wrong: number[] = []
  try {
    for await (const record of log.records(from === undefined ? {} : { from })) {
      offsets.push(record.offset)
      if (Buffer.compare(record.value, payloadFor(record.offset)) !== 0) wrong.push(record.offset)
    }
  } catch (error) {
    return { offsets, wrong, error }
  }
  return { offsets, wrong, error: undefined }
}

function storeFile(dir: string, baseOffset: number): string {
  return path.join(dir, segmentFileName(baseOffset, STORE_SUFFIX))
}

function indexFile(dir: string, baseOffset: number): string {
  return path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX))
}

/** Every file in `dir` by name, except the writer's LOCK (taken and released by each open). */
function snapshotDir(dir: string): Record<string, Buffer> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((name) => name !== LOCK_FILE)
      .map((name) => [name, fs.readFileSync(path.join(dir, name))]),
  )
}

function fileSize(file: string): number {
  return fs.statSync(file).size
}

function cutFile(file: string, bytes: number): void {
  expect(fileSize(file)).toBeGreaterThan(bytes)
  fs.truncateSync(file, bytes)
}

function overwrite(file: string, position: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, position)
  } finally {
    fs.closeSync(fd)
  }
}

function flipByte(file: string, position: number): void {
  const bytes = fs.readFileSync(file)
  expect(position).toBeLessThan(bytes.length)
  bytes.writeUInt8(bytes.readUInt8(position) ^ 0xff, position)
  fs.writeFileSync(file, bytes)
}

/** Deterministic junk (mulberry32), so a failure reproduces. */
function seededBytes(seed: number, length: number): Buffer {
  let state = seed >>> 0
  const bytes = Buffer.alloc(length)
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    bytes[i] = (t ^ (t >>> 14)) & 0xff
  }
  return bytes
}

/** Rewrites the u16 version of a header or checkpoint and recomputes its CRC-32C, as encodeFileHeader does. */
function setFormatVersion(file: string, version: number, versionAt: number, crcAt: number): void {
  const bytes = fs.readFileSync(file)
  expect(bytes.readUInt16LE(versionAt)).toBe(FORMAT_VERSION)
  expect(bytes.readUInt32LE(crcAt)).toBe(crc32c(bytes.subarray(0, crcAt)))
  bytes.writeUInt16LE(version, versionAt)
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, crcAt)), crcAt)
  fs.writeFileSync(file, bytes)
}

// ---------------------------------------------------------------------------------------------
// Stopping a log

type Shutdown = 'clean close' | 'crash (clean-shutdown marker removed after close)' | 'crash (directory copied while the writer was open)'
const CRASHES: Shutdown[] = ['crash (clean-shutdown marker removed after close)', 'crash (directory copied while the writer was open)']
const SHUTDOWNS: Shutdown[] = ['clean close', ...CRASHES]

/** Opens a new log, lets `write` fill it, stops it as `shutdown` says and returns the directory to reopen. */
async function writeLog(shutdown: Shutdown, options: SegmentedLogOptions, write: (log: SegmentedLog) => Promise<void>): Promise<string> {
  const dir = tempDir('recovery')
  const log = await open(dir, options)
  await write(log)
  if (shutdown === 'crash (directory copied while the writer was open)') {
    const copy = tempDir('crashed-copy')
    fs.cpSync(dir, copy, { recursive: true })
    await log.close()
    return copy
  }
  await log.close()
  if (shutdown === 'crash (clean-shutdown marker removed after close)') {
    const marker = path.join(dir, CLEAN_SHUTDOWN_FILE)
    expect(fs.existsSync(marker)).toBe(true)
    fs.rmSync(marker)
  }
  return dir
}

// Three segments of SEGMENT_RECORDS records: bases 0, 8 and 16 (the newest, holding 4 records).
const SEGMENT_RECORDS = 8
const COUNT = 20
const SEALED_BASE = 8
const NEWEST_BASE = 16
const THREE_SEGMENTS: SegmentedLogOptions = { segmentRecordsMax: SEGMENT_RECORDS }

function writeThreeSegments(shutdown: Shutdown, options: SegmentedLogOptions = {}): Promise<string> {
  return writeLog(shutdown, { ...THREE_SEGMENTS, ...options }, (log) => appendSingles(log, 0, COUNT))
}

// ---------------------------------------------------------------------------------------------

describe('SegmentedLog', () => {
  describe('recovery', () => {
    describe('a torn tail', () => {
      const RECORDS = 10
      const LAST = RECORDS - 1
      const TORN = [
        { where: 'in the middle of the last payload', kept: FRAME_HEADER_BYTES + Math.floor(payloadFor(LAST).length / 2) },
        { where: 'one byte before the end of the last frame', kept: frameBytes(LAST) - 1 },
        { where: 'right after the last frame header', kept: FRAME_HEADER_BYTES },
        { where: 'inside the last frame header', kept: Math.floor(FRAME_HEADER_BYTES / 2) },
        { where: 'one byte into the last frame', kept: 1 },
      ]

      describe.each(SHUTDOWNS)('after a %s', (shutdown) => {
        it.each(TORN)('cuts exactly the torn record when the store ends $where', async ({ kept }) => {
          const dir = await writeLog(shutdown, {}, (log) => appendSingles(log, 0, RECORDS))
          const tornAt = framePosition(0, LAST)
          cutFile(storeFile(dir, 0), tornAt + kept)

          const log = await open(dir)
          expect(log.startOffset).toBe(0)
          expect(log.endOffset).toBe(LAST)
          expectIntact(log, 0, LAST)
          expectLogError(errorOf(() => log.read(LAST)), { code: 'OFFSET_OUT_OF_RANGE', offset: LAST })
          expect(fileSize(storeFile(dir, 0))).toBe(tornAt)
          expect(fileSize(indexFile(dir, 0))).toBe(FILE_HEADER_BYTES + LAST * INDEX_ENTRY_BYTES)
          expect(log.recovery).toEqual({
            uncleanShutdown: shutdown !== 'clean close',
            scanned: true,
            recordsCut: expect.any(Number),
            bytesCut: kept,
            segmentsRemoved: 0,
            reason: expect.any(String),
          })
        })

        it.each(TORN)('continues appending at the torn offset when the store ends $where', async ({ kept }) => {
          const dir = await writeLog(shutdown, {}, (log) => appendSingles(log, 0, RECORDS))
          cutFile(storeFile(dir, 0), framePosition(0, LAST) + kept)

          const log = await open(dir)
          expect(await log.append(payloadFor(LAST, 1), { timestampMs: timestampFor(LAST) })).toBe(LAST)
          expect(await log.append(payloadFor(RECORDS, 1), { timestampMs: timestampFor(RECORDS) })).toBe(RECORDS)
          expectIntact(log, 0, RECORDS + 1, (offset) => (offset >= LAST ? 1 : 0))
          await log.close()

          const reopened = await open(dir)
          expect(reopened.recovery.scanned).toBe(false)
          expect(reopened.endOffset).toBe(RECORDS + 1)
          expectIntact(reopened, 0, RECORDS + 1, (offset) => (offset >= LAST ? 1 : 0))
        })
      })

      it('counts a torn record whose frame header survived in recovery.recordsCut', async () => {
        const dir = await writeLog('crash (clean-shutdown marker removed after close)', {}, (log) => appendSingles(log, 0, RECORDS))
        cutFile(storeFile(dir, 0), framePosition(0, LAST) + FRAME_HEADER_BYTES + Math.floor(payloadFor(LAST).length / 2))

        const log = await open(dir)
        expect(log.endOffset).toBe(LAST)
        expect(log.recovery.recordsCut).toBe(1)
      })
    })

    describe('garbage after the last record', () => {
      const RECORDS = 10
      const GARBAGE = [
        { kind: 'random bytes', bytes: (): Buffer => seededBytes(1, 300) },
        { kind: 'zeros (a preallocated tail)', bytes: (): Buffer => Buffer.alloc(4096) },
        { kind: 'fewer bytes than a frame header', bytes: (): Buffer => seededBytes(2, FRAME_HEADER_BYTES - 1) },
        { kind: 'a copy of the first frame', bytes: (store: string): Buffer => fs.readFileSync(store).subarray(FILE_HEADER_BYTES, framePosition(0, 1)) },
        { kind: 'a copy of the last frame', bytes: (store: string): Buffer => fs.readFileSync(store).subarray(framePosition(0, RECORDS - 1)) },
      ]

      describe.each(SHUTDOWNS)('after a %s', (shutdown) => {
        it.each(GARBAGE)('is cut when it is $kind, and appends continue after the last record', async ({ bytes }) => {
          const dir = await writeLog(shutdown, {}, (log) => appendSingles(log, 0, RECORDS))
          const store = storeFile(dir, 0)
          const storeBytes = fileSize(store)
          const garbage = Buffer.from(bytes(store))
          fs.appendFileSync(store, garbage)

          const log = await open(dir)
          expect(log.endOffset).toBe(RECORDS)
          expectIntact(log, 0, RECORDS)
          expect(fileSize(store)).toBe(storeBytes)
          expect(log.recovery).toEqual({
            uncleanShutdown: shutdown !== 'clean close',
            scanned: true,
            recordsCut: 0,
            bytesCut: garbage.length,
            segmentsRemoved: 0,
            reason: expect.any(String),
          })
          expect(await log.append(payloadFor(RECORDS))).toBe(RECORDS)
          await log.close()

          const reopened = await open(dir)
          expect(reopened.endOffset).toBe(RECORDS + 1)
          expectIntact(reopened, 0, RECORDS + 1)
        })
      })
    })

    // Index damage rows, applied to the index file of one segment. `entries` is the number of entries
    // the intact file holds.
    const INDEX_DAMAGE = [
      { damage: 'random bytes over the whole file (same length)', apply: (file: string) => overwrite(file, 0, seededBytes(3, fileSize(file))) },
      {
        damage: 'random bytes over its entries (header intact)',
        apply: (file: string) => overwrite(file, FILE_HEADER_BYTES, seededBytes(4, fileSize(file) - FILE_HEADER_BYTES)),
      },
      { damage: 'every byte 0xff', apply: (file: string) => fs.writeFileSync(file, Buffer.alloc(fileSize(file), 0xff)) },
      { damage: 'one zero entry appended', apply: (file: string) => fs.appendFileSync(file, Buffer.alloc(INDEX_ENTRY_BYTES)) },
      {
        damage: '64 zero entries appended (the proglog/LavinMQ preallocation bug)',
        apply: (file: string) => fs.appendFileSync(file, Buffer.alloc(64 * INDEX_ENTRY_BYTES)),
      },
      {
        damage: 'a partial zero entry appended',
        apply: (file: string) => fs.appendFileSync(file, Buffer.alloc(INDEX_ENTRY_BYTES / 2)),
        harmlessWhenSealed: true, // whole entries still agree with the store: a writer may leave the file as it is
      },
      { damage: 'the file deleted', apply: (file: string) => fs.rmSync(file) },
      { damage: 'a cut inside its last entry', apply: (file: string) => cutFile(file, fileSize(file) - INDEX_ENTRY_BYTES / 2) },
      { damage: 'its last entry missing', apply: (file: string) => cutFile(file, fileSize(file) - INDEX_ENTRY_BYTES) },
      { damage: 'only its header left', apply: (file: string) => cutFile(file, FILE_HEADER_BYTES) },
      { damage: 'a cut inside its header', apply: (file: string) => cutFile(file, FILE_HEADER_BYTES / 2) },
      { damage: 'an empty file', apply: (file: string) => cutFile(file, 0) },
      { damage: 'a flipped byte in its header checksum', apply: (file: string) => flipByte(file, HEADER_CRC_AT) },
    ]
    /** Junk over the second entry only: the last entry still agrees with the store. */
    const MIDDLE_ENTRY_DAMAGE = {
      damage: 'junk in its second entry (last entry intact)',
      apply: (file: string) => overwrite(file, FILE_HEADER_BYTES + INDEX_ENTRY_BYTES, seededBytes(5, INDEX_ENTRY_BYTES)),
    }

    describe("damage to the newest segment's index", () => {
      const NEWEST_SHUTDOWNS: Shutdown[] = ['clean close', 'crash (clean-shutdown marker removed after close)']

      describe.each(NEWEST_SHUTDOWNS)('after a %s', (shutdown) => {
        it.each(INDEX_DAMAGE)('rebuilds an index with $damage from the store, without inflating endOffset', async ({ apply }) => {
          const dir = await writeThreeSegments(shutdown)
          const index = indexFile(dir, NEWEST_BASE)
          const intact = fs.readFileSync(index)
          apply(index)

          const log = await open(dir)
          expect(log.endOffset).toBe(COUNT)
          expect(log.recovery).toMatchObject({ scanned: true, recordsCut: 0, bytesCut: 0, segmentsRemoved: 0 })
          expect(fs.readFileSync(index)).toEqual(intact)
          expectIntact(log, 0, COUNT)
          expect(log.offsetForTimestamp(timestampFor(NEWEST_BASE + 1))).toBe(NEWEST_BASE + 1)
          expect(await log.append(payloadFor(COUNT))).toBe(COUNT)
          await log.close()

          const reopened = await open(dir)
          expect(reopened.recovery.scanned).toBe(false)
          expect(reopened.endOffset).toBe(COUNT + 1)
          expectIntact(reopened, 0, COUNT + 1)
        })
      })

      it('reads every record when one entry in the middle is junk and the last entry is intact (clean close)', async () => {
        const dir = await writeThreeSegments('clean close')
        MIDDLE_ENTRY_DAMAGE.apply(indexFile(dir, NEWEST_BASE))

        const log = await open(dir)
        expect(log.endOffset).toBe(COUNT)
        expectIntact(log, 0, COUNT)
      })

      it('a readOnly handle does not count zero entries appended to the newest index', async () => {
        const dir = await writeThreeSegments('clean close')
        fs.appendFileSync(indexFile(dir, NEWEST_BASE), Buffer.alloc(64 * INDEX_ENTRY_BYTES))

        const reader = await open(dir, { readOnly: true })
        expect(reader.endOffset).toBe(COUNT)
        expectIntact(reader, 0, COUNT)
        expectLogError(errorOf(() => reader.read(COUNT)), { code: 'OFFSET_OUT_OF_RANGE' })
      })
    })

    describe("damage to a sealed segment's index", () => {
      const HANDLES = [
        { handle: 'writer', options: { mmap: 'never' } },
        { handle: 'writer', options: { mmap: 'always' } },
        { handle: 'readOnly handle', options: { mmap: 'always', readOnly: true } },
      ] satisfies { handle: string; options: SegmentedLogOptions }[]
      const SEALED_DAMAGE = [...INDEX_DAMAGE, MIDDLE_ENTRY_DAMAGE]

      describe.each(HANDLES)('read by a $handle (mmap $options.mmap)', ({ options }) => {
        it.each(SEALED_DAMAGE)('returns the right bytes for every record when the index has $damage', async (row) => {
          const { apply } = row
          const dir = await writeThreeSegments('clean close')
          const index = indexFile(dir, SEALED_BASE)
          const intact = fs.readFileSync(index)
          apply(index)
          const damaged = fs.existsSync(index) ? fs.readFileSync(index) : undefined

          const log = await open(dir, options)
          expect(log.endOffset).toBe(COUNT)
          expectIntact(log, 0, COUNT)
          // Read again: a rebuilt index must keep serving the right bytes.
          expectIntact(log, SEALED_BASE, NEWEST_BASE)
          if (options.readOnly) {
            // A reader repairs in memory only.
            expect(fs.existsSync(index) ? fs.readFileSync(index) : undefined).toEqual(damaged)
          } else if ('harmlessWhenSealed' in row) {
            expect([intact, damaged]).toContainEqual(fs.readFileSync(index))
          } else {
            // The writer wrote the rebuilt index back.
            expect(fs.readFileSync(index)).toEqual(intact)
          }
        })
      })

      it.each([INDEX_DAMAGE[0]!, MIDDLE_ENTRY_DAMAGE])('offsetForTimestamp finds the right offsets in a sealed segment whose index has $damage', async ({ apply }) => {
        const dir = await writeThreeSegments('clean close')
        apply(indexFile(dir, SEALED_BASE))

        const log = await open(dir)
        const found = range(0, COUNT).map((offset) => log.offsetForTimestamp(timestampFor(offset)))
        expect(found).toEqual(range(0, COUNT))
      })
    })

    describe('a damaged record', () => {
      const PAYLOAD_FLIPS = [
        { segment: 'a sealed segment', bad: SEALED_BASE + 3, options: { mmap: 'never' } },
        { segment: 'a sealed segment', bad: SEALED_BASE + 3, options: { mmap: 'always' } },
        { segment: 'the first segment', bad: 0, options: { mmap: 'always' } },
        { segment: 'the newest segment, after a clean close', bad: NEWEST_BASE + 1, options: { mmap: 'never' } },
      ] satisfies { segment: string; bad: number; options: SegmentedLogOptions }[]

      function flipPayloadByte(dir: string, offset: number): void {
        const base = offset - (offset % SEGMENT_RECORDS)
        flipByte(storeFile(dir, base), framePosition(base, offset) + FRAME_HEADER_BYTES + Math.floor(payloadFor(offset).length / 2))
      }

      it.each(PAYLOAD_FLIPS)('read() of a record with a flipped payload byte in $segment (mmap $options.mmap) throws CORRUPT_RECORD; its neighbours read fine', async ({ bad, options }) => {
        const dir = await writeThreeSegments('clean close')
        flipPayloadByte(dir, bad)
        const base = bad - (bad % SEGMENT_RECORDS)

        const log = await open(dir, options)
        expect(log.endOffset).toBe(COUNT)
        expectLogError(errorOf(() => log.read(bad)), { code: 'CORRUPT_RECORD', offset: bad, path: storeFile(dir, base) })
        expectLogError(errorOf(() => log.readRecord(bad)), { code: 'CORRUPT_RECORD', offset: bad })
        expectIntact(log, 0, bad)
        expectIntact(log, bad + 1, COUNT)
        // Still damaged on a second try: nothing was "repaired" into wrong bytes.
        expectLogError(errorOf(() => log.read(bad)), { code: 'CORRUPT_RECORD', offset: bad })
      })

      it.each(PAYLOAD_FLIPS)('records() throws CORRUPT_RECORD at a damaged record in $segment (mmap $options.mmap) and never skips it', async ({ bad, options }) => {
        const dir = await writeThreeSegments('clean close')
        flipPayloadByte(dir, bad)

        const log = await open(dir, options)
        const fromStart = await collectRecords(log)
        expect(fromStart.offsets).toEqual(range(0, bad))
        expect(fromStart.wrong).toEqual([])
        expectLogError(fromStart.error, { code: 'CORRUPT_RECORD', offset: bad })

        const afterIt = await collectRecords(log, bad + 1)
        expect(afterIt).toEqual({ offsets: range(bad + 1, COUNT), wrong: [], error: undefined })
      })

      it('a damaged frame header in a sealed segment makes only that record unreadable, whichever record is read first', async () => {
        const dir = await writeThreeSegments('clean close')
        const bad = SEALED_BASE + 3
        flipByte(storeFile(dir, SEALED_BASE), framePosition(SEALED_BASE, bad) + FRAME_RELATIVE_OFFSET_AT)

        const log = await open(dir)
        expectIntact(log, bad + 1, NEWEST_BASE)
        expectLogError(errorOf(() => log.read(bad)), { code: 'CORRUPT_RECORD', offset: bad })
        expectIntact(log, bad + 1, NEWEST_BASE)
        await log.close()

        const reopened = await open(dir)
        expectIntact(reopened, bad + 1, NEWEST_BASE)
        expectLogError(errorOf(() => reopened.read(bad)), { code: 'CORRUPT_RECORD', offset: bad })
      })
    })

    describe('a damaged store header', () => {
      const HEADER_FIELDS = [
        { field: 'magic number', at: HEADER_MAGIC_AT },
        { field: 'format version', at: HEADER_VERSION_AT },
        { field: 'base offset', at: HEADER_BASE_OFFSET_AT },
        { field: 'creation time', at: HEADER_CREATED_MS_AT },
        { field: 'checksum', at: HEADER_CRC_AT },
      ]

      describe.each(SHUTDOWNS)('after a %s', (shutdown) => {
        it.each(HEADER_FIELDS)('a flipped byte in the $field of the newest store fails open with CORRUPT_FILE and changes no file', async ({ at }) => {
          const dir = await writeThreeSegments(shutdown)
          const store = storeFile(dir, NEWEST_BASE)
          flipByte(store, at)
          const before = snapshotDir(dir)

          expectLogError(await openError(dir), { code: 'CORRUPT_FILE', path: store })
          // The failed open released the lock and left the evidence alone.
          expectLogError(await openError(dir), { code: 'CORRUPT_FILE', path: store })
          expect(snapshotDir(dir)).toEqual(before)
        })
      })

      it.each(HEADER_FIELDS)('a flipped byte in the $field of a sealed store makes reads of that segment throw CORRUPT_FILE, never bytes', async ({ at }) => {
        const dir = await writeThreeSegments('clean close')
        const store = storeFile(dir, SEALED_BASE)
        flipByte(store, at)

        const log = await open(dir)
        expect(log.endOffset).toBe(COUNT)
        for (const offset of range(SEALED_BASE, NEWEST_BASE)) {
          expectLogError(errorOf(() => log.read(offset)), { code: 'CORRUPT_FILE', path: store })
        }
        expectIntact(log, 0, SEALED_BASE)
        expectIntact(log, NEWEST_BASE, COUNT)
      })
    })

    describe('an unknown format version', () => {
      const NEXT_VERSION = FORMAT_VERSION + 1
      const VERSIONED = [
        { file: 'the newest store', fails: 'open', damage: (dir: string) => setFormatVersion(storeFile(dir, NEWEST_BASE), NEXT_VERSION, HEADER_VERSION_AT, HEADER_CRC_AT) },
        { file: 'the newest index', fails: 'open', damage: (dir: string) => setFormatVersion(indexFile(dir, NEWEST_BASE), NEXT_VERSION, HEADER_VERSION_AT, HEADER_CRC_AT) },
        {
          file: 'the log-start-offset checkpoint',
          fails: 'open',
          damage: (dir: string) => setFormatVersion(path.join(dir, CHECKPOINT_FILE), NEXT_VERSION, CHECKPOINT_VERSION_AT, CHECKPOINT_CRC_AT),
        },
        { file: 'a sealed store', fails: 'read', damage: (dir: string) => setFormatVersion(storeFile(dir, SEALED_BASE), NEXT_VERSION, HEADER_VERSION_AT, HEADER_CRC_AT) },
        { file: 'a sealed index', fails: 'read', damage: (dir: string) => setFormatVersion(indexFile(dir, SEALED_BASE), NEXT_VERSION, HEADER_VERSION_AT, HEADER_CRC_AT) },
      ] as const

      it.each(VERSIONED)('in $file fails $fails with UNSUPPORTED_VERSION and leaves every file as it was', async ({ fails, damage }) => {
        const dir = await writeLog('clean close', THREE_SEGMENTS, async (log) => {
          await appendSingles(log, 0, COUNT)
          expect(await log.deleteBefore(1)).toBe(0) // writes the checkpoint
        })
        damage(dir)
        const before = snapshotDir(dir)

        if (fails === 'open') {
          expectLogError(await openError(dir), { code: 'UNSUPPORTED_VERSION' })
        } else {
          const log = await open(dir)
          expectLogError(errorOf(() => log.read(SEALED_BASE + 1)), { code: 'UNSUPPORTED_VERSION' })
          expectIntact(log, NEWEST_BASE, COUNT)
          await log.close()
        }
        expect(snapshotDir(dir)).toEqual(before)
      })
    })

    describe('a truncate that cut inside a batch', () => {
      // Found by the crash harness: the record before the cut did not end a batch, so recovery took
      // the acknowledged records kept by the truncate for an unfinished batch and cut them too.
      describe.each(SHUTDOWNS)('after a %s', (shutdown) => {
        it.each([
          ['in the active segment', {}],
          ['in a sealed segment that becomes active again', { segmentRecordsMax: 8 }],
        ] as const)('keeps every record before the cut (%s)', async (_where, options) => {
          const dir = await writeLog(shutdown, options, async (log) => {
            await appendSingles(log, 0, 3)
            await appendBatch(log, 3, 13) // offsets 3..12: with 8 per segment the batch spans a roll
            await log.truncate(6)
          })
          const log = await open(dir, options)
          expect(log.endOffset).toBe(6)
          expectIntact(log, 0, 6)
          await appendSingles(log, 6, 8, 1)
          await log.close()
          const reopened = await open(dir, options)
          expect(reopened.recovery.scanned).toBe(false) // the clean-open tail check accepts the cut tail
          expect(reopened.endOffset).toBe(8)
          expectIntact(reopened, 0, 8, (offset) => (offset >= 6 ? 1 : 0))
        })
      })
    })

    describe('an appendBatch unfinished at a crash', () => {
      const SINGLES = 5
      const BATCH = 6

      describe.each(SHUTDOWNS)('after a %s', (shutdown) => {
        it.each([1, 3, BATCH - 1])('disappears entirely when only %i of its frames reached the store', async (framesKept) => {
          const dir = await writeLog(shutdown, {}, async (log) => {
            await appendSingles(log, 0, SINGLES)
            await appendBatch(log, SINGLES, SINGLES + BATCH)
          })
          cutFile(storeFile(dir, 0), framePosition(0, SINGLES + framesKept))

          const log = await open(dir)
          expect(log.endOffset).toBe(SINGLES)
          expectIntact(log, 0, SINGLES)
          expect(fileSize(storeFile(dir, 0))).toBe(framePosition(0, SINGLES))
          expect(fileSize(indexFile(dir, 0))).toBe(FILE_HEADER_BYTES + SINGLES * INDEX_ENTRY_BYTES)
          expect(log.recovery).toEqual({
            uncleanShutdown: shutdown !== 'clean close',
            scanned: true,
            recordsCut: framesKept,
            bytesCut: framesBytes(SINGLES, SINGLES + framesKept),
            segmentsRemoved: 0,
            reason: expect.any(String),
          })

          await appendBatch(log, SINGLES, SINGLES + 2, 1)
          await log.close()
          const reopened = await open(dir)
          expect(reopened.recovery.scanned).toBe(false)
          expect(reopened.endOffset).toBe(SINGLES + 2)
          expectIntact(reopened, 0, SINGLES + 2, (offset) => (offset >= SINGLES ? 1 : 0))
        })
      })

      describe('that spans a segment roll', () => {
        const RECORDS_MAX = 4
        const SPAN_BATCH = 5
        const LAYOUTS = [
          { layout: 'begins in the first segment', singles: 2 }, // segments [0..3] [4..6]
          { layout: 'begins in a later segment', singles: 6 }, // segments [0..3] [4..7] [8..10]
        ]
        const NEWEST_DAMAGE = [
          { damage: 'keeps one of its frames', framesKept: 1, filesExist: true },
          { damage: 'keeps only its header', framesKept: 0, filesExist: true },
          { damage: 'is cut inside its header', framesKept: 0, filesExist: true },
          { damage: 'was never created (files missing)', framesKept: 0, filesExist: false },
        ]

        function shape(singles: number): { firstBase: number; newestBase: number; end: number; bases: number[] } {
          const end = singles + SPAN_BATCH
          const firstBase = singles - (singles % RECORDS_MAX)
          const newestBase = (end - 1) - ((end - 1) % RECORDS_MAX)
          return { firstBase, newestBase, end, bases: range(0, newestBase / RECORDS_MAX + 1).map((i) => i * RECORDS_MAX) }
        }

        function damageNewest(dir: string, newestBase: number, damage: string): void {
          const store = storeFile(dir, newestBase)
          if (damage === 'keeps one of its frames') cutFile(store, framePosition(newestBase, newestBase + 1))
          else if (damage === 'keeps only its header') cutFile(store, FILE_HEADER_BYTES)
          else if (damage === 'is cut inside its header') cutFile(store, FILE_HEADER_BYTES / 2)
          else {
            fs.rmSync(store)
            fs.rmSync(indexFile(dir, newestBase))
          }
        }

        describe.each(SHUTDOWNS)('after a %s', (shutdown) => {
          describe.each(LAYOUTS)('when it $layout', ({ singles }) => {
            it.each(NEWEST_DAMAGE)('disappears entirely, also from the older segment, when the newest segment $damage', async ({ damage, framesKept, filesExist }) => {
              const { firstBase, newestBase, end, bases } = shape(singles)
              const dir = await writeLog(shutdown, { segmentRecordsMax: RECORDS_MAX }, async (log) => {
                await appendSingles(log, 0, singles)
                await appendBatch(log, singles, end)
                expect(log.segments.map((segment) => segment.baseOffset)).toEqual(bases)
              })
              damageNewest(dir, newestBase, damage)

              const log = await open(dir, { segmentRecordsMax: RECORDS_MAX })
              expect(log.endOffset).toBe(singles)
              expect(log.segments.map((segment) => segment.baseOffset)).toEqual(bases.filter((base) => base <= firstBase))
              expectIntact(log, 0, singles)
              expect(fs.existsSync(storeFile(dir, newestBase))).toBe(false)
              expect(fs.existsSync(indexFile(dir, newestBase))).toBe(false)
              expect(fileSize(storeFile(dir, firstBase))).toBe(framePosition(firstBase, singles))
              expect(log.recovery).toEqual({
                uncleanShutdown: shutdown !== 'clean close',
                scanned: true,
                recordsCut: framesKept + (newestBase - singles),
                bytesCut: framesBytes(newestBase, newestBase + framesKept) + framesBytes(singles, newestBase),
                segmentsRemoved: filesExist ? 1 : 0,
                reason: expect.any(String),
              })

              await appendBatch(log, singles, end, 1)
              expectIntact(log, 0, end, (offset) => (offset >= singles ? 1 : 0))
              await log.close()
              const reopened = await open(dir, { segmentRecordsMax: RECORDS_MAX })
              expect(reopened.recovery.scanned).toBe(false)
              expect(reopened.endOffset).toBe(end)
              expectIntact(reopened, 0, end, (offset) => (offset >= singles ? 1 : 0))
            })

            it('survives whole when every frame reached the store', async () => {
              const { end, bases } = shape(singles)
              const dir = await writeLog(shutdown, { segmentRecordsMax: RECORDS_MAX }, async (log) => {
                await appendSingles(log, 0, singles)
                await appendBatch(log, singles, end)
              })

              const log = await open(dir, { segmentRecordsMax: RECORDS_MAX })
              expect(log.endOffset).toBe(end)
              expect(log.segments.map((segment) => segment.baseOffset)).toEqual(bases)
              expectIntact(log, 0, end)
              expect(log.recovery).toMatchObject({ recordsCut: 0, bytesCut: 0, segmentsRemoved: 0 })
            })
          })
        })

        it.each(LAYOUTS)('is not shown by a readOnly handle when it $layout and the newest segment keeps only its header', async ({ singles }) => {
          const { newestBase, end } = shape(singles)
          const dir = await writeLog('crash (clean-shutdown marker removed after close)', { segmentRecordsMax: RECORDS_MAX }, async (log) => {
            await appendSingles(log, 0, singles)
            await appendBatch(log, singles, end)
          })
          damageNewest(dir, newestBase, 'keeps only its header')

          const reader = await open(dir, { readOnly: true, segmentRecordsMax: RECORDS_MAX })
          expect(reader.endOffset).toBe(singles)
          expectIntact(reader, 0, singles)
          expectLogError(errorOf(() => reader.read(singles)), { code: 'OFFSET_OUT_OF_RANGE' })
        })
      })
    })

    describe('stray files', () => {
      const TEMP_FILES = [
        `${segmentFileName(0, INDEX_SUFFIX)}.4242${TEMP_SUFFIX}`,
        `${segmentFileName(0, STORE_SUFFIX)}.cut${TEMP_SUFFIX}`,
        `${CHECKPOINT_FILE}.4242${TEMP_SUFFIX}`,
        `LOCK.4242.4242.00ff${TEMP_SUFFIX}`,
        `${CLEAN_SHUTDOWN_FILE}.4242${TEMP_SUFFIX}`,
      ]
      const ORPHAN_INDEXES = [segmentFileName(4, INDEX_SUFFIX), segmentFileName(1000, INDEX_SUFFIX)]
      const UNKNOWN = [
        'README.txt',
        `${segmentFileName(0, STORE_SUFFIX)}.bak`,
        '1.log',
        `0${segmentFileName(0, STORE_SUFFIX)}`, // 21 digits
        '99999999999999999999.log', // 20 digits, beyond 2^53
        'notes',
      ]

      function addStrays(dir: string): void {
        for (const name of TEMP_FILES) fs.writeFileSync(path.join(dir, name), seededBytes(6, 100))
        for (const name of ORPHAN_INDEXES) fs.writeFileSync(path.join(dir, name), seededBytes(7, FILE_HEADER_BYTES + INDEX_ENTRY_BYTES))
        for (const name of UNKNOWN.slice(0, -1)) fs.writeFileSync(path.join(dir, name), seededBytes(8, 64))
        fs.mkdirSync(path.join(dir, UNKNOWN[UNKNOWN.length - 1]!))
      }

      describe.each(SHUTDOWNS)('after a %s', (shutdown) => {
        it('never break opening by a writer, which removes temp files and orphan indexes and keeps unknown names', async () => {
          const dir = await writeThreeSegments(shutdown)
          addStrays(dir)

          const log = await open(dir, THREE_SEGMENTS)
          expect(log.endOffset).toBe(COUNT)
          expectIntact(log, 0, COUNT)
          expect(log.recovery).toMatchObject({ uncleanShutdown: shutdown !== 'clean close', scanned: shutdown !== 'clean close', recordsCut: 0, bytesCut: 0, segmentsRemoved: 0 })
          const names = fs.readdirSync(dir)
          for (const name of [...TEMP_FILES, ...ORPHAN_INDEXES]) expect(names).not.toContain(name)
          for (const name of UNKNOWN) expect(names).toContain(name)
          expect(await log.append(payloadFor(COUNT))).toBe(COUNT)
          await log.close()

          const reopened = await open(dir, THREE_SEGMENTS)
          expect(reopened.endOffset).toBe(COUNT + 1)
          expectIntact(reopened, 0, COUNT + 1)
        })
      })

      it('never break opening by a readOnly handle, which removes nothing', async () => {
        const dir = await writeThreeSegments('clean close')
        addStrays(dir)
        const before = fs.readdirSync(dir).sort()

        const reader = await open(dir, { readOnly: true })
        expect(reader.endOffset).toBe(COUNT)
        expectIntact(reader, 0, COUNT)
        expect(fs.readdirSync(dir).sort()).toEqual(before)
      })
    })

    describe('whether opening scans', () => {
      it('does not scan after a clean close, and reports nothing', async () => {
        const dir = await writeThreeSegments('clean close')

        const log = await open(dir, THREE_SEGMENTS)
        expect(log.recovery).toEqual({ uncleanShutdown: false, scanned: false, recordsCut: 0, bytesCut: 0, segmentsRemoved: 0, reason: undefined })
        expectIntact(log, 0, COUNT)
      })

      it('does not scan a cleanly closed empty log', async () => {
        const dir = await writeLog('clean close', {}, async () => {})

        const log = await open(dir)
        expect(log.recovery).toEqual({ uncleanShutdown: false, scanned: false, recordsCut: 0, bytesCut: 0, segmentsRemoved: 0, reason: undefined })
        expect(log.endOffset).toBe(0)
      })

      it.each(CRASHES)('scans the newest segment after a %s, cutting nothing from an intact log', async (shutdown) => {
        const dir = await writeThreeSegments(shutdown)

        const log = await open(dir, THREE_SEGMENTS)
        expect(log.recovery).toEqual({ uncleanShutdown: true, scanned: true, recordsCut: 0, bytesCut: 0, segmentsRemoved: 0, reason: expect.any(String) })
        expect(log.endOffset).toBe(COUNT)
        expectIntact(log, 0, COUNT)
      })

      it('removes the clean-shutdown marker while the log is open, so a crash after a clean reopen is detected', async () => {
        const dir = await writeThreeSegments('clean close')
        const writer = await open(dir, THREE_SEGMENTS)
        expect(fs.existsSync(path.join(dir, CLEAN_SHUTDOWN_FILE))).toBe(false)
        const crashed = tempDir('crashed-copy')
        fs.cpSync(dir, crashed, { recursive: true })
        await writer.close()
        expect(fs.existsSync(path.join(dir, CLEAN_SHUTDOWN_FILE))).toBe(true)

        const log = await open(crashed, THREE_SEGMENTS)
        expect(log.recovery).toMatchObject({ uncleanShutdown: true, scanned: true })
        expectIntact(log, 0, COUNT)
        await log.close()
        const reopened = await open(crashed, THREE_SEGMENTS)
        expect(reopened.recovery).toMatchObject({ uncleanShutdown: false, scanned: false })
        expectIntact(reopened, 0, COUNT)
      })
    })
  })
})
