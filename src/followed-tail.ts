/**
 * FollowedTail: a reader's index of the newest segment, which another handle is appending to.
 *
 * The writer's index file lags its store on purpose (entries are written in chunks), so a reader
 * cannot count records from it. It takes the index file's entries up to the newest one whose frame
 * checks out, then scans the store forward from there, frame by frame with checksums, and keeps
 * scanning from where it stopped on every refresh. Records are visible up to the last frame that
 * ends a batch, so a reader never sees half of an appendBatch.
 */
import fs from 'node:fs'
import { LogError, ioError } from './errors.js'
import {
  FILE_HEADER_BYTES,
  FLAG_BATCH_END,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  decodeIndexEntry,
} from './format.js'
import { Index, closeQuietly } from './offset-index.js'
import { checkedFrameFlags, scanDescriptor } from './recovery.js'

export class FollowedTail {
  private entries = Buffer.alloc(1024 * INDEX_ENTRY_BYTES)
  private framesFound = 0
  private visible = 0
  private nextPosition = FILE_HEADER_BYTES
  private timestampMax = 0

  private constructor(
    readonly storePath: string,
    readonly indexPath: string,
    readonly baseOffset: number,
  ) {}

  /** Builds the reader's index of a segment being appended to; see the module comment. */
  static open(storePath: string, indexPath: string, baseOffset: number): FollowedTail {
    const tail = new FollowedTail(storePath, indexPath, baseOffset)
    tail.loadTrustedPrefix()
    tail.refresh()
    return tail
  }

  /** Records visible to readers: whole, checksummed, up to the last one that ends a batch. */
  get count(): number {
    return this.visible
  }

  /** Scans what the writer appended since the last call; returns the visible record count (0 if the file was cut). */
  refresh(): number {
    withDescriptor(this.storePath, (fd) => {
      const fileBytes = fs.fstatSync(fd).size
      if (fileBytes < this.nextPosition) {
        this.visible = 0 // the writer cut the segment: the caller reloads its whole view
        return
      }
      if (fileBytes === this.nextPosition) return
      const start = { position: this.nextPosition, relativeOffset: this.framesFound, timestampMax: this.timestampMax }
      const scan = scanDescriptor(fd, fileBytes, Infinity, start)
      if (scan.framesFound === 0) return
      this.append(scan.entries)
      const last = decodeIndexEntry(scan.entries, (scan.framesFound - 1) * INDEX_ENTRY_BYTES)
      this.nextPosition = last.position + FRAME_HEADER_BYTES + last.payloadBytes
      this.timestampMax = last.timestampMs
      if (scan.count > 0) this.visible = start.relativeOffset + scan.count
    })
    return this.visible
  }

  /** An index over the visible records (a view: no copy). */
  index(): Index {
    return Index.inMemory(this.indexPath, this.baseOffset, this.entries.subarray(0, this.visible * INDEX_ENTRY_BYTES))
  }

  /** Takes the writer's index entries up to the newest one whose frame is whole and checksummed. */
  private loadTrustedPrefix(): void {
    let fileEntries: Buffer
    try {
      const file = fs.readFileSync(this.indexPath)
      const count = Math.max(0, Math.floor((file.length - FILE_HEADER_BYTES) / INDEX_ENTRY_BYTES))
      fileEntries = file.subarray(FILE_HEADER_BYTES, FILE_HEADER_BYTES + count * INDEX_ENTRY_BYTES)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return // the scan finds everything
      throw ioError('could not read the index of the newest segment', error, this.indexPath)
    }
    withDescriptor(this.storePath, (fd) => {
      const storeBytes = fs.fstatSync(fd).size
      for (let relative = fileEntries.length / INDEX_ENTRY_BYTES - 1; relative >= 0; relative--) {
        const entry = decodeIndexEntry(fileEntries, relative * INDEX_ENTRY_BYTES)
        const flags = checkedFrameFlags(fd, storeBytes, entry.position, entry.payloadBytes, relative)
        if (flags === undefined) continue
        this.append(fileEntries.subarray(0, (relative + 1) * INDEX_ENTRY_BYTES))
        this.nextPosition = entry.position + FRAME_HEADER_BYTES + entry.payloadBytes
        this.timestampMax = entry.timestampMs
        this.visible = this.lastBatchEnd(fd, storeBytes, relative, flags)
        return
      }
    })
  }

  /** The visible count when the trusted prefix ends at `relative`: walk back to a BATCH_END frame. */
  private lastBatchEnd(fd: number, storeBytes: number, relative: number, flags: number): number {
    for (let at = relative; at >= 0; at--) {
      if (at < relative) {
        const entry = decodeIndexEntry(this.entries, at * INDEX_ENTRY_BYTES)
        flags = checkedFrameFlags(fd, storeBytes, entry.position, entry.payloadBytes, at) ?? 0
      }
      if (flags & FLAG_BATCH_END) return at + 1
    }
    return 0
  }

  private append(entries: Buffer): void {
    const used = this.framesFound * INDEX_ENTRY_BYTES
    if (used + entries.length > this.entries.length) {
      const grown = Buffer.alloc(Math.max(this.entries.length * 2, used + entries.length))
      this.entries.copy(grown, 0, 0, used)
      this.entries = grown
    }
    entries.copy(this.entries, used)
    this.framesFound += entries.length / INDEX_ENTRY_BYTES
  }
}

function withDescriptor(path: string, use: (fd: number) => void): void {
  let fd: number
  try {
    fd = fs.openSync(path, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return // deleted or not yet created: nothing new
    throw ioError('could not open the newest segment', error, path)
  }
  try {
    use(fd)
  } catch (error) {
    throw error instanceof LogError ? error : ioError('could not read the newest segment', error, path)
  } finally {
    closeQuietly(fd)
  }
}
