/**
 * Recovery: reading a store file frame by frame to learn which records it really holds. Used after a
 * crash (the newest segment), when a tail check fails, and when an index disagrees with its store.
 *
 * A frame is kept only if its header is plausible, it belongs at this place (its relative offset is
 * the next one), it lies wholly inside the file, and its CRC-32C matches. The scan stops at the first
 * frame that fails. Records after the last BATCH_END frame belong to a batch that never finished
 * and are cut too, which keeps appendBatch all-or-nothing across a crash.
 */
import fs from 'node:fs'
import { LogError, ioError } from './errors.js'
import {
  FILE_HEADER_BYTES,
  FLAG_BATCH_END,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  SEGMENT_BYTES_LIMIT,
  decodeFrameHeader,
  encodeIndexEntry,
  frameChecksumMatches,
  frameHeaderIsPlausible,
} from './format.js'
import { readAt, writeAll } from './fs-util.js'
import { closeQuietly, openFile } from './offset-index.js'

const SCAN_CHUNK_BYTES = 4 * 1024 * 1024

export interface ScanResult {
  /** Index entries of every valid frame found (positions, lengths, running-maximum timestamps). */
  entries: Buffer
  /** Records kept: every valid frame up to and including the last BATCH_END frame. */
  count: number
  /** Store bytes that hold exactly the kept records (header included). */
  validBytes: number
  /** Valid frames found, including those of an unfinished batch at the end. */
  framesFound: number
  /** 1 when the scan stopped at a frame that belonged here (its header named the next offset) but was torn or failed its checksum. */
  damagedFrames: number
  /** Why the scan stopped before the end of the file, if it did (a torn or damaged frame). */
  damage: string | undefined
  fileBytes: number
}

/** Where a scan starts: the header's end, or just past a frame already known to be valid. */
export interface ScanStart {
  position: number
  relativeOffset: number
  timestampMax: number
}

export const SCAN_FROM_START: ScanStart = { position: FILE_HEADER_BYTES, relativeOffset: 0, timestampMax: 0 }

/** Scans the store file at `path`, stopping after `countMax` records if given. */
export function scanStore(path: string, countMax = Infinity): ScanResult {
  const fd = openFile(path, 'r')
  try {
    return scanDescriptor(fd, fs.fstatSync(fd).size, countMax, SCAN_FROM_START)
  } catch (error) {
    throw error instanceof LogError ? error : ioError('scan of store failed', error, path)
  } finally {
    closeQuietly(fd)
  }
}

/**
 * Scans frames from `start` on. Counts in the result are relative to `start`: `entries` holds the
 * frames found past it, `count` how many of those end with the last BATCH_END (0 if none does).
 */
export function scanDescriptor(fd: number, fileBytes: number, countMax: number, start: ScanStart): ScanResult {
  const entries: Buffer[] = []
  let entryChunk = Buffer.alloc(Math.min(64 * 1024, Math.max(16, Math.ceil((fileBytes - start.position) / 64))) * INDEX_ENTRY_BYTES)
  let entryChunkUsed = 0
  let position = start.position
  let framesFound = 0
  let keptCount = 0
  let keptBytes = start.position
  let timestampMax = start.timestampMax
  let damage: string | undefined
  let damagedFrames = 0
  let chunk: Buffer = Buffer.alloc(0)
  let chunkStart = position

  while (framesFound < countMax && position < fileBytes) {
    if (position + FRAME_HEADER_BYTES > fileBytes) {
      damage = `torn frame header at position ${position}`
      break
    }
    if (position + FRAME_HEADER_BYTES > chunkStart + chunk.length) {
      chunkStart = position
      chunk = readAt(fd, Math.min(SCAN_CHUNK_BYTES, fileBytes - position), position)
    }
    const header = decodeFrameHeader(chunk, position - chunkStart)
    const frameEnd = position + FRAME_HEADER_BYTES + header.payloadBytes
    const expected = start.relativeOffset + framesFound
    if (!frameHeaderIsPlausible(header) || header.relativeOffset !== expected || header.payloadBytes > SEGMENT_BYTES_LIMIT) {
      damage = `invalid frame header at position ${position}`
      break
    }
    if (frameEnd > fileBytes) {
      damage = `torn frame at position ${position}`
      damagedFrames = 1
      break
    }
    if (frameEnd > chunkStart + chunk.length) {
      chunkStart = position
      chunk = readAt(fd, Math.max(Math.min(SCAN_CHUNK_BYTES, fileBytes - position), frameEnd - position), position)
    }
    if (!frameChecksumMatches(chunk, position - chunkStart, header)) {
      damage = `checksum mismatch at position ${position}`
      damagedFrames = 1
      break
    }
    timestampMax = Math.max(timestampMax, header.timestampMs)
    if (entryChunkUsed === entryChunk.length) {
      entries.push(entryChunk)
      entryChunk = Buffer.alloc(entryChunk.length)
      entryChunkUsed = 0
    }
    encodeIndexEntry(entryChunk, entryChunkUsed, { position, payloadBytes: header.payloadBytes, timestampMs: timestampMax })
    entryChunkUsed += INDEX_ENTRY_BYTES
    framesFound++
    position = frameEnd
    if (header.flags & FLAG_BATCH_END) {
      keptCount = framesFound
      keptBytes = position
    }
  }
  entries.push(entryChunk.subarray(0, entryChunkUsed))
  const all = Buffer.concat(entries)
  return {
    entries: all,
    count: keptCount,
    validBytes: keptBytes,
    framesFound,
    damagedFrames,
    damage,
    fileBytes,
  }
}

/** The frame's flags if the frame at `position` is whole, belongs at `relative` and checksums; else undefined. */
export function checkedFrameFlags(fd: number, storeBytes: number, position: number, payloadBytes: number, relative: number): number | undefined {
  if (position < FILE_HEADER_BYTES || position + FRAME_HEADER_BYTES + payloadBytes > storeBytes) return undefined
  const frame = readAt(fd, FRAME_HEADER_BYTES + payloadBytes, position)
  const header = decodeFrameHeader(frame, 0)
  if (header.relativeOffset !== relative || header.payloadBytes !== payloadBytes || !frameChecksumMatches(frame, 0, header)) return undefined
  return header.flags
}

/**
 * Replaces `path` by a copy of its first `bytes` bytes (temp file → fsync → rename). Used to cut a
 * file that readers may have mapped: they keep the old inode, so nobody touches a lost page.
 */
export function replaceWithPrefix(path: string, bytes: number): void {
  const temp = `${path}.cut.tmp`
  const source = openFile(path, 'r')
  let target: number | undefined
  try {
    target = openFile(temp, 'w')
    for (let at = 0; at < bytes; at += SCAN_CHUNK_BYTES) {
      const piece = readAt(source, Math.min(SCAN_CHUNK_BYTES, bytes - at), at)
      writeAll(target, piece, at)
    }
    fs.fsyncSync(target)
    fs.renameSync(temp, path)
  } catch (error) {
    fs.rmSync(temp, { force: true })
    throw ioError('could not cut file', error, path)
  } finally {
    closeQuietly(source)
    if (target !== undefined) closeQuietly(target)
  }
}
