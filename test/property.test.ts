/**
 * Property tests: a model of the log (an array of payloads and a start offset) is held against the
 * real SegmentedLog through random sequences of operations (appends, batches, concurrent appends,
 * reads, scans, truncate, deleteBefore, sync, close/reopen, reopen after a simulated crash), with
 * small segment limits drawn at random so that rolls and cuts across segments happen often. A
 * smaller run does the same for a Topic (placement, envelopes) and a consumer group (poll, commit,
 * close, reopen: committed offsets equal what was committed and never move backwards).
 *
 * The seed is fixed so that CI runs the same cases every time (100 log runs, 40 topic runs, about
 * 6 s); fast-check prints the seed, the replay path and the shrunk counterexample on failure. Run
 * longer locally with FC_NUM_RUNS=1000 (the log property's runs; the topic's scale along) and
 * FC_SEED=<n> to try other cases or replay a failure.
 */
import fs from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type Consumer,
  type ConsumedRecord,
  LogError,
  SegmentedLog,
  type SegmentedLogOptions,
  Topic,
  partitionForKey,
} from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const SEED = process.env.FC_SEED === undefined ? 20_251_122 : Number(process.env.FC_SEED)
const RUNS_SCALE = process.env.FC_NUM_RUNS === undefined ? 1 : Number(process.env.FC_NUM_RUNS) / 100
const runs = (defaultRuns: number): number => Math.max(1, Math.round(defaultRuns * RUNS_SCALE))
/** The clean-shutdown marker of docs/format.md (src/format.ts CLEAN_SHUTDOWN_FILE): absent after a crash. */
const CLEAN_SHUTDOWN_FILE = 'clean-shutdown'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')

/** The LogError code a call throws or rejects with ('no error' if it succeeds). */
async function failureCode(action: () => unknown): Promise<string> {
  try {
    await action()
  } catch (error) {
    return error instanceof LogError ? error.code : `not a LogError: ${String(error)}`
  }
  return 'no error'
}

// ---------------------------------------------------------------------------------------------
// SegmentedLog against an array

interface LogModel {
  /** Payloads by offset (hex); offsets below `start` are no longer readable. */
  values: string[]
  start: number
}

interface RealLog {
  log: SegmentedLog
  readonly dir: string
  readonly options: SegmentedLogOptions
}

/** Where an offset argument points, resolved against the model when the command runs. */
type OffsetChoice = { kind: 'within'; at: number } | { kind: 'below'; by: number } | { kind: 'above'; by: number }

const offsetChoice: fc.Arbitrary<OffsetChoice> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('within' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('below' as const), by: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('above' as const), by: fc.integer({ min: 0, max: 3 }) }) },
)

/** `within` spans [start, end] (end included: a valid truncate or deleteBefore point). */
function resolveOffset(choice: OffsetChoice, model: LogModel): number {
  const end = model.values.length
  if (choice.kind === 'within') return Math.min(end, model.start + Math.floor(choice.at * (end - model.start + 1)))
  if (choice.kind === 'below') return model.start - choice.by
  return end + choice.by
}

const describeOffset = (choice: OffsetChoice): string =>
  choice.kind === 'within' ? `within(${choice.at.toFixed(3)})` : `${choice.kind}(${choice.by})`

/** Mostly small payloads, some large enough that a few fill a 4 KiB segment or write buffer. */
const payload: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 200, maxLength: 1500, size: 'max' }) },
)

const logOptions: fc.Arbitrary<SegmentedLogOptions> = fc.record({
  segmentBytesMax: fc.oneof(fc.constant(4096), fc.integer({ min: 4096, max: 64 * 1024 })),
  segmentRecordsMax: fc.integer({ min: 1, max: 50 }),
  sync: fc.constantFrom('never' as const, 'always' as const),
  mmap: fc.constantFrom('never' as const, 'auto' as const),
  writeBufferBytes: fc.constantFrom(4096, 64 * 1024),
})

/** What must hold after every command: the ends, the segment chain, and reads at the edges. */
function checkLog(model: LogModel, real: RealLog): void {
  const { log } = real
  const end = model.values.length
  expect(log.endOffset).toBe(end)
  expect(log.startOffset).toBe(model.start)
  expect(log.highWatermark).toBe(end)
  const segments = log.segments
  expect(segments.length).toBeGreaterThan(0)
  expect(segments[0]!.baseOffset).toBeLessThanOrEqual(model.start)
  for (let i = 1; i < segments.length; i++) expect(segments[i]!.baseOffset).toBe(segments[i - 1]!.nextOffset)
  expect(segments[segments.length - 1]!.nextOffset).toBe(end)
  // deleteBefore removes whole segments only: the oldest one left still reaches the start offset.
  if (segments.length > 1) expect(segments[0]!.nextOffset).toBeGreaterThan(model.start)
  if (end > model.start) {
    for (const offset of new Set([model.start, (model.start + end) >>> 1, end - 1])) expect(hex(log.read(offset))).toBe(model.values[offset])
  }
  expect(() => log.read(end)).toThrowError(expect.objectContaining({ code: 'OFFSET_OUT_OF_RANGE' }))
  if (model.start > 0) expect(() => log.read(model.start - 1)).toThrowError(expect.objectContaining({ code: 'OFFSET_OUT_OF_RANGE' }))
}

type LogCommand = fc.AsyncCommand<LogModel, RealLog>

class Append implements LogCommand {
  constructor(readonly value: Uint8Array) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    expect(await real.log.append(this.value)).toBe(model.values.length)
    model.values.push(hex(this.value))
    checkLog(model, real)
  }
  toString = (): string => `append(${this.value.length} B)`
}

class AppendBatch implements LogCommand {
  constructor(readonly values: Uint8Array[]) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    expect(await real.log.appendBatch(this.values)).toBe(model.values.length)
    model.values.push(...this.values.map(hex))
    checkLog(model, real)
  }
  toString = (): string => `appendBatch(${this.values.map((value) => value.length).join(',')} B)`
}

/** Appends started in one synchronous run: they share flushes and fsyncs (group commit). */
class ConcurrentAppends implements LogCommand {
  constructor(readonly batches: Uint8Array[][]) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    const calls = this.batches.map((batch) => (batch.length === 1 ? real.log.append(batch[0]!) : real.log.appendBatch(batch)))
    const firsts = await Promise.all(calls)
    for (let i = 0; i < this.batches.length; i++) {
      expect(firsts[i]).toBe(model.values.length)
      model.values.push(...this.batches[i]!.map(hex))
    }
    checkLog(model, real)
  }
  toString = (): string => `concurrently(${this.batches.map((batch) => batch.length).join('+')} records)`
}

class Read implements LogCommand {
  constructor(readonly choice: OffsetChoice) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    const offset = resolveOffset(this.choice, model)
    if (offset >= model.start && offset < model.values.length) expect(hex(real.log.read(offset))).toBe(model.values[offset])
    else expect(await failureCode(() => real.log.read(offset))).toBe('OFFSET_OUT_OF_RANGE')
  }
  toString = (): string => `read(${describeOffset(this.choice)})`
}

/** records({ from, to }) compared record by record with the model. */
class Scan implements LogCommand {
  constructor(
    readonly from: OffsetChoice | undefined,
    readonly to: OffsetChoice | undefined,
  ) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    const from = this.from === undefined ? undefined : Math.max(0, resolveOffset(this.from, model))
    const to = this.to === undefined ? undefined : Math.max(0, resolveOffset(this.to, model))
    const first = from ?? model.start
    const end = Math.min(to ?? Infinity, model.values.length)
    const scan = async (): Promise<string[]> => {
      const values: string[] = []
      for await (const record of real.log.records({ from, to })) {
        expect(record.offset).toBe(first + values.length)
        values.push(hex(record.value))
      }
      return values
    }
    if (first < model.start && first < end) expect(await failureCode(scan)).toBe('OFFSET_OUT_OF_RANGE')
    else expect(await scan()).toEqual(first < end ? model.values.slice(first, end) : [])
  }
  toString = (): string => `records(${this.from ? describeOffset(this.from) : '-'}, ${this.to ? describeOffset(this.to) : '-'})`
}

class Truncate implements LogCommand {
  constructor(readonly choice: OffsetChoice) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    const offset = resolveOffset(this.choice, model)
    const expected = offset < 0 ? 'INVALID_ARGUMENT' : offset < model.start || offset > model.values.length ? 'OFFSET_OUT_OF_RANGE' : 'no error'
    expect(await failureCode(() => real.log.truncate(offset))).toBe(expected)
    if (expected === 'no error') model.values.length = offset
    checkLog(model, real)
  }
  toString = (): string => `truncate(${describeOffset(this.choice)})`
}

class DeleteBefore implements LogCommand {
  constructor(readonly choice: OffsetChoice) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    const offset = resolveOffset(this.choice, model)
    const expected = offset < 0 ? 'INVALID_ARGUMENT' : offset > model.values.length ? 'OFFSET_OUT_OF_RANGE' : 'no error'
    expect(await failureCode(() => real.log.deleteBefore(offset))).toBe(expected)
    if (expected === 'no error') model.start = Math.max(model.start, offset)
    checkLog(model, real)
  }
  toString = (): string => `deleteBefore(${describeOffset(this.choice)})`
}

class Sync implements LogCommand {
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    await real.log.sync()
    checkLog(model, real)
  }
  toString = (): string => 'sync()'
}

/** close() and open again; with `crash`, the clean-shutdown marker is removed first, as if the process had died after its last write. */
class Reopen implements LogCommand {
  constructor(readonly crash: boolean) {}
  check = (): boolean => true
  async run(model: LogModel, real: RealLog): Promise<void> {
    await real.log.close()
    if (this.crash) fs.rmSync(path.join(real.dir, CLEAN_SHUTDOWN_FILE))
    real.log = await SegmentedLog.open(real.dir, real.options)
    expect(real.log.recovery.uncleanShutdown).toBe(this.crash)
    expect(real.log.recovery.recordsCut).toBe(0)
    checkLog(model, real)
  }
  toString = (): string => (this.crash ? 'crash+reopen' : 'close+reopen')
}

const logCommands = [
  payload.map((value) => new Append(value)),
  fc.array(payload, { minLength: 1, maxLength: 8 }).map((values) => new AppendBatch(values)),
  fc.array(fc.array(payload, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 5 }).map((batches) => new ConcurrentAppends(batches)),
  offsetChoice.map((choice) => new Read(choice)),
  fc.tuple(fc.option(offsetChoice, { nil: undefined }), fc.option(offsetChoice, { nil: undefined })).map(([from, to]) => new Scan(from, to)),
  offsetChoice.map((choice) => new Truncate(choice)),
  offsetChoice.map((choice) => new DeleteBefore(choice)),
  fc.constant(new Sync()),
  fc.boolean().map((crash) => new Reopen(crash)),
]

describe('SegmentedLog', () => {
  const numRuns = runs(100)
  it(
    `behaves like an array of payloads with a start offset, through ${numRuns} random operation sequences`,
    async () => {
      await fc.assert(
        fc.asyncProperty(logOptions, fc.commands(logCommands, { maxCommands: 50, size: 'max' }), async (options, commands) => {
          const dir = tempDir('property-log')
          const real: RealLog = { log: await SegmentedLog.open(dir, options), dir, options }
          try {
            await fc.asyncModelRun(() => ({ model: { values: [], start: 0 }, real }), commands)
          } finally {
            await real.log.close().catch(() => undefined)
            fs.rmSync(dir, { recursive: true, force: true })
          }
        }),
        { seed: SEED, numRuns },
      )
    },
    numRuns * 3_000,
  )
})

// ---------------------------------------------------------------------------------------------
// Topic and consumer group against per-partition arrays

interface SentRecord {
  key: string | null
  value: string
  headers: Record<string, string>
}

interface TopicModel {
  partitions: SentRecord[][]
  committed: (number | undefined)[]
  /** The member's positions while one is joined, else undefined. */
  positions: number[] | undefined
  lastPolled: ConsumedRecord | undefined
}

interface RealTopic {
  topic: Topic
  consumer: Consumer | undefined
  readonly dir: string
  readonly options: { partitions: number } & SegmentedLogOptions
  /** The committed offsets seen so far: they may only grow. */
  readonly seenCommitted: (number | undefined)[]
}

const GROUP = 'workers'
const bytesOf = (value: Uint8Array | string): string => hex(typeof value === 'string' ? Buffer.from(value, 'utf8') : value)

function consumedAsSent(record: ConsumedRecord): SentRecord {
  const headers: Record<string, string> = {}
  for (const name of Object.keys(record.headers)) headers[name] = hex(record.headers[name]!)
  return { key: record.key === null ? null : hex(record.key), value: hex(record.value), headers }
}

async function checkTopic(model: TopicModel, real: RealTopic): Promise<void> {
  const group = real.topic.consumerGroup(GROUP)
  for (let p = 0; p < model.partitions.length; p++) {
    const partition = real.topic.partition(p)
    const records = model.partitions[p]!
    expect(partition.endOffset).toBe(records.length)
    if (records.length > 0) expect(consumedAsSent(partition.read(records.length - 1))).toEqual(records[records.length - 1])
    const committed = await group.committed(p)
    expect(committed).toBe(model.committed[p])
    const seen = real.seenCommitted[p]
    if (seen !== undefined) expect(committed).toBeGreaterThanOrEqual(seen)
    real.seenCommitted[p] = committed
  }
}

type TopicCommand = fc.AsyncCommand<TopicModel, RealTopic>

interface ProducedRecord {
  value: Uint8Array | string
  key?: Uint8Array | string
  headers?: Record<string, Uint8Array | string>
  /** Taken modulo the partition count. */
  partition?: number
}

class SendBatch implements TopicCommand {
  constructor(readonly records: ProducedRecord[]) {}
  check = (): boolean => true
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    const count = model.partitions.length
    const sent = this.records.map((record) => ({ ...record, partition: record.partition === undefined ? undefined : record.partition % count }))
    const results = await real.topic.sendBatch(sent)
    expect(results).toHaveLength(sent.length)
    const spread = new Set<number>()
    for (let i = 0; i < sent.length; i++) {
      const record = sent[i]!
      const { partition, offset } = results[i]!
      if (record.partition !== undefined) expect(partition).toBe(record.partition)
      else if (record.key !== undefined) expect(partition).toBe(partitionForKey(record.key, count))
      else spread.add(partition)
      // Offsets follow the batch's order within each partition.
      expect(offset).toBe(model.partitions[partition]!.length)
      const headers: Record<string, string> = {}
      for (const name of Object.keys(record.headers ?? {})) headers[name] = bytesOf(record.headers![name]!)
      model.partitions[partition]!.push({ key: record.key === undefined ? null : bytesOf(record.key), value: bytesOf(record.value), headers })
    }
    expect(spread.size).toBeLessThanOrEqual(1) // a batch's keyless records stay together (sticky)
    await checkTopic(model, real)
  }
  toString = (): string => `sendBatch(${this.records.map((r) => `${r.partition ?? (r.key === undefined ? '*' : 'k')}`).join(',')})`
}

class ReadRecord implements TopicCommand {
  constructor(
    readonly partition: number,
    readonly at: number,
  ) {}
  check = (model: Readonly<TopicModel>): boolean => model.partitions.some((records) => records.length > 0)
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    const nonEmpty = model.partitions.map((records, p) => (records.length > 0 ? p : -1)).filter((p) => p >= 0)
    const p = nonEmpty[this.partition % nonEmpty.length]!
    const offset = Math.floor(this.at * model.partitions[p]!.length)
    expect(consumedAsSent(real.topic.partition(p).read(offset))).toEqual(model.partitions[p]![offset])
  }
  toString = (): string => `read(#${this.partition}, ${this.at.toFixed(3)})`
}

class Join implements TopicCommand {
  check = (model: Readonly<TopicModel>): boolean => model.positions === undefined
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    real.consumer = await real.topic.consumerGroup(GROUP).join()
    // autoOffsetReset 'earliest': positions start at the committed offsets, else at 0.
    model.positions = model.committed.map((committed) => committed ?? 0)
    expect([...real.consumer.assignment].sort()).toEqual(model.partitions.map((_, p) => p))
    for (let p = 0; p < model.partitions.length; p++) expect(real.consumer.position(p)).toBe(model.positions[p])
  }
  toString = (): string => 'join'
}

class Poll implements TopicCommand {
  constructor(readonly maxRecords: number) {}
  check = (model: Readonly<TopicModel>): boolean => model.positions !== undefined
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    const positions = model.positions!
    const records = await real.consumer!.poll({ maxRecords: this.maxRecords })
    const available = model.partitions.reduce((sum, sent, p) => sum + sent.length - positions[p]!, 0)
    expect(records).toHaveLength(Math.min(this.maxRecords, available))
    for (const record of records) {
      expect(record.offset).toBe(positions[record.partition])
      expect(consumedAsSent(record)).toEqual(model.partitions[record.partition]![record.offset])
      positions[record.partition]!++
    }
    if (records.length > 0) model.lastPolled = records[records.length - 1]
  }
  toString = (): string => `poll(${this.maxRecords})`
}

/**
 * commit() with no argument: every owned partition's position, all or none. Refused when a position
 * is behind its committed offset (a commit(record) of an older poll moved it past): never backwards.
 */
class CommitAll implements TopicCommand {
  check = (model: Readonly<TopicModel>): boolean => model.positions !== undefined
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    const positions = model.positions!
    const backwards = positions.some((position, p) => position < (model.committed[p] ?? 0))
    expect(await failureCode(() => real.consumer!.commit())).toBe(backwards ? 'INVALID_ARGUMENT' : 'no error')
    if (!backwards) model.committed = [...positions]
    await checkTopic(model, real)
  }
  toString = (): string => 'commit()'
}

/** commit(record) of the newest polled record: refused if it would move the committed offset back. */
class CommitRecord implements TopicCommand {
  check = (model: Readonly<TopicModel>): boolean => model.positions !== undefined && model.lastPolled !== undefined
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    const record = model.lastPolled!
    const committed = model.committed[record.partition]
    const backwards = committed !== undefined && record.offset + 1 < committed
    expect(await failureCode(() => real.consumer!.commit(record))).toBe(backwards ? 'INVALID_ARGUMENT' : 'no error')
    if (!backwards) model.committed[record.partition] = record.offset + 1
    await checkTopic(model, real)
  }
  toString = (): string => 'commit(last polled)'
}

class CloseConsumer implements TopicCommand {
  check = (model: Readonly<TopicModel>): boolean => model.positions !== undefined
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    await real.consumer!.close()
    real.consumer = undefined
    model.positions = undefined
    await checkTopic(model, real)
  }
  toString = (): string => 'consumer.close()'
}

class ReopenTopic implements TopicCommand {
  check = (): boolean => true
  async run(model: TopicModel, real: RealTopic): Promise<void> {
    await real.consumer?.close()
    real.consumer = undefined
    model.positions = undefined
    await real.topic.close()
    real.topic = await Topic.open(real.dir, real.options)
    expect(real.topic.partitionCount).toBe(model.partitions.length)
    await checkTopic(model, real)
    for (let p = 0; p < model.partitions.length; p++) {
      const records: SentRecord[] = []
      for await (const record of real.topic.partition(p).records()) records.push(consumedAsSent(record))
      expect(records).toEqual(model.partitions[p])
    }
  }
  toString = (): string => 'topic close+reopen'
}

const headerName = fc.oneof(fc.constantFrom('trace', 'model', '__proto__', ''), fc.string({ unit: 'grapheme', maxLength: 6 }))
const bytesOrText = fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.string({ unit: 'grapheme', maxLength: 16 }))
const producedRecord: fc.Arbitrary<ProducedRecord> = fc.record(
  {
    value: bytesOrText,
    key: bytesOrText,
    headers: fc.dictionary(headerName, bytesOrText, { maxKeys: 3, noNullPrototype: true }),
    partition: fc.nat({ max: 5 }),
  },
  { requiredKeys: ['value'] },
)

/** fc.commands picks uniformly among these: repeats weigh the consumer's commands up, and commands
 * whose check fails (no member joined yet) are skipped. */
const sendBatch = fc.array(producedRecord, { minLength: 1, maxLength: 8 }).map((records) => new SendBatch(records))
const poll = fc.integer({ min: 1, max: 12 }).map((maxRecords) => new Poll(maxRecords))
const topicCommands = [
  sendBatch,
  sendBatch,
  fc.tuple(fc.nat({ max: 5 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })).map(([p, at]) => new ReadRecord(p, at)),
  fc.constant(new Join()),
  fc.constant(new Join()),
  poll,
  poll,
  poll,
  fc.constant(new CommitAll()),
  fc.constant(new CommitRecord()),
  fc.constant(new CommitRecord()),
  fc.constant(new CloseConsumer()),
  fc.constant(new ReopenTopic()),
]

const topicOptions = fc.record({
  partitions: fc.integer({ min: 1, max: 3 }),
  segmentRecordsMax: fc.integer({ min: 1, max: 20 }),
  sync: fc.constantFrom('never' as const, 'always' as const),
})

describe('Topic and consumer group', () => {
  const numRuns = runs(40)
  it(
    `keep per-partition order, placement and committed offsets through ${numRuns} random sequences`,
    async () => {
      await fc.assert(
        fc.asyncProperty(topicOptions, fc.commands(topicCommands, { maxCommands: 40, size: 'max' }), async (options, commands) => {
          const dir = tempDir('property-topic')
          const real: RealTopic = { topic: await Topic.open(dir, options), consumer: undefined, dir, options, seenCommitted: [] }
          const model: TopicModel = {
            partitions: Array.from({ length: options.partitions }, () => []),
            committed: Array.from({ length: options.partitions }, () => undefined),
            positions: undefined,
            lastPolled: undefined,
          }
          try {
            await fc.asyncModelRun(() => ({ model, real }), commands)
          } finally {
            await real.consumer?.close().catch(() => undefined)
            await real.topic.close().catch(() => undefined)
            fs.rmSync(dir, { recursive: true, force: true })
          }
        }),
        { seed: SEED, numRuns },
      )
    },
    numRuns * 4_000,
  )
})
