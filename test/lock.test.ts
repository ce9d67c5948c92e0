/**
 * One writer per directory: a second writer gets LOCKED whether it lives in the same thread, another
 * worker thread or another process; a holder that died (SIGKILL, worker.terminate()) frees the lock
 * at once; readOnly handles never take it. Threads and processes import the BUILT dist/index.js.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { LogError, SegmentedLog } from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DIST_URL = new URL('../dist/index.js', import.meta.url).href

function record(offset: number): Buffer {
  return Buffer.from(`record ${offset}`)
}

async function openError(dir: string, options = {}): Promise<unknown> {
  try {
    const log = await SegmentedLog.open(dir, options)
    await log.close()
  } catch (error) {
    return error
  }
  return undefined
}

async function expectLocked(dir: string): Promise<void> {
  const error = await openError(dir)
  expect(error).toBeInstanceOf(LogError)
  expect((error as LogError).code).toBe('LOCKED')
}

// ---------------------------------------------------------------------------------------------
// A worker thread that runs log operations on request.

const WORKER_SOURCE = `
import { parentPort } from 'node:worker_threads'
import { SegmentedLog } from ${JSON.stringify(DIST_URL)}
let log
parentPort.on('message', async ({ op, dir, options, values }) => {
  try {
    let value
    if (op === 'open') {
      log = await SegmentedLog.open(dir, options)
      value = { endOffset: log.endOffset, readOnly: log.isReadOnly }
    } else if (op === 'append') {
      value = await log.appendBatch(values.map((text) => Buffer.from(text)))
    } else if (op === 'read') {
      value = Array.from({ length: log.endOffset - log.startOffset }, (_, i) => Buffer.from(log.read(log.startOffset + i)).toString())
    } else if (op === 'close') {
      await log.close()
    }
    parentPort.postMessage({ ok: true, value })
  } catch (error) {
    parentPort.postMessage({ ok: false, code: error.code, message: String(error.message) })
  }
})
`

interface Reply {
  ok: boolean
  value?: unknown
  code?: string
  message?: string
}

class LogWorker {
  private readonly worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`))
  private exited = false

  constructor() {
    this.worker.on('exit', () => (this.exited = true))
  }

  request(message: { op: 'open' | 'append' | 'read' | 'close'; dir?: string; options?: object; values?: string[] }): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error)
      this.worker.once('error', onError)
      this.worker.once('message', (reply: Reply) => {
        this.worker.off('error', onError)
        resolve(reply)
      })
      this.worker.postMessage(message)
    })
  }

  async terminate(): Promise<void> {
    if (!this.exited) await this.worker.terminate()
  }
}

// ---------------------------------------------------------------------------------------------
// A child process that appends records (until killed, or up to an offset), printing each acknowledged offset.

const CHILD_SOURCE = `
import { SegmentedLog } from ${JSON.stringify(DIST_URL)}
const dir = process.argv[1]
const idleAfter = Number(process.argv[2]) // stop appending (but keep the lock) after this offset
try {
  const log = await SegmentedLog.open(dir, { sync: 'never', segmentRecordsMax: 16 })
  process.stdout.write('opened ' + log.endOffset + '\\n')
  for (let offset = log.endOffset; ; offset++) {
    const acknowledged = await log.append(Buffer.from('record ' + offset))
    process.stdout.write('acked ' + acknowledged + '\\n')
    if (acknowledged >= idleAfter) await new Promise(() => setInterval(() => {}, 60000)) // hold the lock, idle
  }
} catch (error) {
  process.stdout.write('error ' + error.code + '\\n')
  process.exit(1)
}
`

class LogChild {
  readonly process: ChildProcess
  readonly lines: string[] = []
  private readonly exit: Promise<NodeJS.Signals | number | null>
  private waiters: (() => void)[] = []

  constructor(dir: string, idleAfter: number) {
    this.process = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SOURCE, dir, String(idleAfter)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let partial = ''
    this.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n')
      partial = parts.pop()!
      this.lines.push(...parts)
      for (const wake of this.waiters.splice(0)) wake()
    })
    this.exit = new Promise((resolve) =>
      this.process.on('exit', (code, signal) => {
        resolve(signal ?? code)
        for (const wake of this.waiters.splice(0)) wake()
      }),
    )
  }

  /** Largest offset the child reported as acknowledged. */
  get lastAcked(): number {
    let last = -1
    for (const line of this.lines) if (line.startsWith('acked ')) last = Math.max(last, Number(line.slice(6)))
    return last
  }

  async waitFor(predicate: () => boolean): Promise<void> {
    while (!predicate()) {
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`child exited early: ${this.lines.join(' | ')}`)
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
  }

  /** SIGKILLs the child and resolves once it is gone (reaped). */
  async kill(): Promise<NodeJS.Signals | number | null> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL')
    return this.exit
  }
}

// ---------------------------------------------------------------------------------------------

describe('SegmentedLog', () => {
  describe('writer lock', () => {
    const cleanups: (() => Promise<unknown>)[] = []

    beforeAll(() => {
      // Threads and processes load the built package; build it from the current sources.
      try {
        execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' })
      } catch (error) {
        if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw error
        console.warn(`lock.test: build failed, using the existing dist/: ${String((error as { stdout?: Buffer }).stdout ?? error)}`)
      }
    })

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    })

    async function open(dir: string, options = {}): Promise<SegmentedLog> {
      const log = await SegmentedLog.open(dir, options)
      cleanups.push(() => log.close())
      return log
    }

    function worker(): LogWorker {
      const created = new LogWorker()
      cleanups.push(() => created.terminate())
      return created
    }

    function child(dir: string, idleAfter = 200): LogChild {
      const created = new LogChild(dir, idleAfter)
      cleanups.push(() => created.kill())
      return created
    }

    describe('in the same thread', () => {
      it('refuses a second writer with LOCKED and leaves the first one working', async () => {
        const dir = tempDir()
        const first = await open(dir)
        await first.append(record(0))
        await expectLocked(dir)
        await expectLocked(dir) // still, and again
        expect(await first.append(record(1))).toBe(1)
        expect(Buffer.from(first.read(1)).toString()).toBe('record 1')
        await first.close()
        const second = await open(dir)
        expect(second.endOffset).toBe(2)
        expect(await second.append(record(2))).toBe(2)
      })

      it('leaves no lock behind when open refuses its options', async () => {
        const dir = tempDir()
        const log = await open(dir)
        await log.append(record(0))
        await log.close()
        await expect(SegmentedLog.open(dir, { segmentRecordsMax: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
        expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false)
        const again = await open(dir)
        expect(again.endOffset).toBe(1)
      })
    })

    describe('across worker threads', () => {
      it('gives a worker LOCKED while this thread writes, and the lock once this thread closes', async () => {
        const dir = tempDir()
        const log = await open(dir)
        await log.appendBatch([record(0), record(1)])
        const other = worker()
        const refused = await other.request({ op: 'open', dir })
        expect(refused).toMatchObject({ ok: false, code: 'LOCKED' })
        await log.close()
        const opened = await other.request({ op: 'open', dir })
        expect(opened).toEqual({ ok: true, value: { endOffset: 2, readOnly: false } })
        expect(await other.request({ op: 'append', values: ['record 2'] })).toEqual({ ok: true, value: 2 })
        expect(await other.request({ op: 'close' })).toEqual({ ok: true })
        const reopened = await open(dir)
        expect(reopened.endOffset).toBe(3)
        expect(Buffer.from(reopened.read(2)).toString()).toBe('record 2')
      })

      it('gives this thread LOCKED while a worker writes, and the lock once the worker closes', async () => {
        const dir = tempDir()
        const other = worker()
        expect(await other.request({ op: 'open', dir })).toMatchObject({ ok: true })
        expect(await other.request({ op: 'append', values: ['a', 'b', 'c'] })).toEqual({ ok: true, value: 0 })
        await expectLocked(dir)
        const second = worker()
        expect(await second.request({ op: 'open', dir })).toMatchObject({ ok: false, code: 'LOCKED' })
        expect(await other.request({ op: 'close' })).toEqual({ ok: true })
        const log = await open(dir)
        expect(log.endOffset).toBe(3)
        expect(Buffer.from(log.read(2)).toString()).toBe('c')
      })

      it('takes over at once the lock of a worker terminated without closing', async () => {
        const dir = tempDir()
        const other = worker()
        expect(await other.request({ op: 'open', dir, options: { sync: 'never' } })).toMatchObject({ ok: true })
        expect(await other.request({ op: 'append', values: ['w0', 'w1', 'w2', 'w3'] })).toEqual({ ok: true, value: 0 })
        await expectLocked(dir) // alive: held
        await other.terminate()
        const log = await open(dir)
        expect(log.recovery.uncleanShutdown).toBe(true)
        expect(log.endOffset).toBe(4)
        expect([0, 1, 2, 3].map((offset) => Buffer.from(log.read(offset)).toString())).toEqual(['w0', 'w1', 'w2', 'w3'])
        expect(await log.append(record(4))).toBe(4)
      })
    })

    describe('across processes', () => {
      it('gives this process LOCKED while a child process writes', async () => {
        const dir = tempDir()
        const holder = child(dir)
        await holder.waitFor(() => holder.lastAcked >= 0)
        await expectLocked(dir)
        expect(holder.lines[0]).toBe('opened 0')
      })

      it('opens at once after the holding process is SIGKILLed, with every acknowledged record', async () => {
        const dir = tempDir()
        const holder = child(dir, Number.MAX_SAFE_INTEGER)
        await holder.waitFor(() => holder.lastAcked >= 40) // killed mid-stream, while appending
        expect(await holder.kill()).toBe('SIGKILL')
        const acked = holder.lastAcked
        const log = await open(dir) // no lease to wait out
        expect(log.recovery.uncleanShutdown).toBe(true)
        expect(log.endOffset).toBeGreaterThanOrEqual(acked + 1)
        for (let offset = 0; offset < log.endOffset; offset++) expect(Buffer.from(log.read(offset)).toString()).toBe(`record ${offset}`)
        const end = log.endOffset
        expect(await log.append(Buffer.from('after the crash'))).toBe(end)
      })

      it('lets a second child take over from a SIGKILLed one', async () => {
        const dir = tempDir()
        const first = child(dir, Number.MAX_SAFE_INTEGER)
        await first.waitFor(() => first.lastAcked >= 10)
        await first.kill()
        const acked = first.lastAcked
        const second = child(dir)
        await second.waitFor(() => second.lastAcked >= 0)
        const opened = Number(second.lines.find((line) => line.startsWith('opened '))?.slice(7))
        expect(opened).toBeGreaterThanOrEqual(acked + 1)
        await expectLocked(dir)
        await second.kill()
        const log = await open(dir)
        for (let offset = 0; offset < log.endOffset; offset++) expect(Buffer.from(log.read(offset)).toString()).toBe(`record ${offset}`)
        expect(log.endOffset).toBeGreaterThanOrEqual(second.lastAcked + 1)
      })
    })

    describe('readOnly handles', () => {
      it('never take the lock: a writer opens while readers are open, and readers open while a writer holds it', async () => {
        const dir = tempDir()
        const first = await open(dir)
        await first.appendBatch([record(0), record(1)])
        await first.close()
        expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false)

        const reader = await open(dir, { readOnly: true })
        const readerInWorker = worker()
        expect(await readerInWorker.request({ op: 'open', dir, options: { readOnly: true } })).toEqual({
          ok: true,
          value: { endOffset: 2, readOnly: true },
        })
        expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false)

        const writer = await open(dir)
        expect(await writer.append(record(2))).toBe(2)
        const lockText = fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')
        const second = await open(dir, { readOnly: true })
        expect(await readerInWorker.request({ op: 'read' })).toEqual({ ok: true, value: ['record 0', 'record 1'] })
        expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).toBe(lockText)
        expect(Buffer.from(reader.read(1)).toString()).toBe('record 1')
        expect(Buffer.from(second.read(0)).toString()).toBe('record 0')
        await expectLocked(dir)

        await reader.close()
        await second.close()
        expect(await readerInWorker.request({ op: 'close' })).toEqual({ ok: true })
        expect(await writer.append(record(3))).toBe(3) // readers closing changed nothing for the writer
        expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).toBe(lockText)
      })

      it('read while a child process holds the lock', async () => {
        const dir = tempDir()
        const holder = child(dir)
        await holder.waitFor(() => holder.lastAcked >= 20)
        const reader = await open(dir, { readOnly: true })
        expect(reader.isReadOnly).toBe(true)
        expect(reader.endOffset).toBeGreaterThan(0)
        for (let offset = 0; offset < reader.endOffset; offset++) expect(Buffer.from(reader.read(offset)).toString()).toBe(`record ${offset}`)
        await expectLocked(dir) // the child still holds it
      })
    })
  })
})
