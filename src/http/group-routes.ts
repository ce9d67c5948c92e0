/**
 * Consumer-group endpoints over the broker's groups (`broker.consumerGroup(id, { topics })`):
 * join (a session holding a `BrokerConsumer`), long poll, commit, leave. A member lives in the
 * server; its id names the session in later calls. All of them need `consume` on every topic of
 * the subscription (a list of existing topics; patterns are not offered over HTTP, because a
 * pattern would reach topics the caller may not read).
 */
import type { BrokerConsumer } from '../broker-group.js'
import type { Broker } from '../broker.js'
import type { ConsumerGroupOptions } from '../consumer-group.js'
import type { ConsumedRecord } from '../partition.js'
import type { HttpLimits } from './limits.js'
import { checkSubscription, joinSession, longPoll, memberIdOf, pollOptions, recordRefs } from './members.js'
import { parseEncoding, recordToJson } from './records-json.js'
import { fieldStrings, onlyFields, readJsonObject } from './request.js'
import { type Router, sendJson } from './router.js'
import type { SessionTable } from './sessions.js'
import type { TopicAccess } from './topics.js'

const KIND = 'consumer'
const GROUP_OPTIONS = ['autoOffsetReset', 'assignmentStrategy', 'sessionTimeoutMs'] as const

export function addGroupRoutes(router: Router, broker: Broker, topics: TopicAccess, sessions: SessionTable, limits: HttpLimits): void {
  const bytesMax = limits.bodyBytesMax

  router.add('POST', '/groups/:group/members', async ({ req, res, params, principal }) => {
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['topics', 'memberId', ...GROUP_OPTIONS])
    const names = [...new Set(fieldStrings(body, 'topics'))].sort()
    checkSubscription(principal, topics, names)
    const memberId = memberIdOf(body)
    const options: ConsumerGroupOptions = {}
    for (const name of GROUP_OPTIONS) if (body[name] !== undefined) (options as Record<string, unknown>)[name] = body[name]
    const { session, created } = await joinSession(sessions, KIND, params.group!, memberId, principal, names, () =>
      broker.consumerGroup(params.group!, { topics: names, ...options }).join({ memberId }),
    )
    sendJson(res, created ? 201 : 200, { group: params.group, memberId, assignment: (session.member as BrokerConsumer).assignment })
  })

  /** Moves the member back to the first record of `records` per partition (they never reached the client). */
  const seekBack = async (member: BrokerConsumer, records: readonly ConsumedRecord[]): Promise<void> => {
    const first = new Map<string, ConsumedRecord>()
    for (const record of records) {
      const key = `${record.topic}\u0000${record.partition}`
      if (!first.has(key)) first.set(key, record)
    }
    for (const record of first.values()) member.seek(record.topic, record.partition, record.offset)
  }

  router.add('POST', '/groups/:group/members/:member/poll', async ({ req, res, params, principal }) => {
    const session = sessions.get<BrokerConsumer>(KIND, params.group!, params.member!, principal)
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['maxRecords', 'timeoutMs', 'encoding'])
    const encoding = parseEncoding(body.encoding)
    const options = pollOptions(body, limits)
    const records = await longPoll(sessions, session, res, () => session.member.poll(options), (lost) => seekBack(session.member, lost))
    sendJson(res, 200, { records: records.map((record) => recordToJson(record, encoding)), assignment: session.member.assignment })
  })

  router.add('POST', '/groups/:group/members/:member/commit', async ({ req, res, params, principal }) => {
    const session = sessions.get<BrokerConsumer>(KIND, params.group!, params.member!, principal)
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['records'])
    await sessions.using(session, async () => {
      if (body.records === undefined) await session.member.commit()
      else for (const ref of recordRefs(body, limits.recordsPerRequestMax)) await session.member.commit(ref)
    })
    res.writeHead(204).end()
  })

  router.add('DELETE', '/groups/:group/members/:member', async ({ res, params, principal }) => {
    await sessions.remove(KIND, sessions.get(KIND, params.group!, params.member!, principal))
    res.writeHead(204).end()
  })
}
