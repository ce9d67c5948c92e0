/**
 * Store: one segment's store file, a file header followed by record frames (format.ts).
 *
 * The active store appends frames into a write buffer that is written to the file in large chunks
 * (`flush`), so many appends share one write(2). Frames still in the buffer are served from it.
 * A sealed store is read-only: read through a map of the whole file when mmap is available, else by
 * pread. A sealed store file is never shrunk in place (readers may have it mapped; a shrink would
 * raise SIGBUS in them): `Segment` replaces it by a shorter copy instead.
 */
import fs from 'node:fs'
import { assert } from './assert.js'
import { ioError } from './errors.js'
import { wordsOf } from './crc32c.js'
import {
  FILE_HEADER_BYTES,
  FLAG_BATCH_END,
  FRAME_HEADER_BYTES,
  type PayloadSource,
  STORE_MAGIC,
  decodeFileHeader,
  encodeFileHeader,
  putFrameHeader,
  sealFrame,
} from './format.js'
import { readAt, writeAll } from './fs-util.js'
import { type MmapApi, mapReadOnly } from './mmap.js'
import { type Index, closeQuietly, openFile } from './offset-index.js'

const READ_AHEAD_BYTES = 64 * 1024

export class Store {
  private fd: number | undefined
  private map: Buffer | undefined
  private writeBuffer: Buffer | undefined
  /** The write buffer's ArrayBuffer as words, for the checksum of frames in place (crc32c.ts). */
  private writeWords: Int32Array | undefined
  /** File position of writeBuffer[0]; everything before it has been written to the file. */
  private bufferStart = 0
  private bufferUsed = 0
  private logicalBytes: number
  private readAhead: Buffer | undefined
  private readAheadStart = 0
  private lastReadEnd = -1

  private constructor(
    readonly path: string,
    readonly baseOffset: number,
    readonly createdMs: number,
    state: { fd?: number; map?: Buffer; bytes: number; writeBufferBytes?: number },
  ) {
    this.fd = state.fd
    this.map = state.map
    this.logicalBytes = state.bytes
    if (state.writeBufferBytes !== undefined) {
      this.writeBuffer = Buffer.allocUnsafe(state.writeBufferBytes)
      this.writeWords = wordsOf(this.writeBuffer)
      this.bufferStart = state.bytes
    }
  }

  /** Creates a new store file holding only its header, writable. */
  static create(path: string, baseOffset: number, createdMs: number, writeBufferBytes: number): Store {
    const header = Buffer.alloc(FILE_HEADER_BYTES)
    encodeFileHeader(header, 0, { magic: STORE_MAGIC, baseOffset, createdMs })
    fs.rmSync(path, { force: true }) // a reader may still map an old file of this name: never shrink it
    const fd = openFile(path, 'wx+')
    writeAll(fd, header, 0)
    return new Store(path, baseOffset, createdMs, { fd, bytes: FILE_HEADER_BYTES, writeBufferBytes })
  }

  /** Opens an existing store to append after its first `validBytes` bytes (recovery already cut the rest). */
  static openWritable(path: string, baseOffset: number, createdMs: number, validBytes: number, writeBufferBytes: number): Store {
    const fd = openFile(path, 'r+')
    return new Store(path, baseOffset, createdMs, { fd, bytes: validBytes, writeBufferBytes })
  }

  /** Opens a store read-only: mapped when `mmap` is given (sealed segments only), else by pread. */
  static openReadOnly(path: string, mmap: MmapApi | undefined): Store {
    const fd = openFile(path, 'r')
    try {
      const bytes = fs.fstatSync(fd).size
      const header = decodeFileHeader(readAt(fd, FILE_HEADER_BYTES, 0), 0, STORE_MAGIC, path)
      if (mmap) {
        const map = mapReadOnly(mmap, fd, bytes)
        fs.closeSync(fd)
        return new Store(path, header.baseOffset, header.createdMs, { map, bytes })
      }
      return new Store(path, header.baseOffset, header.createdMs, { fd, bytes })
    } catch (error) {
      closeQuietly(fd)
      throw error
    }
  }

  /** Reads the header of a store file without keeping it open. */
  static inspect(path: string): { baseOffset: number; createdMs: number; fileBytes: number } {
    const fd = openFile(path, 'r')
    try {
      const fileBytes = fs.fstatSync(fd).size
      const header = decodeFileHeader(readAt(fd, FILE_HEADER_BYTES, 0), 0, STORE_MAGIC, path)
      return { baseOffset: header.baseOffset, createdMs: header.createdMs, fileBytes }
    } finally {
      closeQuietly(fd)
    }
  }

  /** Bytes in the store, including frames still in the write buffer. */
  get bytes(): number {
    return this.logicalBytes
  }

  /** The map of a sealed store (the whole file), or undefined when it is read by pread or writable. */
  get mappedFile(): Buffer | undefined {
    return this.map
  }

  get mappedBytes(): number {
    return this.map ? this.map.length : 0
  }

  /**
   * Appends records [from, to) of `source` as consecutive frames numbered from `relativeOffset`, each
   * with its entry in `index` (running maximum of the timestamps from `timestampMaxMs`); the frame of
   * record `batchEnd` carries BATCH_END. Stops before a record whose frame would take the store past
   * `bytesMax`, but always writes the first. Returns how many records it wrote.
   *
   * The append path's one loop: frames are encoded straight into the write buffer and checksummed
   * there, with no call or object per record beyond the source's (per-record calls through closures
   * and a frame scratch cost about a third of appendBatch, measured).
   */
  appendFrames(
    source: PayloadSource,
    from: number,
    to: number,
    relativeOffset: number,
    timestamps: number | readonly number[],
    batchEnd: number,
    bytesMax: number,
    index: Index,
    timestampMaxMs: number,
  ): number {
    assert(this.writeBuffer && this.writeWords, 'append to a read-only store')
    const buf = this.writeBuffer
    const words = this.writeWords
    const capacity = buf.length
    let used = this.bufferUsed
    let position = this.logicalBytes
    let i = from
    for (; i < to; i++) {
      const payloadBytes = source.payloadBytes(i)
      const frameBytes = FRAME_HEADER_BYTES + payloadBytes
      if (position + frameBytes > bytesMax && i > from) break
      const timestampMs = typeof timestamps === 'number' ? timestamps : timestamps[i]!
      const flags = i === batchEnd ? FLAG_BATCH_END : 0
      if (timestampMs > timestampMaxMs) timestampMaxMs = timestampMs
      if (used + frameBytes > capacity) {
        this.bufferUsed = used
        this.logicalBytes = position
        this.flush()
        used = 0
        if (frameBytes > capacity) {
          this.logicalBytes = position
          this.writeLargeFrame(relativeOffset + (i - from), flags, timestampMs, source, i, frameBytes)
          index.append(position, payloadBytes, timestampMaxMs)
          position += frameBytes
          continue
        }
      }
      putFrameHeader(buf, used, payloadBytes, relativeOffset + (i - from), flags, timestampMs)
      source.write(buf, used + FRAME_HEADER_BYTES, i)
      sealFrame(buf, words, used, payloadBytes)
      index.append(position, payloadBytes, timestampMaxMs)
      used += frameBytes
      position += frameBytes
    }
    this.bufferUsed = used
    this.logicalBytes = position
    return i - from
  }

  /** A frame larger than the write buffer: encoded on its own and written at once. */
  private writeLargeFrame(relativeOffset: number, flags: number, timestampMs: number, source: PayloadSource, index: number, frameBytes: number): void {
    const frame = Buffer.allocUnsafe(frameBytes)
    putFrameHeader(frame, 0, frameBytes - FRAME_HEADER_BYTES, relativeOffset, flags, timestampMs)
    source.write(frame, FRAME_HEADER_BYTES, index)
    sealFrame(frame, wordsOf(frame), 0, frameBytes - FRAME_HEADER_BYTES)
    this.writeFile(frame, this.logicalBytes)
    this.logicalBytes += frameBytes
    this.bufferStart = this.logicalBytes
  }

  /** Writes buffered frames to the file (the OS page cache); no fsync. */
  flush(): void {
    if (this.bufferUsed === 0) return
    assert(this.writeBuffer)
    this.writeFile(this.writeBuffer.subarray(0, this.bufferUsed), this.bufferStart)
    this.bufferStart += this.bufferUsed
    this.bufferUsed = 0
  }

  /**
   * The frame at `position` whose payload has `payloadBytes` bytes, header included, or undefined
   * when the file ends before it. Mapped and buffered reads return views (no copy); mapped views stay
   * valid after the store is closed or deleted.
   */
  readFrame(position: number, payloadBytes: number): Buffer | undefined {
    const frameBytes = FRAME_HEADER_BYTES + payloadBytes
    const end = position + frameBytes
    if (position < FILE_HEADER_BYTES || end > this.logicalBytes) return undefined
    if (this.map) return this.map.subarray(position, end)
    if (this.writeBuffer && position >= this.bufferStart) {
      const at = position - this.bufferStart
      return Buffer.from(this.writeBuffer.subarray(at, at + frameBytes))
    }
    assert(this.fd !== undefined, 'read from a closed store')
    return this.readWritten(position, frameBytes)
  }

  /**
   * pread with read-ahead: a read that starts where the previous one ended (a scan, or a consumer
   * following the tail) fetches READ_AHEAD_BYTES at once and serves the next frames from that chunk.
   * Chunks are never reused, so views handed out stay valid.
   */
  private readWritten(position: number, frameBytes: number): Buffer | undefined {
    const end = position + frameBytes
    const chunk = this.readAhead
    if (chunk && position >= this.readAheadStart && end <= this.readAheadStart + chunk.length) {
      this.lastReadEnd = end
      return chunk.subarray(position - this.readAheadStart, end - this.readAheadStart)
    }
    assert(this.fd !== undefined)
    const sequential = position === this.lastReadEnd
    this.lastReadEnd = end
    const written = this.writeBuffer ? this.bufferStart : this.logicalBytes
    if (!sequential || frameBytes >= READ_AHEAD_BYTES || end > written) {
      const frame = readAt(this.fd, frameBytes, position)
      return frame.length === frameBytes ? frame : undefined
    }
    const fetched = readAt(this.fd, Math.min(READ_AHEAD_BYTES, written - position), position)
    if (fetched.length < frameBytes) return undefined
    this.readAhead = fetched
    this.readAheadStart = position
    return fetched.subarray(0, frameBytes)
  }

  /** Forgets read-ahead data (the file was cut). */
  private dropReadAhead(): void {
    this.readAhead = undefined
    this.lastReadEnd = -1
  }

  /** Starts an fdatasync of everything written so far; calls back when it completes. */
  syncAsync(callback: (error: Error | null) => void): void {
    assert(this.fd !== undefined)
    fs.fdatasync(this.fd, callback)
  }

  syncNow(): void {
    this.flush()
    assert(this.fd !== undefined)
    try {
      fs.fdatasyncSync(this.fd)
    } catch (error) {
      throw ioError('store fsync failed', error, this.path)
    }
  }

  /** Cuts the active store at `position` (a frame boundary). Never called on a sealed, mappable file. */
  truncate(position: number): void {
    assert(this.writeBuffer && this.fd !== undefined, 'only the active store is truncated in place')
    assert(position >= FILE_HEADER_BYTES && position <= this.logicalBytes)
    this.flush()
    try {
      fs.ftruncateSync(this.fd, position)
    } catch (error) {
      throw ioError('store truncate failed', error, this.path)
    }
    this.logicalBytes = position
    this.bufferStart = position
    this.dropReadAhead()
  }

  get isWritable(): boolean {
    return this.writeBuffer !== undefined
  }

  /** Overwrites the header of the frame at `position` of the active store (same size: nothing moves). */
  rewriteFrameHeader(position: number, header: Uint8Array): void {
    assert(this.writeBuffer && this.fd !== undefined, 'only the active store is rewritten in place')
    assert(header.length === FRAME_HEADER_BYTES && position + header.length <= this.logicalBytes)
    this.flush()
    this.writeFile(header, position)
    this.dropReadAhead()
  }

  /** Re-reads the file size (a reader following a file that another handle appends to). */
  refreshBytes(): number {
    if (this.fd !== undefined && !this.writeBuffer) this.logicalBytes = fs.fstatSync(this.fd).size
    return this.logicalBytes
  }

  /** The descriptor closed by `close` and handed over to sync on roll; undefined once closed. */
  get descriptor(): number | undefined {
    return this.fd
  }

  /** Releases the store. `keepFd` leaves the descriptor open for a caller that still syncs it. */
  close(keepFd = false, flushFirst = true): void {
    if (this.writeBuffer && flushFirst) this.flush()
    if (this.fd !== undefined && !keepFd) closeQuietly(this.fd)
    this.fd = undefined
    this.map = undefined
    this.writeBuffer = undefined
    this.writeWords = undefined
  }

  private writeFile(bytes: Uint8Array, position: number): void {
    assert(this.fd !== undefined)
    try {
      writeAll(this.fd, bytes, position)
    } catch (error) {
      throw ioError('store write failed', error, this.path)
    }
  }
}
