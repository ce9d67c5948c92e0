/**
 * Job callbacks: when a job ends (done or dead), its callback URL gets a POST of the job's status
 * as JSON. Best effort: up to `callbackAttempts` tries (a non-2xx answer or a network error counts
 * as a failed try) with `callbackTimeoutMs` each and a doubling pause between them; nothing is
 * stored about them, so a callback that was in flight when the server stopped is not retried
 * after a restart. Poll the status endpoint when a callback must not be missed.
 *
 * A callback URL must be http(s) and pass `allowCallback` (default: any http(s) URL). Whoever may
 * submit jobs makes the server send requests to the URLs they choose: restrict `allowCallback`
 * when submitters are not trusted.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { LogError } from '../errors.js'

export interface CallbackOptions {
  callbackTimeoutMs?: number
  callbackAttempts?: number
  allowCallback?: (url: URL) => boolean
}

const RETRY_PAUSE_MS = 200

export class CallbackSender {
  private readonly timeoutMs: number
  private readonly attempts: number
  private readonly allow: (url: URL) => boolean
  private readonly stop = new AbortController()
  private readonly inFlight = new Set<Promise<void>>()

  constructor(
    options: CallbackOptions,
    private readonly log: (line: string) => void,
  ) {
    this.timeoutMs = options.callbackTimeoutMs ?? 5_000
    this.attempts = options.callbackAttempts ?? 3
    this.allow = options.allowCallback ?? (() => true)
  }

  /** The callback URL a submission names, checked; INVALID_ARGUMENT if it may not be used. */
  check(text: string): string {
    let url: URL
    try {
      url = new URL(text)
    } catch {
      throw new LogError('INVALID_ARGUMENT', 'callback must be an absolute http(s) URL')
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !this.allow(url)) throw new LogError('INVALID_ARGUMENT', 'callback URL not allowed')
    return url.href
  }

  /** Sends `body` to `url` in the background. */
  send(url: string, body: unknown): void {
    if (this.stop.signal.aborted) return
    const work = this.deliver(url, JSON.stringify(body)).finally(() => this.inFlight.delete(work))
    this.inFlight.add(work)
  }

  /** Waits for the callbacks in flight (they are cut off by the abort). */
  async close(): Promise<void> {
    this.stop.abort()
    await Promise.allSettled([...this.inFlight])
  }

  private async deliver(url: string, text: string): Promise<void> {
    for (let attempt = 1; attempt <= this.attempts && !this.stop.signal.aborted; attempt++) {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: text,
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(this.timeoutMs)]),
        })
        await response.arrayBuffer().catch(() => undefined)
        if (response.ok) return
      } catch {
        // a network error or a timeout: tried again below
      }
      if (attempt < this.attempts) await sleep(RETRY_PAUSE_MS * 2 ** (attempt - 1), undefined, { signal: this.stop.signal }).catch(() => undefined)
    }
    if (!this.stop.signal.aborted) this.log(`job callback to ${new URL(url).origin} failed after ${this.attempts} attempt(s)`)
  }
}
