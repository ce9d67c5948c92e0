/**
 * Which sealed segments are open (file descriptors or maps) right now. Bounded by `openSegmentsMax`
 * and `mappedBytesMax`: opening one more closes the least recently used. Closing a mapped segment
 * only drops the log's reference; views already handed to callers keep their pages alive.
 */
import type { Segment } from './segment.js'

export class SegmentCache {
  private readonly open = new Map<Segment, number>() // segment → mapped bytes
  private clock = 0
  /** The segment of the last touch, when it is in `open`. */
  private lastTouched: Segment | undefined
  private mapped = 0

  constructor(
    private readonly segmentsMax: number,
    private readonly mappedBytesMax: number,
  ) {}

  /** Records a use of `segment`, which the caller has just opened or read. O(1) unless it is new here. */
  touch(segment: Segment): void {
    segment.lastUse = ++this.clock
    // Reads in a row mostly hit one segment: skip the map lookup for the last one touched.
    if (segment === this.lastTouched) return
    if (segment.isActive) return
    if (this.open.has(segment)) {
      this.lastTouched = segment
      return
    }
    const mappedBytes = segment.mappedBytes
    this.open.set(segment, mappedBytes)
    this.lastTouched = segment
    this.mapped += mappedBytes
    this.evict(segment)
  }

  /** Forgets a segment the log is closing or deleting. */
  forget(segment: Segment): void {
    const mappedBytes = this.open.get(segment)
    if (mappedBytes === undefined) return
    if (segment === this.lastTouched) this.lastTouched = undefined
    this.open.delete(segment)
    this.mapped -= mappedBytes
  }

  get mappedBytes(): number {
    return this.mapped
  }

  closeAll(): void {
    for (const segment of this.open.keys()) segment.release()
    this.open.clear()
    this.lastTouched = undefined
    this.mapped = 0
  }

  /** Closes least recently used segments (never `keep`) until within both limits. */
  private evict(keep: Segment): void {
    while (this.open.size > this.segmentsMax || this.mapped > this.mappedBytesMax) {
      let oldest: Segment | undefined
      for (const segment of this.open.keys()) {
        if (segment !== keep && (oldest === undefined || segment.lastUse < oldest.lastUse)) oldest = segment
      }
      if (!oldest) return
      oldest.release()
      this.forget(oldest)
    }
  }
}
