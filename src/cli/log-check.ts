/**
 * The check behind `seglog verify` (and `repair`'s after-check): every frame of every store file
 * and every index entry of one log directory, against the format in docs/format.md. Read-only:
 * files are opened for reading and nothing is written, cut or rebuilt, so it can run beside a live
 * writer.
 *
 * A store is scanned frame by frame with recovery.ts's scanner (header plausible, relative offset in
 * sequence, frame whole, CRC-32C matching); the scan stops at the first bad frame, which is the
 * segment's first damaged offset. A sealed segment must hold exactly `next base − base` frames and
 * nothing after them. Its index must hold exactly the entries the scan derives (position, length,
 * running-maximum timestamp), byte for byte. The log's last record must end a batch.
 *
 * The newest segment of a log whose writer is alive (writer-probe.ts) is allowed what a running
 * writer leaves for a moment: a frame still being written at the end of the store, an index that
 * lags the store, an unfinished batch. Without a live writer those are damage that `repair` (or the
 * next open) cuts or rebuilds.
 */
import fs from 'node:fs'
import path from 'node:path'
import { LogError } from '../errors.js'
import { CHECKPOINT_FILE, FILE_HEADER_BYTES, INDEX_ENTRY_BYTES, decodeIndexEntry } from '../format.js'
import { fileBytes, readAt } from '../fs-util.js'
import { listBases, readCheckpoint } from '../log-loader.js'
import { Index, closeQuietly, openFile } from '../offset-index.js'
import { scanStore } from '../recovery.js'
import { segmentFiles } from '../segment.js'
import { Store } from '../store.js'
import { type WriterState, probeWriter } from './writer-probe.js'

/** One thing found wrong: the first offset it affects (when it affects records), the file, why. */
export interface Damage {
  offset: number | undefined
  file: string
  why: string
}

/** `writing`: the newest segment's tail is being written by a live writer; `deleted`: retention removed it meanwhile. */
export type SegmentStatus = 'ok' | 'damaged' | 'writing' | 'deleted'

export interface SegmentCheck {
  baseOffset: number
  storePath: string
  newest: boolean
  /** Records whose frames passed every check. */
  records: number
  /** Store file bytes, header included. */
  bytes: number
  status: SegmentStatus
  damages: Damage[]
  /** Records kept by a batch boundary: up to the last frame that ends a batch. */
  batchEndRecords: number
}

export interface LogCheck {
  dir: string
  writer: WriterState
  segments: SegmentCheck[]
  startOffset: number
  endOffset: number
  /** Every damage found, in offset order (the checkpoint's first). */
  damages: Damage[]
}

/** Checks the log in `dir`; `onRecords` hears the running record count after each segment. */
export function checkLog(dir: string, onRecords: (records: number) => void = () => undefined): LogCheck {
  const writer = probeWriter(dir)
  const live = writer.kind === 'live'
  const damages: Damage[] = []
  const checkpoint = checkCheckpoint(dir, damages)
  const bases = listBases(dir)
  const segments: SegmentCheck[] = []
  let records = 0
  for (let i = 0; i < bases.length; i++) {
    const segment = checkSegmentSafely(dir, bases[i]!, bases[i + 1], live)
    segments.push(segment)
    records += segment.records
    onRecords(records)
  }
  if (!live) checkLastBatch(segments)
  for (const segment of segments) damages.push(...segment.damages)
  const newest = segments[segments.length - 1]
  const endOffset = newest ? newest.baseOffset + newest.records : (checkpoint ?? 0)
  const startOffset = Math.min(Math.max(checkpoint ?? 0, segments[0]?.baseOffset ?? 0), endOffset)
  return { dir, writer, segments, startOffset, endOffset, damages }
}

function checkCheckpoint(dir: string, damages: Damage[]): number | undefined {
  try {
    return readCheckpoint(dir)
  } catch (error) {
    if (!(error instanceof LogError)) throw error
    damages.push({ offset: undefined, file: path.join(dir, CHECKPOINT_FILE), why: error.message })
    return undefined
  }
}

function checkSegmentSafely(dir: string, base: number, nextBase: number | undefined, live: boolean): SegmentCheck {
  try {
    return checkSegment(dir, base, nextBase, live)
  } catch (error) {
    const { storePath } = segmentFiles(dir, base)
    if (live && !fs.existsSync(storePath)) return { ...emptyCheck(storePath, base, nextBase), status: 'deleted' }
    throw error
  }
}

function emptyCheck(storePath: string, base: number, nextBase: number | undefined): SegmentCheck {
  return { baseOffset: base, storePath, newest: nextBase === undefined, records: 0, bytes: fileBytes(storePath) ?? 0, status: 'ok', damages: [], batchEndRecords: 0 }
}

function addDamage(check: SegmentCheck, offset: number | undefined, file: string, why: string): void {
  check.status = 'damaged'
  check.damages.push({ offset, file, why })
}

function checkSegment(dir: string, base: number, nextBase: number | undefined, live: boolean): SegmentCheck {
  const { storePath, indexPath } = segmentFiles(dir, base)
  const check = emptyCheck(storePath, base, nextBase)
  const tolerateTail = check.newest && live
  if (check.bytes < FILE_HEADER_BYTES) {
    if (tolerateTail) check.status = 'writing'
    else addDamage(check, base, storePath, `store header is torn (${check.bytes} bytes)`)
    return check
  }
  const header = inspectStore(storePath)
  if (typeof header === 'string') {
    addDamage(check, base, storePath, header)
    return check
  }
  if (header.baseOffset !== base) {
    addDamage(check, base, storePath, `store header names base offset ${header.baseOffset}`)
    return check
  }
  const scan = scanStore(storePath)
  check.batchEndRecords = scan.count
  if (nextBase === undefined) {
    check.records = scan.framesFound
    if (scan.damage !== undefined) {
      if (tolerateTail && scan.damage.startsWith('torn')) check.status = 'writing'
      else addDamage(check, base + scan.framesFound, storePath, scan.damage)
    }
  } else {
    const expected = nextBase - base
    check.records = Math.min(scan.framesFound, expected)
    if (scan.framesFound < expected) {
      addDamage(check, base + scan.framesFound, storePath, scan.damage ?? `store ends after ${scan.framesFound} of ${expected} records`)
    } else if (scan.framesFound > expected) {
      addDamage(check, base + expected, storePath, `store holds ${scan.framesFound} records, but the next segment starts at offset ${nextBase}`)
    } else if (scan.damage !== undefined) {
      addDamage(check, undefined, storePath, `${scan.damage}, after the segment's last record`)
    }
  }
  const storeDamaged = check.status === 'damaged'
  const indexDamage = checkIndex(indexPath, base, scan.entries, check.records, tolerateTail || storeDamaged)
  if (indexDamage) addDamage(check, indexDamage.offset, indexPath, indexDamage.why)
  return check
}

function inspectStore(storePath: string): { baseOffset: number } | string {
  try {
    return Store.inspect(storePath)
  } catch (error) {
    if (error instanceof LogError && (error.code === 'CORRUPT_FILE' || error.code === 'UNSUPPORTED_VERSION')) return error.message
    throw error
  }
}

/**
 * Compares the index file with the entries derived from the store. `lenientCount` accepts an index
 * shorter or longer than the records found (a live writer's lagging index; a store already damaged).
 */
function checkIndex(indexPath: string, base: number, derived: Buffer, records: number, lenientCount: boolean): Omit<Damage, 'file'> | undefined {
  if (!fs.existsSync(indexPath)) return { offset: base, why: 'index file is missing' }
  let info: ReturnType<typeof Index.inspect>
  try {
    info = Index.inspect(indexPath)
  } catch (error) {
    if (error instanceof LogError && error.code !== 'IO_ERROR') return { offset: base, why: error.message }
    throw error
  }
  if (info.baseOffset !== base) return { offset: base, why: `index header names base offset ${info.baseOffset}` }
  const partialBytes = (info.fileBytes - FILE_HEADER_BYTES) % INDEX_ENTRY_BYTES
  if (partialBytes !== 0 && !lenientCount) return { offset: base + info.count, why: `index ends in a partial entry (${partialBytes} bytes)` }
  const compared = Math.min(info.count, records)
  const entries = readIndexEntries(indexPath, compared)
  for (let relative = 0; relative < compared; relative++) {
    const at = relative * INDEX_ENTRY_BYTES
    if (entries.compare(derived, at, at + INDEX_ENTRY_BYTES, at, at + INDEX_ENTRY_BYTES) !== 0) {
      return { offset: base + relative, why: describeEntryMismatch(base + relative, entries, derived, at) }
    }
  }
  if (lenientCount || info.count === records) return undefined
  if (info.count > records) return { offset: base + records, why: `index has ${info.count} entries for ${records} records` }
  return { offset: base + info.count, why: `index lacks the entries of offsets ${base + info.count}–${base + records - 1}` }
}

function readIndexEntries(indexPath: string, count: number): Buffer {
  const fd = openFile(indexPath, 'r')
  try {
    return readAt(fd, count * INDEX_ENTRY_BYTES, FILE_HEADER_BYTES)
  } finally {
    closeQuietly(fd)
  }
}

function describeEntryMismatch(offset: number, entries: Buffer, derived: Buffer, at: number): string {
  const found = decodeIndexEntry(entries, at)
  const expected = decodeIndexEntry(derived, at)
  if (found.position !== expected.position || found.payloadBytes !== expected.payloadBytes) {
    return (
      `index entry of offset ${offset} points to position ${found.position} (${found.payloadBytes} bytes), ` +
      `but the record is at position ${expected.position} (${expected.payloadBytes} bytes)`
    )
  }
  return `index entry of offset ${offset} has timestamp ${found.timestampMs}, the records give ${expected.timestampMs}`
}

/** Without a live writer, the log's last record must end a batch (recovery cuts an unfinished one). */
function checkLastBatch(segments: SegmentCheck[]): void {
  const last = [...segments].reverse().find((segment) => segment.records > 0)
  if (!last || last.status !== 'ok' || last.batchEndRecords === last.records) return
  const from = last.baseOffset + last.batchEndRecords
  addDamage(last, from, last.storePath, `records from offset ${from} on belong to a batch that never finished`)
}
