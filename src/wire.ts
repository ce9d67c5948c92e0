/**
 * The bytes on a connection between a topic's owner and the handles that forward to it (other
 * threads and processes of the same machine; see topic-owner.ts and owner-client.ts).
 *
 * A message is one frame:
 *
 *    0  u32  frameBytes    bytes after this field (4 + headerBytes + body)
 *    4  u32  headerBytes
 *    8  ...  header        UTF-8 JSON object (the operation and its small arguments)
 *       ...  body          raw bytes (a forwarded batch: slots and envelopes, see FORWARDED_SLOT_BYTES), possibly empty
 *
 * Nothing here is stored on disk: the owner checks every envelope it receives before appending it
 * (format.ts `envelopeProblem`), so a confused peer can be refused but can never store damage.
 */
import type { Writable } from 'node:stream'
import { LogError } from './errors.js'

export const WIRE_PREFIX_BYTES = 8
/** Largest frame accepted (a batch is bounded by batchBytesMax, 64 MiB at most, plus headers). */
export const WIRE_FRAME_BYTES_MAX = 80 * 1024 * 1024

export type WireHeader = Record<string, unknown>

export interface WireMessage {
  header: WireHeader
  body: Buffer
}

const EMPTY = Buffer.alloc(0)

/**
 * One frame as buffers to write: the prefix and the header in one buffer, then the body (not copied)
 * if there is one.
 */
export function encodeMessage(header: WireHeader, body: Uint8Array = EMPTY): Buffer[] {
  const json = JSON.stringify(header)
  const headerBytes = Buffer.byteLength(json, 'utf8')
  const head = Buffer.allocUnsafe(WIRE_PREFIX_BYTES + headerBytes)
  head.writeUInt32LE(4 + headerBytes + body.length, 0)
  head.writeUInt32LE(headerBytes, 4)
  head.write(json, WIRE_PREFIX_BYTES, 'utf8')
  return body.length === 0 ? [head] : [head, Buffer.from(body.buffer, body.byteOffset, body.length)]
}

/**
 * Writes one message to `socket` in a single system call: a write each for the prefix, the header and
 * the body cost three (each wakes the peer's thread; on a 2-core machine those wake-ups were a fifth
 * of a forwarded send's time at the owner, measured).
 */
export function writeMessage(socket: Writable, header: WireHeader, body?: Uint8Array): void {
  const buffers = encodeMessage(header, body)
  if (buffers.length === 1) {
    socket.write(buffers[0]!)
    return
  }
  socket.cork()
  for (const buffer of buffers) socket.write(buffer)
  socket.uncork()
}

/**
 * A forwarded send's body (owner-client.ts writes it, topic-owner.ts reads it) holds, before each
 * envelope, a slot of FORWARDED_SLOT_BYTES: u32 envelopeBytes, u32 0, f64 timestampMs (NaN: append
 * time), u64 0. It is as long as a frame header, so the envelopes lie in the body as in the owner's
 * store and a run of them is copied at once.
 */
export const FORWARDED_SLOT_BYTES = 24

/** Writes the slot at `at` of a body seen as `view` (a DataView: Buffer#write* checks cost a fifth of the body, measured). */
export function putForwardedSlot(view: DataView, at: number, envelopeBytes: number, timestampMs: number): void {
  view.setUint32(at, envelopeBytes, true)
  view.setUint32(at + 4, 0, true)
  view.setFloat64(at + 8, timestampMs, true)
  view.setUint32(at + 16, 0, true)
  view.setUint32(at + 20, 0, true)
}

export function forwardedSlotEnvelopeBytes(view: DataView, at: number): number {
  return view.getUint32(at, true)
}

export function forwardedSlotTimestampMs(view: DataView, at: number): number {
  return view.getFloat64(at + 8, true)
}

/** Cuts a byte stream into messages; `push` returns the messages completed by `chunk`. */
export class MessageReader {
  private chunks: Buffer[] = []
  private buffered = 0

  push(chunk: Buffer): WireMessage[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const messages: WireMessage[] = []
    while (this.buffered >= WIRE_PREFIX_BYTES) {
      const head = this.peek(WIRE_PREFIX_BYTES)
      const frameBytes = head.readUInt32LE(0)
      const headerBytes = head.readUInt32LE(4)
      if (frameBytes > WIRE_FRAME_BYTES_MAX || headerBytes + 4 > frameBytes) {
        throw new LogError('INVALID_ARGUMENT', `bad frame on the owner connection (${frameBytes} bytes, header ${headerBytes})`)
      }
      if (this.buffered < 4 + frameBytes) break
      const frame = this.take(4 + frameBytes)
      const header = JSON.parse(frame.toString('utf8', WIRE_PREFIX_BYTES, WIRE_PREFIX_BYTES + headerBytes)) as unknown
      if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new LogError('INVALID_ARGUMENT', 'bad message header on the owner connection')
      messages.push({ header: header as WireHeader, body: frame.subarray(WIRE_PREFIX_BYTES + headerBytes) })
    }
    return messages
  }

  private peek(bytes: number): Buffer {
    if (this.chunks[0]!.length < bytes) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0]!
  }

  private take(bytes: number): Buffer {
    const first = this.chunks[0]!
    let frame: Buffer
    if (first.length >= bytes) {
      frame = first.subarray(0, bytes)
      if (first.length === bytes) this.chunks.shift()
      else this.chunks[0] = first.subarray(bytes)
    } else {
      const all = Buffer.concat(this.chunks)
      frame = all.subarray(0, bytes)
      this.chunks = all.length > bytes ? [all.subarray(bytes)] : []
    }
    this.buffered -= bytes
    return frame
  }
}

/** A LogError as plain data for the wire, and back. */
export function errorToWire(error: unknown): { code: string; message: string } {
  if (error instanceof LogError) return { code: error.code, message: error.message.replace(`${error.code}: `, '') }
  return { code: 'IO_ERROR', message: error instanceof Error ? error.message : String(error) }
}

export function errorFromWire(wire: unknown): LogError {
  const { code, message } = (wire ?? {}) as { code?: string; message?: string }
  return new LogError((code ?? 'IO_ERROR') as LogError['code'], `${message ?? 'unknown error'} (from the topic's owner)`)
}
