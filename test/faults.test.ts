/**
 * Failing writes and fsyncs: every waiting append is rejected with LOG_FAILED carrying the cause,
 * the log never reports later data durable, nothing acknowledged is lost, and it reopens cleanly.
 * Faults are injected by replacing node:fs functions that seglog calls through the module object.
 */
import fs from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LogError, SegmentedLog } from '../src/index.js'
import { tempDir } from './helpers/temp-dir.js'

const bytes = (offset: number): Uint8Array => new TextEncoder().encode(`record-${offset}`)
const text = (value: Uint8Array): string => new TextDecoder().decode(value)

function errnoError(code: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: injected`) as NodeJS.ErrnoException
  error.code = code
  return error
}

async function rejection(promise: Promise<unknown>): Promise<LogError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  )
  expect(outcome).toBeInstanceOf(LogError)
  return outcome as LogError
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('SegmentedLog', () => {
  describe('when fsync fails', () => {
    it('rejects every waiting append with LOG_FAILED carrying the cause, and refuses later appends', async () => {
      const dir = tempDir('fsync-fails')
      const log = await SegmentedLog.open(dir, { sync: 'always' })
      for (let offset = 0; offset < 3; offset++) await log.append(bytes(offset))
      vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, callback: (error: Error | null) => void) => {
        setImmediate(() => callback(errnoError('EIO')))
      }) as typeof fs.fdatasync)
      const waiting = [log.append(bytes(3)), log.appendBatch([bytes(4), bytes(5)]), log.append(bytes(6))]
      const errors = await Promise.all(waiting.map(rejection))
      for (const error of errors) {
        expect(error.code).toBe('LOG_FAILED')
        expect((error.cause as LogError).code).toBe('IO_ERROR')
        expect(((error.cause as LogError).cause as NodeJS.ErrnoException).code).toBe('EIO')
      }
      vi.restoreAllMocks()
      // Even with fsync working again, the handle never claims durability for what it wrote.
      expect((await rejection(log.append(bytes(7)))).code).toBe('LOG_FAILED')
      expect((await rejection(log.sync())).code).toBe('LOG_FAILED')
      expect(text(log.read(2))).toBe('record-2')
      await log.close()
    })

    it('keeps every acknowledged record, and the log reopens and takes appends', async () => {
      const dir = tempDir('fsync-fails-reopen')
      const log = await SegmentedLog.open(dir, { sync: 'always', segmentBytesMax: 256 })
      for (let offset = 0; offset < 20; offset++) await log.append(bytes(offset))
      vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, callback: (error: Error | null) => void) => {
        setImmediate(() => callback(errnoError('EIO')))
      }) as typeof fs.fdatasync)
      await rejection(log.append(bytes(20)))
      vi.restoreAllMocks()
      await log.close()

      const reopened = await SegmentedLog.open(dir, { sync: 'always', segmentBytesMax: 256 })
      expect(reopened.recovery.uncleanShutdown).toBe(true)
      expect(reopened.endOffset).toBeGreaterThanOrEqual(20)
      for (let offset = 0; offset < 20; offset++) expect(text(reopened.read(offset))).toBe(`record-${offset}`)
      const next = reopened.endOffset
      expect(await reopened.append(bytes(next))).toBe(next)
      await reopened.close()
    })
  })

  describe('when a write fails', () => {
    it.each([['ENOSPC'], ['EIO']])('rejects the appends of the failed flush with LOG_FAILED (%s) and loses nothing acknowledged', async (code) => {
      const dir = tempDir('write-fails')
      const log = await SegmentedLog.open(dir, { sync: 'never' })
      for (let offset = 0; offset < 5; offset++) await log.append(bytes(offset))
      vi.spyOn(fs, 'writeSync').mockImplementation((() => {
        throw errnoError(code)
      }) as typeof fs.writeSync)
      const error = await rejection(log.appendBatch([bytes(5), bytes(6)]))
      expect(error.code).toBe('LOG_FAILED')
      expect(((error.cause as LogError).cause as NodeJS.ErrnoException).code).toBe(code)
      vi.restoreAllMocks()
      expect((await rejection(log.append(bytes(7)))).code).toBe('LOG_FAILED')
      await log.close()

      const reopened = await SegmentedLog.open(dir)
      expect(reopened.endOffset).toBe(5)
      for (let offset = 0; offset < 5; offset++) expect(text(reopened.read(offset))).toBe(`record-${offset}`)
      expect(await reopened.append(bytes(5))).toBe(5)
      await reopened.close()
    })
  })

  describe('when the seal of a rolled segment fails to fsync', () => {
    it('acknowledges nothing in the next segment', async () => {
      const dir = tempDir('seal-fails')
      const log = await SegmentedLog.open(dir, { sync: 'always', segmentRecordsMax: 2 })
      await log.appendBatch([bytes(0), bytes(1)])
      vi.spyOn(fs, 'fsync').mockImplementation(((_fd: number, callback: (error: Error | null) => void) => {
        setImmediate(() => callback(errnoError('EIO')))
      }) as typeof fs.fsync)
      const error = await rejection(log.append(bytes(2))) // rolls: the sealed index fsync fails
      expect(error.code).toBe('LOG_FAILED')
      vi.restoreAllMocks()
      await log.close()
      const reopened = await SegmentedLog.open(dir)
      expect([text(reopened.read(0)), text(reopened.read(1))]).toEqual(['record-0', 'record-1'])
      await reopened.close()
    })
  })
})
