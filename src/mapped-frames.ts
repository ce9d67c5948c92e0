/**
 * MappedFrames: the zero-copy read path of a sealed segment whose store and index files are both
 * mapped. It holds 32-bit word views over the two maps, made once when the segment opens, so one
 * read is: two index words, the frame's header checked against them, the CRC-32C of the frame in
 * place, and one view (the payload) handed out. No other object is made per read.
 *
 * It only answers for records it can prove: whatever does not check out (a frame that does not match
 * its index entry, a checksum mismatch) reads as "no answer" (-1, or a shorter batch), and the
 * caller goes through Segment's general path, which reports the damage precisely (CORRUPT_RECORD).
 *
 * Invariants (Segment.openForRead establishes them): the index's entries form a chain that ends at
 * the store's end, `count` is the segment's record count, and neither file shrinks while mapped.
 * Sits between format.ts/crc32c.ts and segment.ts.
 */
import { assert } from './assert.js'
import { LITTLE_ENDIAN, wordsOf, wordsOver } from './crc32c.js'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES, INDEX_ENTRY_BYTES, frameInPlaceOk, framePayloadBytesAt, frameTimestampMsAt, indexWordsPayloadBytes, indexWordsPosition } from './format.js'

/** A record as the batch read hands it out (the shape of SegmentedLog's LogRecord). */
export interface FrameRecord {
  offset: number
  timestampMs: number
  value: Uint8Array
}

/**
 * Makes a batch read's element from a checked frame: record `offset`, its timestamp, and its payload,
 * bytes [start, start + length) of `bytes` (a mapped store or a read chunk, valid as a view of it
 * would be). `context` is handed through: one plain function per kind of element, rather than a
 * closure per caller, keeps the batch loop's call site monomorphic (V8 inlines it).
 */
export type FrameMaker<T, C> = (context: C, offset: number, timestampMs: number, bytes: Uint8Array, start: number, length: number) => T

/** The FrameMaker of a FrameRecord (SegmentedLog's LogRecord): the payload as a Buffer view. */
export function frameRecordOf(_context: unknown, offset: number, timestampMs: number, bytes: Uint8Array, start: number, length: number): FrameRecord {
  return { offset, timestampMs, value: Buffer.from(bytes.buffer, bytes.byteOffset + start, length) }
}

export class MappedFrames {
  private constructor(
    /** The objects these views were made from: the segment checks they are still its own. */
    readonly storeOwner: object,
    readonly indexOwner: object,
    private readonly baseOffset: number,
    private readonly count: number,
    private readonly store: Buffer,
    private readonly storeWords: Int32Array | undefined,
    private readonly indexWords: Uint32Array,
  ) {
    this.storeBuffer = store.buffer
    this.storeByteOffset = store.byteOffset
    this.uniformFrameBytes = uniformFrameBytes(indexWords, count)
  }

  /**
   * The size every frame of this segment has (header included), or 0 when sizes differ. A segment of
   * records of one size (common: fixed-schema events) then finds frame r at FILE_HEADER_BYTES +
   * r * uniformFrameBytes without touching its index entry: the entry is a second dependent cache
   * miss per random read, measured as about a third of the mapped read's time at 10^6 records. The
   * frame found is still checked exactly as before (relative offset, length and CRC-32C).
   */
  private readonly uniformFrameBytes: number

  /** The map's ArrayBuffer and where the store starts in it: payload views are made straight from them. */
  private readonly storeBuffer: ArrayBufferLike
  private readonly storeByteOffset: number

  /**
   * Views over a mapped store and its index entries (the bytes after the index file header), or
   * undefined when the entries cannot be viewed as words (unaligned, or a big-endian machine).
   */
  static over(owners: { store: object; index: object }, baseOffset: number, count: number, store: Buffer, entries: Buffer): MappedFrames | undefined {
    assert(entries.length >= count * INDEX_ENTRY_BYTES, 'the index holds an entry per record')
    const indexWords = wordsOver(entries)
    if (indexWords === undefined) return undefined
    return new MappedFrames(owners.store, owners.index, baseOffset, count, store, LITTLE_ENDIAN ? wordsOf(store) : undefined, indexWords)
  }

  /** The position of record `relativeOffset`'s frame once checked, or -1 when it does not check out. */
  checkedPosition(relativeOffset: number, verifyChecksum: boolean): number {
    if (!(relativeOffset >= 0 && relativeOffset < this.count)) return -1
    const frameBytes = this.uniformFrameBytes
    let position: number
    let payloadBytes: number
    if (frameBytes > 0) {
      position = FILE_HEADER_BYTES + relativeOffset * frameBytes
      payloadBytes = frameBytes - FRAME_HEADER_BYTES
    } else {
      position = indexWordsPosition(this.indexWords, relativeOffset)
      payloadBytes = indexWordsPayloadBytes(this.indexWords, relativeOffset)
    }
    if (!frameInPlaceOk(this.store, this.storeWords, position, relativeOffset, payloadBytes, verifyChecksum)) return -1
    return position
  }

  /**
   * The payload of record `relativeOffset` (a view of the map) once its frame checks out, or
   * undefined: read(offset)'s whole fast path in one call, making no object but the view.
   */
  payloadOf(relativeOffset: number, verifyChecksum: boolean): Buffer | undefined {
    const position = this.checkedPosition(relativeOffset, verifyChecksum)
    return position < 0 ? undefined : this.payloadAt(position)
  }

  /**
   * The payload of the checked frame at `position` (a view of the map). Buffer.from over the map's
   * ArrayBuffer, not store.subarray: subarray looks up the species constructor on every call
   * (measured about 15 ns of 45 per view on Node 20).
   */
  payloadAt(position: number): Buffer {
    return Buffer.from(this.storeBuffer, this.storeByteOffset + position + FRAME_HEADER_BYTES, framePayloadBytesAt(this.store, position))
  }

  timestampMsAt(position: number): number {
    return frameTimestampMsAt(this.store, position)
  }

  /**
   * Appends to `into` the records from `from` (absolute offset) on, up to `end` (exclusive) or the
   * end of this segment, each made by `make`, and stops before the first one that does not check
   * out. Returns the next offset not read.
   */
  readBatch<T, C>(from: number, end: number, verifyChecksum: boolean, make: FrameMaker<T, C>, context: C, into: T[]): number {
    const last = Math.min(end, this.baseOffset + this.count)
    const store = this.store
    let offset = from
    for (; offset < last; offset++) {
      const position = this.checkedPosition(offset - this.baseOffset, verifyChecksum)
      if (position < 0) break
      into.push(make(context, offset, frameTimestampMsAt(store, position), store, position + FRAME_HEADER_BYTES, framePayloadBytesAt(store, position)))
    }
    return offset
  }
}

/**
 * The one frame size of `count` index entries, when every entry sits exactly where a run of frames of
 * that size puts it (entry r at FILE_HEADER_BYTES + r * size, with size - FRAME_HEADER_BYTES payload
 * bytes); else 0. Reads every entry once, when the segment opens (about 1 ms per 10^6 entries).
 */
export function uniformFrameBytes(indexWords: Uint32Array, count: number): number {
  if (count === 0) return 0
  const payloadBytes = indexWordsPayloadBytes(indexWords, 0)
  const frameBytes = FRAME_HEADER_BYTES + payloadBytes
  for (let relativeOffset = 0; relativeOffset < count; relativeOffset++) {
    if (indexWordsPayloadBytes(indexWords, relativeOffset) !== payloadBytes) return 0
    if (indexWordsPosition(indexWords, relativeOffset) !== FILE_HEADER_BYTES + relativeOffset * frameBytes) return 0
  }
  return frameBytes
}
