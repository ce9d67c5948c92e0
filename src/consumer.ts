/**
 * Consumer: one member of a consumer group. It owns the partitions the coordinator assigns it,
 * keeps a position (the next offset to read) for each, and commits what it has processed.
 *
 * Positions start at the committed offset, or at autoOffsetReset ('earliest' = the partition's
 * startOffset, 'latest' = its end) when nothing was committed or the committed offset was deleted.
 * When the generation changes (a rebalance), every position restarts from the committed offset:
 * records read but not committed are delivered again (at-least-once), to whichever member owns the
 * partition now. `poll` reads at most `maxRecords` (no prefetch beyond that) and waits for new
 * records by subscribing to the partitions' append notifications, never by spinning.
 */
import { LogError } from './errors.js'
import type { GroupLink, MemberState } from './group-link.js'
import type { ConsumedRecord, PartitionReader } from './partition.js'

export interface PollOptions {
  /** Most records returned (default 500, at most 100,000). */
  maxRecords?: number
  /** How long to wait when nothing is there yet (default 0: return at once). */
  timeoutMs?: number
}

const MAX_RECORDS_DEFAULT = 500
const MAX_RECORDS_LIMIT = 100_000
/** Records per poll of the iterator; processed records are committed once per batch (one fsync). */
const ITERATOR_BATCH_RECORDS = 500
const ITERATOR_WAIT_MS = 1000
/**
 * Commit failures the iterator absorbs: each means the batch's partitions may have another owner
 * now (a rebalance, a removal, a closed group, an owner that went away), who replays from the
 * committed offset. At-least-once holds either way.
 */
const QUIET_COMMIT_FAILURES = new Set<string>(['FENCED', 'LOG_CLOSED', 'UNKNOWN_MEMBER', 'DISCONNECTED'])

export class Consumer {
  private generation = -1
  private readonly positions = new Map<number, number>()
  private readonly rewinds = new Set<number>()
  private readonly heartbeatTimer: NodeJS.Timeout
  private closed = false
  private nextPartitionIndex = 0

  constructor(
    readonly memberId: string,
    private readonly link: GroupLink,
    /** Indexed by the numbers the coordinator assigns (a group over several topics: every topic's partitions). */
    private readonly partitions: readonly PartitionReader[],
    /** The coordinator's number for a record's partition (one topic: the partition id itself). */
    private readonly slotOf: (record: { topic?: string; partition: number }) => number = (record) => record.partition,
  ) {
    const everyMs = Math.max(10, Math.floor(link.options.sessionTimeoutMs / 3))
    this.heartbeatTimer = setInterval(() => this.heartbeat(), everyMs)
    this.heartbeatTimer.unref()
  }

  /** The partition ids this member owns now (as last heard from the group's coordinator). */
  get assignment(): number[] {
    return [...(this.link.state(this.memberId)?.assignment ?? [])]
  }

  /** The next offset this member will read from `partition`, if it owns it. */
  position(partition: number): number | undefined {
    this.adoptState()
    return this.positions.get(partition)
  }

  /** Up to `maxRecords` records from the owned partitions, waiting up to `timeoutMs` for some. */
  async poll(options: PollOptions = {}): Promise<ConsumedRecord[]> {
    const { maxRecords, timeoutMs } = checkPollOptions(options)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      await this.sync()
      const records = this.fetch(maxRecords)
      const remainingMs = deadline - Date.now()
      if (records.length > 0 || remainingMs <= 0) return records
      await this.waitForRecords(remainingMs)
      if (this.closed || this.link.isClosed) return [] // closed while waiting
    }
  }

  /**
   * Commits `record.offset + 1` for its partition, or, with no argument, every position consumed so
   * far. Resolves once durable. FENCED when a rebalance happened since the records were polled.
   */
  async commit(record?: Pick<ConsumedRecord, 'partition' | 'offset'> & { topic?: string }): Promise<void> {
    this.checkOpen()
    const generation = this.generation
    let offsets: [number, number][]
    if (record === undefined) offsets = [...this.positions]
    else {
      if (record === null || typeof record !== 'object' || !Number.isInteger(record.partition) || !Number.isSafeInteger(record.offset) || record.offset < 0) {
        throw new LogError('INVALID_ARGUMENT', 'commit takes a consumed record ({ partition, offset })')
      }
      offsets = [[this.slotOf(record), record.offset + 1]]
    }
    if (offsets.length === 0) return // nothing consumed yet
    await this.commitOffsets(generation, offsets)
  }

  /** Moves the position of an owned partition (replay or skip); the next commit may move backwards. */
  seek(partition: number, offset: number): void {
    this.adoptState()
    if (!Number.isInteger(partition) || !this.positions.has(partition)) {
      throw new LogError('UNKNOWN_PARTITION', `member '${this.memberId}' does not own partition ${String(partition)}`)
    }
    const target = this.partitions[partition]!
    if (!Number.isSafeInteger(offset) || offset < target.startOffset || offset > target.highWatermark) {
      throw new LogError('OFFSET_OUT_OF_RANGE', `seek to ${String(offset)} outside [${target.startOffset}, ${target.highWatermark}]`, { offset })
    }
    this.positions.set(partition, offset)
    this.rewinds.add(partition)
  }

  /**
   * Records one at a time, for as long as the member is open. A record counts as processed when
   * the loop asks for the next one; processed records are committed after each polled batch and
   * when the loop ends. After `break` or a throw, the record being processed is delivered again
   * (at-least-once) unless you commit it yourself.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumedRecord, void, undefined> {
    while (!this.closed && !this.link.isClosed) {
      const batch = await this.poll({ maxRecords: ITERATOR_BATCH_RECORDS, timeoutMs: ITERATOR_WAIT_MS })
      const generation = this.generation
      const processed = new Map<number, number>()
      let finished = false
      try {
        for (const record of batch) {
          yield record
          processed.set(this.slotOf(record), record.offset + 1)
        }
        finished = true
      } finally {
        if (!finished) this.rewindTo(processed, batch, generation)
        await this.commitQuietly(generation, [...processed])
      }
    }
  }

  /** Leaves the group: its partitions move to the other members. Nothing is committed. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeatTimer)
    this.positions.clear()
    await this.link.leave(this.memberId).catch(() => undefined) // an owner that is gone forgets the member anyway
  }

  get isClosed(): boolean {
    return this.closed
  }

  // -------------------------------------------------------------------------------------------

  /** Catches up with the coordinator, rejoining if the member was removed (silent too long, or a new owner). */
  private async sync(): Promise<void> {
    this.checkOpen()
    if (this.link.state(this.memberId) === undefined) await this.link.join(this.memberId)
    this.link.heartbeat(this.memberId)
    this.adoptState()
  }

  /** After a rebalance, positions restart from the committed offsets; a removed member owns nothing. */
  private adoptState(): void {
    this.checkOpen()
    const state = this.link.state(this.memberId)
    const generation = state?.generation ?? -1
    if (generation === this.generation) return
    this.generation = generation
    this.positions.clear()
    this.rewinds.clear()
    if (state) for (const partition of state.assignment) this.positions.set(partition, this.startingPosition(state, partition))
  }

  private startingPosition(state: MemberState, partition: number): number {
    const target = this.partitions[partition]!
    const start = state.starts.get(partition)
    if (start !== undefined && start >= target.startOffset && start <= target.highWatermark) return start
    return this.link.options.autoOffsetReset === 'earliest' ? target.startOffset : target.highWatermark
  }

  /** Reads up to `maxRecords`, taking partitions in turn (a different first one each call). */
  private fetch(maxRecords: number): ConsumedRecord[] {
    const owned = [...this.positions.keys()]
    const records: ConsumedRecord[] = []
    for (let turn = 0; turn < owned.length && records.length < maxRecords; turn++) {
      const partition = owned[(this.nextPartitionIndex + turn) % owned.length]!
      const source = this.partitions[partition]!
      let position = Math.max(this.positions.get(partition)!, source.startOffset)
      const end = source.highWatermark
      while (position < end && records.length < maxRecords) records.push(source.read(position++))
      this.positions.set(partition, position)
    }
    this.nextPartitionIndex = owned.length === 0 ? 0 : (this.nextPartitionIndex + 1) % owned.length
    return records
  }

  /** Resolves when an owned partition gets a record, the group rebalances, or `timeoutMs` passes. */
  private async waitForRecords(timeoutMs: number): Promise<void> {
    const stop = new AbortController()
    const waits = [...this.positions].map(([partition, position]) => this.partitions[partition]!.waitForRecords(position, stop.signal))
    let removeListener: (() => void) | undefined
    let timer: NodeJS.Timeout | undefined
    waits.push(new Promise<void>((resolve) => (removeListener = this.link.onChange(resolve))))
    waits.push(new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))))
    try {
      await Promise.race(waits)
    } finally {
      stop.abort()
      removeListener?.()
      clearTimeout(timer)
    }
  }

  private async commitOffsets(generation: number, offsets: [number, number][]): Promise<void> {
    const rewinds = new Set(offsets.filter(([partition]) => this.rewinds.has(partition)).map(([partition]) => partition))
    await this.link.commit(this.memberId, generation, offsets, rewinds)
    for (const partition of rewinds) this.rewinds.delete(partition)
  }

  /** The iterator's commits: a rebalance (FENCED) or a closed group just means another owner replays. */
  private async commitQuietly(generation: number, offsets: [number, number][]): Promise<void> {
    if (offsets.length === 0 || this.closed) return
    try {
      await this.commitOffsets(generation, offsets)
    } catch (error) {
      if (!(error instanceof LogError) || !QUIET_COMMIT_FAILURES.has(error.code)) throw error
    }
  }

  /** After an early exit, puts positions back to the first record of the batch not processed. */
  private rewindTo(processed: ReadonlyMap<number, number>, batch: readonly ConsumedRecord[], generation: number): void {
    if (this.closed || generation !== this.generation) return
    const firstUnprocessed = new Map<number, number>()
    for (const record of batch) {
      const slot = this.slotOf(record)
      const done = processed.get(slot)
      if ((done === undefined || record.offset >= done) && !firstUnprocessed.has(slot)) firstUnprocessed.set(slot, record.offset)
    }
    for (const [partition, offset] of firstUnprocessed) if (this.positions.has(partition)) this.positions.set(partition, offset)
  }

  private heartbeat(): void {
    if (this.closed || this.link.isClosed) return
    this.link.heartbeat(this.memberId)
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `consumer '${this.memberId}' is closed`)
    if (this.link.isClosed) throw new LogError('LOG_CLOSED', `consumer group '${this.link.groupId}' is closed`)
  }
}

function checkPollOptions(options: PollOptions): { maxRecords: number; timeoutMs: number } {
  if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'poll options must be an object')
  const maxRecords = options.maxRecords ?? MAX_RECORDS_DEFAULT
  const timeoutMs = options.timeoutMs ?? 0
  if (!Number.isInteger(maxRecords) || maxRecords < 1 || maxRecords > MAX_RECORDS_LIMIT) {
    throw new LogError('INVALID_ARGUMENT', `maxRecords must be an integer in [1, ${MAX_RECORDS_LIMIT}], got ${String(maxRecords)}`)
  }
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0 || timeoutMs > 2 ** 31 - 1) {
    throw new LogError('INVALID_ARGUMENT', `timeoutMs must be a number in [0, 2^31-1], got ${String(timeoutMs)}`)
  }
  return { maxRecords, timeoutMs }
}
