/**
 * Job endpoints (MLQ-style): submit to a named queue and get an id, read a job's state and
 * attempts, fetch its result as bytes (`/result.png` picks the content type by extension), and
 * the endpoints of remote workers (join, long poll for jobs, post a result or a failure, leave).
 * Permissions are those of the queue's topic `jobs.<queue>`: `produce` submits, `produce` or
 * `consume` reads states and results, `consume` works, `admin` deletes the queue.
 */
import { LogError } from '../errors.js'
import type { ShareConsumer } from '../share-consumer.js'
import { type Principal, requirePermission } from './auth.js'
import { HttpError } from './errors.js'
import type { JobService } from './job-service.js'
import { type Job, type JobQueue, checkQueueName, queueTopic } from './jobs.js'
import type { HttpLimits } from './limits.js'
import { joinSession, longPoll, memberIdOf } from './members.js'
import { fieldInteger, isJson, onlyFields, parseInteger, readBody, readJsonObject } from './request.js'
import { type Router, sendJson } from './router.js'
import type { SessionTable } from './sessions.js'

const KIND = 'worker'
const ID_MAX = Number.MAX_SAFE_INTEGER
const RESULT_FILE = /^result(?:\.([a-zA-Z0-9]{1,10}))?$/
const CALLBACK_HTTP_HEADER = 'seglog-callback'

/** Content types of result extensions (unknown ones are application/octet-stream). */
export const RESULT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  mp4: 'video/mp4',
  webm: 'video/webm',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  csv: 'text/csv',
  html: 'text/html; charset=utf-8',
  pdf: 'application/pdf',
  bin: 'application/octet-stream',
}

/** A remote worker: its share member and the jobs it holds (id → attempt). */
class RemoteWorker {
  readonly held = new Map<number, number>()
  constructor(readonly member: ShareConsumer) {}
  close(): Promise<void> {
    return this.member.close()
  }
  job(id: number): Pick<Job, 'id' | 'attempt'> {
    const attempt = this.held.get(id)
    if (attempt === undefined) throw new LogError('FENCED', `this worker does not hold job ${id}`)
    this.held.delete(id)
    return { id, attempt }
  }
}

function mayRead(principal: Principal, queue: string): void {
  const topic = queueTopic(queue)
  if (!principal.can('produce', topic) && !principal.can('consume', topic)) requirePermission(principal, 'consume', topic)
}

export function addJobRoutes(router: Router, jobs: JobService, sessions: SessionTable, limits: HttpLimits): void {
  const bytesMax = limits.bodyBytesMax
  const queueOf = (params: Record<string, string>): Promise<JobQueue> => jobs.queue(checkQueueName(params.queue!))
  const jobId = (text: string): number => parseInteger(text, 'job id', 0, ID_MAX)

  router.add('POST', '/queues/:queue/jobs', async ({ req, res, params, principal }) => {
    requirePermission(principal, 'produce', queueTopic(checkQueueName(params.queue!)))
    const { payload, contentType, callback } = await readSubmission(req, bytesMax)
    const queue = await queueOf(params)
    const id = await queue.submit(payload, contentType, callback)
    const base = `/queues/${queue.name}/jobs/${id}`
    sendJson(res, 201, { id, queue: queue.name, state: 'queued', statusUrl: base, resultUrl: `${base}/result` })
  })

  router.add('GET', '/queues/:queue', async ({ res, params, principal }) => {
    mayRead(principal, checkQueueName(params.queue!))
    const queue = await queueOf(params)
    sendJson(res, 200, { queue: queue.name, submitted: queue.submitted, states: queue.table.counts(queue.submitted), options: queue.options })
  })

  router.add('DELETE', '/queues/:queue', async ({ res, params, principal }) => {
    requirePermission(principal, 'admin', queueTopic(checkQueueName(params.queue!)))
    await jobs.deleteQueue(params.queue!)
    res.writeHead(204).end()
  })

  router.add('GET', '/queues/:queue/jobs/:id', async ({ res, params, principal }) => {
    mayRead(principal, checkQueueName(params.queue!))
    sendJson(res, 200, (await queueOf(params)).status(jobId(params.id!)))
  })

  router.add('GET', '/queues/:queue/jobs/:id/:file', async ({ res, params, principal }) => {
    const match = RESULT_FILE.exec(params.file!)
    if (!match) throw new HttpError('NOT_FOUND', `no endpoint .../jobs/:id/${params.file}`)
    mayRead(principal, checkQueueName(params.queue!))
    const { body, contentType } = (await queueOf(params)).result(jobId(params.id!))
    const type = match[1] === undefined ? contentType : (RESULT_TYPES[match[1].toLowerCase()] ?? 'application/octet-stream')
    res.writeHead(200, { 'content-type': type, 'content-length': body.byteLength }).end(body)
  })

  router.add('POST', '/queues/:queue/workers', async ({ req, res, params, principal }) => {
    requirePermission(principal, 'consume', queueTopic(checkQueueName(params.queue!)))
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['memberId'])
    const memberId = memberIdOf(body)
    const queue = await queueOf(params)
    const { created } = await joinSession(sessions, KIND, queue.name, memberId, principal, [queueTopic(queue.name)], async () => new RemoteWorker(await queue.join(memberId)))
    sendJson(res, created ? 201 : 200, { queue: queue.name, memberId })
  })

  router.add('POST', '/queues/:queue/workers/:member/poll', async ({ req, res, params, principal }) => {
    const session = sessions.get<RemoteWorker>(KIND, params.queue!, params.member!, principal)
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['maxJobs', 'timeoutMs'])
    const maxJobs = fieldInteger(body, 'maxJobs', 1, 1, limits.pollRecordsMax)
    const timeoutMs = fieldInteger(body, 'timeoutMs', 0, 0, limits.pollTimeoutMsMax)
    const queue = await queueOf(params)
    const worker = session.member.member
    const taken = await longPoll(sessions, session, res, () => queue.take(worker, maxJobs, timeoutMs), (lost) => worker.release(lost.map((job) => ({ partition: 0, offset: job.id }))))
    for (const job of taken) session.member.held.set(job.id, job.attempt)
    const list = taken.map((job) => ({ id: job.id, attempt: job.attempt, contentType: job.contentType, submittedMs: job.submittedMs, payload: Buffer.from(job.payload).toString('base64') }))
    sendJson(res, 200, { jobs: list })
  })

  router.add('POST', '/queues/:queue/workers/:member/jobs/:id/result', async ({ req, res, params, principal }) => {
    const session = sessions.get<RemoteWorker>(KIND, params.queue!, params.member!, principal)
    const id = jobId(params.id!)
    const result = await readBody(req, bytesMax)
    const queue = await queueOf(params)
    await sessions.using(session, () => queue.complete(session.member.member, session.member.job(id), result, req.headers['content-type'] ?? 'application/octet-stream'))
    res.writeHead(204).end()
  })

  router.add('POST', '/queues/:queue/workers/:member/jobs/:id/failure', async ({ req, res, params, principal }) => {
    const session = sessions.get<RemoteWorker>(KIND, params.queue!, params.member!, principal)
    const id = jobId(params.id!)
    const body = await readJsonObject(req, bytesMax)
    onlyFields(body, ['error', 'retry'])
    if (body.retry !== undefined && typeof body.retry !== 'boolean') throw new LogError('INVALID_ARGUMENT', 'retry must be a boolean')
    const queue = await queueOf(params)
    await sessions.using(session, () => queue.fail(session.member.member, session.member.job(id), String(body.error ?? 'failed'), body.retry !== false))
    res.writeHead(204).end()
  })

  router.add('DELETE', '/queues/:queue/workers/:member', async ({ res, params, principal }) => {
    await sessions.remove(KIND, sessions.get(KIND, params.queue!, params.member!, principal))
    res.writeHead(204).end()
  })
}

/** A submission: JSON `{ msg, callback? }` (msg stored as JSON) or `{ payload (base64), contentType?, callback? }`, or raw bytes. */
async function readSubmission(req: Parameters<typeof readBody>[0], bytesMax: number): Promise<{ payload: Uint8Array; contentType: string; callback: string | undefined }> {
  if (!isJson(req)) {
    const callback = req.headers[CALLBACK_HTTP_HEADER]
    return { payload: await readBody(req, bytesMax), contentType: req.headers['content-type'] ?? 'application/octet-stream', callback: typeof callback === 'string' ? callback : undefined }
  }
  const body = await readJsonObject(req, bytesMax)
  onlyFields(body, ['msg', 'payload', 'contentType', 'callback'])
  if (body.callback !== undefined && typeof body.callback !== 'string') throw new LogError('INVALID_ARGUMENT', 'callback must be a URL string')
  const callback = body.callback as string | undefined
  if ((body.msg === undefined) === (body.payload === undefined)) throw new LogError('INVALID_ARGUMENT', 'a job needs exactly one of msg (any JSON) or payload (base64)')
  if (body.msg !== undefined) return { payload: Buffer.from(JSON.stringify(body.msg), 'utf8'), contentType: 'application/json', callback }
  if (typeof body.payload !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(body.payload)) throw new LogError('INVALID_ARGUMENT', 'payload must be base64')
  if (body.contentType !== undefined && typeof body.contentType !== 'string') throw new LogError('INVALID_ARGUMENT', 'contentType must be a string')
  return { payload: Buffer.from(body.payload, 'base64'), contentType: (body.contentType as string | undefined) ?? 'application/octet-stream', callback }
}
