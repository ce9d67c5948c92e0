/**
 * A job queue's state, rebuilt from its topics (pure: no I/O). The job ids are the offsets of the
 * submissions topic, so every id below its high watermark exists; a job without events is
 * `queued`. Events (`jobs.<q>.events`) move a job to `running` (with its attempt), `failed` (an
 * attempt failed; it waits for its next one) or `done` (with the offset of its result); a dead
 * letter in `jobs.<q>.dlq` makes it `dead`. `done` is final and the first one wins (a job run twice
 * after a lost acknowledgement keeps its first result); `dead` is final unless the job was done.
 *
 * Replay after a restart turns `running` into `queued`: nobody runs it any more, and the share group
 * delivers it again (its attempt count is kept).
 */

export type JobStateName = 'queued' | 'running' | 'done' | 'failed' | 'dead'

export interface JobEntry {
  state: JobStateName
  attempts: number
  updatedMs: number
  error?: string
  /** Offset of the `done` event in the events topic (the result is its value). */
  resultOffset?: number
  contentType?: string
  resultBytes?: number
}

export type JobEvent =
  | { kind: 'running'; attempt: number; atMs: number }
  | { kind: 'failed'; attempt: number; atMs: number; error: string }
  | { kind: 'done'; attempt: number; atMs: number; resultOffset: number; contentType: string; resultBytes: number }
  | { kind: 'dead'; attempt: number; atMs: number; error: string }

export class JobTable {
  private readonly entries = new Map<number, JobEntry>()

  /** The entry of job `id`; a job with no events yet is queued. */
  get(id: number): JobEntry {
    return this.entries.get(id) ?? { state: 'queued', attempts: 0, updatedMs: 0 }
  }

  isFinal(id: number): boolean {
    const state = this.entries.get(id)?.state
    return state === 'done' || state === 'dead'
  }

  /** Applies one event; returns true when it changed the job (a later `done` after `done` does not). */
  apply(id: number, event: JobEvent): boolean {
    const entry = this.entries.get(id)
    if (entry?.state === 'done') return false
    if (entry?.state === 'dead' && event.kind !== 'done') return false
    const next: JobEntry = { state: event.kind, attempts: Math.max(entry?.attempts ?? 0, event.attempt), updatedMs: event.atMs }
    if (event.kind === 'failed' || event.kind === 'dead') next.error = event.error
    if (event.kind === 'done') {
      next.resultOffset = event.resultOffset
      next.contentType = event.contentType
      next.resultBytes = event.resultBytes
    }
    this.entries.set(id, next)
    return true
  }

  /** After a replay: jobs left running are queued again (the share group redelivers them). */
  requeueRunning(): void {
    for (const entry of this.entries.values()) if (entry.state === 'running') entry.state = 'queued'
  }

  /** How many jobs of [0, submitted) are in each state. */
  counts(submitted: number): Record<JobStateName, number> {
    const counts: Record<JobStateName, number> = { queued: 0, running: 0, done: 0, failed: 0, dead: 0 }
    for (const entry of this.entries.values()) counts[entry.state]++
    counts.queued += submitted - this.entries.size
    return counts
  }
}

/** Backoff before attempt `attempt + 1`: `baseMs × 2^(attempt − 1)`, at most `maxMs`. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}
