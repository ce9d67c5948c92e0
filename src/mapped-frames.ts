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
import { FRAME_HEADER_BYTES, INDEX_ENTRY_BYTES, frameInPlaceOk, framePayloadBytesAt, frameTimestampMsAt, indexWordsPayloadBytes, indexWordsPosition } from './format.js'

/** A record as the batch read hands it out (the shape of SegmentedLog's LogRecord). */
export interface FrameRecord {
  offset: number
  timestampMs: number
  value: Uint8Array
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
  ) {}

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
    const position = indexWordsPosition(this.indexWords, relativeOffset)
    const payloadBytes = indexWordsPayloadBytes(this.indexWords, relativeOffset)
    if (!frameInPlaceOk(this.store, this.storeWords, position, relativeOffset, payloadBytes, verifyChecksum)) return -1
    return position
  }

  /** The payload of the checked frame at `position` (a view of the map). */
  payloadAt(position: number): Buffer {
    const start = position + FRAME_HEADER_BYTES
    return this.store.subarray(start, start + framePayloadBytesAt(this.store, position))
  }

  timestampMsAt(position: number): number {
    return frameTimestampMsAt(this.store, position)
  }

  /**
   * Appends to `into` the records from `from` (absolute offset) on, up to `end` (exclusive) or the
   * end of this segment, and stops before the first one that does not check out. Returns the next
   * offset not read.
   */
  readBatch(from: number, end: number, verifyChecksum: boolean, into: FrameRecord[]): number {
    const last = Math.min(end, this.baseOffset + this.count)
    let offset = from
    for (; offset < last; offset++) {
      const position = this.checkedPosition(offset - this.baseOffset, verifyChecksum)
      if (position < 0) break
      into.push({ offset, timestampMs: frameTimestampMsAt(this.store, position), value: this.payloadAt(position) })
    }
    return offset
  }
}
