/**
 * The bytes on a connection between a topic's owner and the handles that forward to it (other
 * threads and processes of the same machine; see topic-owner.ts and owner-client.ts).
 *
 * A message is one frame:
 *
 *    0  u32  frameBytes    bytes after this field (4 + headerBytes + body)
 *    4  u32  headerBytes
 *    8  ...  header        UTF-8 JSON object (the operation and its small arguments)
 *       ...  body          raw bytes (a batch of encoded envelopes), possibly empty
 *
 * Nothing here is stored on disk: the owner checks every envelope it receives before appending it
 * (format.ts `checkEnvelope`), so a confused peer can be refused but can never store damage.
 */
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

/** One frame as buffers to write (the body is not copied). */
export function encodeMessage(header: WireHeader, body: Uint8Array = EMPTY): Buffer[] {
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const prefix = Buffer.allocUnsafe(WIRE_PREFIX_BYTES)
  prefix.writeUInt32LE(4 + json.length + body.length, 0)
  prefix.writeUInt32LE(json.length, 4)
  return body.length === 0 ? [prefix, json] : [prefix, json, Buffer.from(body.buffer, body.byteOffset, body.length)]
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
