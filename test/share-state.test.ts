/**
 * Specs for SharePartitionState (src/share-state.ts): a share group's in-flight window of one
 * partition, kept in a ring of typed arrays. The window holds one delivery per offset in
 * [start, next); start moves over done prefixes; the ring grows past its first size and wraps
 * without mixing offsets; replaying stored records and snapshots rebuilds the same state.
 */
import { describe, expect, it } from 'vitest'
import {
  SHARE_RECORD_SNAPSHOT,
  SHARE_RECORD_UPDATE,
  SHARE_STATE_ACKED,
  SHARE_STATE_ACQUIRED,
  SHARE_STATE_ARCHIVED,
  SHARE_STATE_AVAILABLE,
  type ShareDeliveryState,
} from '../src/format.js'
import { NO_MEMBER, SharePartitionState, toBatches } from '../src/share-state.js'

/** Acquires `count` never-delivered offsets for `member` (lock until `timeMs`). */
function acquire(state: SharePartitionState, count: number, member = 1, timeMs = 1_000): number[] {
  const offsets: number[] = []
  for (let i = 0; i < count; i++) {
    offsets.push(state.next)
    state.set(state.next, SHARE_STATE_ACQUIRED, 1, member, timeMs)
  }
  return offsets
}

/** Every delivery of the window, as plain tuples [offset, state, deliveryCount, member, timeMs, settling]. */
function windowOf(state: SharePartitionState): [number, ShareDeliveryState, number, number, number, boolean][] {
  const found: [number, ShareDeliveryState, number, number, number, boolean][] = []
  for (let offset = state.start; offset < state.next; offset++) {
    found.push([offset, state.stateOf(offset), state.deliveryCountOf(offset), state.memberOf(offset), state.timeOf(offset), state.isSettling(offset)])
  }
  return found
}

describe('SharePartitionState', () => {
  describe('the window', () => {
    it('grows at next, keeps each offset’s delivery, and knows which offsets it holds', () => {
      const state = new SharePartitionState(3, 100)
      expect([state.start, state.next, state.has(100)]).toEqual([100, 100, false])
      acquire(state, 3, 7, 5_000)
      state.set(101, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 9_000)
      expect(windowOf(state)).toEqual([
        [100, SHARE_STATE_ACQUIRED, 1, 7, 5_000, false],
        [101, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 9_000, false],
        [102, SHARE_STATE_ACQUIRED, 1, 7, 5_000, false],
      ])
      expect([state.has(99), state.has(100), state.has(102), state.has(103)]).toEqual([false, true, true, false])
      expect(state.hasAvailable).toBe(true)
      expect(() => state.set(104, SHARE_STATE_ACQUIRED, 1, 7, 0)).toThrow() // a gap past next is a bug
    })

    it('counts available deliveries through every change of state', () => {
      const state = new SharePartitionState(0, 0)
      acquire(state, 4)
      expect(state.hasAvailable).toBe(false)
      state.set(1, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 0)
      state.set(2, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 0)
      state.set(1, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 50) // available again, with a delay: still one of them
      state.set(2, SHARE_STATE_ACQUIRED, 2, 1, 0)
      expect(state.hasAvailable).toBe(true)
      state.set(1, SHARE_STATE_ACQUIRED, 2, 1, 0)
      expect(state.hasAvailable).toBe(false)
      state.set(3, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 0)
      state.skipTo(10) // forgets the available one too
      expect(state.hasAvailable).toBe(false)
      expect([state.start, state.next]).toEqual([10, 10])
    })

    it('advance() moves start over the done prefix only; a record on its way to the dead-letter topic stops it', () => {
      const state = new SharePartitionState(0, 0)
      acquire(state, 6)
      for (const offset of [1, 2, 4]) state.acknowledge(offset)
      expect(state.advance()).toBe(false) // 0 is still held
      state.acknowledge(0)
      expect(state.advance()).toBe(true)
      expect(state.start).toBe(3)
      state.set(3, SHARE_STATE_ARCHIVED, 1, NO_MEMBER, 0, true)
      expect(state.isDone(3)).toBe(false)
      expect(state.advance()).toBe(false)
      state.set(3, SHARE_STATE_ARCHIVED, 1, NO_MEMBER, 0)
      expect(state.advance()).toBe(true)
      expect([state.start, state.next]).toEqual([5, 6])
      expect(state.memberOf(5)).toBe(1)
    })

    it('isTimed: held (not settling) records and delayed available ones', () => {
      const state = new SharePartitionState(0, 0)
      acquire(state, 4, 1, 500)
      state.set(1, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 700)
      state.set(2, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 0)
      state.set(3, SHARE_STATE_ARCHIVED, 1, NO_MEMBER, 500, true)
      expect([0, 1, 2, 3].map((offset) => state.isTimed(offset))).toEqual([true, true, false, false])
      state.clearDelay(1)
      expect(state.isTimed(1)).toBe(false)
      expect(state.timeOf(1)).toBe(0)
    })
  })

  describe('the ring', () => {
    it.each([
      ['wraps many times at a steady window', 0, 64, 20_000],
      ['grows past its first size, then wraps', 5, 3_000, 9_000],
      ['grows several times from a high start offset', 2 ** 40, 70_000, 70_000],
    ])('%s without mixing offsets', (_, start, windowRecords, total) => {
      const state = new SharePartitionState(0, start)
      for (let done = 0; done < total; ) {
        while (state.next - state.start < windowRecords && state.next - start < total) {
          const offset = state.next
          state.set(offset, SHARE_STATE_ACQUIRED, (offset % 1000) + 1, (offset % 7) + 1, offset * 2)
        }
        // every delivery still reads back as written
        for (let offset = state.start; offset < state.next; offset += 97) {
          expect([state.deliveryCountOf(offset), state.memberOf(offset), state.timeOf(offset)]).toEqual([(offset % 1000) + 1, (offset % 7) + 1, offset * 2])
        }
        // acknowledge the older half, last offset first
        const half = Math.max(1, Math.floor((state.next - state.start) / 2))
        for (let offset = state.start + half - 1; offset >= state.start; offset--) state.acknowledge(offset)
        state.advance()
        done = state.start - start
      }
      expect(state.start).toBe(start + total)
      expect(state.next).toBe(start + total)
    })
  })

  describe('stored form', () => {
    it('toBatches folds runs of equal deliveries and stores settling records as acquired', () => {
      const state = new SharePartitionState(0, 10)
      acquire(state, 6, 1, 1_000)
      state.set(12, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 3_000)
      state.set(13, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 3_000)
      state.set(15, SHARE_STATE_ARCHIVED, 1, NO_MEMBER, 1_000, true)
      expect(toBatches(state, [9, 10, 11, 12, 13, 14, 15, 16])).toEqual([
        { firstOffset: 10, count: 2, deliveryCount: 1, state: SHARE_STATE_ACQUIRED, availableAtMs: 0 },
        { firstOffset: 12, count: 2, deliveryCount: 1, state: SHARE_STATE_AVAILABLE, availableAtMs: 3_000 },
        { firstOffset: 14, count: 2, deliveryCount: 1, state: SHARE_STATE_ACQUIRED, availableAtMs: 0 },
      ])
      expect(toBatches(state, Float64Array.from([11, 13]))).toHaveLength(2) // not adjacent: two batches
    })

    it('a snapshot and a replay of updates rebuild the same window (holders are not stored)', () => {
      const state = new SharePartitionState(2, 0)
      acquire(state, 2_500, 4, 8_000)
      for (let offset = 0; offset < 2_500; offset += 3) state.acknowledge(offset)
      state.set(1, SHARE_STATE_AVAILABLE, 1, NO_MEMBER, 12_345)
      state.set(2, SHARE_STATE_ARCHIVED, 2, NO_MEMBER, 0)
      state.advance()
      const snapshot = state.snapshot()
      expect(snapshot.kind).toBe(SHARE_RECORD_SNAPSHOT)
      const replayed = new SharePartitionState(2, 0)
      replayed.apply({ kind: SHARE_RECORD_UPDATE, partition: 2, startOffset: 0, batches: [{ firstOffset: 0, count: 5, deliveryCount: 3, state: SHARE_STATE_ACKED, availableAtMs: 0 }] })
      replayed.apply(snapshot) // replaces whatever came before
      const stored = windowOf(state).map(([offset, kind, count, , timeMs]) => [offset, kind, count, NO_MEMBER, kind === SHARE_STATE_AVAILABLE ? timeMs : 0, false])
      expect(windowOf(replayed)).toEqual(stored)
      expect(replayed.hasAvailable).toBe(true)
    })

    it('an update fills a gap before its offsets with available never-counted deliveries and moves start as stored', () => {
      const state = new SharePartitionState(0, 0)
      state.apply({ kind: SHARE_RECORD_UPDATE, partition: 0, startOffset: 4, batches: [{ firstOffset: 7, count: 2, deliveryCount: 1, state: SHARE_STATE_ACQUIRED, availableAtMs: 0 }] })
      expect(windowOf(state)).toEqual([
        [4, SHARE_STATE_AVAILABLE, 0, NO_MEMBER, 0, false],
        [5, SHARE_STATE_AVAILABLE, 0, NO_MEMBER, 0, false],
        [6, SHARE_STATE_AVAILABLE, 0, NO_MEMBER, 0, false],
        [7, SHARE_STATE_ACQUIRED, 1, NO_MEMBER, 0, false],
        [8, SHARE_STATE_ACQUIRED, 1, NO_MEMBER, 0, false],
      ])
      state.apply({ kind: SHARE_RECORD_UPDATE, partition: 0, startOffset: 4, batches: [{ firstOffset: 4, count: 5, deliveryCount: 1, state: SHARE_STATE_ACKED, availableAtMs: 0 }] })
      expect([state.start, state.next]).toEqual([9, 9])
    })
  })
})
