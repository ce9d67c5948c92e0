/**
 * ShareStore: a share group's delivery state, kept in the group's own SegmentedLog
 * (`groups/<id>/share/`). Every change is an update record (format.ts): the partition's start
 * offset and the new states of the offsets that changed. Two kinds of append:
 * - durable (acknowledgements, releases, archiving): resolves once an fsync covering it completed.
 *   The durable appends of one synchronous run share one `sync()` call, and those made while an
 *   fsync runs share the next one (group commit);
 * - written (acquisitions): resolves once the bytes are in the OS (they survive the process being
 *   killed); the next durable append's fsync, or the background one every ACQUIRE_SYNC_INTERVAL_MS,
 *   covers them. docs/durability.md ("Share groups") says what a power loss can cost them.
 * On open the log is replayed into SharePartitionStates. Once
 * enough updates follow the newest snapshot, a snapshot of every partition is appended as one
 * atomic batch and the segments below it are deleted, so replay stays short (as offset-store.ts).
 */
import { type ShareStateRecord, decodeShareStateRecord, encodeShareStateRecord } from './format.js'
import { SegmentedLog } from './segmented-log.js'
import { SharePartitionState } from './share-state.js'

/** Update records after the newest snapshot that trigger a new snapshot (and compaction). */
const COMPACT_AFTER_RECORDS = 5_000
const SHARE_SEGMENT_BYTES = 4 * 1024 * 1024
/** The background fsync of written-only appends (acquisitions no durable append followed). */
const ACQUIRE_SYNC_INTERVAL_MS = 200

export class ShareStore {
  private recordsSinceSnapshot = 0
  private compacting: Promise<void> | undefined
  /** The sync that the durable appends of the current synchronous run share. */
  private pendingSync: Promise<void> | undefined

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
    const log = await SegmentedLog.open(dir, { sync: 'interval', syncIntervalMs: ACQUIRE_SYNC_INTERVAL_MS, segmentBytesMax: SHARE_SEGMENT_BYTES })
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

  /**
   * Appends `records` (all or none); resolves once they are fsynced, or with `durable` false once
   * they are written to the OS. An append is in the log (for replay and for every later append's
   * fsync) from the moment this is called.
   */
  async append(records: readonly ShareStateRecord[], durable = true): Promise<void> {
    if (records.length === 0) return
    const written = this.log.appendBatch(records.map(encodeShareStateRecord))
    if (durable) await Promise.all([written, this.syncSoon()])
    else await written
    this.recordsSinceSnapshot += records.length
    if (this.recordsSinceSnapshot >= COMPACT_AFTER_RECORDS && !this.compacting) {
      this.compacting = this.compact().finally(() => (this.compacting = undefined))
    }
  }

  /** One `sync()` for every durable append of this synchronous run (it is called after they all are in the log). */
  private syncSoon(): Promise<void> {
    this.pendingSync ??= Promise.resolve().then(() => {
      this.pendingSync = undefined
      return this.log.sync()
    })
    return this.pendingSync
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
    await this.log.sync() // the snapshot is durable before what it replaces goes
    await this.log.deleteBefore(first)
  }
}
