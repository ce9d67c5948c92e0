/**
 * Crash specs: a child process (test/fixtures/crash-writer.mjs, running the built package) appends
 * with sync 'always' and reports every acknowledged record; the parent SIGKILLs it at a random moment,
 * reopens the log and checks that nothing acknowledged was lost, nothing wrong was kept, every batch
 * is all-or-none, and the log takes new appends.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { LogError, SegmentedLog } from '../src/index.js'
import { ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const WRITER = path.join(REPO, 'test', 'fixtures', 'crash-writer.mjs')



// ---------------------------------------------------------------------------------------------
// Payloads: must match payloadFor in test/fixtures/crash-writer.mjs (the child's hashes check that).

function generator(start: number): () => number {
  let state = start >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) >>> 0
  }
}

function payloadFor(offset: number, seed: number): Buffer {
  const next = generator(Math.imul(offset + 1, 0x9e3779b1) ^ Math.imul(seed + 1, 0x85ebca6b))
  const bytes = Buffer.alloc(8 + (next() % 300))
  bytes.writeUInt32LE(offset, 0)
  bytes.writeUInt32LE(seed, 4)
  for (let i = 8; i < bytes.length; i++) bytes[i] = next() & 0xff
  return bytes
}

function hashOf(first: number, count: number, seed: number): string {
  const hash = createHash('sha256')
  for (let offset = first; offset < first + count; offset++) hash.update(payloadFor(offset, seed))
  return hash.digest('hex')
}

// ---------------------------------------------------------------------------------------------
// One trial: run the writer, kill it, read what it said.

interface Trial {
  acks: { first: number; count: number; hash: string }[]
  batches: { first: number; count: number }[]
  signal: NodeJS.Signals | null
  code: number | null
  stderr: string
}

/** Runs the writer until it has acknowledged `killAfterAcks` operations, waits `delayMs` more, then SIGKILLs it. */
function runWriter(dir: string, seed: number, killAfterAcks: number, delayMs: number): Promise<Trial> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let acks = 0
    let killing = false
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk
      acks += chunk.split('\n').filter((line) => line.startsWith('ack ')).length
      if (!killing && acks >= killAfterAcks) {
        killing = true
        setTimeout(() => child.kill('SIGKILL'), delayMs)
      }
    })
    child.stderr.on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(watchdog)
      const lines = stdout.split('\n')
      lines.pop() // the text after the last newline, if any, is not a whole line
      const trial: Trial = { acks: [], batches: [], signal, code, stderr }
      for (const line of lines) {
        const [kind, first, count, hash] = line.split(' ')
        if (kind === 'ack') trial.acks.push({ first: Number(first), count: Number(count), hash: hash ?? '' })
        else if (kind === 'batch') trial.batches.push({ first: Number(first), count: Number(count) })
        else reject(new Error(`unexpected line from the writer: ${line}`))
      }
      resolve(trial)
    })
  })
}

const openLogs: SegmentedLog[] = []

afterEach(async () => {
  for (const log of openLogs.splice(0)) await log.close().catch(() => undefined)
})

function errorOf(action: () => unknown): unknown {
  try {
    action()
  } catch (error) {
    return error
  }
  return undefined
}

// Seeds fix the payloads, the writer's choices and the kill point; the kill moment itself varies.
const TRIALS = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => {
  const next = generator(seed * 7919)
  return { seed, killAfterAcks: 40 + (next() % 360), delayMs: next() % 25 }
})

describe('SegmentedLog', () => {
  describe('after the writer process is SIGKILLed (sync: always)', () => {
    beforeAll(ensureBuilt, 120_000)

    it.each(TRIALS)('keeps every acknowledged record, contiguous and intact, and takes new appends (seed $seed)', async ({ seed, killAfterAcks, delayMs }) => {
      const dir = tempDir('crash')
      const trial = await runWriter(dir, seed, killAfterAcks, delayMs)
      expect(trial.stderr).toBe('')
      expect(trial).toMatchObject({ signal: 'SIGKILL', code: null })
      expect(trial.acks.length).toBeGreaterThanOrEqual(killAfterAcks)
      // Parent and child derive the same payloads.
      expect(trial.acks.filter((ack) => ack.hash !== hashOf(ack.first, ack.count, seed))).toEqual([])

      const log = await SegmentedLog.open(dir)
      openLogs.push(log)
      const acknowledgedEnd = Math.max(...trial.acks.map((ack) => ack.first + ack.count))
      const end = log.endOffset
      expect(log.recovery.uncleanShutdown).toBe(true)
      expect(log.startOffset).toBe(0)
      expect(end).toBeGreaterThanOrEqual(acknowledgedEnd)
      expect(log.segments.length).toBeGreaterThan(1) // the writer rolled: the trial covered sealed segments
      expect(log.segments[0]!.baseOffset).toBe(0)
      for (let i = 1; i < log.segments.length; i++) expect(log.segments[i]!.baseOffset).toBe(log.segments[i - 1]!.nextOffset)
      expect(log.segments[log.segments.length - 1]!.nextOffset).toBe(end)

      // Every record kept, acknowledged or not, holds exactly the bytes written for its offset.
      const wrong: number[] = []
      for (let offset = 0; offset < end; offset++) {
        if (Buffer.compare(log.read(offset), payloadFor(offset, seed)) !== 0) wrong.push(offset)
      }
      expect(wrong).toEqual([])
      const iterated: number[] = []
      for await (const record of log.records()) iterated.push(record.offset)
      expect(iterated).toEqual(Array.from({ length: end }, (_, i) => i))
      const beyond = errorOf(() => log.read(end))
      expect(beyond).toBeInstanceOf(LogError)
      expect(beyond).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' })

      // All or none of each batch, including the one in flight at the kill.
      const split = trial.batches.filter((batch) => end > batch.first && end < batch.first + batch.count)
      expect(split).toEqual([])

      expect(await log.append(payloadFor(end, seed))).toBe(end)
      expect(await log.appendBatch([payloadFor(end + 1, seed), payloadFor(end + 2, seed)])).toBe(end + 1)
      await log.close()
      const reopened = await SegmentedLog.open(dir)
      openLogs.push(reopened)
      expect(reopened.recovery.scanned).toBe(false)
      expect(reopened.endOffset).toBe(end + 3)
      for (const offset of [0, acknowledgedEnd - 1, end, end + 1, end + 2]) {
        expect(Buffer.compare(reopened.read(offset), payloadFor(offset, seed))).toBe(0)
      }
    })
  })
})
