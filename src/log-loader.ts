/**
 * Opening a log directory: which segments exist, which one is active, and what recovery it needs.
 *
 * - Listing: segment files are `<20 digits>.log` / `.index`; temp files and strays never break
 *   opening (a writer removes `*.tmp` leftovers and index files without a store; other names are
 *   ignored).
 * - After a clean close (the `clean-shutdown` marker exists) only the newest segment's tail is
 *   checked, cheaply: its index must end exactly where its store ends and the last record must be
 *   whole, checksummed and end a batch. Sealed segments are checked when first read (Segment).
 * - After a crash, or when the cheap check fails, the newest segment's store is scanned record by
 *   record; the first torn or damaged frame and everything after it are cut, and so is an unfinished
 *   batch, even one that began in the previous segment. The index is rebuilt from the store.
 * - A reader (readOnly) changes nothing: it finds the newest complete batch by reading backwards.
 */
import fs from 'node:fs'
import path from 'node:path'
import { LogError, ioError } from './errors.js'
import {
  CHECKPOINT_FILE,
  CLEAN_SHUTDOWN_FILE,
  FILE_HEADER_BYTES,
  FLAG_BATCH_END,
  INDEX_ENTRY_BYTES,
  TEMP_SUFFIX,
  decodeCheckpoint,
  frameFlags,
  parseSegmentFileName,
} from './format.js'
import { fileBytes, fsyncDirectory, readAt } from './fs-util.js'
import { Index, closeQuietly, entriesFormChain, openFile } from './offset-index.js'
import type { MmapApi } from './mmap.js'
import { checkedFrameFlags, scanStore } from './recovery.js'
import { Segment, segmentFiles } from './segment.js'
import { Store } from './store.js'

export interface RecoveryReport {
  /** The previous writer did not close the log (no clean-shutdown marker). */
  uncleanShutdown: boolean
  /** The newest segment was scanned record by record. */
  scanned: boolean
  /** Records cut from the tail (torn, damaged, or part of an unfinished batch). */
  recordsCut: number
  /** Bytes cut from store files. */
  bytesCut: number
  /** Segments removed because they held nothing but an unfinished batch or a torn header. */
  segmentsRemoved: number
  /** Why the newest segment needed a scan, when it did. */
  reason: string | undefined
}

export interface LoadedLog {
  segments: Segment[]
  checkpointStartOffset: number | undefined
  report: RecoveryReport
}

interface Listing {
  bases: number[]
  hasStore: Set<number>
  hasIndex: Set<number>
  strays: string[]
}

function listDirectory(dir: string): Listing {
  const hasStore = new Set<number>()
  const hasIndex = new Set<number>()
  const strays: string[] = []
  for (const name of fs.readdirSync(dir)) {
    const parsed = parseSegmentFileName(name)
    if (parsed) (parsed.kind === 'store' ? hasStore : hasIndex).add(parsed.baseOffset)
    else if (name.endsWith(TEMP_SUFFIX)) strays.push(name)
  }
  for (const base of hasIndex) if (!hasStore.has(base)) strays.push(path.basename(segmentFiles(dir, base).indexPath))
  const bases = [...hasStore].sort((a, b) => a - b)
  return { bases, hasStore, hasIndex, strays }
}

export function readCheckpoint(dir: string): number | undefined {
  const file = path.join(dir, CHECKPOINT_FILE)
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError('could not read checkpoint', error, file)
  }
  return decodeCheckpoint(bytes, file)
}

function sealedSegments(dir: string, bases: number[]): Segment[] {
  const segments: Segment[] = []
  for (let i = 0; i + 1 < bases.length; i++) {
    const base = bases[i]!
    const { storePath } = segmentFiles(dir, base)
    segments.push(Segment.sealed(dir, base, 0, bases[i + 1]! - base, fileBytes(storePath) ?? 0))
  }
  return segments
}

// ---------------------------------------------------------------------------------------------
// Writer

export function loadForWriter(dir: string, writeBufferBytes: number): LoadedLog {
  const listing = listDirectory(dir)
  for (const stray of listing.strays) fs.rmSync(path.join(dir, stray), { force: true })
  const checkpointStartOffset = readCheckpoint(dir)
  const cleanMarker = path.join(dir, CLEAN_SHUTDOWN_FILE)
  const uncleanShutdown = listing.bases.length > 0 && !fs.existsSync(cleanMarker)
  const report: RecoveryReport = { uncleanShutdown, scanned: false, recordsCut: 0, bytesCut: 0, segmentsRemoved: 0, reason: undefined }
  const bases = listing.bases
  if (bases.length === 0) {
    const base = checkpointStartOffset ?? 0
    return { segments: [Segment.create(dir, base, Date.now(), writeBufferBytes)], checkpointStartOffset, report }
  }
  const active = activateNewest(dir, bases, uncleanShutdown, writeBufferBytes, report)
  const segments = [...sealedSegments(dir, bases), active]
  fs.rmSync(cleanMarker, { force: true })
  fsyncDirectory(dir)
  return { segments, checkpointStartOffset, report }
}

/** Makes the newest segment active, recovering it (and cutting back into older ones) when needed. */
function activateNewest(dir: string, bases: number[], unclean: boolean, writeBufferBytes: number, report: RecoveryReport): Segment {
  for (;;) {
    const base = bases[bases.length - 1]!
    const { storePath, indexPath } = segmentFiles(dir, base)
    const header = readStoreHeader(storePath, base)
    if (header === 'torn') {
      // Created but never written: holds no record. Recreate it in place.
      removeSegmentFiles(storePath, indexPath, report)
      if (bases.length > 1 && !lastRecordEndsBatch(dir, bases[bases.length - 2]!)) {
        bases.pop()
        continue
      }
      return Segment.create(dir, base, Date.now(), writeBufferBytes)
    }
    const fast = unclean || report.segmentsRemoved > 0 ? undefined : cheapTailCheck(storePath, indexPath, base)
    if (fast && typeof fast !== 'string') {
      return Segment.activate(dir, base, header.createdMs, fast.entries, fast.storeBytes, {
        writeBufferBytes,
        rewriteIndex: false,
        storeMayBeMapped: false,
      })
    }
    report.scanned = true
    report.reason ??= unclean ? 'unclean shutdown' : (fast ?? 'an older segment was cut')
    const scan = scanStore(storePath)
    if (scan.count === 0 && bases.length > 1 && !lastRecordEndsBatch(dir, bases[bases.length - 2]!)) {
      report.recordsCut += scan.framesFound + scan.damagedFrames
      report.bytesCut += scan.fileBytes - FILE_HEADER_BYTES
      removeSegmentFiles(storePath, indexPath, report)
      bases.pop()
      continue
    }
    report.recordsCut += scan.framesFound - scan.count + scan.damagedFrames
    report.bytesCut += scan.fileBytes - scan.validBytes
    const entries = scan.entries.subarray(0, scan.count * INDEX_ENTRY_BYTES)
    return Segment.activate(dir, base, header.createdMs, entries, scan.validBytes, {
      writeBufferBytes,
      rewriteIndex: true,
      // After removing a successor this segment was sealed: readers may have it mapped.
      storeMayBeMapped: report.segmentsRemoved > 0,
    })
  }
}

function readStoreHeader(storePath: string, base: number): { createdMs: number } | 'torn' {
  const bytes = fileBytes(storePath) ?? 0
  if (bytes < FILE_HEADER_BYTES) return 'torn'
  const header = Store.inspect(storePath)
  if (header.baseOffset !== base) {
    throw new LogError('CORRUPT_FILE', `store header says base offset ${header.baseOffset}`, { path: storePath })
  }
  return header
}

function removeSegmentFiles(storePath: string, indexPath: string, report: RecoveryReport): void {
  fs.rmSync(storePath, { force: true })
  fs.rmSync(indexPath, { force: true })
  report.segmentsRemoved++
}

/**
 * The clean-open check: the index holds whole entries, its last entry's frame ends exactly at the end
 * of the store, and that frame is intact and ends a batch. Returns the entries, or why it failed.
 */
function cheapTailCheck(storePath: string, indexPath: string, base: number): { entries: Buffer; storeBytes: number } | string {
  let info: ReturnType<typeof Index.inspect>
  try {
    info = Index.inspect(indexPath)
  } catch (error) {
    if (error instanceof LogError && error.code === 'UNSUPPORTED_VERSION') throw error
    return 'index missing or unreadable'
  }
  if (info.baseOffset !== base) return 'index names another base offset'
  if (info.fileBytes !== FILE_HEADER_BYTES + info.count * INDEX_ENTRY_BYTES) return 'index has a partial entry'
  const storeBytes = fileBytes(storePath) ?? 0
  const entries = readWhole(indexPath, FILE_HEADER_BYTES, info.count * INDEX_ENTRY_BYTES)
  if (info.count === 0) return storeBytes === FILE_HEADER_BYTES ? { entries, storeBytes } : 'store has bytes the index lacks'
  if (!entriesFormChain(entries, info.count, storeBytes)) return 'index entries do not describe the store'
  const last = Index.inMemory(indexPath, base, entries).entry(info.count - 1)
  const fd = openFile(storePath, 'r')
  try {
    const flags = checkedFrameFlags(fd, storeBytes, last.position, last.payloadBytes, info.count - 1)
    if (flags === undefined) return 'last record is damaged'
    if (!(flags & FLAG_BATCH_END)) return 'last record does not end a batch'
  } finally {
    closeQuietly(fd)
  }
  return { entries, storeBytes }
}

/** Whether the newest record of segment `base` ends a batch (true for an empty segment). */
function lastRecordEndsBatch(dir: string, base: number): boolean {
  const { storePath } = segmentFiles(dir, base)
  const scan = scanStore(storePath)
  return scan.framesFound === scan.count
}

function readWhole(file: string, position: number, length: number): Buffer {
  const fd = openFile(file, 'r')
  try {
    return readAt(fd, length, position)
  } finally {
    closeQuietly(fd)
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

/** A reader's view: sealed segments plus the followed newest one, cut at its newest whole batch. */
export function loadForReader(dir: string): LoadedLog {
  const listing = listDirectory(dir)
  const report: RecoveryReport = { uncleanShutdown: false, scanned: false, recordsCut: 0, bytesCut: 0, segmentsRemoved: 0, reason: undefined }
  const checkpointStartOffset = readCheckpoint(dir)
  if (listing.bases.length === 0) return { segments: [], checkpointStartOffset, report }
  const base = listing.bases[listing.bases.length - 1]!
  const tail = Segment.followed(dir, base)
  return { segments: [...sealedSegments(dir, listing.bases), tail], checkpointStartOffset, report }
}

/** Lists segment base offsets without changing anything (readers refreshing their view). */
export function listBases(dir: string): number[] {
  return listDirectory(dir).bases
}

/**
 * A reader's visible end: the end of the newest complete batch. The followed segment's count already
 * stops at one; when it shows nothing yet, the records before it may open a batch that continues in
 * it (the writer rolled mid-batch, or died there), so step back to the last frame that ends a batch.
 */
export function readerVisibleEnd(segments: readonly Segment[], startOffset: number, mmap: MmapApi | undefined): number {
  const tail = segments[segments.length - 1]
  if (!tail) return startOffset
  if (tail.count > 0) return tail.nextOffset
  for (let i = segments.length - 2; i >= 0; i--) {
    const segment = segments[i]!
    for (let offset = segment.nextOffset - 1; offset >= Math.max(segment.baseOffset, startOffset); offset--) {
      const frame = segment.readFrame(offset, true, mmap, false)
      if (frameFlags(frame) & FLAG_BATCH_END) return offset + 1
    }
  }
  return Math.min(startOffset, tail.baseOffset)
}
