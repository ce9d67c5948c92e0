/**
 * SharePartitionState: what a share group knows about one partition (pure, in memory; KIP-932's
 * "share-partition"). Below `start` every record is done (acknowledged or archived). The in-flight
 * window `[start, next)` holds one delivery per offset: available again (with a time from which it
 * may be delivered), acquired by a member until a lock deadline, acknowledged, or archived. Offsets
 * from `next` up have never been delivered. The coordinator keeps the window within
 * `inFlightRecordsMax` offsets, and `start` moves over every done prefix, so out-of-order
 * acknowledgements keep the window full instead of collapsing it to one record.
 *
 * The window lives in a ring of typed arrays indexed by `offset & mask` (one slot per offset, no
 * object per delivery): a share group settles every record it delivers, and a Map entry plus an
 * object per record was a sixth of its CPU time, mostly garbage collection. The ring doubles when
 * the window outgrows it (a stored window may be wider than today's inFlightRecordsMax).
 * Members are numbers here (0: none); the coordinator maps its member ids to them.
 *
 * Layering: format.ts (the states and their records) → this file → share-store.ts (durability) →
 * share-coordinator.ts (members, locks, timers).
 */
import { assert } from './assert.js'
import {
  SHARE_RECORD_SNAPSHOT,
  SHARE_STATE_ACKED,
  SHARE_STATE_ACQUIRED,
  SHARE_STATE_ARCHIVED,
  SHARE_STATE_AVAILABLE,
  type ShareDeliveryState,
  type ShareStateBatch,
  type ShareStateRecord,
} from './format.js'

/** No member holds the record. */
export const NO_MEMBER = 0
const RING_SLOTS_MIN = 1024

export class SharePartitionState {
  private mask = RING_SLOTS_MIN - 1
  private states = new Uint8Array(RING_SLOTS_MIN)
  private counts = new Uint16Array(RING_SLOTS_MIN)
  private members = new Int32Array(RING_SLOTS_MIN)
  /** Acquired: when the lock expires; available: when it may be delivered again (ms since the epoch, 0: at once). */
  private times = new Float64Array(RING_SLOTS_MIN)
  /** 1: archived but not yet in the dead-letter topic: not done, and stored as acquired. */
  private settlingFlags = new Uint8Array(RING_SLOTS_MIN)
  /** Deliveries in the available state (redeliveries to look for before new records). */
  private availableCount = 0

  private nextOffset: number

  /** An empty window at `startOffset` (it is filled through `set`). */
  constructor(
    readonly partition: number,
    private startOffset: number,
  ) {
    this.nextOffset = startOffset
  }

  get start(): number {
    return this.startOffset
  }

  /** The first offset never delivered. */
  get next(): number {
    return this.nextOffset
  }

  get hasAvailable(): boolean {
    return this.availableCount > 0
  }

  /** Whether `offset` lies in the window `[start, next)`. */
  has(offset: number): boolean {
    return offset >= this.startOffset && offset < this.nextOffset
  }

  // The accessors below take an offset of the window (callers check `has` first).
  stateOf(offset: number): ShareDeliveryState {
    return this.states[offset & this.mask] as ShareDeliveryState
  }

  /** How many times the record was acquired. */
  deliveryCountOf(offset: number): number {
    return this.counts[offset & this.mask]!
  }

  /** The member number holding it (acquired only), else NO_MEMBER. */
  memberOf(offset: number): number {
    return this.members[offset & this.mask]!
  }

  timeOf(offset: number): number {
    return this.times[offset & this.mask]!
  }

  isSettling(offset: number): boolean {
    return this.settlingFlags[offset & this.mask] === 1
  }

  /** Acquired or available with a delay: something a timer must look at. */
  isTimed(offset: number): boolean {
    const slot = offset & this.mask
    const state = this.states[slot]
    return (state === SHARE_STATE_ACQUIRED && this.settlingFlags[slot] === 0) || (state === SHARE_STATE_AVAILABLE && this.times[slot]! > 0)
  }

  /** Acknowledged or archived (and not on its way to the dead-letter topic). */
  isDone(offset: number): boolean {
    const slot = offset & this.mask
    const state = this.states[slot]
    return (state === SHARE_STATE_ACKED || state === SHARE_STATE_ARCHIVED) && this.settlingFlags[slot] === 0
  }

  /** Sets the delivery of an offset in the window (or of `next`, which then grows). */
  set(offset: number, state: ShareDeliveryState, deliveryCount: number, member: number, timeMs: number, settling = false): void {
    assert(offset >= this.startOffset && offset <= this.nextOffset)
    if (offset === this.nextOffset) {
      if (offset - this.startOffset > this.mask) this.grow()
      this.nextOffset++
    } else if (this.states[offset & this.mask] === SHARE_STATE_AVAILABLE) this.availableCount--
    if (state === SHARE_STATE_AVAILABLE) this.availableCount++
    const slot = offset & this.mask
    this.states[slot] = state
    this.counts[slot] = deliveryCount
    this.members[slot] = member
    this.times[slot] = timeMs
    this.settlingFlags[slot] = settling ? 1 : 0
  }

  /** An acquired record acknowledged: acquired → acked moves no counter. */
  acknowledge(offset: number): void {
    const slot = offset & this.mask
    assert(this.states[slot] === SHARE_STATE_ACQUIRED)
    this.states[slot] = SHARE_STATE_ACKED
    this.members[slot] = NO_MEMBER
  }

  /** An available record whose delay passed: plainly available now. */
  clearDelay(offset: number): void {
    assert(this.states[offset & this.mask] === SHARE_STATE_AVAILABLE)
    this.times[offset & this.mask] = 0
  }

  /** Moves `start` over the done prefix; returns whether it moved. */
  advance(): boolean {
    const before = this.startOffset
    while (this.startOffset < this.nextOffset && this.isDone(this.startOffset)) this.startOffset++
    return this.startOffset !== before
  }

  /** Forgets everything below `offset` (retention deleted it, or a stored start says so). */
  skipTo(offset: number): void {
    if (offset <= this.startOffset) return
    for (let o = this.startOffset; o < Math.min(offset, this.nextOffset); o++) if (this.states[o & this.mask] === SHARE_STATE_AVAILABLE) this.availableCount--
    this.startOffset = offset
    this.nextOffset = Math.max(this.nextOffset, offset)
  }

  /** Replays a stored record: a snapshot replaces the partition's state, an update amends it. */
  apply(record: ShareStateRecord): void {
    if (record.kind === SHARE_RECORD_SNAPSHOT) {
      this.availableCount = 0
      this.startOffset = record.startOffset
      this.nextOffset = record.startOffset
    } else this.skipTo(record.startOffset)
    for (const batch of record.batches) {
      for (let offset = Math.max(batch.firstOffset, this.startOffset); offset < batch.firstOffset + batch.count; offset++) {
        while (this.nextOffset < offset) this.set(this.nextOffset, SHARE_STATE_AVAILABLE, 0, NO_MEMBER, 0)
        this.set(offset, batch.state, batch.deliveryCount, NO_MEMBER, batch.availableAtMs)
      }
    }
    this.advance()
  }

  /** The whole state as stored in a snapshot. */
  snapshot(): ShareStateRecord {
    const offsets: number[] = []
    for (let offset = this.startOffset; offset < this.nextOffset; offset++) offsets.push(offset)
    return { kind: SHARE_RECORD_SNAPSHOT, partition: this.partition, startOffset: this.startOffset, batches: toBatches(this, offsets) }
  }

  /** Doubles the ring, keeping every offset of the window at its slot for the new mask. */
  private grow(): void {
    const slots = (this.mask + 1) * 2
    const mask = slots - 1
    const states = new Uint8Array(slots)
    const counts = new Uint16Array(slots)
    const members = new Int32Array(slots)
    const times = new Float64Array(slots)
    const settlingFlags = new Uint8Array(slots)
    for (let offset = this.startOffset; offset < this.nextOffset; offset++) {
      const from = offset & this.mask
      const to = offset & mask
      states[to] = this.states[from]!
      counts[to] = this.counts[from]!
      members[to] = this.members[from]!
      times[to] = this.times[from]!
      settlingFlags[to] = this.settlingFlags[from]!
    }
    this.mask = mask
    this.states = states
    this.counts = counts
    this.members = members
    this.times = times
    this.settlingFlags = settlingFlags
  }
}

/** The stored form of `offsets` (ascending) of `state`: runs of equal deliveries become one batch. */
export function toBatches(state: SharePartitionState, offsets: ArrayLike<number>): ShareStateBatch[] {
  const batches: ShareStateBatch[] = []
  let last: ShareStateBatch | undefined
  for (let i = 0; i < offsets.length; i++) {
    const offset = offsets[i]!
    if (!state.has(offset)) continue
    // A record on its way to the dead-letter topic is stored as acquired: a crash delivers it (or dead-letters it) again.
    const stored = state.isSettling(offset) ? SHARE_STATE_ACQUIRED : state.stateOf(offset)
    const availableAtMs = stored === SHARE_STATE_AVAILABLE ? state.timeOf(offset) : 0
    const deliveryCount = state.deliveryCountOf(offset)
    if (last && last.firstOffset + last.count === offset && last.state === stored && last.deliveryCount === deliveryCount && last.availableAtMs === availableAtMs) {
      last.count++
      continue
    }
    last = { firstOffset: offset, count: 1, deliveryCount, state: stored, availableAtMs }
    batches.push(last)
  }
  return batches
}
