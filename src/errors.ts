/**
 * Expected failures: bad input, damage found on disk, a closed handle, a held lock, a failed write.
 * Every code is listed (with its meaning and what to do) in docs/errors.md.
 */

export type LogErrorCode =
  | 'INVALID_ARGUMENT'
  | 'OFFSET_OUT_OF_RANGE'
  | 'RECORD_TOO_LARGE'
  | 'CORRUPT_RECORD'
  | 'CORRUPT_INDEX'
  | 'CORRUPT_FILE'
  | 'UNSUPPORTED_VERSION'
  | 'LOG_CLOSED'
  | 'LOG_FAILED'
  | 'LOCKED'
  | 'READ_ONLY'
  | 'MMAP_UNAVAILABLE'
  | 'IO_ERROR'
  | 'UNKNOWN_PARTITION'
  | 'TOPIC_MISMATCH'
  | 'FENCED'
  | 'UNKNOWN_MEMBER'
  | 'DISCONNECTED'

export interface LogErrorDetails {
  offset?: number
  path?: string
  cause?: unknown
}

export class LogError extends Error {
  override name = 'LogError'
  readonly code: LogErrorCode
  readonly offset?: number
  readonly path?: string

  constructor(code: LogErrorCode, message: string, details: LogErrorDetails = {}) {
    super(`${code}: ${message}`, details.cause === undefined ? undefined : { cause: details.cause })
    this.code = code
    if (details.offset !== undefined) this.offset = details.offset
    if (details.path !== undefined) this.path = details.path
  }
}

export function isLogError(error: unknown, code?: LogErrorCode): error is LogError {
  return error instanceof LogError && (code === undefined || error.code === code)
}

/** Wraps an fs failure so that callers always see a `LogError` carrying the original as `cause`. */
export function ioError(message: string, cause: unknown, path?: string): LogError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code
  return new LogError('IO_ERROR', errno ? `${message} (${errno})` : message, { cause, path })
}
