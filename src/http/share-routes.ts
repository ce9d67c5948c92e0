/**
 * Share-group endpoints over the broker's share groups (`broker.shareGroup(id, { topics })`):
 * join (a session holding a `BrokerShareConsumer`), long poll, ack, release (with `delayMs`),
 * reject, leave. All need `consume` on every subscribed topic; a `deadLetterTopic` also needs
 * `produce` on it.
 */
import type { BrokerShareConsumer } from '../broker-share-group.js'
import type { Broker } from '../broker.js'
import type { ShareGroupOptions } from '../share-coordinator.js'
import { requirePermission } from './auth.js'
import type { HttpLimits } from './limits.js'
import { checkSubscription, joinSession, longPoll, memberIdOf, pollOptions, recordRefs } from './members.js'
import { parseEncoding, recordToJson } from './records-json.js'
import { fieldInteger, fieldStrings, onlyFields, readJsonObject } from './request.js'
import { type Router, sendJson } from './router.js'
import type { SessionTable } from './sessions.js'
import type { TopicAccess } from './topics.js'

const KIND = 'share'
const SHARE_OPTIONS = ['lockMs', 'maxDeliveries', 'deadLetterTopic', 'autoOffsetReset', 'sessionTimeoutMs', 'inFlightRecordsMax'] as const
const DELAY_MS_MAX = 2 ** 31 - 1

export function addShareRoutes(router: Router, broker: Broker, topics: TopicAccess, sessions: SessionTable, limits: HttpLimits): void {
  const bytesMax = limits.bodyBytesMax
  const member = (params: Record<string, string>, principal: Parameters<SessionTable['get']>[3]) => sessions.get<BrokerShareConsumer>(KIND, params.group!, params.member!, principal)

  router.add('POST', '/share-groups/:group/members', async ({ req, res, params, principal }) => {
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['topics', 'memberId', ...SHARE_OPTIONS])
    const names = [...new Set(fieldStrings(body, 'topics'))].sort()
    checkSubscription(principal, topics, names)
    if (typeof body.deadLetterTopic === 'string') requirePermission(principal, 'produce', body.deadLetterTopic)
    const memberId = memberIdOf(body)
    const options: ShareGroupOptions = {}
    for (const name of SHARE_OPTIONS) if (body[name] !== undefined) (options as Record<string, unknown>)[name] = body[name]
    const { created } = await joinSession(sessions, KIND, params.group!, memberId, principal, names, () => broker.shareGroup(params.group!, { topics: names, ...options }).join({ memberId }))
    sendJson(res, created ? 201 : 200, { group: params.group, memberId, topics: names })
  })

  router.add('POST', '/share-groups/:group/members/:member/poll', async ({ req, res, params, principal }) => {
    const session = member(params, principal)
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['maxRecords', 'timeoutMs', 'encoding'])
    const encoding = parseEncoding(body.encoding)
    const options = pollOptions(body, limits)
    const records = await longPoll(sessions, session, res, () => session.member.poll(options), (lost) => session.member.release(lost))
    sendJson(res, 200, { records: records.map((record) => recordToJson(record, encoding)) })
  })

  const settle = (action: 'ack' | 'release' | 'reject') =>
    router.add('POST', `/share-groups/:group/members/:member/${action}`, async ({ req, res, params, principal }) => {
      const session = member(params, principal)
      const body = await readJsonObject(req, bytesMax)
      onlyFields(body, action === 'release' ? ['records', 'delayMs'] : ['records'])
      const refs = recordRefs(body, limits.recordsPerRequestMax)
      await sessions.using(session, () => {
        if (action === 'ack') return session.member.ack(refs)
        if (action === 'reject') return session.member.reject(refs)
        return session.member.release(refs, { delayMs: fieldInteger(body, 'delayMs', 0, 0, DELAY_MS_MAX) })
      })
      res.writeHead(204).end()
    })
  settle('ack')
  settle('release')
  settle('reject')

  router.add('DELETE', '/share-groups/:group/members/:member', async ({ res, params, principal }) => {
    await sessions.remove(KIND, member(params, principal))
    res.writeHead(204).end()
  })
}
