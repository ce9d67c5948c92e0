/**
 * Sessions: group members (consumer, share, job workers) that live in the server on behalf of
 * HTTP clients, keyed by (group, member id). A session belongs to the principal that opened it
 * (another token gets FORBIDDEN); one unused for `sessionIdleMs` is closed, so a client that
 * vanished gives its partitions or records back. At most `sessionsMax` are open (one count shared
 * by every kind). Each session has a stop signal that ends its long polls when it closes.
 */
import type { Principal } from './auth.js'
import { HttpError } from './errors.js'
import { Gauge } from './limits.js'
import { LogError } from '../errors.js'

export interface Closable {
  close(): Promise<void>
}

export interface Session<M extends Closable> {
  readonly group: string
  readonly memberId: string
  readonly owner: string
  readonly member: M
  readonly topics: readonly string[]
  readonly stop: AbortController
  lastUsedMs: number
  busy: number
}

export class SessionTable {
  private readonly sessions = new Map<string, Session<Closable>>()
  private readonly gauge: Gauge
  private readonly sweeper: NodeJS.Timeout

  constructor(
    sessionsMax: number,
    private readonly idleMs: number,
  ) {
    this.gauge = new Gauge(sessionsMax)
    this.sweeper = setInterval(() => this.closeIdle(), Math.max(5, Math.floor(idleMs / 4)))
    this.sweeper.unref()
  }

  get open(): number {
    return this.sessions.size
  }

  /** The session of (kind, group, memberId) if `principal` opened it; undefined if there is none. */
  find<M extends Closable>(kind: string, group: string, memberId: string, principal: Principal): Session<M> | undefined {
    const session = this.sessions.get(keyOf(kind, group, memberId))
    if (session && session.owner !== principal.id) throw new HttpError('FORBIDDEN', `member '${memberId}' of '${group}' belongs to another token`)
    return session as Session<M> | undefined
  }

  /** The session, touched; UNKNOWN_MEMBER if it is gone (closed, or idle too long). */
  get<M extends Closable>(kind: string, group: string, memberId: string, principal: Principal): Session<M> {
    const session = this.find<M>(kind, group, memberId, principal)
    if (!session) throw new LogError('UNKNOWN_MEMBER', `no ${kind} member '${memberId}' in '${group}' (it left, or was idle longer than sessionIdleMs)`)
    session.lastUsedMs = Date.now()
    return session
  }

  /** Reserves a slot before a member is created; TOO_MANY_SESSIONS when none is free. */
  reserve(): void {
    if (!this.gauge.tryTake()) throw new HttpError('TOO_MANY_SESSIONS', `${this.gauge.max} sessions are open (sessionsMax)`)
  }

  unreserve(): void {
    this.gauge.give()
  }

  /** Adds a member created under a reserved slot. */
  add<M extends Closable>(kind: string, group: string, memberId: string, principal: Principal, member: M, topics: readonly string[]): Session<M> {
    const session: Session<M> = { group, memberId, owner: principal.id, member, topics, stop: new AbortController(), lastUsedMs: Date.now(), busy: 0 }
    this.sessions.set(keyOf(kind, group, memberId), session)
    return session
  }

  /** Closes the session: its long polls end, its member leaves the group. */
  async remove(kind: string, session: Session<Closable>): Promise<void> {
    const key = keyOf(kind, session.group, session.memberId)
    if (this.sessions.get(key) !== session) return
    this.sessions.delete(key)
    this.gauge.give()
    session.stop.abort()
    await session.member.close().catch(() => undefined)
  }

  /** Runs `work` with the session marked busy (the idle sweep leaves it alone meanwhile). */
  async using<T>(session: Session<Closable>, work: () => Promise<T>): Promise<T> {
    session.busy++
    try {
      return await work()
    } finally {
      session.busy--
      session.lastUsedMs = Date.now()
    }
  }

  /** Closes the sessions subscribed to `topic` (it is being deleted). */
  async endTopic(topic: string): Promise<void> {
    await Promise.all([...this.entries()].filter(([, s]) => s.topics.includes(topic)).map(([kind, s]) => this.remove(kind, s)))
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper)
    await Promise.all([...this.entries()].map(([kind, s]) => this.remove(kind, s)))
  }

  private closeIdle(): void {
    const now = Date.now()
    for (const [kind, session] of this.entries()) {
      if (session.busy === 0 && now - session.lastUsedMs > this.idleMs) void this.remove(kind, session)
    }
  }

  private *entries(): Generator<[string, Session<Closable>]> {
    for (const [key, session] of this.sessions) yield [key.slice(0, key.indexOf('\u0000')), session]
  }
}

function keyOf(kind: string, group: string, memberId: string): string {
  return `${kind}\u0000${group}\u0000${memberId}`
}

/**
 * Races `work` against `signal` (the session closing, or the client going away): the wait ends with
 * SHUTTING_DOWN, and what `work` yields later goes to `orphaned` (to be given back).
 */
export async function untilStopped<T>(signal: AbortSignal, work: Promise<T>, orphaned: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    work.then(orphaned, () => undefined)
    throw new HttpError('SHUTTING_DOWN', 'the session closed')
  }
  let onAbort: (() => void) | undefined
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => {
      work.then(orphaned, () => undefined)
      reject(new HttpError('SHUTTING_DOWN', 'the wait was ended (the session closed, or the client went away)'))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([work, stopped])
  } finally {
    signal.removeEventListener('abort', onAbort!)
    work.catch(() => undefined)
  }
}
