/**
 * The HTTP layer's limits: each has a name with its unit, a default and a checked range, as the
 * log's options do (src/options.ts). A request past a limit is refused with a 4xx before anything
 * is written, so nothing acknowledged is ever lost to a limit.
 */
import { LogError } from '../errors.js'

export interface HttpLimits {
  /** Most bytes in one request body (produce, job submission, job result). */
  bodyBytesMax: number
  /** Most records in one produce request. */
  recordsPerRequestMax: number
  /** Most bytes of request headers (node's `maxHeaderSize`; larger requests get 431). */
  headerBytesMax: number
  /** Most Server-Sent-Events streams open at once. */
  streamsMax: number
  /** Most group and worker sessions open at once. */
  sessionsMax: number
  /** A session not used for this long is closed (its member leaves its group). */
  sessionIdleMs: number
  /** Longest wait a long poll may ask for (`timeoutMs`). */
  pollTimeoutMsMax: number
  /** Most records (or jobs) one poll or read may return. */
  pollRecordsMax: number
  /** Interval of the SSE heartbeat comments. */
  heartbeatMs: number
  /** A request whose headers and body take longer than this to arrive is cut (node's `requestTimeout`). */
  requestTimeoutMs: number
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  bodyBytesMax: 8 * 1024 * 1024,
  recordsPerRequestMax: 10_000,
  headerBytesMax: 16 * 1024,
  streamsMax: 256,
  sessionsMax: 1_024,
  sessionIdleMs: 60_000,
  pollTimeoutMsMax: 30_000,
  pollRecordsMax: 10_000,
  heartbeatMs: 15_000,
  requestTimeoutMs: 60_000,
}

const RANGES: Record<keyof HttpLimits, [number, number]> = {
  bodyBytesMax: [1, 256 * 1024 * 1024],
  recordsPerRequestMax: [1, 1_000_000],
  headerBytesMax: [1024, 1024 * 1024],
  streamsMax: [1, 100_000],
  sessionsMax: [1, 100_000],
  sessionIdleMs: [10, 2 ** 31 - 1],
  pollTimeoutMsMax: [0, 2 ** 31 - 1],
  pollRecordsMax: [1, 1_000_000],
  heartbeatMs: [10, 2 ** 31 - 1],
  requestTimeoutMs: [100, 2 ** 31 - 1],
}

/** The limits with defaults filled in; unknown names and values out of range are INVALID_ARGUMENT. */
export function resolveLimits(limits: Partial<HttpLimits> | undefined): HttpLimits {
  if (limits === undefined) return { ...DEFAULT_HTTP_LIMITS }
  if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) throw new LogError('INVALID_ARGUMENT', 'limits must be an object')
  const resolved = { ...DEFAULT_HTTP_LIMITS }
  for (const [name, value] of Object.entries(limits)) {
    const range = RANGES[name as keyof HttpLimits]
    if (!range) throw new LogError('INVALID_ARGUMENT', `unknown limit '${name}'`)
    if (value === undefined) continue
    if (!Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw new LogError('INVALID_ARGUMENT', `limit ${name} must be an integer in [${range[0]}, ${range[1]}], got ${String(value)}`)
    }
    resolved[name as keyof HttpLimits] = value
  }
  return resolved
}

/** Counts open things (streams, sessions) against a maximum. */
export class Gauge {
  private count = 0
  constructor(readonly max: number) {}

  get open(): number {
    return this.count
  }

  /** Takes one slot, or returns false when all are taken. */
  tryTake(): boolean {
    if (this.count >= this.max) return false
    this.count++
    return true
  }

  give(): void {
    if (this.count > 0) this.count--
  }
}
