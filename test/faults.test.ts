/**
 * Failing writes, fsyncs, opens, renames and cuts: the operation that meets the fault rejects with
 * a LogError carrying the fs error as its cause (LOG_FAILED from a writer, IO_ERROR from an open),
 * every append waiting on it is rejected, the log never reports later data durable, nothing
 * acknowledged is lost, and it reopens cleanly. Faults are injected by replacing node:fs functions
 * that seglog calls through the module object (test/helpers/fault-fs.ts: "fail the nth call of fn
 * on a file matching a pattern").
 */
import fs from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type Consumer, LogError, SegmentedLog, type SegmentedLogOptions, Topic } from '../src/index.js'
import { type Errno, type FaultFunction, clearFaults, injectFault, pathIs, rootErrno, watchFs } from './helpers/fault-fs.js'
import { tempDir } from './helpers/temp-dir.js'

const bytes = (offset: number): Uint8Array => new TextEncoder().encode(`record-${offset}`)
const text = (value: Uint8Array): string => new TextDecoder().decode(value)

function errnoError(code: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: injected`) as NodeJS.ErrnoException
  error.code = code
  return error
}

async function rejection(promise: Promise<unknown>): Promise<LogError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  )
  expect(outcome).toBeInstanceOf(LogError)
  return outcome as LogError
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('SegmentedLog', () => {
  describe('when fsync fails', () => {
    it('rejects every waiting append with LOG_FAILED carrying the cause, and refuses later appends', async () => {
      const dir = tempDir('fsync-fails')
      const log = await SegmentedLog.open(dir, { sync: 'always' })
      for (let offset = 0; offset < 3; offset++) await log.append(bytes(offset))
      vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, callback: (error: Error | null) => void) => {
        setImmediate(() => callback(errnoError('EIO')))
      }) as typeof fs.fdatasync)
      const waiting = [log.append(bytes(3)), log.appendBatch([bytes(4), bytes(5)]), log.append(bytes(6))]
      const errors = await Promise.all(waiting.map(rejection))
      for (const error of errors) {
        expect(error.code).toBe('LOG_FAILED')
        expect((error.cause as LogError).code).toBe('IO_ERROR')
        expect(((error.cause as LogError).cause as NodeJS.ErrnoException).code).toBe('EIO')
      }
      vi.restoreAllMocks()
      // Even with fsync working again, the handle never claims durability for what it wrote.
      expect((await rejection(log.append(bytes(7)))).code).toBe('LOG_FAILED')
      expect((await rejection(log.sync())).code).toBe('LOG_FAILED')
      expect(text(log.read(2))).toBe('record-2')
      await log.close()
    })

    it('keeps every acknowledged record, and the log reopens and takes appends', async () => {
      const dir = tempDir('fsync-fails-reopen')
      const log = await SegmentedLog.open(dir, { sync: 'always', segmentBytesMax: 256 })
      for (let offset = 0; offset < 20; offset++) await log.append(bytes(offset))
      vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, callback: (error: Error | null) => void) => {
        setImmediate(() => callback(errnoError('EIO')))
      }) as typeof fs.fdatasync)
      await rejection(log.append(bytes(20)))
      vi.restoreAllMocks()
      await log.close()

      const reopened = await SegmentedLog.open(dir, { sync: 'always', segmentBytesMax: 256 })
      expect(reopened.recovery.uncleanShutdown).toBe(true)
      expect(reopened.endOffset).toBeGreaterThanOrEqual(20)
      for (let offset = 0; offset < 20; offset++) expect(text(reopened.read(offset))).toBe(`record-${offset}`)
      const next = reopened.endOffset
      expect(await reopened.append(bytes(next))).toBe(next)
      await reopened.close()
    })
  })

  describe('when a write fails', () => {
    it.each([['ENOSPC'], ['EIO']])('rejects the appends of the failed flush with LOG_FAILED (%s) and loses nothing acknowledged', async (code) => {
      const dir = tempDir('write-fails')
      const log = await SegmentedLog.open(dir, { sync: 'never' })
      for (let offset = 0; offset < 5; offset++) await log.append(bytes(offset))
      vi.spyOn(fs, 'writeSync').mockImplementation((() => {
        throw errnoError(code)
      }) as typeof fs.writeSync)
      const error = await rejection(log.appendBatch([bytes(5), bytes(6)]))
      expect(error.code).toBe('LOG_FAILED')
      expect(((error.cause as LogError).cause as NodeJS.ErrnoException).code).toBe(code)
      vi.restoreAllMocks()
      expect((await rejection(log.append(bytes(7)))).code).toBe('LOG_FAILED')
      await log.close()

      const reopened = await SegmentedLog.open(dir)
      expect(reopened.endOffset).toBe(5)
      for (let offset = 0; offset < 5; offset++) expect(text(reopened.read(offset))).toBe(`record-${offset}`)
      expect(await reopened.append(bytes(5))).toBe(5)
      await reopened.close()
    })
  })

  describe('when the seal of a rolled segment fails to fsync', () => {
    it('acknowledges nothing in the next segment', async () => {
      const dir = tempDir('seal-fails')
      const log = await SegmentedLog.open(dir, { sync: 'always', segmentRecordsMax: 2 })
      await log.appendBatch([bytes(0), bytes(1)])
      vi.spyOn(fs, 'fsync').mockImplementation(((_fd: number, callback: (error: Error | null) => void) => {
        setImmediate(() => callback(errnoError('EIO')))
      }) as typeof fs.fsync)
      const error = await rejection(log.append(bytes(2))) // rolls: the sealed index fsync fails
      expect(error.code).toBe('LOG_FAILED')
      vi.restoreAllMocks()
      await log.close()
      const reopened = await SegmentedLog.open(dir)
      expect([text(reopened.read(0)), text(reopened.read(1))]).toEqual(['record-0', 'record-1'])
      await reopened.close()
    })
  })
})

// ---------------------------------------------------------------------------------------------
// The fault table: every injection point × errno, through test/helpers/fault-fs.ts

const WRITE_ERRNOS: readonly Errno[] = ['EIO', 'ENOSPC', 'EMFILE']
const OPEN_ERRNOS: readonly Errno[] = ['EIO', 'ENOSPC', 'EMFILE', 'EACCES']

const STORE = /\.log$/
const INDEX = /\.index$/

/**
 * A log and what was asked of it: the value attempted at each offset (appends take offsets in call
 * order, so the value of offset o is attempted[o]) and the appends that resolved.
 */
class Workload {
  readonly attempted: string[] = []
  readonly acknowledged = new Map<number, string>()
  readonly calls: Promise<number>[] = []

  constructor(readonly log: SegmentedLog) {}

  append(bytesMin = 0): Promise<number> {
    return this.appendBatch(1, bytesMin)
  }

  appendBatch(count: number, bytesMin = 0): Promise<number> {
    const values = Array.from({ length: count }, (_, i) => `record-${this.attempted.length + i}`.padEnd(bytesMin, '.'))
    this.attempted.push(...values)
    const encoded = values.map((value) => new TextEncoder().encode(value))
    const call = count === 1 ? this.log.append(encoded[0]!) : this.log.appendBatch(encoded)
    call.then(
      (first) => values.forEach((value, i) => this.acknowledged.set(first + i, value)),
      () => undefined,
    )
    this.calls.push(call)
    return call
  }

  /** Offsets below this were all acknowledged. */
  get acknowledgedEnd(): number {
    let end = 0
    for (const offset of this.acknowledged.keys()) end = Math.max(end, offset + 1)
    return end
  }
}

interface LogFaultRow {
  point: string
  fn: FaultFunction
  file: (dir: string) => RegExp
  nth?: number
  errnos?: readonly Errno[]
  options: SegmentedLogOptions
  /** Acknowledged work before the fault is armed (default: 3 single appends). */
  before?: (work: Workload) => Promise<void>
  /** Starts the work that meets the fault; returns the call that must fail. */
  act: (work: Workload) => Promise<unknown>
  /** Every append started by `act` waited on the failed call and must be rejected with it. */
  appendsReject: boolean
  /** How many appends `act` starts before the fault is reported, when that is the point of the row. */
  appendCalls?: number
  /** After reopen, records from this offset on may be gone (a failed truncate may have cut them). */
  mayCutFrom?: number
  /** After reopen, the start offsets allowed (default: the start before the fault). */
  startAfter?: readonly number[]
}

const appends = (count: number) => async (work: Workload) => {
  for (let i = 0; i < count; i++) await work.append()
}
const batch = (count: number) => async (work: Workload) => {
  await work.appendBatch(count)
}
const AT_ROLL = { sync: 'always', segmentRecordsMax: 2 } as const satisfies SegmentedLogOptions

const LOG_FAULTS: LogFaultRow[] = [
  {
    point: 'store write: the flush of appends (sync never)',
    fn: 'writeSync', file: () => STORE, options: { sync: 'never' },
    act: (work) => [work.append(), work.appendBatch(2), work.append()][0]!, appendsReject: true,
  },
  {
    point: 'store write: the flush of appends (sync always)',
    fn: 'writeSync', file: () => STORE, options: { sync: 'always' },
    act: (work) => [work.append(), work.appendBatch(2), work.append()][0]!, appendsReject: true,
  },
  {
    point: 'store write: a frame larger than the write buffer, written at once',
    fn: 'writeSync', file: () => STORE, options: { sync: 'never', writeBufferBytes: 4096 },
    act: (work) => work.append(5000), appendsReject: true,
  },
  {
    point: 'index write: sync() writes the pending entries',
    fn: 'writeSync', file: () => INDEX, options: { sync: 'never' },
    act: (work) => (work.append(), work.log.sync()), appendsReject: false,
  },
  {
    point: 'index write: sealing the segment at a roll',
    fn: 'writeSync', file: () => INDEX, options: { sync: 'never', segmentRecordsMax: 3 }, before: appends(2),
    act: (work) => [work.append(), work.append()][1]!, appendsReject: true,
  },
  {
    point: 'store fdatasync: the group commit round (sync always)',
    fn: 'fdatasync', file: () => STORE, options: { sync: 'always' },
    act: (work) => [work.append(), work.appendBatch(2), work.append()][0]!, appendsReject: true,
  },
  {
    point: 'store fdatasync: a round with appends arriving while it runs (sync always)',
    fn: 'fdatasync', file: () => STORE, options: { sync: 'always' },
    act: (work) => {
      const first = work.append()
      // Runs after the round's fdatasync started and before it fails: these wait for the next round.
      setImmediate(() => void [work.append(), work.appendBatch(2)])
      return first
    },
    appendsReject: true, appendCalls: 3,
  },
  {
    point: 'store fdatasync: sync() (sync never)',
    fn: 'fdatasync', file: () => STORE, options: { sync: 'never' },
    act: (work) => (work.append(), work.log.sync()), appendsReject: false,
  },
  {
    point: "store fdatasync: the new segment's header at a roll",
    fn: 'fdatasyncSync', file: () => STORE, options: AT_ROLL, before: appends(2),
    act: (work) => work.append(), appendsReject: true,
  },
  {
    point: "index fsync: the new segment's header at a roll",
    fn: 'fsyncSync', file: () => INDEX, options: AT_ROLL, before: appends(2),
    act: (work) => work.append(), appendsReject: true,
  },
  {
    point: 'sealed store fsync: the round after a roll',
    fn: 'fsync', file: () => STORE, options: AT_ROLL, before: appends(2),
    act: (work) => [work.append(), work.append()][0]!, appendsReject: true,
  },
  {
    point: 'sealed index fsync: the round after a roll',
    fn: 'fsync', file: () => INDEX, options: AT_ROLL, before: appends(2),
    act: (work) => [work.append(), work.append()][0]!, appendsReject: true,
  },
  {
    point: 'directory fsync: a roll',
    fn: 'fsyncSync', file: (dir) => pathIs(dir), options: AT_ROLL, before: appends(2),
    act: (work) => work.append(), appendsReject: true,
  },
  {
    point: "open: the new segment's store at a roll",
    fn: 'openSync', file: () => STORE, errnos: OPEN_ERRNOS, options: { sync: 'never', segmentRecordsMax: 2 }, before: appends(2),
    act: (work) => work.append(), appendsReject: true,
  },
  {
    point: "open: the new segment's index at a roll",
    fn: 'openSync', file: () => INDEX, errnos: OPEN_ERRNOS, options: { sync: 'never', segmentRecordsMax: 2 }, before: appends(2),
    act: (work) => work.append(), appendsReject: true,
  },
  {
    point: 'checkpoint write: deleteBefore',
    fn: 'writeSync', file: () => /checkpoint/, options: { segmentRecordsMax: 2 }, before: appends(5),
    act: (work) => work.log.deleteBefore(3), appendsReject: false, startAfter: [0],
  },
  {
    point: 'checkpoint rename: deleteBefore',
    fn: 'renameSync', file: () => /checkpoint/, options: { segmentRecordsMax: 2 }, before: appends(5),
    act: (work) => work.log.deleteBefore(3), appendsReject: false, startAfter: [0],
  },
  {
    point: 'directory fsync after the checkpoint rename: deleteBefore',
    fn: 'fsyncSync', file: (dir) => pathIs(dir), options: { segmentRecordsMax: 2 }, before: appends(5),
    act: (work) => work.log.deleteBefore(3), appendsReject: false, startAfter: [0, 3],
  },
  {
    point: 'directory fsync after deleting segments: deleteBefore',
    fn: 'fsyncSync', file: (dir) => pathIs(dir), nth: 2, options: { segmentRecordsMax: 2 }, before: appends(5),
    act: (work) => work.log.deleteBefore(3), appendsReject: false, startAfter: [3],
  },
  {
    point: 'truncate: marking the last kept record in the active store',
    fn: 'writeSync', file: () => STORE, options: {}, before: batch(6),
    act: (work) => work.log.truncate(3), appendsReject: false, mayCutFrom: 3,
  },
  {
    point: 'truncate: cutting the active store (ftruncate)',
    fn: 'ftruncateSync', file: () => STORE, options: {}, before: appends(6),
    act: (work) => work.log.truncate(3), appendsReject: false, mayCutFrom: 3,
  },
  {
    point: 'truncate: cutting the active index (ftruncate)',
    fn: 'ftruncateSync', file: () => INDEX, options: {}, before: appends(6),
    act: (work) => work.log.truncate(3), appendsReject: false, mayCutFrom: 3,
  },
  {
    point: 'truncate: marking the last kept record in a sealed store (in place)',
    fn: 'fdatasyncSync', file: () => STORE, options: { segmentRecordsMax: 4 }, before: batch(6),
    act: (work) => work.log.truncate(2), appendsReject: false, mayCutFrom: 2,
  },
  {
    point: 'truncate: cutting a sealed store (copy, then rename)',
    fn: 'renameSync', file: () => /\.log\.cut\.tmp$/, options: { segmentRecordsMax: 4 }, before: appends(6),
    act: (work) => work.log.truncate(2), appendsReject: false, mayCutFrom: 2,
  },
]

const logFaultCases = LOG_FAULTS.flatMap((row) => (row.errnos ?? WRITE_ERRNOS).map((errno) => ({ ...row, errno })))

describe('SegmentedLog under injected faults', () => {
  it.each(logFaultCases)('$point, $errno: the call rejects LOG_FAILED with the cause; nothing acknowledged is lost; it reopens', async (row) => {
    const { errno } = row
    const dir = tempDir('fault')
    watchFs()
    const work = new Workload(await SegmentedLog.open(dir, row.options))
    await (row.before ?? appends(3))(work)
    const { log } = work
    const startBefore = log.startOffset
    const callsBefore = work.calls.length
    const fault = injectFault({ fn: row.fn, errno, nth: row.nth ?? 1, file: row.file(dir) })

    const error = await rejection(row.act(work))
    expect(fault.injected).toBeGreaterThan(0)
    expect(error.code).toBe('LOG_FAILED')
    expect(rootErrno(error)).toBe(errno)
    const started = await Promise.allSettled(work.calls.slice(callsBefore))
    if (row.appendsReject) {
      expect(started.length).toBeGreaterThan(0)
      for (const outcome of started) {
        expect(outcome.status).toBe('rejected')
        expect(rootErrno((outcome as PromiseRejectedResult).reason)).toBe(errno)
      }
    }
    if (row.appendCalls !== undefined) expect(started).toHaveLength(row.appendCalls)
    // Readers are shown acknowledged records only: nothing the fault may have lost.
    expect(log.highWatermark).toBe(work.acknowledgedEnd)
    clearFaults()
    // With the disk working again, the handle still refuses: it cannot know what the fault lost.
    expect((await rejection(log.append(bytes(0)))).code).toBe('LOG_FAILED')
    expect((await rejection(log.sync())).code).toBe('LOG_FAILED')
    await log.close()

    const reopened = await SegmentedLog.open(dir, row.options)
    const kept = Math.min(work.acknowledgedEnd, row.mayCutFrom ?? Infinity)
    expect(reopened.endOffset).toBeGreaterThanOrEqual(kept)
    expect(reopened.endOffset).toBeLessThanOrEqual(work.attempted.length)
    expect(row.startAfter ?? [startBefore]).toContain(reopened.startOffset)
    // Every record there is the one appended at its offset: acknowledged ones all, the rest a prefix.
    for (let offset = reopened.startOffset; offset < reopened.endOffset; offset++) expect(text(reopened.read(offset))).toBe(work.attempted[offset])
    const next = reopened.endOffset
    expect(await reopened.append(bytes(next))).toBe(next)
    await reopened.close()
  })
})

interface OpenFaultRow {
  point: string
  fn: FaultFunction
  file: (dir: string) => RegExp
  /** The log exists (5 records, closed) before the faulty open; else the open creates it. */
  exists: boolean
}

const OPEN_FAULTS: OpenFaultRow[] = [
  { point: 'a new log: its first segment', fn: 'openSync', file: () => STORE, exists: false },
  { point: "reopen: the newest segment's store", fn: 'openSync', file: () => STORE, exists: true },
  { point: "reopen: the newest segment's index", fn: 'openSync', file: () => INDEX, exists: true },
  { point: 'reopen: the directory fsync', fn: 'fsyncSync', file: (dir) => pathIs(dir), exists: true },
]

describe('SegmentedLog.close under injected faults', () => {
  it.each([
    ['the last fsync of the store', 'fdatasyncSync', /\.log$/],
    ['the clean-shutdown marker', 'renameSync', /clean-shutdown/],
  ] as const)('ends closed and releases the lock when %s fails; the next open recovers everything acknowledged', async (_point, fn, file) => {
    const dir = tempDir('close-fault')
    watchFs()
    const log = await SegmentedLog.open(dir, { sync: 'never' })
    await log.appendBatch([Buffer.from('r0'), Buffer.from('r1')])
    const fault = injectFault({ fn, errno: 'EIO', file })
    const error = await rejection(log.close())
    expect(fault.injected).toBeGreaterThan(0)
    expect(error.code).toBe('LOG_FAILED')
    expect(rootErrno(error)).toBe('EIO')
    clearFaults()
    expect(log.isClosed).toBe(true)
    await log.close() // a second close is a no-op
    const reopened = await SegmentedLog.open(dir) // not LOCKED: the lock was released
    expect(reopened.recovery.uncleanShutdown).toBe(true)
    expect([reopened.read(0), reopened.read(1)].map((value) => Buffer.from(value).toString())).toEqual(['r0', 'r1'])
    await reopened.close()
  })
})

describe('SegmentedLog.open under injected faults', () => {
  it.each(OPEN_FAULTS.flatMap((row) => OPEN_ERRNOS.map((errno) => ({ ...row, errno }))))(
    '$point, $errno: open rejects IO_ERROR with the cause, holds no lock, and the next open works',
    async (row) => {
      const { errno } = row
      const dir = tempDir('open-fault')
      const count = row.exists ? 5 : 0
      if (row.exists) {
        const log = await SegmentedLog.open(dir, { segmentRecordsMax: 2 })
        for (let offset = 0; offset < count; offset++) await log.append(bytes(offset))
        await log.close()
      }
      // Every matching call fails: an open that retries another way must still give up cleanly.
      const fault = injectFault({ fn: row.fn, errno, file: row.file(dir), times: Infinity })
      const error = await rejection(SegmentedLog.open(dir, { segmentRecordsMax: 2 }))
      expect(fault.injected).toBeGreaterThan(0)
      expect(error.code).toBe('IO_ERROR')
      expect(rootErrno(error)).toBe(errno)
      clearFaults()

      const log = await SegmentedLog.open(dir, { segmentRecordsMax: 2 })
      expect(log.endOffset).toBe(count)
      for (let offset = 0; offset < count; offset++) expect(text(log.read(offset))).toBe(`record-${offset}`)
      expect(await log.append(bytes(count))).toBe(count)
      await log.close()
    },
  )

  it.each(OPEN_ERRNOS)('a sealed segment that cannot be opened at its first read (%s): the read throws IO_ERROR, the log goes on', async (errno) => {
    const dir = tempDir('read-open-fault')
    let log = await SegmentedLog.open(dir, { segmentRecordsMax: 2, mmap: 'never' })
    for (let offset = 0; offset < 5; offset++) await log.append(bytes(offset))
    await log.close()
    log = await SegmentedLog.open(dir, { segmentRecordsMax: 2, mmap: 'never' })
    const fault = injectFault({ fn: 'openSync', errno, file: /0{20}\.log$/, times: Infinity })
    let thrown: unknown
    try {
      log.read(0)
    } catch (error) {
      thrown = error
    }
    expect(fault.injected).toBeGreaterThan(0)
    expect(thrown).toBeInstanceOf(LogError)
    expect((thrown as LogError).code).toBe('IO_ERROR')
    expect(rootErrno(thrown)).toBe(errno)
    clearFaults()
    expect(text(log.read(0))).toBe('record-0')
    expect(await log.append(bytes(5))).toBe(5)
    await log.close()
  })
})

// ---------------------------------------------------------------------------------------------
// The queue layer: topic metadata and a group's committed offsets

const openTopics: Topic[] = []
afterEach(async () => {
  for (const topic of openTopics.splice(0)) await topic.close().catch(() => undefined)
})

async function openTopic(dir: string, partitions = 1): Promise<Topic> {
  const topic = await Topic.open(dir, { partitions })
  openTopics.push(topic)
  return topic
}

interface TopicOpenFaultRow {
  point: string
  fn: FaultFunction
  file: (dir: string) => RegExp
  nth?: number
  errnos: readonly Errno[]
}

const TOPIC_JSON_TEMP = /topic\.json\..*\.tmp$/
const TOPIC_OPEN_FAULTS: TopicOpenFaultRow[] = [
  { point: 'opening the temp file', fn: 'openSync', file: () => TOPIC_JSON_TEMP, errnos: OPEN_ERRNOS },
  { point: 'writing it', fn: 'writeSync', file: () => TOPIC_JSON_TEMP, errnos: WRITE_ERRNOS },
  { point: 'fsyncing it', fn: 'fsyncSync', file: () => TOPIC_JSON_TEMP, errnos: WRITE_ERRNOS },
  { point: 'renaming it over topic.json', fn: 'renameSync', file: () => TOPIC_JSON_TEMP, errnos: WRITE_ERRNOS },
  // The first directory fsync is the lock's; the second makes the rename durable.
  { point: 'fsyncing the directory after the rename', fn: 'fsyncSync', file: (dir) => pathIs(dir), nth: 2, errnos: WRITE_ERRNOS },
]

describe('Topic.open under injected faults', () => {
  it.each(TOPIC_OPEN_FAULTS.flatMap((row) => row.errnos.map((errno) => ({ ...row, errno }))))(
    'writing topic.json fails at $point ($errno): open rejects IO_ERROR with the cause, and the next open creates the topic',
    async (row) => {
      const { errno } = row
      const dir = tempDir('topic-open-fault')
      const fault = injectFault({ fn: row.fn, errno, nth: row.nth ?? 1, file: row.file(dir) })
      const error = await rejection(Topic.open(dir, { partitions: 3 }))
      expect(fault.injected).toBe(1)
      expect(error.code).toBe('IO_ERROR')
      expect(rootErrno(error)).toBe(errno)
      clearFaults()
      expect(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([])

      const topic = await openTopic(dir, 3)
      expect(topic.partitionCount).toBe(3)
      expect(await topic.send({ value: 'after', partition: 2 })).toEqual({ partition: 2, offset: 0 })
    },
  )
})

const OFFSETS_STORE = /groups\/workers\/offsets\/\d{20}\.log$/

describe('A consumer commit under injected faults', () => {
  /** A topic of 10 records; the member committed 4 and has read up to 7 when the fault is armed. */
  async function committedFourReadSeven(dir: string): Promise<{ topic: Topic; consumer: Consumer }> {
    const topic = await openTopic(dir)
    await topic.sendBatch(Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })))
    const consumer = await topic.consumerGroup('workers').join()
    expect((await consumer.poll({ maxRecords: 4 })).map((record) => record.offset)).toEqual([0, 1, 2, 3])
    await consumer.commit()
    expect((await consumer.poll({ maxRecords: 3 })).map((record) => record.offset)).toEqual([4, 5, 6])
    return { topic, consumer }
  }

  async function reopenedCommitted(dir: string, topic: Topic): Promise<number | undefined> {
    await topic.close()
    const reopened = await openTopic(dir)
    return reopened.consumerGroup('workers').committed(0)
  }

  it.each(WRITE_ERRNOS)('the write of the commit fails (%s): commit rejects LOG_FAILED, and 4 stays committed, also after reopen', async (errno) => {
    const dir = tempDir('commit-write-fault')
    watchFs()
    const { topic, consumer } = await committedFourReadSeven(dir)
    const fault = injectFault({ fn: 'writeSync', errno, file: OFFSETS_STORE })
    const error = await rejection(consumer.commit())
    expect(fault.injected).toBe(1)
    expect(error.code).toBe('LOG_FAILED')
    expect(rootErrno(error)).toBe(errno)
    clearFaults()
    expect(await topic.consumerGroup('workers').committed(0)).toBe(4)
    expect((await rejection(consumer.commit())).code).toBe('LOG_FAILED') // the group's offsets log refuses until reopened
    expect(await reopenedCommitted(dir, topic)).toBe(4)
  })

  it.each(WRITE_ERRNOS)(
    'the fsync of the commit fails (%s): commit rejects LOG_FAILED and 4 stays committed; after reopen the commit counts only if it is on disk',
    async (errno) => {
      const dir = tempDir('commit-fsync-fault')
      watchFs()
      const { topic, consumer } = await committedFourReadSeven(dir)
      const fault = injectFault({ fn: 'fdatasync', errno, file: OFFSETS_STORE })
      const error = await rejection(consumer.commit())
      expect(fault.injected).toBe(1)
      expect(error.code).toBe('LOG_FAILED')
      expect(rootErrno(error)).toBe(errno)
      clearFaults()
      expect(await topic.consumerGroup('workers').committed(0)).toBe(4)
      // The record reached the file before its fsync failed (here the page cache kept it), so the
      // reopened log may find it: the commit was never acknowledged, but it is not lost either.
      expect([4, 7]).toContain(await reopenedCommitted(dir, topic))
    },
  )

  it('the group works again after reopen: commits move on from the committed offset', async () => {
    const dir = tempDir('commit-fault-recovers')
    watchFs()
    const { topic, consumer } = await committedFourReadSeven(dir)
    injectFault({ fn: 'writeSync', errno: 'EIO', file: OFFSETS_STORE })
    await rejection(consumer.commit())
    clearFaults()
    await topic.close()
    const reopened = await openTopic(dir)
    const again = await reopened.consumerGroup('workers').join()
    expect((await again.poll({ maxRecords: 100 })).map((record) => record.offset)).toEqual([4, 5, 6, 7, 8, 9])
    await again.commit()
    expect(await reopened.consumerGroup('workers').committed(0)).toBe(10)
  })
})
