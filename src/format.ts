/**
 * The on-disk format, version 1. This module owns every byte seglog writes for a log: file names,
 * file headers, record frames, index entries and the checkpoint file. Nothing else encodes or decodes
 * log data. docs/format.md documents the same layout next to the golden fixture in
 * test/fixtures/format-v1/, which the tests read back so a format change cannot slip in silently.
 *
 * All integers are little-endian. 64-bit fields hold safe integers (< 2^53) as a low and a high u32,
 * which avoids BigInt on the hot path. The checksum everywhere is CRC-32C (Castagnoli, the variant
 * Kafka uses; src/crc32c.ts, the same values as the `crc-32` package's), stored as an unsigned 32-bit value.
 */
import { assert } from './assert.js'
import { LITTLE_ENDIAN, crc32cRange, crc32cWords } from './crc32c.js'
import { LogError } from './errors.js'

export const FORMAT_VERSION = 1
const TWO_TO_32 = 0x1_0000_0000

// ---------------------------------------------------------------------------------------------
// Primitives

export function crc32c(bytes: Uint8Array, seed = 0): number {
  return crc32cRange(bytes, 0, bytes.length, seed)
}

export function writeU64(buf: Buffer, at: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 out of range: ${value}`)
  buf.writeUInt32LE(value % TWO_TO_32, at)
  buf.writeUInt32LE(Math.floor(value / TWO_TO_32), at + 4)
}

/**
 * Unchecked little-endian stores for the append path, where Buffer#writeUInt32LE's range checks
 * showed up in profiles. Callers validate values at the API boundary.
 */
function putU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value
  buf[at + 1] = value >>> 8
  buf[at + 2] = value >>> 16
  buf[at + 3] = value >>> 24
}

function putU16(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value
  buf[at + 1] = value >>> 8
}

function putU64(buf: Uint8Array, at: number, value: number): void {
  putU32(buf, at, value >>> 0)
  putU32(buf, at + 4, (value - (value >>> 0)) / TWO_TO_32)
}

export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * TWO_TO_32 + buf.readUInt32LE(at)
}

// ---------------------------------------------------------------------------------------------
// File names: 20-digit zero-padded base offsets, as Kafka names its segments.

export const STORE_SUFFIX = '.log'
export const INDEX_SUFFIX = '.index'
export const TEMP_SUFFIX = '.tmp'
export const CHECKPOINT_FILE = 'log-start-offset.checkpoint'
export const CLEAN_SHUTDOWN_FILE = 'clean-shutdown'
export const LOCK_FILE = 'LOCK'
const BASE_OFFSET_DIGITS = 20
const SEGMENT_FILE_PATTERN = /^(\d{20})\.(log|index)$/

export function segmentFileName(baseOffset: number, suffix: typeof STORE_SUFFIX | typeof INDEX_SUFFIX): string {
  assert(Number.isSafeInteger(baseOffset) && baseOffset >= 0)
  return String(baseOffset).padStart(BASE_OFFSET_DIGITS, '0') + suffix
}

/** Parses a segment file name; anything else (temp files, strays) yields undefined. */
export function parseSegmentFileName(name: string): { baseOffset: number; kind: 'store' | 'index' } | undefined {
  const match = SEGMENT_FILE_PATTERN.exec(name)
  if (!match) return undefined
  const baseOffset = Number(match[1])
  if (!Number.isSafeInteger(baseOffset)) return undefined
  return { baseOffset, kind: match[2] === 'log' ? 'store' : 'index' }
}

// ---------------------------------------------------------------------------------------------
// File header: the first 32 bytes of every store and index file.
//
//   0  u32  magic          'SGLS' (store) or 'SGLI' (index), as bytes
//   4  u16  version        FORMAT_VERSION
//   6  u16  headerBytes    32
//   8  u64  baseOffset     offset of the segment's first record (equals the file name)
//  16  u64  createdMs      wall-clock time the segment was created (drives age-based rolling)
//  24  u32  reserved       0
//  28  u32  crc32c         of bytes 0..28

export const STORE_MAGIC = 0x534c4753 // 'SGLS' read as a little-endian u32
export const INDEX_MAGIC = 0x494c4753 // 'SGLI'
export const FILE_HEADER_BYTES = 32

export interface FileHeader {
  magic: number
  baseOffset: number
  createdMs: number
}

export function encodeFileHeader(buf: Buffer, at: number, header: FileHeader): void {
  buf.writeUInt32LE(header.magic, at)
  buf.writeUInt16LE(FORMAT_VERSION, at + 4)
  buf.writeUInt16LE(FILE_HEADER_BYTES, at + 6)
  writeU64(buf, at + 8, header.baseOffset)
  writeU64(buf, at + 16, header.createdMs)
  buf.writeUInt32LE(0, at + 24)
  buf.writeUInt32LE(crc32c(buf.subarray(at, at + 28)), at + 28)
}

/** Decodes and checks a file header; damage or an unknown version is a typed error naming the file. */
export function decodeFileHeader(buf: Buffer, at: number, expectedMagic: number, path: string): FileHeader {
  if (buf.length - at < FILE_HEADER_BYTES) {
    throw new LogError('CORRUPT_FILE', `file header is truncated (${buf.length - at} bytes)`, { path })
  }
  const magic = buf.readUInt32LE(at)
  if (magic !== expectedMagic) throw new LogError('CORRUPT_FILE', `bad magic number 0x${magic.toString(16)}`, { path })
  const crc = buf.readUInt32LE(at + 28)
  if (crc !== crc32c(buf.subarray(at, at + 28))) throw new LogError('CORRUPT_FILE', 'file header checksum mismatch', { path })
  const version = buf.readUInt16LE(at + 4)
  if (version !== FORMAT_VERSION) {
    throw new LogError('UNSUPPORTED_VERSION', `format version ${version} is not supported (this build reads ${FORMAT_VERSION})`, { path })
  }
  if (buf.readUInt16LE(at + 6) !== FILE_HEADER_BYTES) throw new LogError('CORRUPT_FILE', 'bad header length', { path })
  return { magic, baseOffset: readU64(buf, at + 8), createdMs: readU64(buf, at + 16) }
}

// ---------------------------------------------------------------------------------------------
// Record frame: how one record sits in a store file.
//
//   0  u32  crc32c          of bytes 4 .. 24 + payloadBytes (everything after this field)
//   4  u32  payloadBytes
//   8  u32  relativeOffset  offset - segment baseOffset (a frame knows where it belongs)
//  12  u16  flags           bit 0: BATCH_END, set on the last record of an append or appendBatch
//  14  u16  reserved        0
//  16  u64  timestampMs     the record's timestamp as given by the appender (default: append time)
//  24  ...  payload
//
// BATCH_END makes appendBatch atomic across a crash: recovery cuts every record after the last frame
// that carries it.

export const FRAME_HEADER_BYTES = 24
export const FLAG_BATCH_END = 0x1
const KNOWN_FLAGS = FLAG_BATCH_END

export interface FrameHeader {
  crc: number
  payloadBytes: number
  relativeOffset: number
  flags: number
  timestampMs: number
}

/**
 * Writes a whole frame (header + payload) at `at`; `buf` must have room for
 * FRAME_HEADER_BYTES + payload.length bytes. Returns the frame's checksum.
 */
export function encodeFrame(
  buf: Buffer,
  at: number,
  relativeOffset: number,
  flags: number,
  timestampMs: number,
  payload: Uint8Array,
): number {
  putFrameHeader(buf, at, payload.length, relativeOffset, flags, timestampMs)
  buf.set(payload, at + FRAME_HEADER_BYTES)
  const crc = crc32cRange(buf, at + 4, at + FRAME_HEADER_BYTES + payload.length)
  putU32(buf, at, crc)
  return crc
}

/**
 * Writes payloads in place: record `index` of a batch, `payloadBytes(index)` bytes at `at`. The
 * caller lays frames back to back and calls write for increasing indexes; the bytes of `buf` after
 * the payload, up to buf.length, are not in use yet, so a source may fill them ahead (the queue
 * layer's envelope run copies later frames' payloads there at once and checks on each call that its
 * record landed where it was put).
 */
export interface PayloadSource {
  payloadBytes(index: number): number
  write(buf: Buffer, at: number, index: number): void
}

/**
 * The append path's frame encoder, in two steps around the payload, which the caller writes at
 * `at + FRAME_HEADER_BYTES` in between (copied or encoded in place): the header fields after the
 * checksum, then `sealFrame`.
 */
export function putFrameHeader(buf: Uint8Array, at: number, payloadBytes: number, relativeOffset: number, flags: number, timestampMs: number): void {
  putU32(buf, at + 4, payloadBytes)
  putU32(buf, at + 8, relativeOffset)
  putU32(buf, at + 12, flags) // flags (u16) and the reserved u16 (0)
  putU64(buf, at + 16, timestampMs)
}

/** Computes the checksum of the frame at `at` over its bytes in place; `words` is crc32c.ts's wordsOf(buf). */
export function sealFrame(buf: Uint8Array, words: Int32Array, at: number, payloadBytes: number): void {
  putU32(buf, at, crc32cWords(words, buf, at + 4, at + FRAME_HEADER_BYTES + payloadBytes))
}

/**
 * Marks a whole frame (header and payload, a private copy) as the end of a batch and re-computes
 * its checksum. A truncate that cuts inside a batch makes the record before the cut the last one
 * of what stays, all of it acknowledged: recovery must keep it, so it must end a batch.
 */
export function markFrameBatchEnd(frame: Buffer): void {
  frame.writeUInt16LE(frame.readUInt16LE(12) | FLAG_BATCH_END, 12)
  putU32(frame, 0, crc32c(frame.subarray(4)))
}

/** Reads a frame header without checking anything; callers check it against what they expect. */
export function decodeFrameHeader(buf: Buffer, at: number): FrameHeader {
  return {
    crc: buf.readUInt32LE(at),
    payloadBytes: buf.readUInt32LE(at + 4),
    relativeOffset: buf.readUInt32LE(at + 8),
    flags: buf.readUInt16LE(at + 12),
    timestampMs: readU64(buf, at + 16),
  }
}

/** Whether the header's structural fields are plausible before spending a checksum on it. */
export function frameHeaderIsPlausible(header: FrameHeader): boolean {
  return (header.flags & ~KNOWN_FLAGS) === 0
}

/** Verifies the checksum of the frame whose header sits at `at` (header and payload must be in `buf`). */
export function frameChecksumMatches(buf: Buffer, at: number, header: FrameHeader): boolean {
  return crc32c(buf.subarray(at + 4, at + FRAME_HEADER_BYTES + header.payloadBytes)) === header.crc
}

// ---------------------------------------------------------------------------------------------
// Index entry: fixed-size, so the entry of relative offset r sits at 32 + r * 16.
//
//   0  u32  position       byte position of the record's frame in the store file
//   4  u32  payloadBytes   length of the record's payload
//   8  u64  timestampMs    the largest record timestamp in the segment up to and including this
//                          record (a running maximum, so a binary search by time is always valid)

export const INDEX_ENTRY_BYTES = 16

export interface IndexEntry {
  position: number
  payloadBytes: number
  timestampMs: number
}

export function encodeIndexEntry(buf: Buffer, at: number, entry: IndexEntry): void {
  putIndexEntry(buf, at, entry.position, entry.payloadBytes, entry.timestampMs)
}

/** encodeIndexEntry without the object, for the append path. */
export function putIndexEntry(buf: Buffer, at: number, position: number, payloadBytes: number, timestampMs: number): void {
  putU32(buf, at, position)
  putU32(buf, at + 4, payloadBytes)
  putU64(buf, at + 8, timestampMs)
}

/**
 * putIndexEntry as four word stores into `words`, an Int32Array over the entries' whole ArrayBuffer
 * (entry at byte `at`, a multiple of 4 from the ArrayBuffer's start); byte stores on big-endian platforms.
 */
export function putIndexEntryWords(words: Int32Array, buf: Buffer, at: number, position: number, payloadBytes: number, timestampMs: number): void {
  if (!LITTLE_ENDIAN) return putIndexEntry(buf, at, position, payloadBytes, timestampMs)
  const w = (buf.byteOffset + at) >> 2
  const low = timestampMs >>> 0
  words[w] = position
  words[w + 1] = payloadBytes
  words[w + 2] = low
  words[w + 3] = (timestampMs - low) / TWO_TO_32
}

export function decodeIndexEntry(buf: Buffer, at: number): IndexEntry {
  return { position: buf.readUInt32LE(at), payloadBytes: buf.readUInt32LE(at + 4), timestampMs: readU64(buf, at + 8) }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint file (log-start-offset.checkpoint): the first readable offset, which may lie inside the
// oldest segment after deleteBefore(). Written as temp file → fsync → rename → fsync(dir).
//
//   0  u32  magic        'SGLC'
//   4  u16  version      FORMAT_VERSION
//   6  u16  reserved     0
//   8  u64  startOffset
//  16  u32  reserved     0
//  20  u32  crc32c       of bytes 0..20

export const CHECKPOINT_MAGIC = 0x434c4753 // 'SGLC'
export const CHECKPOINT_BYTES = 24

export function encodeCheckpoint(startOffset: number): Buffer {
  const buf = Buffer.alloc(CHECKPOINT_BYTES)
  buf.writeUInt32LE(CHECKPOINT_MAGIC, 0)
  buf.writeUInt16LE(FORMAT_VERSION, 4)
  writeU64(buf, 8, startOffset)
  buf.writeUInt32LE(crc32c(buf.subarray(0, 20)), 20)
  return buf
}

export function decodeCheckpoint(buf: Buffer, path: string): number {
  if (buf.length !== CHECKPOINT_BYTES) throw new LogError('CORRUPT_FILE', `checkpoint has ${buf.length} bytes`, { path })
  if (buf.readUInt32LE(0) !== CHECKPOINT_MAGIC) throw new LogError('CORRUPT_FILE', 'bad checkpoint magic', { path })
  if (buf.readUInt32LE(20) !== crc32c(buf.subarray(0, 20))) throw new LogError('CORRUPT_FILE', 'checkpoint checksum mismatch', { path })
  const version = buf.readUInt16LE(4)
  if (version !== FORMAT_VERSION) throw new LogError('UNSUPPORTED_VERSION', `checkpoint version ${version}`, { path })
  return readU64(buf, 8)
}

// ---------------------------------------------------------------------------------------------
// Layout relationships, checked once when the module loads.

assert(FILE_HEADER_BYTES === 32)
assert(FRAME_HEADER_BYTES === 24)
assert(INDEX_ENTRY_BYTES === 16)
assert(CHECKPOINT_BYTES === 24)
assert(FILE_HEADER_BYTES % INDEX_ENTRY_BYTES === 0, 'index entries stay aligned after the header')
/** The largest segment: positions and lengths are u32 and the mmap addon takes 32-bit sizes. */
export const SEGMENT_BYTES_LIMIT = 1024 * 1024 * 1024
assert(SEGMENT_BYTES_LIMIT < TWO_TO_32)

function getU32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0
}

/** Read-path accessors on a frame view (header + payload), without allocating. */
export function frameRelativeOffset(frame: Uint8Array): number {
  return getU32(frame, 8)
}

export function framePayloadBytes(frame: Uint8Array): number {
  return getU32(frame, 4)
}

/** Whether a whole frame view's CRC-32C matches the bytes after the checksum field. */
export function frameChecksumOk(frame: Buffer): boolean {
  return crc32cRange(frame, 4, frame.length) === getU32(frame, 0)
}

/** Index entry fields read in place (the read path's O(1) lookup), without allocating. */
export function indexEntryPosition(entries: Uint8Array, at: number): number {
  return getU32(entries, at)
}

export function indexEntryPayloadBytes(entries: Uint8Array, at: number): number {
  return getU32(entries, at + 4)
}

// Frames checked in place (the mapped read path): no view of the frame is made; `words` is
// crc32c.ts's `wordsOf(store)`, or undefined on a big-endian machine.

/** Whole index entries are this many 32-bit words; position is word 0, payloadBytes word 1. */
export const INDEX_ENTRY_WORDS = INDEX_ENTRY_BYTES / 4

export function indexWordsPosition(words: Uint32Array, relativeOffset: number): number {
  return words[relativeOffset * INDEX_ENTRY_WORDS]!
}

export function indexWordsPayloadBytes(words: Uint32Array, relativeOffset: number): number {
  return words[relativeOffset * INDEX_ENTRY_WORDS + 1]!
}

/**
 * Whether `store` holds, at `position`, the whole frame of record `relativeOffset` with a payload of
 * `payloadBytes` bytes, and (when `verifyChecksum`) whether its CRC-32C matches.
 */
export function frameInPlaceOk(
  store: Uint8Array,
  words: Int32Array | undefined,
  position: number,
  relativeOffset: number,
  payloadBytes: number,
  verifyChecksum: boolean,
): boolean {
  const end = position + FRAME_HEADER_BYTES + payloadBytes
  if (position < FILE_HEADER_BYTES || end > store.length) return false
  if (getU32(store, position + 8) !== relativeOffset || getU32(store, position + 4) !== payloadBytes) return false
  if (!verifyChecksum) return true
  const crc = words === undefined ? crc32cRange(store, position + 4, end) : crc32cWords(words, store, position + 4, end)
  return crc === getU32(store, position)
}

/** The payload length of the frame at `position` of `store` (checked by frameInPlaceOk). */
export function framePayloadBytesAt(store: Uint8Array, position: number): number {
  return getU32(store, position + 4)
}

/** The timestamp of the frame at `position` of `store` (checked by frameInPlaceOk). */
export function frameTimestampMsAt(store: Uint8Array, position: number): number {
  return getU32(store, position + 20) * TWO_TO_32 + getU32(store, position + 16)
}

/** Accessors for a frame already checked by `Segment.read`. */
export function frameTimestampMs(frame: Buffer): number {
  return readU64(frame, 16)
}

export function frameFlags(frame: Buffer): number {
  return frame.readUInt16LE(12)
}

// ---------------------------------------------------------------------------------------------
// Queue layer: the record envelope, a partition log record's payload (the timestamp is the frame's).
//
//   0  u8   envelope version (1)
//   1  u8   attributes      bit 0: a key is present
//   2  u16  headerCount
//   4  u32  keyBytes        0 when absent
//   8  ...  key
//       then headerCount times: u16 nameBytes, name (UTF-8), u32 valueBytes, value
//       then the value: every remaining byte

export const ENVELOPE_VERSION = 1
export const ENVELOPE_FIXED_BYTES = 8
const ATTRIBUTE_HAS_KEY = 0x1
export const HEADER_NAME_BYTES_MAX = 0xffff
export const HEADER_COUNT_MAX = 0xffff
const HEADER_NAME_LENGTH_BYTES = 2
const HEADER_VALUE_LENGTH_BYTES = 4

/** An envelope field as producers give it: bytes, or a string written as UTF-8. */
export type EnvelopeField = Uint8Array | string

/**
 * Strings up to this many chars are copied by a JS loop that also learns their UTF-8 length (the
 * char count, for ASCII): a call into C++ per key or header cost more (measured). Longer strings,
 * and short ones with non-ASCII chars, go through Buffer#write.
 */
const SHORT_STRING_CHARS = 64
/** UTF-8 takes at most 3 bytes per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units). */
const UTF8_BYTES_PER_CHAR_MAX = 3

/**
 * The UTF-8 bytes of non-ASCII header names seen recently. Names repeat from record to record (keys
 * and values do not, so they are never kept): a known name is one lookup and one copy instead of
 * Buffer#write. ASCII names skip it: copying a short name char by char costs less than the lookup
 * (measured). Bounded: when full, the cache starts over, so names that change with every record cost
 * little and keep nothing.
 */
export const HEADER_NAME_ENCODE_CACHE_ENTRIES = 64
/** How many header places (first, second, ...) an EnvelopeWriter remembers from envelope to envelope. */
const HEADER_SLOTS_REMEMBERED = 8
const encodedHeaderNames = new Map<string, Uint8Array>()

/** How many header names the encode cache holds now (for tests of its bound). */
export function encodedHeaderNameCount(): number {
  return encodedHeaderNames.size
}

/** What EnvelopeWriter.envelope returns instead of an end position when a record's headers are refused. */
export const HEADERS_VALUE_BAD = -1
export const HEADERS_NAME_TOO_LONG = -2
export const HEADERS_TOO_MANY = -3

/**
 * Encodes envelopes back to back into one growing buffer, each field in a single pass: a string's
 * UTF-8 length is learned while its bytes are copied, so nothing is sized twice. One call per
 * envelope (`envelope`), with the header loop inside: the hot path is a few large functions rather
 * than a call per field, which V8 could not inline all of (measured).
 *
 * Invariant: bytes [0, position) hold complete envelopes, plus the one being written.
 */
export class EnvelopeWriter {
  bytes: Buffer
  position = 0
  /** `bytes` as a DataView, for the four-byte stores of putAscii and copyBytes. */
  private view: DataView
  private bytesMax = 0
  /** Bytes left free before each envelope (see reset). */
  private gapBytes = 0
  /**
   * The header last written at each place (first, second, ...) of an envelope of this batch: its name,
   * its string value (undefined for bytes), and where its entry lies in `bytes`: slot s's entry is
   * [slotEntries[3s], slotEntries[3s + 2]), its value's u32 length at slotEntries[3s + 1]. See headers().
   */
  private readonly slotNames: (string | undefined)[] = new Array<string | undefined>(HEADER_SLOTS_REMEMBERED).fill(undefined)
  private readonly slotValues: (string | undefined)[] = new Array<string | undefined>(HEADER_SLOTS_REMEMBERED).fill(undefined)
  private readonly slotEntries = new Int32Array(HEADER_SLOTS_REMEMBERED * 3)

  constructor(initialBytes: number) {
    assert(Number.isSafeInteger(initialBytes) && initialBytes > 0)
    this.bytes = Buffer.allocUnsafe(initialBytes)
    this.view = viewOf(this.bytes)
  }

  /**
   * Forgets what was written; the buffer may then grow up to `bytesMax` (RECORD_TOO_LARGE beyond).
   * Each envelope is then preceded by `gapBytes` unwritten bytes (FRAME_HEADER_BYTES lays the
   * envelopes out as the frames of a store, so a run of them is copied into a write buffer at once).
   */
  reset(bytesMax: number, gapBytes = 0): void {
    assert(bytesMax > 0)
    assert(gapBytes === 0 || gapBytes === FRAME_HEADER_BYTES, 'no gap or a frame header')
    this.position = 0
    this.bytesMax = bytesMax
    this.gapBytes = gapBytes
    // The remembered entries point into bytes about to be overwritten.
    this.slotNames.fill(undefined)
    this.slotValues.fill(undefined)
  }

  /**
   * Writes one envelope (the caller has checked that key and value are bytes or strings, and that
   * `headers`, when given, is an object). Returns the envelope's end position, or one of the
   * HEADERS_* codes for the first refused header; the envelope must then be dropped (the caller throws).
   * With `stagedKey`, the key's bytes are those of the last stageKey(key) (encoded first to hash them).
   */
  envelope(key: EnvelopeField | undefined, headers: object | undefined, value: EnvelopeField, stagedKey = false): number {
    this.ensure(this.gapBytes + ENVELOPE_FIXED_BYTES)
    const start = this.position + this.gapBytes
    this.bytes[start] = ENVELOPE_VERSION
    this.bytes[start + 1] = key === undefined ? 0 : ATTRIBUTE_HAS_KEY
    this.position = start + ENVELOPE_FIXED_BYTES
    const keyBytes = stagedKey ? this.stagedKey() : key === undefined ? 0 : this.field(key)
    const headerCount = headers === undefined ? 0 : this.headers(headers)
    if (headerCount < 0) return headerCount
    putU16(this.bytes, start + 2, headerCount)
    putU32(this.bytes, start + 4, keyBytes)
    this.field(value)
    return this.position
  }

  /**
   * Writes the own enumerable properties of `headers` in order; returns their count or a HEADERS_* code.
   *
   * A header whose name is the one the previous envelope had at the same place (producers build
   * records alike, so names, and often values such as a content type, repeat from record to record)
   * is copied from that envelope's entry: the name's bytes, or the whole entry when the string value
   * is the same too. `===` on equal names is a pointer compare in V8. One loop with the copy inline:
   * a call per header cost a tenth of the encoding (measured).
   */
  private headers(headers: object): number {
    const names = this.slotNames
    const values = this.slotValues
    const entries = this.slotEntries
    let slot = 0
    for (const name in headers) {
      if (!Object.prototype.hasOwnProperty.call(headers, name)) continue
      const value = (headers as Record<string, unknown>)[name]
      if (typeof value !== 'string' && !(value instanceof Uint8Array)) return HEADERS_VALUE_BAD
      if (slot === HEADER_COUNT_MAX) return HEADERS_TOO_MANY
      if (slot >= HEADER_SLOTS_REMEMBERED || name !== names[slot]) {
        if (!this.newHeader(slot, name, value)) return HEADERS_NAME_TOO_LONG
        slot++
        continue
      }
      const entry = slot * 3
      const from = entries[entry]!
      const valueFrom = entries[entry + 1]!
      const at = this.position
      if (typeof value === 'string' && value === values[slot]) {
        const entryBytes = entries[entry + 2]! - from
        this.ensure(entryBytes)
        copyBytes(this.view, at, from, entryBytes)
        this.position = at + entryBytes
        entries[entry] = at
        entries[entry + 1] = at + (valueFrom - from)
        entries[entry + 2] = at + entryBytes
      } else {
        const nameEntryBytes = valueFrom - from
        this.ensure(nameEntryBytes + HEADER_VALUE_LENGTH_BYTES)
        copyBytes(this.view, at, from, nameEntryBytes)
        const valueAt = at + nameEntryBytes
        this.position = valueAt + HEADER_VALUE_LENGTH_BYTES
        const valueBytes = this.field(value) // may grow `bytes`: read it after
        putU32(this.bytes, valueAt, valueBytes)
        values[slot] = typeof value === 'string' ? value : undefined
        entries[entry] = at
        entries[entry + 1] = valueAt
        entries[entry + 2] = this.position
      }
      slot++
    }
    return slot
  }

  /** A header encoded from scratch (and remembered for its place); false when the name's UTF-8 exceeds its u16 length. */
  private newHeader(slot: number, name: string, value: EnvelopeField): boolean {
    const at = this.position
    this.ensure(HEADER_NAME_LENGTH_BYTES)
    this.position = at + HEADER_NAME_LENGTH_BYTES
    const nameBytes = this.headerName(name)
    if (nameBytes > HEADER_NAME_BYTES_MAX) return false
    putU16(this.bytes, at, nameBytes)
    const valueAt = this.position
    this.ensure(HEADER_VALUE_LENGTH_BYTES)
    this.position = valueAt + HEADER_VALUE_LENGTH_BYTES
    const valueBytes = this.field(value) // may grow `bytes`: read it after
    putU32(this.bytes, valueAt, valueBytes)
    if (slot < HEADER_SLOTS_REMEMBERED) {
      this.slotNames[slot] = name
      this.slotValues[slot] = typeof value === 'string' ? value : undefined
      const entry = slot * 3
      this.slotEntries[entry] = at
      this.slotEntries[entry + 1] = valueAt
      this.slotEntries[entry + 2] = this.position
    }
    return true
  }

  /** An ASCII name is copied as any short string; a non-ASCII one comes from the cache of encoded names. */
  private headerName(name: string): number {
    const chars = name.length
    if (chars > SHORT_STRING_CHARS) return this.field(name)
    const at = this.position
    this.ensure(chars * UTF8_BYTES_PER_CHAR_MAX)
    if (putAscii(this.view, at, name)) {
      this.position = at + chars
      return chars
    }
    const cached = encodedHeaderNames.get(name)
    if (cached !== undefined) {
      this.bytes.set(cached, at)
      this.position = at + cached.length
      return cached.length
    }
    const nameBytes = this.bytes.write(name, at, 'utf8')
    this.position = at + nameBytes
    if (encodedHeaderNames.size >= HEADER_NAME_ENCODE_CACHE_ENTRIES) encodedHeaderNames.clear()
    encodedHeaderNames.set(name, new Uint8Array(this.bytes.subarray(at, at + nameBytes)))
    return nameBytes
  }

  /** Writes a field (bytes, or a string as UTF-8) at `position`; returns how many bytes it took. */
  private field(field: EnvelopeField): number {
    const at = this.position
    if (typeof field !== 'string') {
      const bytes = field.length
      this.ensure(bytes)
      this.bytes.set(field, at)
      this.position = at + bytes
      return bytes
    }
    const chars = field.length
    if (chars <= SHORT_STRING_CHARS) {
      this.ensure(chars * UTF8_BYTES_PER_CHAR_MAX)
      if (putAscii(this.view, at, field)) {
        this.position = at + chars
        return chars
      }
    } else {
      this.ensure(Buffer.byteLength(field, 'utf8'))
    }
    const bytes = this.bytes.write(field, at, 'utf8')
    this.position = at + bytes
    return bytes
  }

  /** Copies the staged key (stageKey) to `position`; returns its byte count. */
  private stagedKey(): number {
    const count = stagedKeyCount
    this.ensure(count)
    const at = this.position
    if (count <= SHORT_STRING_CHARS) copyBetween(this.view, at, keyStage.view, count)
    else this.bytes.set(keyStage.bytes.subarray(0, count), at)
    this.position = at + count
    return count
  }

  /** @internal For stageKey: writes `field` alone from byte 0 (the buffer may grow up to `bytesMax`). */
  stageField(field: EnvelopeField, bytesMax: number): number {
    this.position = 0
    this.bytesMax = bytesMax
    return this.field(field)
  }

  private ensure(bytes: number): void {
    if (this.position + bytes > this.bytes.length) this.grow(this.position + bytes)
  }

  private grow(bytesNeeded: number): void {
    if (bytesNeeded > this.bytesMax) {
      throw new LogError('RECORD_TOO_LARGE', `the encoded records need more than ${this.bytesMax} bytes`)
    }
    const grown = Buffer.allocUnsafe(Math.min(Math.max(bytesNeeded, this.bytes.length * 2), this.bytesMax))
    this.bytes.copy(grown, 0, 0, this.position)
    this.bytes = grown
    this.view = viewOf(grown)
  }
}

/**
 * Copies bytes [from, from + count) of the view's buffer to `to`, four at a time; the ranges must not
 * overlap. For the few bytes of a header a JS loop beats a call into copyWithin (measured).
 */
function copyBytes(view: DataView, to: number, from: number, count: number): void {
  let i = 0
  for (const wordsEnd = count - 3; i < wordsEnd; i += 4) view.setInt32(to + i, view.getInt32(from + i, true), true)
  for (; i < count; i++) view.setUint8(to + i, view.getUint8(from + i))
}

/** Copies bytes [0, count) of `from` to `at` in `to`, four at a time. */
function copyBetween(to: DataView, at: number, from: DataView, count: number): void {
  let i = 0
  for (const wordsEnd = count - 3; i < wordsEnd; i += 4) to.setInt32(at + i, from.getInt32(i, true), true)
  for (; i < count; i++) to.setUint8(at + i, from.getUint8(i))
}

/**
 * The staging area for keys: a key is encoded here first when its bytes must be hashed before the
 * envelope's place (a partition's scratch) is chosen; the next envelope(…, stagedKey = true) copies
 * them (16 bytes copied cost less than encoding the string twice). Grows for long keys, up to the
 * batch's bound.
 */
const keyStage = new EnvelopeWriter(1024)
let stagedKeyCount = 0

/** Encodes `key` into the staging area (RECORD_TOO_LARGE past `bytesMax`); returns its byte count. */
export function stageKey(key: EnvelopeField, bytesMax: number): number {
  stagedKeyCount = keyStage.stageField(key, bytesMax)
  return stagedKeyCount
}

/** The staging area: the staged key is bytes [0, stageKey's count). */
export function stagedKeyBytes(): Buffer {
  return keyStage.bytes
}

function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.length)
}

/**
 * Copies `text` to `at` if it is all ASCII (then its UTF-8 is its chars) and returns true; else
 * returns false, having written junk the caller overwrites. Four chars per store: a store per byte
 * cost a third more (measured).
 */
function putAscii(view: DataView, at: number, text: string): boolean {
  const chars = text.length
  const wordsEnd = chars - (chars % 4)
  let seen = 0
  let i = 0
  for (; i < wordsEnd; i += 4) {
    const c0 = text.charCodeAt(i)
    const c1 = text.charCodeAt(i + 1)
    const c2 = text.charCodeAt(i + 2)
    const c3 = text.charCodeAt(i + 3)
    seen |= c0 | c1 | c2 | c3
    view.setInt32(at + i, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24), true)
  }
  for (; i < chars; i++) {
    const code = text.charCodeAt(i)
    seen |= code
    view.setUint8(at + i, code)
  }
  return seen < 0x80
}

/** Whether the envelope at `at` has a key (its bytes then start at `at + ENVELOPE_FIXED_BYTES`). */
export function envelopeHasKey(buf: Uint8Array, at: number): boolean {
  return (buf[at + 1]! & ATTRIBUTE_HAS_KEY) !== 0
}

/** The length of the key of the envelope at `at`. */
export function envelopeKeyBytes(buf: Uint8Array, at: number): number {
  return getU32(buf, at + 4)
}

export interface DecodedEnvelope {
  key: Uint8Array | null
  headers: Record<string, Uint8Array>
  value: Uint8Array
}

function envelopeDamaged(offset: number, why: string): LogError {
  return new LogError('CORRUPT_RECORD', `record ${offset}: bad envelope (${why})`, { offset })
}

function getU16(buf: Uint8Array, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8)
}

/**
 * Header names seen recently, with their bytes: names repeat from record to record, and comparing
 * a few bytes costs far less than decoding UTF-8 into a new string each time (measured on drains).
 */
const HEADER_NAME_CACHE_SIZE = 32
const cachedNameBytes: Buffer[] = []
const cachedNames: string[] = []
let nextCacheSlot = 0

/**
 * `text` as V8's internalized copy (the one string it keeps for a property key): the headers object
 * literals (headersObject) keyed by cached names stay fast only with these (measured: 145 against
 * 326 ns per decoded envelope with names fresh from toString).
 */
function internalized(text: string): string {
  return Object.keys({ [text]: 0 })[0] ?? text
}

function headerName(buf: Uint8Array, start: number, end: number): string {
  const length = end - start
  for (let slot = 0; slot < cachedNameBytes.length; slot++) {
    const bytes = cachedNameBytes[slot]!
    if (bytes.length !== length) continue
    let i = 0
    while (i < length && bytes[i] === buf[start + i]) i++
    if (i === length) return cachedNames[slot]!
  }
  const bytes = Buffer.from(buf.buffer, buf.byteOffset + start, length)
  const text = bytes.toString('utf8')
  if (length > 64) return text
  const name = internalized(text)
  cachedNameBytes[nextCacheSlot] = Buffer.from(bytes)
  cachedNames[nextCacheSlot] = name
  nextCacheSlot = (nextCacheSlot + 1) % HEADER_NAME_CACHE_SIZE
  return name
}

/**
 * Why bytes [start, end) of `buf` are not a well-formed envelope, or undefined when they are: the
 * same bounds decodeEnvelope checks, without building anything (the owner checks forwarded records).
 */
export function envelopeProblem(buf: Uint8Array, start: number, end: number): string | undefined {
  if (end - start < ENVELOPE_FIXED_BYTES) return 'too short'
  if (buf[start] !== ENVELOPE_VERSION) return `version ${buf[start]}`
  const headerCount = buf[start + 2]! | (buf[start + 3]! << 8)
  let position = start + ENVELOPE_FIXED_BYTES + readU32At(buf, start + 4)
  if (position > end) return 'key past the end'
  for (let i = 0; i < headerCount; i++) {
    if (position + 2 > end) return 'header past the end'
    const nameEnd = position + 2 + (buf[position]! | (buf[position + 1]! << 8))
    if (nameEnd + 4 > end) return 'header past the end'
    position = nameEnd + 4 + readU32At(buf, nameEnd)
    if (position > end) return 'header value past the end'
  }
  return undefined
}

function readU32At(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16)) + buf[at + 3]! * 0x1000000
}

/**
 * The views decodeEnvelope hands out: Buffers in all but the constructor that made them. Made by
 * `new` over the payload's ArrayBuffer, a subclass of Uint8Array whose constructor is the implicit
 * one costs about a third of Buffer.from(arrayBuffer, offset, length) or subarray (Node's FastBuffer
 * has an explicit constructor that V8 does not skip): measured 151 ns against 262 ns for the four
 * views and the object of one decoded envelope. Its prototype chain is Buffer's, and its
 * `constructor` reads Buffer, so Buffer.isBuffer, every Buffer method, inspection and equality
 * checks see a Buffer.
 */
class EnvelopeBytes extends Uint8Array {}
Object.setPrototypeOf(EnvelopeBytes.prototype, Buffer.prototype)
Object.defineProperty(EnvelopeBytes.prototype, 'constructor', { value: Buffer, writable: true, configurable: true, enumerable: false })

/** A partition's record as a consumer gets it: the envelope decoded, with where it came from. */
export interface DecodedRecord extends DecodedEnvelope {
  topic: string
  partition: number
  offset: number
  timestamp: number
}

/** Decodes an envelope; key, header values and value are views of `payload` (no copy). */
export function decodeEnvelope(payload: Uint8Array, offset: number): DecodedEnvelope {
  const { key, headers, value } = decodeEnvelopeRecord('', 0, offset, 0, payload)
  return { key, headers, value }
}

/**
 * The record whose envelope is `payload`, in one object (the shape of Partition's ConsumedRecord):
 * key, header values and value are views of `payload` (no copy). CORRUPT_RECORD when the envelope's
 * fields do not fit in it.
 */
export function decodeEnvelopeRecord(topic: string, partition: number, offset: number, timestamp: number, payload: Uint8Array): DecodedRecord {
  return decodeEnvelopeAt(topic, partition, offset, timestamp, payload, 0, payload.length)
}

/**
 * decodeEnvelopeRecord of the envelope in bytes [start, start + length) of `bytes` (a frame in a
 * mapped store or a read chunk): the batch read path decodes in place, without a view of the payload.
 */
export function decodeEnvelopeAt(topic: string, partition: number, offset: number, timestamp: number, bytes: Uint8Array, start: number, length: number): DecodedRecord {
  if (length < ENVELOPE_FIXED_BYTES) throw envelopeDamaged(offset, 'too short')
  if (bytes[start] !== ENVELOPE_VERSION) throw envelopeDamaged(offset, `version ${bytes[start]}`)
  const headerCount = getU16(bytes, start + 2)
  const keyBytes = getU32(bytes, start + 4)
  const end = start + length
  let position = start + ENVELOPE_FIXED_BYTES + keyBytes
  if (position > end) throw envelopeDamaged(offset, 'key past the end')
  const buffer = bytes.buffer as ArrayBuffer
  const base = bytes.byteOffset
  const key = (bytes[start + 1]! & ATTRIBUTE_HAS_KEY) !== 0 ? new EnvelopeBytes(buffer, base + start + ENVELOPE_FIXED_BYTES, keyBytes) : null
  for (let i = 0; i < headerCount; i++) {
    if (position + 2 > end) throw envelopeDamaged(offset, 'header past the end')
    const nameEnd = position + 2 + getU16(bytes, position)
    if (nameEnd + 4 > end) throw envelopeDamaged(offset, 'header past the end')
    const name = headerName(bytes, position + 2, nameEnd)
    const valueBytes = getU32(bytes, nameEnd)
    position = nameEnd + 4 + valueBytes
    if (position > end) throw envelopeDamaged(offset, 'header value past the end')
    const headerValue = new EnvelopeBytes(buffer, base + nameEnd + 4, valueBytes)
    if (i < HEADERS_IN_LITERAL_MAX) {
      headerNames[i] = name
      headerValues[i] = headerValue
    } else {
      if (i === HEADERS_IN_LITERAL_MAX) moreHeaders = headersObject(HEADERS_IN_LITERAL_MAX)
      addHeader(moreHeaders!, name, headerValue)
    }
  }
  const headers = headerCount > HEADERS_IN_LITERAL_MAX ? moreHeaders! : headersObject(headerCount)
  moreHeaders = undefined
  const value = new EnvelopeBytes(buffer, base + position, end - position)
  return { topic, partition, offset, timestamp, key, value, headers }
}

/**
 * The first headers of the envelope being decoded (decoding is synchronous, so one scratch pair
 * serves every call), and the object of an envelope with more than HEADERS_IN_LITERAL_MAX headers.
 */
const HEADERS_IN_LITERAL_MAX = 4
const headerNames: string[] = new Array<string>(HEADERS_IN_LITERAL_MAX).fill('')
const headerValues: Uint8Array[] = new Array<Uint8Array>(HEADERS_IN_LITERAL_MAX).fill(new Uint8Array(0))
let moreHeaders: Record<string, Uint8Array> | undefined

/**
 * The headers object of the first `count` scratch headers, as an object literal with computed keys:
 * V8 caches each literal's shape for the names it saw, so records whose header names repeat build
 * their headers at the cost of one allocation (measured 7 ns for two headers, against 35-40 ns for
 * adding them one by one to `{}`). A computed key defines an own property even when it is
 * '__proto__' (only the plain `__proto__: value` form sets the prototype); a repeated name keeps
 * its last value, as assignment would.
 */
function headersObject(count: number): Record<string, Uint8Array> {
  const n = headerNames
  const v = headerValues
  switch (count) {
    case 0:
      return {}
    case 1:
      return { [n[0]!]: v[0]! }
    case 2:
      return { [n[0]!]: v[0]!, [n[1]!]: v[1]! }
    case 3:
      return { [n[0]!]: v[0]!, [n[1]!]: v[1]!, [n[2]!]: v[2]! }
    default:
      return { [n[0]!]: v[0]!, [n[1]!]: v[1]!, [n[2]!]: v[2]!, [n[3]!]: v[3]! }
  }
}

/** Headers past the first HEADERS_IN_LITERAL_MAX, one at a time ('__proto__' as an own property, never the prototype). */
function addHeader(headers: Record<string, Uint8Array>, name: string, value: Uint8Array): void {
  if (name === '__proto__') Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true })
  else headers[name] = value
}

// ---------------------------------------------------------------------------------------------
// Topic metadata (`topic.json`): UTF-8 JSON, written atomically (temp → fsync → rename).
//   { "format": "seglog-topic", "version": 1, "partitions": N, "createdMs": ms, "logOptions": {...} }

export const TOPIC_METADATA_FILE = 'topic.json'
export const TOPIC_METADATA_FORMAT = 'seglog-topic'

export interface TopicMetadata {
  partitions: number
  createdMs: number
  logOptions: Record<string, unknown>
}

export function encodeTopicMetadata(metadata: TopicMetadata): Buffer {
  const document = { format: TOPIC_METADATA_FORMAT, version: FORMAT_VERSION, ...metadata }
  return Buffer.from(JSON.stringify(document, null, 2) + '\n')
}

export function decodeTopicMetadata(bytes: Buffer, path: string): TopicMetadata {
  let document: Record<string, unknown>
  try {
    document = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  } catch (error) {
    throw new LogError('CORRUPT_FILE', 'topic metadata is not valid JSON', { path, cause: error })
  }
  if (document === null || typeof document !== 'object' || document.format !== TOPIC_METADATA_FORMAT) {
    throw new LogError('CORRUPT_FILE', 'not a seglog topic metadata file', { path })
  }
  if (document.version !== FORMAT_VERSION) {
    throw new LogError('UNSUPPORTED_VERSION', `topic metadata version ${String(document.version)}`, { path })
  }
  const { partitions, createdMs, logOptions } = document
  if (typeof partitions !== 'number' || !Number.isInteger(partitions) || partitions < 1 || typeof createdMs !== 'number') {
    throw new LogError('CORRUPT_FILE', 'topic metadata fields are invalid', { path })
  }
  const options = logOptions !== null && typeof logOptions === 'object' ? (logOptions as Record<string, unknown>) : {}
  return { partitions, createdMs, logOptions: options }
}

// ---------------------------------------------------------------------------------------------
// Consumer group offsets: records of the group's own log (`groups/<id>/offsets/`).
//
//   commit:   u8 kind = 1, u8 0, u16 0, u32 generation, u32 partition, u32 0, u64 offset   (24 bytes)
//   snapshot: u8 kind = 2, u8 0, u16 0, u32 generation, u32 count, u32 0,
//             then count times: u32 partition, u32 0, u64 offset                          (16 + 16·count)
// The latest record for a partition wins; a snapshot replaces everything before it, which lets the
// log be compacted by deleting the segments below the newest snapshot.

export const OFFSET_RECORD_COMMIT = 1
export const OFFSET_RECORD_SNAPSHOT = 2

export interface OffsetRecord {
  kind: typeof OFFSET_RECORD_COMMIT | typeof OFFSET_RECORD_SNAPSHOT
  generation: number
  offsets: [partition: number, offset: number][]
}

export function encodeOffsetRecord(record: OffsetRecord): Buffer {
  if (record.kind === OFFSET_RECORD_COMMIT) {
    assert(record.offsets.length === 1)
    const buf = Buffer.alloc(24)
    buf[0] = OFFSET_RECORD_COMMIT
    buf.writeUInt32LE(record.generation >>> 0, 4)
    buf.writeUInt32LE(record.offsets[0]![0], 8)
    writeU64(buf, 16, record.offsets[0]![1])
    return buf
  }
  const buf = Buffer.alloc(16 + 16 * record.offsets.length)
  buf[0] = OFFSET_RECORD_SNAPSHOT
  buf.writeUInt32LE(record.generation >>> 0, 4)
  buf.writeUInt32LE(record.offsets.length, 8)
  record.offsets.forEach(([partition, offset], i) => {
    buf.writeUInt32LE(partition, 16 + 16 * i)
    writeU64(buf, 24 + 16 * i, offset)
  })
  return buf
}

export function decodeOffsetRecord(bytes: Uint8Array, offset: number, path: string): OffsetRecord {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const damaged = new LogError('CORRUPT_RECORD', `group offsets record ${offset} is malformed`, { offset, path })
  if (buf.length < 16) throw damaged
  const kind = buf[0]
  const generation = buf.readUInt32LE(4)
  if (kind === OFFSET_RECORD_COMMIT && buf.length === 24) {
    return { kind, generation, offsets: [[buf.readUInt32LE(8), readU64(buf, 16)]] }
  }
  if (kind === OFFSET_RECORD_SNAPSHOT) {
    const count = buf.readUInt32LE(8)
    if (buf.length !== 16 + 16 * count) throw damaged
    const offsets: [number, number][] = []
    for (let i = 0; i < count; i++) offsets.push([buf.readUInt32LE(16 + 16 * i), readU64(buf, 24 + 16 * i)])
    return { kind, generation, offsets }
  }
  throw damaged
}

// ---------------------------------------------------------------------------------------------
// Share group state: records of the share group's own log (`groups/<id>/share/`).
//
//   u8 kind (1 = update, 2 = snapshot), u8 0, u16 0, u32 partition, u64 startOffset,
//   u32 batchCount, u32 0, then batchCount times (24 bytes each):
//     u64 firstOffset, u32 count, u16 deliveryCount, u8 state, u8 0, u64 availableAtMs
//
// An update sets the partition's start offset (it only grows) and the state of each offset of
// each batch; a snapshot replaces everything known about the partition before it. A snapshot is
// written as one atomic appendBatch holding a record per partition, so the segments below it can
// be deleted (compaction).

export const SHARE_RECORD_UPDATE = 1
export const SHARE_RECORD_SNAPSHOT = 2
export const SHARE_RECORD_HEADER_BYTES = 24
export const SHARE_BATCH_BYTES = 24
/** Delivery states of a record in a share group's in-flight window. */
export const SHARE_STATE_AVAILABLE = 0
export const SHARE_STATE_ACQUIRED = 1
export const SHARE_STATE_ACKED = 2
export const SHARE_STATE_ARCHIVED = 3
const SHARE_STATE_MAX = SHARE_STATE_ARCHIVED
export const SHARE_DELIVERY_COUNT_MAX = 0xffff

export type ShareDeliveryState = typeof SHARE_STATE_AVAILABLE | typeof SHARE_STATE_ACQUIRED | typeof SHARE_STATE_ACKED | typeof SHARE_STATE_ARCHIVED

/** Consecutive offsets that share one state, delivery count and availability time. */
export interface ShareStateBatch {
  firstOffset: number
  count: number
  deliveryCount: number
  state: ShareDeliveryState
  /** When an available record may be delivered again (ms since the epoch; 0: at once). */
  availableAtMs: number
}

export interface ShareStateRecord {
  kind: typeof SHARE_RECORD_UPDATE | typeof SHARE_RECORD_SNAPSHOT
  partition: number
  startOffset: number
  batches: ShareStateBatch[]
}

export function encodeShareStateRecord(record: ShareStateRecord): Buffer {
  const buf = Buffer.alloc(SHARE_RECORD_HEADER_BYTES + SHARE_BATCH_BYTES * record.batches.length)
  buf[0] = record.kind
  buf.writeUInt32LE(record.partition, 4)
  writeU64(buf, 8, record.startOffset)
  buf.writeUInt32LE(record.batches.length, 16)
  let at = SHARE_RECORD_HEADER_BYTES
  for (const batch of record.batches) {
    assert(batch.count >= 1 && batch.deliveryCount <= SHARE_DELIVERY_COUNT_MAX)
    writeU64(buf, at, batch.firstOffset)
    buf.writeUInt32LE(batch.count, at + 8)
    buf.writeUInt16LE(batch.deliveryCount, at + 12)
    buf[at + 14] = batch.state
    writeU64(buf, at + 16, Math.max(0, Math.floor(batch.availableAtMs)))
    at += SHARE_BATCH_BYTES
  }
  return buf
}

export function decodeShareStateRecord(bytes: Uint8Array, offset: number, path: string): ShareStateRecord {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const damaged = new LogError('CORRUPT_RECORD', `share group state record ${offset} is malformed`, { offset, path })
  if (buf.length < SHARE_RECORD_HEADER_BYTES) throw damaged
  const kind = buf[0]
  if (kind !== SHARE_RECORD_UPDATE && kind !== SHARE_RECORD_SNAPSHOT) throw damaged
  const count = buf.readUInt32LE(16)
  if (buf.length !== SHARE_RECORD_HEADER_BYTES + SHARE_BATCH_BYTES * count) throw damaged
  const batches: ShareStateBatch[] = []
  for (let i = 0, at = SHARE_RECORD_HEADER_BYTES; i < count; i++, at += SHARE_BATCH_BYTES) {
    const state = buf[at + 14]!
    const batchCount = buf.readUInt32LE(at + 8)
    if (state > SHARE_STATE_MAX || batchCount < 1) throw damaged
    batches.push({ firstOffset: readU64(buf, at), count: batchCount, deliveryCount: buf.readUInt16LE(at + 12), state: state as ShareDeliveryState, availableAtMs: readU64(buf, at + 16) })
  }
  return { kind, partition: buf.readUInt32LE(4), startOffset: readU64(buf, 8), batches }
}

assert(SHARE_RECORD_HEADER_BYTES === 24)
assert(SHARE_BATCH_BYTES === 24)
