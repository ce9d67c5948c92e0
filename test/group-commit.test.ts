/**
 * Group commit's sync rounds: at most SYNC_ROUNDS_MAX run at once, they count in the order they
 * began, a large cohort of waiting appends is split in two, and an append resolves only once an
 * fdatasync that began after its bytes were written has completed (and every earlier round too).
 * The SegmentedLog tests hold fdatasync callbacks back (vi.spyOn) to choose the order rounds end in.
 */
import fs from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../src/format.js'
import { SPLIT_RECORDS_MIN, SYNC_ROUNDS_MAX, SyncRounds } from '../src/group-commit.js'
import { LogError, SegmentedLog } from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const PAYLOAD_BYTES = 100
const FRAME_BYTES = FRAME_HEADER_BYTES + PAYLOAD_BYTES
const payload = (offset: number): Uint8Array => new Uint8Array(PAYLOAD_BYTES).fill(offset & 0xff)

/** Lets every pending microtask and immediate run. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5))

interface HeldSync {
  /** Records in the store file when the fdatasync was called (what it makes durable). */
  recordsWritten: number
  release: (error?: Error) => void
}

/** Replaces fs.fdatasync: calls are held until released, each knowing how many records it covers. */
function holdFdatasyncs(): HeldSync[] {
  const held: HeldSync[] = []
  const real = fs.fdatasync
  vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, callback: (error: Error | null) => void) => {
    const recordsWritten = (fs.fstatSync(fd).size - FILE_HEADER_BYTES) / FRAME_BYTES
    held.push({
      recordsWritten,
      release: (error) => (error ? setImmediate(() => callback(error)) : real(fd, callback)),
    })
  }) as typeof fs.fdatasync)
  return held
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('SyncRounds', () => {
  it(`lets at most ${SYNC_ROUNDS_MAX} rounds run at once`, () => {
    const rounds = new SyncRounds()
    for (let i = 0; i < SYNC_ROUNDS_MAX; i++) {
      expect(rounds.canStart).toBe(true)
      rounds.begin((i + 1) * 10, [])
    }
    expect(rounds.canStart).toBe(false)
    expect(rounds.inFlight).toBe(SYNC_ROUNDS_MAX)
  })

  it('hands out finished rounds only in the order they began', () => {
    const rounds = new SyncRounds()
    const first = rounds.begin(10, [])
    const second = rounds.begin(20, [7, 8])
    expect(second.pending).toBe(3) // the active store and the two descriptors
    second.pending = 0
    expect(rounds.takeFinished()).toEqual([])
    expect(rounds.coveredEnd(0)).toBe(20)
    first.pending = 0
    expect(rounds.takeFinished().map((round) => round.target)).toEqual([10, 20])
    expect(rounds.inFlight).toBe(0)
    expect(rounds.coveredEnd(20)).toBe(20)
  })

  it.each([
    // released, rounds still running, unwritten appends checked → split?
    { released: SPLIT_RECORDS_MIN, running: 0, unwritten: SPLIT_RECORDS_MIN / 2, split: true },
    { released: 1000, running: 0, unwritten: 499, split: false },
    { released: 1000, running: 0, unwritten: 500, split: true },
    { released: SPLIT_RECORDS_MIN - 1, running: 0, unwritten: SPLIT_RECORDS_MIN, split: false },
    { released: 1000, running: 1, unwritten: 1000, split: false },
  ])('splits after $released released with $running running at $unwritten unwritten: $split', ({ released, running, unwritten, split }) => {
    const rounds = new SyncRounds()
    for (let i = 0; i < running; i++) rounds.begin(i + 1, [])
    rounds.noteReleased(released)
    expect(rounds.takeSplit(unwritten)).toBe(split)
  })

  it('splits a cohort once', () => {
    const rounds = new SyncRounds()
    rounds.noteReleased(1000)
    expect(rounds.takeSplit(500)).toBe(true)
    expect(rounds.takeSplit(500)).toBe(false)
  })

  it('drops a split once a round runs', () => {
    const rounds = new SyncRounds()
    rounds.noteReleased(1000)
    rounds.begin(1, [])
    expect(rounds.takeSplit(600)).toBe(false)
  })
})

describe('SegmentedLog with sync: always', () => {
  it('splits a cohort of 1,000 waiting appends into two overlapping rounds', async () => {
    const dir = tempDir('group-commit-split')
    const log = await SegmentedLog.open(dir, { sync: 'always' })
    const held = holdFdatasyncs()
    const first = Array.from({ length: 1000 }, (_, i) => log.append(payload(i)))
    await settle()
    expect(held.map((sync) => sync.recordsWritten)).toEqual([1000])
    held[0]!.release()
    await Promise.all(first)
    // The round released 1,000 appends and none runs: the next 1,000 go in two rounds of 500.
    const second = Array.from({ length: 1000 }, (_, i) => log.append(payload(1000 + i)))
    await settle()
    expect(held.map((sync) => sync.recordsWritten)).toEqual([1000, 1500, 2000])
    held[1]!.release()
    held[2]!.release()
    expect(await Promise.all(second)).toEqual(Array.from({ length: 1000 }, (_, i) => 1000 + i))
    vi.restoreAllMocks()
    await log.close()
  })

  it('counts a round that finishes first only once the round before it has finished', async () => {
    const { log, held } = await logAfterLargeRound('group-commit-order')
    const resolved: number[] = []
    const waiting = Array.from({ length: 1000 }, (_, i) => log.append(payload(1000 + i)).then((offset) => resolved.push(offset)))
    await settle()
    expect(held).toHaveLength(3)
    held[2]!.release() // the later round finishes first: it covers everything, but counts in order
    await settle()
    expect(resolved).toEqual([])
    held[1]!.release()
    await Promise.all(waiting)
    expect(resolved).toHaveLength(1000)
    vi.restoreAllMocks()
    await log.close()
  })

  it('rejects the appends of both rounds when the earlier fails, even if the later succeeded first', async () => {
    const { dir, log, held } = await logAfterLargeRound('group-commit-fail')
    const outcomes = Array.from({ length: 1000 }, (_, i) =>
      log.append(payload(1000 + i)).then(
        () => 'resolved',
        (error: unknown) => (error instanceof LogError ? error.code : 'other'),
      ),
    )
    await settle()
    held[2]!.release()
    await settle()
    const eio = Object.assign(new Error('EIO: injected'), { code: 'EIO' })
    held[1]!.release(eio)
    expect(new Set(await Promise.all(outcomes))).toEqual(new Set(['LOG_FAILED']))
    vi.restoreAllMocks()
    await log.close()
    const reopened = await SegmentedLog.open(dir)
    expect(reopened.endOffset).toBeGreaterThanOrEqual(1000)
    for (let offset = 0; offset < 1000; offset++) expect(reopened.read(offset)[0]).toBe(offset & 0xff)
    await reopened.close()
  })

  it('resolves every append only after an fdatasync that began after its bytes were written', async () => {
    const dir = tempDir('group-commit-covered')
    const log = await SegmentedLog.open(dir, { sync: 'always' })
    const covered: number[] = [] // records each completed fdatasync covers, in completion order
    let running = 0
    let runningMax = 0
    const real = fs.fdatasync
    vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, callback: (error: Error | null) => void) => {
      const recordsWritten = (fs.fstatSync(fd).size - FILE_HEADER_BYTES) / FRAME_BYTES
      runningMax = Math.max(runningMax, ++running)
      real(fd, (error) => {
        running--
        covered.push(recordsWritten)
        callback(error)
      })
    }) as typeof fs.fdatasync)
    let violations = 0
    const writer = async (first: number): Promise<void> => {
      for (let offset = first; offset < 8000; offset += 1000) {
        const acknowledged = await log.append(payload(offset))
        if (!covered.some((records) => records > acknowledged)) violations++
      }
    }
    await Promise.all(Array.from({ length: 1000 }, (_, w) => writer(w)))
    expect(violations).toBe(0)
    expect(runningMax).toBe(SYNC_ROUNDS_MAX)
    vi.restoreAllMocks()
    await log.close()
  })
})

/**
 * A sync: 'always' log whose fdatasyncs are held, after one round of 1,000 appends released: the next
 * cohort of 1,000 is split into two rounds.
 */
async function logAfterLargeRound(name: string): Promise<{ dir: string; log: SegmentedLog; held: ReturnType<typeof holdFdatasyncs> }> {
  const dir = tempDir(name)
  const log = await SegmentedLog.open(dir, { sync: 'always' })
  const held = holdFdatasyncs()
  const warm = Array.from({ length: 1000 }, (_, i) => log.append(payload(i)))
  await settle()
  held[0]!.release()
  await Promise.all(warm)
  return { dir, log, held }
}
