/**
 * Small synchronous file helpers shared by the storage layer: durable directory entries, atomic
 * file replacement, exact reads. Every failure becomes a LogError('IO_ERROR') carrying the cause.
 */
import fs from 'node:fs'
import path from 'node:path'
import { ioError } from './errors.js'
import { TEMP_SUFFIX } from './format.js'

/** Makes new, renamed and deleted directory entries durable. */
export function fsyncDirectory(dir: string): void {
  let fd: number | undefined
  try {
    fd = fs.openSync(dir, 'r')
    fs.fsyncSync(fd)
  } catch (error) {
    throw ioError('fsync of directory failed', error, dir)
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/** Replaces `file` atomically with `bytes`: temp file → fsync → rename → fsync(dir). */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const temp = `${file}.${process.pid}${TEMP_SUFFIX}`
  try {
    const fd = fs.openSync(temp, 'w')
    try {
      writeAll(fd, bytes, 0)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(temp, file)
  } catch (error) {
    fs.rmSync(temp, { force: true })
    throw ioError('atomic write failed', error, file)
  }
  fsyncDirectory(path.dirname(file))
}

/** Writes all of `bytes` at `position`, looping over short writes. */
export function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let written = 0
  while (written < bytes.length) {
    written += fs.writeSync(fd, bytes, written, bytes.length - written, position + written)
  }
}

/** Reads exactly `length` bytes at `position`, or fewer only at end of file. */
export function readAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.allocUnsafe(length)
  let total = 0
  while (total < length) {
    const n = fs.readSync(fd, buf, total, length - total, position + total)
    if (n === 0) break
    total += n
  }
  return total === length ? buf : buf.subarray(0, total)
}

export function fileBytes(file: string): number | undefined {
  try {
    return fs.statSync(file).size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError('stat failed', error, file)
  }
}
