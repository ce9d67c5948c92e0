/**
 * Errors over HTTP: every failure answers `{ error: { code, message } }` with a status chosen by
 * the code. `code` is a LogError code (docs/errors.md) or one of the HTTP layer's own
 * (`HttpErrorCode`, docs/http.md). Anything that is neither (a bug) answers 500 `INTERNAL` with
 * a generic message; the details go to the server's logger, never to the client.
 */
import type { ServerResponse } from 'node:http'
import { LogError, type LogErrorCode } from '../errors.js'

export type HttpErrorCode =
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'UNKNOWN_TOPIC'
  | 'TOPIC_EXISTS'
  | 'UNKNOWN_JOB'
  | 'JOB_NOT_DONE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BODY_TOO_LARGE'
  | 'TOO_MANY_RECORDS'
  | 'TOO_MANY_STREAMS'
  | 'TOO_MANY_SESSIONS'
  | 'SHUTTING_DOWN'
  | 'INTERNAL'

/** A failure the HTTP layer itself detects (auth, routing, limits). */
export class HttpError extends Error {
  override name = 'HttpError'
  constructor(
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message)
  }
}

const STATUS: Record<HttpErrorCode | LogErrorCode, number> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UNKNOWN_TOPIC: 404,
  TOPIC_EXISTS: 409,
  UNKNOWN_JOB: 404,
  JOB_NOT_DONE: 409,
  UNSUPPORTED_MEDIA_TYPE: 415,
  BODY_TOO_LARGE: 413,
  TOO_MANY_RECORDS: 413,
  TOO_MANY_STREAMS: 429,
  TOO_MANY_SESSIONS: 429,
  SHUTTING_DOWN: 503,
  INTERNAL: 500,
  INVALID_ARGUMENT: 400,
  OFFSET_OUT_OF_RANGE: 416,
  RECORD_TOO_LARGE: 413,
  CORRUPT_RECORD: 500,
  CORRUPT_INDEX: 500,
  CORRUPT_FILE: 500,
  UNSUPPORTED_VERSION: 500,
  LOG_CLOSED: 503,
  LOG_FAILED: 500,
  LOCKED: 503,
  READ_ONLY: 503,
  MMAP_UNAVAILABLE: 500,
  IO_ERROR: 500,
  UNKNOWN_PARTITION: 404,
  TOPIC_MISMATCH: 409,
  FENCED: 409,
  UNKNOWN_MEMBER: 404,
  DISCONNECTED: 503,
}

/** The status for an error code (500 for codes the table does not know). */
export function statusFor(code: string): number {
  return STATUS[code as HttpErrorCode] ?? 500
}

export interface ErrorBody {
  error: { code: string; message: string }
}

/** Code, status and client-safe message of any thrown value. */
export function describeError(error: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (error instanceof HttpError || error instanceof LogError) {
    const message = error instanceof LogError ? error.message.replace(`${error.code}: `, '') : error.message
    return { status: statusFor(error.code), body: { error: { code: error.code, message } }, internal: false }
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal server error' } }, internal: true }
}

/** Answers `error` as JSON unless the response has already started (then it is cut off). */
export function sendError(res: ServerResponse, error: unknown, log: (message: string) => void): void {
  const { status, body, internal } = describeError(error)
  if (internal) log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  if (res.headersSent) {
    res.destroy()
    return
  }
  const text = JSON.stringify(body)
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }
  if (status === 503) headers['retry-after'] = 1
  res.writeHead(status, headers).end(text)
}
