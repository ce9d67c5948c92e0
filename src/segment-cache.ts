/**
 * Which sealed segments are open (file descriptors or maps) right now. Bounded by `openSegmentsMax`
 * and `mappedBytesMax`: opening one more closes the least recently used. Closing a mapped segment
 * only drops the log's reference; views already handed to callers keep their pages alive.
 */
import type { Segment } from './segment.js'

export class SegmentCache {
  private readonly open = new Map<Segment, number>() // segment → mapped bytes, in use order
  private mapped = 0
  private newest: Segment | undefined

  constructor(
    private readonly segmentsMax: number,
    private readonly mappedBytesMax: number,
  ) {}

  /** Records a use of `segment`, which the caller has just opened or read. */
  touch(segment: Segment): void {
    if (segment === this.newest || segment.isActive) return
    const known = this.open.get(segment)
    if (known !== undefined) {
      this.open.delete(segment)
      this.open.set(segment, known)
    } else {
      const mappedBytes = segment.mappedBytes
      this.open.set(segment, mappedBytes)
      this.mapped += mappedBytes
      this.evict(segment)
    }
    this.newest = segment
  }

  /** Forgets a segment the log is closing or deleting. */
  forget(segment: Segment): void {
    const mappedBytes = this.open.get(segment)
    if (mappedBytes === undefined) return
    this.open.delete(segment)
    this.mapped -= mappedBytes
    if (this.newest === segment) this.newest = undefined
  }

  get openCount(): number {
    return this.open.size
  }

  get mappedBytes(): number {
    return this.mapped
  }

  closeAll(): void {
    for (const segment of this.open.keys()) segment.release()
    this.open.clear()
    this.mapped = 0
    this.newest = undefined
  }

  private evict(keep: Segment): void {
    for (const [segment, mappedBytes] of this.open) {
      if (this.open.size <= this.segmentsMax && this.mapped <= this.mappedBytesMax) return
      if (segment === keep) continue
      segment.release()
      this.open.delete(segment)
      this.mapped -= mappedBytes
    }
  }
}
