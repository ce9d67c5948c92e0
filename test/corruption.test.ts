/**
 * The corruption harness (test/harness/corruption-harness.mjs) in CI: every file kind × damage kind,
 * two seeds, clean and crashed fixtures. No case may end in wrong bytes or a crash, and the harness
 * must flag a record whose bytes changed behind seglog's back with its checksum recomputed (which
 * seglog cannot detect), so a clean run means something. `npm run test:corruption -- --seeds N`
 * runs many more and prints the table of docs/durability.md.
 */
import fs from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES, crc32c } from '../src/format.js'
import { LogError, SegmentedLog } from '../src/index.js'
import { uniformFrameBytes } from '../src/mapped-frames.js'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

beforeAll(() => ensureBuilt(), 180_000)

interface CaseResult {
  seed: number
  variant: 'clean' | 'crashed'
  fileKind: string
  damage: string
  outcome: 'crash' | 'wrong-bytes' | 'lost-intact' | 'typed-error' | 'repaired' | 'unchanged'
  codes: string[]
  details: string[]
}

/** [frame position, frame end, offset, flags] of each whole frame of a store, as the harness lays it out. */
type Frame = [number, number, number, number]
type Damage = { apply: (file: string, bytes: Buffer | undefined, random: () => number, layout?: { frames?: Frame[] }) => [number, number] | undefined }

interface Harness {
  runCorruptionCases(options: {
    seeds: number
    seed: number
    baseDir: string
    fileKinds?: string[]
    damages?: Record<string, Damage>
    variants?: string[]
  }): Promise<{ cases: CaseResult[]; failures: CaseResult[] }>
  FILE_KINDS: Record<string, unknown>
  DAMAGES: Record<string, Damage>
  formatTable(cases: CaseResult[]): string
}

async function harness(): Promise<Harness> {
  return (await import(path.join(REPO, 'test', 'harness', 'corruption-harness.mjs'))) as Harness
}

const describeCase = (c: CaseResult): string => `seed ${c.seed} ${c.variant} ${c.fileKind} × ${c.damage}: ${c.outcome} ${c.details.join('; ')}`

describe('corruption harness', () => {
  it('ends every file kind × damage kind in a typed error, a repair or nothing: never wrong bytes, never a crash', async () => {
    const { runCorruptionCases, FILE_KINDS, DAMAGES } = await harness()
    const { cases } = await runCorruptionCases({ seeds: 2, seed: 1, baseDir: tempDir('corruption') })

    expect(cases.filter((c) => c.outcome === 'crash' || c.outcome === 'wrong-bytes').map(describeCase)).toEqual([])
    expect(cases.filter((c) => c.outcome === 'lost-intact').map(describeCase)).toEqual([])
    // A deleted topic.json with partitions left is refused (it once made a new 1-partition topic over them).
    expect(cases.filter((c) => c.fileKind === 'topic.json' && c.damage === 'delete').map((c) => c.outcome)).not.toContain('unchanged')
    // Every pair ran at least once (a flip in the empty clean-shutdown marker cannot).
    for (const fileKind of Object.keys(FILE_KINDS)) {
      for (const damage of Object.keys(DAMAGES)) {
        const ran = cases.some((c) => c.fileKind === fileKind && c.damage === damage)
        expect(ran || (fileKind === 'clean-shutdown' && damage !== 'delete' && !damage.startsWith('append'))).toBe(true)
      }
    }
    // The damage was seen: the typed errors the docs promise, and repairs.
    const codes = new Set(cases.flatMap((c) => c.codes.map((code) => code.split(':').at(-1))))
    for (const code of ['CORRUPT_RECORD', 'CORRUPT_FILE']) expect(codes).toContain(code)
    expect(cases.some((c) => c.outcome === 'repaired')).toBe(true)
  })

  it('reports wrong bytes when a record is changed and its checksum recomputed (damage seglog cannot see)', async () => {
    const { runCorruptionCases } = await harness()
    const forge: Damage = {
      apply(file, bytes, random, layout) {
        // The last record of a sealed segment (above the log's start offset): flip a payload byte,
        // then recompute the frame's CRC-32C so that every check seglog makes still passes.
        const [position, end] = layout!.frames!.at(-1)!
        expect(position).toBeGreaterThanOrEqual(FILE_HEADER_BYTES)
        const at = position + FRAME_HEADER_BYTES + (random() % (end - position - FRAME_HEADER_BYTES))
        bytes![at]! ^= 0x5a
        bytes!.writeUInt32LE(crc32c(bytes!.subarray(position + 4, end)), position)
        fs.writeFileSync(file, bytes!)
        return [at, at + 1]
      },
    }
    const { cases, failures } = await runCorruptionCases({
      seeds: 1,
      seed: 3,
      baseDir: tempDir('corruption'),
      fileKinds: ['sealed .log'],
      damages: { forge },
      variants: ['clean'],
    })
    expect(cases.map((c) => c.outcome)).toEqual(['wrong-bytes'])
    expect(failures).toHaveLength(1)
  })
})

describe('Segment', () => {
  // Both read paths of a sealed segment take a shortcut for segments of one record size (the frame's
  // position by arithmetic, without its index entry); both must still check every frame they return.
  describe.each([
    ['mapped', 'always'],
    ['pread', 'never'],
  ] as const)('%s read of sealed segments (read(offset))', (_path, mmap) => {
    const RECORDS = 250
    const options = { sync: 'never', mmap, segmentRecordsMax: 100 } as const
    const payload = (offset: number, bytes: number): Buffer => Buffer.alloc(bytes, (offset * 7 + 1) & 0xff).fill(offset & 0xff, 0, 1)

    async function writeLog(dir: string, bytesOf: (offset: number) => number): Promise<void> {
      const log = await SegmentedLog.open(dir, options)
      await log.appendBatch(Array.from({ length: RECORDS }, (_, offset) => payload(offset, bytesOf(offset))))
      await log.close()
    }

    /** Flips one byte at `delta` from the start of record `offset`'s frame in the first segment. */
    function damageFrame(dir: string, offset: number, frameBytes: number, delta: number): void {
      const file = path.join(dir, '00000000000000000000.log')
      const bytes = fs.readFileSync(file)
      bytes[FILE_HEADER_BYTES + offset * frameBytes + delta]! ^= 0x5a
      fs.writeFileSync(file, bytes)
    }

    it.each([
      ['segments of one record size', () => 100],
      ['segments of mixed record sizes', (offset: number) => 1 + ((offset * 37) % 300)],
    ])('returns every record of %s', async (_name, bytesOf) => {
      const dir = tempDir()
      await writeLog(dir, bytesOf)
      const log = await SegmentedLog.open(dir, options)
      expect(log.usesMmap).toBe(mmap === 'always')
      for (const offset of [0, 1, 57, 99, 100, 150, 199, 200, 249, 3, 98]) expect(Buffer.from(log.read(offset))).toEqual(payload(offset, bytesOf(offset)))
      await log.close()
    })

    it.each([
      ['a payload byte', FRAME_HEADER_BYTES + 40],
      ['the relative offset field', 8],
      ['the length field', 4],
      ['the checksum', 1],
    ])('reports CORRUPT_RECORD, never the bytes, when %s of a record in a segment of one record size is damaged', async (_name, delta) => {
      const dir = tempDir()
      await writeLog(dir, () => 100)
      damageFrame(dir, 42, FRAME_HEADER_BYTES + 100, delta)
      const log = await SegmentedLog.open(dir, options)
      expect(Buffer.from(log.read(41))).toEqual(payload(41, 100))
      let error: unknown
      try {
        log.read(42)
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(LogError)
      expect((error as LogError).code).toBe('CORRUPT_RECORD')
      expect(Buffer.from(log.read(43))).toEqual(payload(43, 100))
      await log.close()
    })
  })
})

describe('uniformFrameBytes', () => {
  const entries = (frames: Array<[number, number]>): Uint32Array => Uint32Array.from(frames.flatMap(([position, payloadBytes]) => [position, payloadBytes, 0, 0]))

  it.each([
    ['no entries', [], 0],
    ['one frame', [[FILE_HEADER_BYTES, 10]], FRAME_HEADER_BYTES + 10],
    ['frames of one size, back to back', [[FILE_HEADER_BYTES, 10], [FILE_HEADER_BYTES + 34, 10], [FILE_HEADER_BYTES + 68, 10]], 34],
    ['one frame of another size', [[FILE_HEADER_BYTES, 10], [FILE_HEADER_BYTES + 34, 11], [FILE_HEADER_BYTES + 69, 10]], 0],
    ['sizes equal but a gap between frames', [[FILE_HEADER_BYTES, 10], [FILE_HEADER_BYTES + 35, 10]], 0],
    ['a first frame not right after the header', [[FILE_HEADER_BYTES + 4, 10], [FILE_HEADER_BYTES + 38, 10]], 0],
  ] as Array<[string, Array<[number, number]>, number]>)('%s', (_name, frames, expected) => {
    expect(uniformFrameBytes(entries(frames), frames.length)).toBe(expected)
  })
})
