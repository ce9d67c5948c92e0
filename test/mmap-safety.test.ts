/**
 * mmap safety specs (mmap: 'always'): views returned by read() point into the map of a sealed segment.
 * Deleting or cutting a segment must never shrink a file someone has mapped; touching a lost page
 * raises SIGBUS, which kills the process (here: the vitest worker, or the reader child, and the test
 * fails). Records are larger than a page so that a cut always loses whole pages under held views.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { LogError, SegmentedLog, mmapAvailable, type SegmentedLogOptions } from '../src/index.js'
import { CLEAN_SHUTDOWN_FILE, FILE_HEADER_BYTES, INDEX_SUFFIX, STORE_SUFFIX, segmentFileName } from '../src/format.js'
import { ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DIST_URL = pathToFileURL(path.join(REPO, 'dist', 'index.js')).href



// ---------------------------------------------------------------------------------------------
// Records of a little over a page each; generation 1 marks records rewritten after a cut.

const PAGE_BYTES = 4096
const SEGMENT_RECORDS = 16
const MMAP: SegmentedLogOptions = { mmap: 'always', segmentRecordsMax: SEGMENT_RECORDS }

function payloadFor(offset: number, generation = 0): Buffer {
  const bytes = Buffer.alloc(PAGE_BYTES + 8 + (offset % 50))
  for (let i = 0; i < bytes.length; i++) bytes[i] = (offset * 13 + generation * 101 + i) & 0xff
  bytes.write(`g${generation}:o${offset}:`, 'latin1')
  return bytes
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)
}

function hashOf(offsets: number[], generation = 0): string {
  const hash = createHash('sha256')
  for (const offset of offsets) hash.update(payloadFor(offset, generation))
  return hash.digest('hex')
}

async function appendRange(log: SegmentedLog, from: number, to: number, generation = 0): Promise<void> {
  const offsets = await Promise.all(range(from, to).map((offset) => log.append(payloadFor(offset, generation))))
  expect(offsets).toEqual(range(from, to))
}

function storeFile(dir: string, baseOffset: number): string {
  return path.join(dir, segmentFileName(baseOffset, STORE_SUFFIX))
}

function indexFile(dir: string, baseOffset: number): string {
  return path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX))
}

interface HeldView {
  offset: number
  view: Uint8Array
}

/** Reads [from, to) and checks that every view is, when read, a view of its sealed segment's map. */
function holdMappedViews(log: SegmentedLog, from: number, to: number): HeldView[] {
  const held: HeldView[] = []
  const notMapped: number[] = []
  for (const offset of range(from, to)) {
    const view = log.read(offset)
    const segment = log.segments.find((candidate) => candidate.baseOffset <= offset && offset < candidate.nextOffset)
    if (!segment || segment.isActive || segment.mappedBytes === 0 || view.buffer.byteLength !== segment.mappedBytes) notMapped.push(offset)
    held.push({ offset, view })
  }
  expect(notMapped).toEqual([])
  return held
}

/** Offsets whose held view no longer shows payloadFor(offset, generation). Touches every byte. */
function changedViews(held: HeldView[], generation = 0): number[] {
  return held.filter(({ offset, view }) => Buffer.compare(view, payloadFor(offset, generation)) !== 0).map(({ offset }) => offset)
}

const openLogs: SegmentedLog[] = []

async function open(dir: string, options?: SegmentedLogOptions): Promise<SegmentedLog> {
  const log = await SegmentedLog.open(dir, options)
  openLogs.push(log)
  return log
}

afterEach(async () => {
  for (const log of openLogs.splice(0)) await log.close().catch(() => undefined)
})

// ---------------------------------------------------------------------------------------------
// A reader in another process: maps what it can read, holds the views, and on "check" touches them.

const READER_SCRIPT = `
import { createHash } from 'node:crypto'
import readline from 'node:readline'
const [dir, distUrl] = process.argv.slice(1)
const { SegmentedLog } = await import(distUrl)
const log = await SegmentedLog.open(dir, { readOnly: true, mmap: 'always' })
const from = log.startOffset
const to = log.endOffset
const views = []
let mapped = 0
for (let offset = from; offset < to; offset++) {
  const view = log.read(offset)
  const segment = log.segments.find((s) => s.baseOffset <= offset && offset < s.nextOffset)
  if (segment && segment.mappedBytes > 0 && view.buffer.byteLength === segment.mappedBytes) mapped++
  views.push(view)
}
const copies = views.map((view) => Buffer.from(view))
const hash = createHash('sha256')
for (const copy of copies) hash.update(copy)
process.stdout.write(JSON.stringify({ from, to, mapped, hash: hash.digest('hex') }) + '\\n')
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line !== 'check') continue
  const mismatches = []
  views.forEach((view, i) => { if (Buffer.compare(view, copies[i]) !== 0) mismatches.push(from + i) })
  process.stdout.write(JSON.stringify({ checked: views.length, mismatches }) + '\\n')
  await log.close()
  process.exit(0)
}
`

interface ReaderReady {
  from: number
  to: number
  mapped: number
  hash: string
}

interface ReaderResult {
  report: { checked: number; mismatches: number[] } | undefined
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
}

function startReader(dir: string): { ready: Promise<ReaderReady>; check: () => Promise<ReaderResult> } {
  const child = spawn(process.execPath, ['--input-type=module', '-e', READER_SCRIPT, dir, DIST_URL], { stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  let partial = ''
  let stderr = ''
  let onLine: (() => void) | undefined
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 30_000)
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
    onLine?.()
  })
  child.stderr.on('data', (chunk: string) => (stderr += chunk))
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(watchdog)
      resolve({ code, signal })
      onLine?.()
    }),
  )
  const ready = new Promise<ReaderReady>((resolve, reject) => {
    onLine = () => {
      if (lines.length > 0) resolve(JSON.parse(lines[0]!) as ReaderReady)
      else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`reader exited before it was ready: ${stderr}`))
    }
  })
  const check = async (): Promise<ReaderResult> => {
    child.stdin.write('check\n')
    const { code, signal } = await closed
    const line = lines[1]
    return { report: line === undefined ? undefined : (JSON.parse(line) as ReaderResult['report']), code, signal, stderr }
  }
  return { ready, check }
}

// ---------------------------------------------------------------------------------------------

describe('SegmentedLog', () => {
  describe("mmap safety (mmap: 'always')", () => {
    beforeAll(() => {
      expect(mmapAvailable()).toBe(true)
    })

    const CACHES = [
      { cache: 'the default segment cache', options: {} },
      { cache: 'openSegmentsMax 1 (the log drops its maps while views are held)', options: { openSegmentsMax: 1 } },
    ]

    it.each(CACHES)('views of sealed segments keep their bytes after deleteBefore deletes the segments, with $cache', async ({ options }) => {
      const dir = tempDir('mmap-delete')
      const log = await open(dir, { ...MMAP, ...options })
      await appendRange(log, 0, 4 * SEGMENT_RECORDS)
      const held = holdMappedViews(log, 0, 2 * SEGMENT_RECORDS)

      expect(await log.deleteBefore(2 * SEGMENT_RECORDS)).toBe(2)
      expect(fs.existsSync(storeFile(dir, 0))).toBe(false)
      expect(fs.existsSync(storeFile(dir, SEGMENT_RECORDS))).toBe(false)
      expect(changedViews(held)).toEqual([])
      const gone = (() => {
        try {
          log.read(0)
        } catch (error) {
          return error
        }
        return undefined
      })()
      expect(gone).toBeInstanceOf(LogError)
      expect(gone).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' })
    })

    it('views of a sealed segment keep their bytes after retention deletes it', async () => {
      const dir = tempDir('mmap-retention')
      const segmentBytes = FILE_HEADER_BYTES + SEGMENT_RECORDS * (payloadFor(0).length + 64)
      const log = await open(dir, { ...MMAP, retentionBytesMax: 3 * segmentBytes })
      await appendRange(log, 0, 2 * SEGMENT_RECORDS + 1)
      const held = holdMappedViews(log, 0, 2 * SEGMENT_RECORDS)

      let end = log.endOffset
      for (let round = 0; round < 8 && fs.existsSync(storeFile(dir, 0)); round++) {
        await appendRange(log, end, end + SEGMENT_RECORDS)
        end = log.endOffset
        await new Promise((resolve) => setImmediate(resolve)) // retention runs after a roll
      }
      expect(fs.existsSync(storeFile(dir, 0))).toBe(false)
      expect(log.startOffset).toBeGreaterThanOrEqual(SEGMENT_RECORDS)
      expect(changedViews(held)).toEqual([])
    })

    it('views of sealed segments keep their old bytes after truncate() cuts into them and new records take their offsets', async () => {
      const dir = tempDir('mmap-truncate')
      const log = await open(dir, MMAP)
      await appendRange(log, 0, 4 * SEGMENT_RECORDS)
      const held = holdMappedViews(log, 0, 3 * SEGMENT_RECORDS)
      const firstCut = SEGMENT_RECORDS + 4
      const secondCut = 5

      await log.truncate(firstCut) // into the second segment; the third and the active one go
      expect(log.endOffset).toBe(firstCut)
      expect(changedViews(held)).toEqual([])
      await appendRange(log, firstCut, 3 * SEGMENT_RECORDS, 1)
      expect(changedViews(held)).toEqual([])
      expect(Buffer.compare(log.read(firstCut), payloadFor(firstCut, 1))).toBe(0)

      await log.truncate(secondCut) // into the first segment, which is still mapped
      expect(log.endOffset).toBe(secondCut)
      await appendRange(log, secondCut, 2 * SEGMENT_RECORDS, 2)
      expect(changedViews(held)).toEqual([])
      for (const offset of range(0, 2 * SEGMENT_RECORDS)) {
        expect(Buffer.compare(log.read(offset), payloadFor(offset, offset < secondCut ? 0 : 2))).toBe(0)
      }
    })

    describe('with a readOnly reader in another process', () => {
      beforeAll(ensureBuilt, 120_000)

      it('the reader keeps correct bytes and exits cleanly while the writer truncates into and deletes the segments it mapped', async () => {
        const dir = tempDir('mmap-reader')
        const writer = await open(dir, MMAP)
        await appendRange(writer, 0, 5 * SEGMENT_RECORDS)

        const reader = startReader(dir)
        const ready = await reader.ready
        // Every record, the right bytes; all but the writer's active segment read through maps.
        expect(ready).toEqual({ from: 0, to: 5 * SEGMENT_RECORDS, mapped: 4 * SEGMENT_RECORDS, hash: hashOf(range(0, 5 * SEGMENT_RECORDS)) })

        const cut = 2 * SEGMENT_RECORDS + 8
        await writer.truncate(cut) // into the third segment; two later ones deleted
        await appendRange(writer, cut, 5 * SEGMENT_RECORDS, 1)
        expect(await writer.deleteBefore(cut - 4)).toBe(2) // the first two segments
        await writer.truncate(cut - 2) // again into the segment the reader mapped (now a copy)
        await appendRange(writer, cut - 2, 5 * SEGMENT_RECORDS, 2)
        expect(fs.existsSync(storeFile(dir, 0))).toBe(false)

        const result = await reader.check()
        expect(result).toEqual({ report: { checked: 5 * SEGMENT_RECORDS, mismatches: [] }, code: 0, signal: null, stderr: '' })
      })

      const LAYOUTS = [
        { layout: 'the oldest segment', singles: 10 }, // segments [0..15] [16..21]
        { layout: 'a segment with an older one before it', singles: 2 * SEGMENT_RECORDS - 6 }, // [0..15] [16..31] [32..37]
      ]
      const BATCH = 12

      it.each(LAYOUTS)("the reader survives a writer's crash recovery cutting an unfinished batch out of $layout, which it has mapped", async ({ singles }) => {
        const dir = tempDir('mmap-recovery')
        const end = singles + BATCH
        const newestBase = end - 1 - ((end - 1) % SEGMENT_RECORDS)
        const cutBase = singles - (singles % SEGMENT_RECORDS)
        const first = await open(dir, MMAP)
        await appendRange(first, 0, singles)
        expect(await first.appendBatch(range(singles, end).map((offset) => payloadFor(offset)))).toBe(singles)
        await first.close()
        // The crash: the batch's frames never reached the newest segment, and no clean close.
        fs.truncateSync(storeFile(dir, newestBase), FILE_HEADER_BYTES)
        fs.truncateSync(indexFile(dir, newestBase), FILE_HEADER_BYTES)
        fs.rmSync(path.join(dir, CLEAN_SHUTDOWN_FILE))
        const storeBytesBefore = fs.statSync(storeFile(dir, cutBase)).size

        const reader = startReader(dir)
        const ready = await reader.ready
        // The reader never shows the unfinished batch (it ends at the last BATCH_END), but it maps
        // the whole store file, including the pages the recovery is about to cut.
        expect(ready.from).toBe(0)
        expect(ready.to).toBe(singles)
        expect(ready.mapped).toBe(singles) // every visible record lies in a sealed, mapped segment
        expect(ready.hash).toBe(hashOf(range(ready.from, ready.to)))

        const writer = await open(dir, MMAP)
        expect(writer.endOffset).toBe(singles)
        expect(fs.statSync(storeFile(dir, cutBase)).size).toBeLessThan(storeBytesBefore - 2 * PAGE_BYTES)

        const result = await reader.check()
        expect(result).toEqual({ report: { checked: ready.to - ready.from, mismatches: [] }, code: 0, signal: null, stderr: '' })
      })
    })
  })
})
