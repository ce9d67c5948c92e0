/**
 * ShareStore: a share group's delivery state, durable in the group's own SegmentedLog
 * (`groups/<id>/share/`, sync 'always'). Every change is an update record (format.ts): the
 * partition's start offset and the new states of the offsets that changed. Changes made while an
 * fsync runs share the next one (group commit), so acknowledging a poll's records one call at a
 * time still costs about one fsync. On open the log is replayed into SharePartitionStates. Once
 * enough updates follow the newest snapshot, a snapshot of every partition is appended as one
 * atomic batch and the segments below it are deleted, so replay stays short (as offset-store.ts).
 */
import { type ShareStateRecord, decodeShareStateRecord, encodeShareStateRecord } from './format.js'
import { SegmentedLog } from './segmented-log.js'
import { SharePartitionState } from './share-state.js'

/** Update records after the newest snapshot that trigger a new snapshot (and compaction). */
const COMPACT_AFTER_RECORDS = 5_000
const SHARE_SEGMENT_BYTES = 4 * 1024 * 1024

export class ShareStore {
  private recordsSinceSnapshot = 0
  private compacting: Promise<void> | undefined

  private constructor(
    private readonly log: SegmentedLog,
    /** Every partition's state now (read when a snapshot is taken). */
    private readonly snapshot: () => ShareStateRecord[],
  ) {}

  /**
   * Opens the log in `dir` and replays it. `states` receives each partition's stored state (a
   * partition with nothing stored is absent); `snapshot` later gives the state to compact into.
   */
  static async open(dir: string, snapshot: () => ShareStateRecord[]): Promise<{ store: ShareStore; states: Map<number, SharePartitionState> }> {
    const log = await SegmentedLog.open(dir, { sync: 'always', segmentBytesMax: SHARE_SEGMENT_BYTES })
    const store = new ShareStore(log, snapshot)
    const states = new Map<number, SharePartitionState>()
    try {
      for await (const { offset, value } of log.records()) {
        const record = decodeShareStateRecord(value, offset, dir)
        let state = states.get(record.partition)
        if (!state) {
          state = new SharePartitionState(record.partition, record.startOffset)
          states.set(record.partition, state)
        }
        state.apply(record)
        store.recordsSinceSnapshot++
      }
    } catch (error) {
      await log.close()
      throw error
    }
    return { store, states }
  }

  /** Appends `records` (all or none); resolves once they are fsynced. */
  async append(records: readonly ShareStateRecord[]): Promise<void> {
    if (records.length === 0) return
    await this.log.appendBatch(records.map(encodeShareStateRecord))
    this.recordsSinceSnapshot += records.length
    if (this.recordsSinceSnapshot >= COMPACT_AFTER_RECORDS && !this.compacting) {
      this.compacting = this.compact().finally(() => (this.compacting = undefined))
    }
  }

  get isClosed(): boolean {
    return this.log.isClosed
  }

  async close(): Promise<void> {
    await this.compacting?.catch(() => undefined)
    await this.log.close()
  }

  /**
   * The snapshot is taken from memory, which already holds changes still being written; those
   * changes are appended before the snapshot, so deleting the segments below it loses nothing.
   */
  private async compact(): Promise<void> {
    this.recordsSinceSnapshot = 0
    const records = this.snapshot()
    if (records.length === 0) return
    const first = await this.log.appendBatch(records.map(encodeShareStateRecord))
    await this.log.deleteBefore(first)
  }
}
