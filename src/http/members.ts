/**
 * What consumer-group, share-group and job-worker endpoints have in common: joining as a session
 * (the subscribed topics must exist and be consumable by the caller), long polls that a closing
 * session ends, leaving, and record references `{ topic, partition, offset }` in bodies.
 */
import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { LogError } from '../errors.js'
import { type Principal, requirePermission } from './auth.js'
import { HttpError } from './errors.js'
import type { HttpLimits } from './limits.js'
import { fieldInteger } from './request.js'
import { type Closable, type Session, type SessionTable, untilStopped } from './sessions.js'
import type { TopicAccess } from './topics.js'

const MEMBER_ID = /^[a-zA-Z0-9._-]{1,128}$/

export interface RecordRef {
  topic: string
  partition: number
  offset: number
}

/** The member id a join asks for (checked), or a new random one. */
export function memberIdOf(body: Record<string, unknown>): string {
  const id = body.memberId
  if (id === undefined) return randomUUID()
  if (typeof id !== 'string' || !MEMBER_ID.test(id)) throw new LogError('INVALID_ARGUMENT', 'memberId must be 1–128 letters, digits, ., _ or -')
  return id
}

/** FORBIDDEN or UNKNOWN_TOPIC unless the caller may consume every topic and each exists. */
export function checkSubscription(principal: Principal, topics: TopicAccess, names: readonly string[]): void {
  requirePermission(principal, 'consume', names)
  for (const name of names) if (!topics.exists(name)) throw new HttpError('UNKNOWN_TOPIC', `topic '${name}' does not exist`)
}

/**
 * The session (kind, group, memberId): the existing one of this principal, or a new one whose
 * member `create()` makes (under a reserved slot). Resolves with `created` telling which.
 */
export async function joinSession<M extends Closable>(
  sessions: SessionTable,
  kind: string,
  group: string,
  memberId: string,
  principal: Principal,
  topics: readonly string[],
  create: () => Promise<M>,
): Promise<{ session: Session<M>; created: boolean }> {
  const existing = sessions.find<M>(kind, group, memberId, principal)
  if (existing) return { session: existing, created: false }
  sessions.reserve()
  let member: M
  try {
    member = await create()
  } catch (error) {
    sessions.unreserve()
    throw error
  }
  return { session: sessions.add(kind, group, memberId, principal, member, topics), created: true }
}

/** `maxRecords` and `timeoutMs` of a poll body, within the server's limits. */
export function pollOptions(body: Record<string, unknown>, limits: HttpLimits): { maxRecords: number; timeoutMs: number } {
  return {
    maxRecords: fieldInteger(body, 'maxRecords', Math.min(500, limits.pollRecordsMax), 1, limits.pollRecordsMax),
    timeoutMs: fieldInteger(body, 'timeoutMs', 0, 0, limits.pollTimeoutMsMax),
  }
}

/**
 * A long poll on a session: busy meanwhile, ended by the session's stop signal or by the client
 * going away. Records the client will never see are given back (`giveBack`: seek back, release),
 * so a vanished client does not move a member past records it never received.
 */
export async function longPoll<T>(sessions: SessionTable, session: Session<Closable>, res: ServerResponse, poll: () => Promise<T>, giveBack: (value: T) => Promise<unknown>): Promise<T> {
  const gone = new AbortController()
  const onClose = (): void => {
    if (!res.writableEnded) gone.abort()
  }
  res.on('close', onClose)
  const orphaned = (value: T): void => void giveBack(value).catch(() => undefined)
  try {
    const value = await sessions.using(session, () => untilStopped(AbortSignal.any([session.stop.signal, gone.signal]), poll(), orphaned))
    if (gone.signal.aborted) {
      orphaned(value)
      throw new HttpError('SHUTTING_DOWN', 'the client went away')
    }
    return value
  } finally {
    res.off('close', onClose)
  }
}

/** `body.records` as record references (at most `max`). */
export function recordRefs(body: Record<string, unknown>, max: number): RecordRef[] {
  const list = body.records
  if (!Array.isArray(list) || list.length === 0) throw new LogError('INVALID_ARGUMENT', 'records must be a non-empty list of { topic, partition, offset }')
  if (list.length > max) throw new HttpError('TOO_MANY_RECORDS', `${list.length} records in one request, more than recordsPerRequestMax (${max})`)
  return list.map((ref: unknown, i) => {
    const { topic, partition, offset } = (ref ?? {}) as Record<string, unknown>
    if (typeof topic !== 'string' || !Number.isSafeInteger(partition) || !Number.isSafeInteger(offset) || (partition as number) < 0 || (offset as number) < 0) {
      throw new LogError('INVALID_ARGUMENT', `records[${i}] must be { topic, partition, offset }`)
    }
    return { topic, partition: partition as number, offset: offset as number }
  })
}
