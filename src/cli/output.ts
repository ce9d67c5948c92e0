/**
 * How `seglog` prints: where output goes (`CliIo`), aligned tables, numbers, timestamps, byte
 * previews, one-JSON-object-per-line records, and the progress counter.
 *
 * Pure formatting, no file access. Progress goes to stderr only when stderr is a terminal: a
 * pipe or a log file never receives `\r` counters.
 */

/** A place to write text: process.stdout / process.stderr, or a collecting stub in tests. */
export interface OutputStream {
  write(text: string): unknown
  isTTY?: boolean
}

export interface CliIo {
  stdout: OutputStream
  stderr: OutputStream
  /**
   * For commands that run until interrupted (`tail --follow`): a signal that aborts when the user
   * interrupts. main.ts installs its SIGINT handler only then, so every other command still dies at
   * once on Ctrl-C (a handler could not run during their synchronous scans anyway).
   */
  interrupt?: () => AbortSignal
}

/** 12345 → "12,345". */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US')
}

export function formatTimestamp(timestampMs: number): string {
  const date = new Date(timestampMs)
  return Number.isNaN(date.getTime()) ? `${timestampMs}ms` : date.toISOString()
}

/** Rows of cells as columns: text columns left-aligned, numeric ones (numbers, '-' for none) right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly (string | number)[])[], indent = '  '): string {
  const cells = [header, ...rows.map((row) => row.map((cell) => (typeof cell === 'number' ? formatCount(cell) : cell)))]
  const isNumeric = (cell: string | number | undefined): boolean => typeof cell === 'number' || cell === '-'
  const numeric = header.map((_, column) => rows.some((row) => typeof row[column] === 'number') && rows.every((row) => isNumeric(row[column])))
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)))
  const lines = cells.map((row) =>
    row
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd(),
  )
  return lines.map((line) => indent + line).join('\n') + '\n'
}

const TEXT_PREVIEW_CHARS = 1000
const HEX_PREVIEW_BYTES = 64
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The bytes as text if they are valid UTF-8 without control characters (tab and newlines allowed). */
export function printableText(bytes: Uint8Array): string | undefined {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return undefined
  }
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? undefined : text
}

/** A one-line preview: quoted text when printable, else `hex:` of the first bytes. */
export function previewBytes(bytes: Uint8Array): string {
  const text = printableText(bytes)
  if (text !== undefined) {
    const shown = text.length > TEXT_PREVIEW_CHARS ? text.slice(0, TEXT_PREVIEW_CHARS) : text
    return JSON.stringify(shown) + (shown.length < text.length ? `…(${formatCount(bytes.length)} bytes)` : '')
  }
  const shown = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, HEX_PREVIEW_BYTES))
  return `hex:${shown.toString('hex')}` + (bytes.length > HEX_PREVIEW_BYTES ? `…(${formatCount(bytes.length)} bytes)` : '')
}

/** Bytes in JSON output: the whole text when printable, else `{ "base64": … }`. */
export type JsonBytes = string | { base64: string }

export function jsonBytes(bytes: Uint8Array): JsonBytes {
  const text = printableText(bytes)
  return text ?? { base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64') }
}

/** A record as `dump` and `tail` print it; `partition`, `key` and `headers` only for topics. */
export interface PrintableRecord {
  partition?: number
  offset: number
  timestampMs: number
  /** The record's stored bytes (a topic record's whole envelope); default: the value's length. */
  size?: number
  value: Uint8Array
  key?: Uint8Array | null
  headers?: Record<string, Uint8Array>
}

export function formatRecordLine(record: PrintableRecord): string {
  const parts: string[] = []
  if (record.partition !== undefined) parts.push(`partition=${record.partition}`)
  parts.push(`offset=${record.offset}`, `timestamp=${formatTimestamp(record.timestampMs)}`, `size=${record.size ?? record.value.length}`)
  if (record.key !== undefined) parts.push(`key=${record.key === null ? 'null' : previewBytes(record.key)}`)
  if (record.headers !== undefined && Object.keys(record.headers).length > 0) {
    const headers = Object.entries(record.headers).map(([name, value]) => `${JSON.stringify(name)}:${previewBytes(value)}`)
    parts.push(`headers={${headers.join(',')}}`)
  }
  parts.push(`value=${previewBytes(record.value)}`)
  return parts.join(' ') + '\n'
}

export function formatRecordJson(record: PrintableRecord): string {
  const document: Record<string, unknown> = {}
  if (record.partition !== undefined) document.partition = record.partition
  document.offset = record.offset
  document.timestamp = formatTimestamp(record.timestampMs)
  document.timestampMs = record.timestampMs
  document.size = record.size ?? record.value.length
  if (record.key !== undefined) document.key = record.key === null ? null : jsonBytes(record.key)
  if (record.headers !== undefined) {
    const headers: Record<string, JsonBytes> = {}
    for (const [name, value] of Object.entries(record.headers)) {
      Object.defineProperty(headers, name, { value: jsonBytes(value), enumerable: true, writable: true, configurable: true })
    }
    document.headers = headers
  }
  document.value = jsonBytes(record.value)
  return JSON.stringify(document) + '\n'
}

const PROGRESS_INTERVAL_MS = 100

/** A `\r` counter on a terminal's stderr; silent everywhere else. */
export class Progress {
  private lastShownMs = 0
  private shown = false

  constructor(
    private readonly stream: OutputStream,
    private readonly label: string,
  ) {}

  update(done: number, unit: string): void {
    if (this.stream.isTTY !== true) return
    const now = Date.now()
    if (now - this.lastShownMs < PROGRESS_INTERVAL_MS) return
    this.lastShownMs = now
    this.shown = true
    this.stream.write(`\r${this.label}: ${formatCount(done)} ${unit}\u001b[K`)
  }

  /** Clears the counter's line, so what follows starts on a clean line. */
  done(): void {
    if (this.shown) this.stream.write('\r\u001b[K')
    this.shown = false
  }
}
