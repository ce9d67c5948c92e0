/**
 * SharePartitionState: what a share group knows about one partition (pure, in memory; KIP-932's
 * "share-partition"). Below `start` every record is done (acknowledged or archived). The in-flight
 * window `[start, next)` holds one Delivery per offset: available again (with a time from which it
 * may be delivered), acquired by a member until a lock deadline, acknowledged, or archived. Offsets
 * from `next` up have never been delivered. The window never spans more than `inFlightRecordsMax`
 * offsets, and `start` moves over every done prefix, so out-of-order acknowledgements keep the
 * window full instead of collapsing it to one record.
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

export interface Delivery {
  state: ShareDeliveryState
  /** How many times the record was acquired. */
  deliveryCount: number
  /** The member holding it (acquired only). */
  memberId: string | undefined
  /** Acquired: when the lock expires; available: when it may be delivered again (ms since the epoch). */
  timeMs: number
  /** Archived but not yet in the dead-letter topic: not done, and stored as acquired. */
  settling: boolean
}

export class SharePartitionState {
  private readonly deliveries = new Map<number, Delivery>()
  /** Deliveries in the available state (redeliveries to look for before new records). */
  private availableCount = 0

  constructor(
    readonly partition: number,
    private startOffset: number,
    private nextOffset = startOffset,
  ) {}

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

  get(offset: number): Delivery | undefined {
    return this.deliveries.get(offset)
  }

  /** Sets the delivery of an offset in the window (or of `next`, which then grows). */
  put(offset: number, delivery: Delivery): void {
    assert(offset >= this.startOffset && offset <= this.nextOffset)
    const previous = this.deliveries.get(offset)
    if (previous?.state === SHARE_STATE_AVAILABLE) this.availableCount--
    if (delivery.state === SHARE_STATE_AVAILABLE) this.availableCount++
    this.deliveries.set(offset, delivery)
    if (offset === this.nextOffset) this.nextOffset++
  }

  /** Offsets of the window in order, with their deliveries. */
  *window(): Generator<[number, Delivery]> {
    for (let offset = this.startOffset; offset < this.nextOffset; offset++) {
      const delivery = this.deliveries.get(offset)
      if (delivery) yield [offset, delivery]
    }
  }

  /** Moves `start` over the done prefix; returns whether it moved. */
  advance(): boolean {
    const before = this.startOffset
    for (;;) {
      const delivery = this.deliveries.get(this.startOffset)
      if (!delivery || !isDone(delivery)) break
      this.deliveries.delete(this.startOffset)
      this.startOffset++
    }
    return this.startOffset !== before
  }

  /** Forgets everything below `offset` (retention deleted it, or a stored start says so). */
  skipTo(offset: number): void {
    if (offset <= this.startOffset) return
    for (let o = this.startOffset; o < Math.min(offset, this.nextOffset); o++) {
      if (this.deliveries.get(o)?.state === SHARE_STATE_AVAILABLE) this.availableCount--
      this.deliveries.delete(o)
    }
    this.startOffset = offset
    this.nextOffset = Math.max(this.nextOffset, offset)
  }

  /** Replays a stored record: a snapshot replaces the partition's state, an update amends it. */
  apply(record: ShareStateRecord): void {
    if (record.kind === SHARE_RECORD_SNAPSHOT) {
      this.deliveries.clear()
      this.availableCount = 0
      this.startOffset = record.startOffset
      this.nextOffset = record.startOffset
    } else this.skipTo(record.startOffset)
    for (const batch of record.batches) {
      for (let offset = Math.max(batch.firstOffset, this.startOffset); offset < batch.firstOffset + batch.count; offset++) {
        while (this.nextOffset < offset) this.put(this.nextOffset, { state: SHARE_STATE_AVAILABLE, deliveryCount: 0, memberId: undefined, timeMs: 0, settling: false })
        this.put(offset, { state: batch.state, deliveryCount: batch.deliveryCount, memberId: undefined, timeMs: batch.availableAtMs, settling: false })
      }
    }
    this.advance()
  }

  /** The whole state as stored in a snapshot. */
  snapshot(): ShareStateRecord {
    return { kind: SHARE_RECORD_SNAPSHOT, partition: this.partition, startOffset: this.startOffset, batches: toBatches(this, [...this.window()].map(([offset]) => offset)) }
  }
}

export function isDone(delivery: Delivery): boolean {
  return (delivery.state === SHARE_STATE_ACKED || delivery.state === SHARE_STATE_ARCHIVED) && !delivery.settling
}

/** The stored form of `offsets` (ascending) of `state`: runs of equal deliveries become one batch. */
export function toBatches(state: SharePartitionState, offsets: readonly number[]): ShareStateBatch[] {
  const batches: ShareStateBatch[] = []
  let last: ShareStateBatch | undefined
  for (const offset of offsets) {
    const delivery = state.get(offset)
    if (!delivery || offset < state.start) continue
    const stored = storedState(delivery)
    const availableAtMs = stored === SHARE_STATE_AVAILABLE ? delivery.timeMs : 0
    if (last && last.firstOffset + last.count === offset && last.state === stored && last.deliveryCount === delivery.deliveryCount && last.availableAtMs === availableAtMs) {
      last.count++
      continue
    }
    last = { firstOffset: offset, count: 1, deliveryCount: delivery.deliveryCount, state: stored, availableAtMs }
    batches.push(last)
  }
  return batches
}

/** A record on its way to the dead-letter topic is stored as acquired: a crash delivers it (or dead-letters it) again. */
function storedState(delivery: Delivery): ShareDeliveryState {
  return delivery.settling ? SHARE_STATE_ACQUIRED : delivery.state
}
