/**
 * OffsetStore: a consumer group's committed offsets (the next offset to read, per partition),
 * durable in the group's own SegmentedLog (`groups/<id>/offsets/`, sync 'always'), so concurrent
 * commits share one fsync. On open the log is replayed (the newest record per partition wins; a
 * snapshot replaces all before it). Once enough commits follow the newest snapshot, a new snapshot
 * is appended and the segments below it are deleted, so replay stays short.
 */
import { LogError } from './errors.js'
import {
  OFFSET_RECORD_COMMIT,
  OFFSET_RECORD_SNAPSHOT,
  type OffsetRecord,
  decodeOffsetRecord,
  encodeOffsetRecord,
} from './format.js'
import { SegmentedLog } from './segmented-log.js'

/** Commit records after the newest snapshot that trigger a new snapshot (and compaction). */
const COMPACT_AFTER_RECORDS = 10_000
const OFFSETS_SEGMENT_BYTES = 1024 * 1024

export class OffsetStore {
  /** Durable committed offsets. */
  private readonly durable = new Map<number, number>()
  /** Newest requested offset per partition, including commits still being written (ordering checks). */
  private readonly latest = new Map<number, number>()
  private recordsSinceSnapshot = 0
  private compacting: Promise<void> | undefined
  private maxGeneration = 0

  private constructor(private readonly log: SegmentedLog) {}

  static async open(dir: string): Promise<OffsetStore> {
    const log = await SegmentedLog.open(dir, { sync: 'always', segmentBytesMax: OFFSETS_SEGMENT_BYTES })
    const store = new OffsetStore(log)
    try {
      for await (const { offset, value } of log.records()) store.apply(decodeOffsetRecord(value, offset, dir))
    } catch (error) {
      await log.close()
      throw error
    }
    return store
  }

  /** The committed offset of `partition`, or undefined if none was committed. */
  committed(partition: number): number | undefined {
    return this.durable.get(partition)
  }

  /** The newest offset requested for `partition`, durable or not yet. */
  latestRequested(partition: number): number | undefined {
    return this.latest.get(partition)
  }

  /** The highest generation any stored commit carried (a new coordinator starts above it). */
  get generation(): number {
    return this.maxGeneration
  }

  /** Stores `offsets` durably (all or none); resolves once they are fsynced. */
  async commit(generation: number, offsets: readonly [number, number][]): Promise<void> {
    if (offsets.length === 0) return
    for (const [partition, offset] of offsets) this.latest.set(partition, offset)
    const records = offsets.map(([partition, offset]) => encodeOffsetRecord({ kind: OFFSET_RECORD_COMMIT, generation, offsets: [[partition, offset]] }))
    await this.log.appendBatch(records)
    for (const [partition, offset] of offsets) this.durable.set(partition, offset)
    this.maxGeneration = Math.max(this.maxGeneration, generation)
    this.recordsSinceSnapshot += offsets.length
    if (this.recordsSinceSnapshot >= COMPACT_AFTER_RECORDS && !this.compacting) {
      this.compacting = this.compact().finally(() => (this.compacting = undefined))
    }
  }

  async close(): Promise<void> {
    await this.compacting?.catch(() => undefined)
    await this.log.close()
  }

  private async compact(): Promise<void> {
    this.recordsSinceSnapshot = 0
    // From `latest`: a commit still in flight sits below the snapshot and its segment may be deleted.
    const snapshot: OffsetRecord = { kind: OFFSET_RECORD_SNAPSHOT, generation: this.maxGeneration, offsets: [...this.latest] }
    const offset = await this.log.append(encodeOffsetRecord(snapshot))
    await this.log.deleteBefore(offset)
  }

  private apply(record: OffsetRecord): void {
    if (record.kind === OFFSET_RECORD_SNAPSHOT) {
      this.durable.clear()
      this.recordsSinceSnapshot = 0
    } else this.recordsSinceSnapshot++
    for (const [partition, offset] of record.offsets) {
      this.durable.set(partition, offset)
      this.latest.set(partition, offset)
    }
    this.maxGeneration = Math.max(this.maxGeneration, record.generation)
  }
}

export function checkGroupId(groupId: unknown): asserts groupId is string {
  if (typeof groupId !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(groupId) || groupId === '.' || groupId === '..') {
    throw new LogError('INVALID_ARGUMENT', `group id must be 1–249 letters, digits, '.', '_' or '-' (not '.' or '..'), got ${JSON.stringify(groupId)}`)
  }
}
