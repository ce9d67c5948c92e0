/**
 * The OpenAPI 3.0 description of the HTTP API, served at `GET /openapi.json` and kept in
 * docs/openapi.json (a test checks that the two agree). Built from one table of endpoints so each
 * endpoint is written once: path, method, permission, summary, body and answer schemas.
 */
import { BATCH_CONTENT_TYPE } from './batch-format.js'

type Schema = Record<string, unknown>

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })
const int = { type: 'integer', minimum: 0 }
const str = { type: 'string' }
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false })
const json = (schema: Schema) => ({ 'application/json': { schema } })

const SCHEMAS: Record<string, Schema> = {
  Error: obj({ error: obj({ code: str, message: str }, ['code', 'message']) }, ['error']),
  ProducerRecord: obj({ key: { type: 'string', nullable: true }, value: str, headers: { type: 'object', additionalProperties: str }, partition: int, timestamp: int }),
  ProduceBody: {
    oneOf: [
      obj({ encoding: { enum: ['base64', 'utf8'] }, records: { type: 'array', items: ref('ProducerRecord'), minItems: 1 } }, ['records']),
      { allOf: [ref('ProducerRecord')], description: 'one record, with an optional encoding field' },
    ],
  },
  SendResult: obj({ partition: int, offset: int }),
  Record: obj({ topic: str, partition: int, offset: int, timestamp: int, key: { type: 'string', nullable: true }, value: str, headers: { type: 'object', additionalProperties: str }, deliveryCount: int }),
  Partition: obj({ partition: int, startOffset: int, endOffset: int, highWatermark: int, bytes: int, segments: int }),
  Topic: obj({ name: str, partitions: { type: 'array', items: ref('Partition') } }),
  RecordRef: obj({ topic: str, partition: int, offset: int }, ['topic', 'partition', 'offset']),
  Refs: obj({ records: { type: 'array', items: ref('RecordRef'), minItems: 1 }, delayMs: int }, ['records']),
  Poll: obj({ maxRecords: { type: 'integer', minimum: 1 }, timeoutMs: int, encoding: { enum: ['base64', 'utf8'] } }),
  Records: obj({ records: { type: 'array', items: ref('Record') } }),
  JobStatus: obj({
    id: int,
    queue: str,
    state: { enum: ['queued', 'running', 'done', 'failed', 'dead'] },
    attempts: int,
    submittedMs: int,
    updatedMs: int,
    error: str,
    contentType: str,
    resultBytes: int,
  }),
  Job: obj({ id: int, attempt: int, contentType: str, submittedMs: int, payload: { type: 'string', format: 'byte' } }),
}

interface Endpoint {
  method: 'get' | 'post' | 'delete'
  path: string
  summary: string
  permission: string
  body?: Schema | 'raw'
  ok: [number, Schema | 'raw' | 'sse' | undefined]
  query?: string[]
  /** The body may also be a binary batch (batch-format.ts). */
  batch?: boolean
}

const ENDPOINTS: Endpoint[] = [
  { method: 'get', path: '/topics', summary: 'List the topics the caller holds any permission on', permission: 'any', ok: [200, obj({ topics: { type: 'array', items: str } })] },
  { method: 'post', path: '/topics', summary: 'Create a topic', permission: 'admin', body: obj({ name: str, partitions: { type: 'integer', minimum: 1 } }, ['name']), ok: [201, ref('Topic')] },
  { method: 'get', path: '/topics/{topic}', summary: 'Describe a topic: partitions, offsets, sizes', permission: 'any', ok: [200, ref('Topic')] },
  { method: 'delete', path: '/topics/{topic}', summary: 'Delete a topic and its groups', permission: 'admin', ok: [204, undefined] },
  { method: 'post', path: '/topics/{topic}/records', summary: 'Produce one record or a batch (JSON), a binary batch (application/vnd.seglog.batch, docs/http.md), or one raw record (any other content type; Seglog-Key, Seglog-Partition, Seglog-Timestamp, Seglog-Header-* headers)', permission: 'produce', body: ref('ProduceBody'), batch: true, ok: [200, obj({ offsets: { type: 'array', items: ref('SendResult') } })] },
  { method: 'get', path: '/topics/{topic}/partitions/{partition}/records', summary: 'Read records from an offset', permission: 'consume', query: ['from', 'max', 'encoding'], ok: [200, obj({ records: { type: 'array', items: ref('Record') }, nextOffset: int, highWatermark: int })] },
  { method: 'get', path: '/topics/{topic}/partitions/{partition}/records/{offset}', summary: 'Read one record raw (value as the body, the rest in Seglog-* headers)', permission: 'consume', ok: [200, 'raw'] },
  { method: 'get', path: '/topics/{topic}/partitions/{partition}/follow', summary: 'Follow a partition (Server-Sent Events, id = offset; Last-Event-ID resumes)', permission: 'consume', query: ['from', 'encoding'], ok: [200, 'sse'] },
  { method: 'post', path: '/groups/{group}/members', summary: 'Join a consumer group (a session)', permission: 'consume', body: obj({ topics: { type: 'array', items: str }, memberId: str, autoOffsetReset: { enum: ['earliest', 'latest'] }, assignmentStrategy: { enum: ['range', 'round-robin', 'sticky'] }, sessionTimeoutMs: int }, ['topics']), ok: [201, obj({ group: str, memberId: str, assignment: { type: 'array', items: obj({ topic: str, partition: int }) } })] },
  { method: 'post', path: '/groups/{group}/members/{member}/poll', summary: 'Long poll for records', permission: 'consume', body: ref('Poll'), ok: [200, ref('Records')] },
  { method: 'post', path: '/groups/{group}/members/{member}/commit', summary: 'Commit the consumed positions, or records (offset + 1 each)', permission: 'consume', body: obj({ records: { type: 'array', items: ref('RecordRef') } }), ok: [204, undefined] },
  { method: 'delete', path: '/groups/{group}/members/{member}', summary: 'Leave the consumer group', permission: 'consume', ok: [204, undefined] },
  { method: 'post', path: '/share-groups/{group}/members', summary: 'Join a share group (a session)', permission: 'consume', body: obj({ topics: { type: 'array', items: str }, memberId: str, lockMs: int, maxDeliveries: int, deadLetterTopic: str, autoOffsetReset: { enum: ['earliest', 'latest'] }, sessionTimeoutMs: int, inFlightRecordsMax: int }, ['topics']), ok: [201, obj({ group: str, memberId: str, topics: { type: 'array', items: str } })] },
  { method: 'post', path: '/share-groups/{group}/members/{member}/poll', summary: 'Long poll for records (each carries deliveryCount)', permission: 'consume', body: ref('Poll'), ok: [200, ref('Records')] },
  { method: 'post', path: '/share-groups/{group}/members/{member}/ack', summary: 'Acknowledge records', permission: 'consume', body: ref('Refs'), ok: [204, undefined] },
  { method: 'post', path: '/share-groups/{group}/members/{member}/release', summary: 'Release records (delivered again after delayMs)', permission: 'consume', body: ref('Refs'), ok: [204, undefined] },
  { method: 'post', path: '/share-groups/{group}/members/{member}/reject', summary: 'Reject records (to the dead-letter topic)', permission: 'consume', body: ref('Refs'), ok: [204, undefined] },
  { method: 'delete', path: '/share-groups/{group}/members/{member}', summary: 'Leave the share group', permission: 'consume', ok: [204, undefined] },
  { method: 'post', path: '/queues/{queue}/jobs', summary: 'Submit a job: JSON { msg, callback? } or { payload (base64), contentType?, callback? }, or raw bytes (Seglog-Callback header)', permission: 'produce on jobs.{queue}', body: obj({ msg: {}, payload: { type: 'string', format: 'byte' }, contentType: str, callback: { type: 'string', format: 'uri' } }), ok: [201, obj({ id: int, queue: str, state: str, statusUrl: str, resultUrl: str })] },
  { method: 'get', path: '/queues/{queue}', summary: 'Queue counts by state, and its options', permission: 'produce or consume on jobs.{queue}', ok: [200, obj({ queue: str, submitted: int, states: { type: 'object' }, options: { type: 'object' } })] },
  { method: 'delete', path: '/queues/{queue}', summary: 'Delete the queue: its three topics, jobs, results and dead letters', permission: 'admin on jobs.{queue}', ok: [204, undefined] },
  { method: 'get', path: '/queues/{queue}/jobs/{id}', summary: 'A job: state (queued, running, done, failed, dead) and attempts', permission: 'produce or consume on jobs.{queue}', ok: [200, ref('JobStatus')] },
  { method: 'get', path: '/queues/{queue}/jobs/{id}/{file}', summary: 'The result of a done job: file is result (its stored content type) or result.<ext> (content type by extension)', permission: 'produce or consume on jobs.{queue}', ok: [200, 'raw'] },
  { method: 'post', path: '/queues/{queue}/workers', summary: 'Join as a remote worker (a session)', permission: 'consume on jobs.{queue}', body: obj({ memberId: str }), ok: [201, obj({ queue: str, memberId: str })] },
  { method: 'post', path: '/queues/{queue}/workers/{member}/poll', summary: 'Long poll for jobs', permission: 'consume on jobs.{queue}', body: obj({ maxJobs: { type: 'integer', minimum: 1 }, timeoutMs: int }), ok: [200, obj({ jobs: { type: 'array', items: ref('Job') } })] },
  { method: 'post', path: '/queues/{queue}/workers/{member}/jobs/{id}/result', summary: 'Complete a held job: the body is the result, Content-Type its type', permission: 'consume on jobs.{queue}', body: 'raw', ok: [204, undefined] },
  { method: 'post', path: '/queues/{queue}/workers/{member}/jobs/{id}/failure', summary: 'Fail a held job: retried with backoff unless retry is false (then dead-lettered)', permission: 'consume on jobs.{queue}', body: obj({ error: str, retry: { type: 'boolean' } }), ok: [204, undefined] },
  { method: 'delete', path: '/queues/{queue}/workers/{member}', summary: 'Leave as a worker (held jobs are delivered again)', permission: 'consume on jobs.{queue}', ok: [204, undefined] },
]

function content(kind: Schema | 'raw' | 'sse'): Record<string, unknown> {
  if (kind === 'raw') return { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } }
  if (kind === 'sse') return { 'text/event-stream': { schema: str } }
  return json(kind)
}

function operation(endpoint: Endpoint): Record<string, unknown> {
  const pathParams = [...endpoint.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: str }))
  const queryParams = (endpoint.query ?? []).map((name) => ({ name, in: 'query', required: false, schema: name === 'encoding' ? { enum: ['base64', 'utf8'] } : int }))
  const [status, answer] = endpoint.ok
  const responses: Record<string, unknown> = { [status]: answer === undefined ? { description: 'done' } : { description: 'done', content: content(answer) } }
  for (const code of ['400', '401', '403', '404', '409', '413', '416', '429', '503']) responses[code] = { $ref: '#/components/responses/Error' }
  const op: Record<string, unknown> = { summary: endpoint.summary, description: `Permission: ${endpoint.permission}.`, parameters: [...pathParams, ...queryParams], responses }
  if (endpoint.body) op.requestBody = { required: endpoint.body === 'raw', content: content(endpoint.body) }
  if (endpoint.batch) (op.requestBody as { content: Record<string, unknown> }).content[BATCH_CONTENT_TYPE] = { schema: { type: 'string', format: 'binary', description: "A binary batch: magic 'SLB1', recordCount u32, records (docs/http.md)" } }
  return op
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    '/health': { get: { summary: 'Liveness (no token needed)', security: [], responses: { 200: { description: 'ok', content: json(obj({ status: str })) } } } },
    '/openapi.json': { get: { summary: 'This document (no token needed)', security: [], responses: { 200: { description: 'OpenAPI 3.0 document', content: json({ type: 'object' }) } } } },
  }
  for (const endpoint of ENDPOINTS) (paths[endpoint.path] ??= {})[endpoint.method] = operation(endpoint)
  return {
    openapi: '3.0.3',
    info: { title: 'seglog HTTP broker', version: '0.1.0', description: 'A seglog Broker over HTTP: topics, records, SSE, consumer and share groups, job queues. See docs/http.md.' },
    servers: [{ url: 'http://127.0.0.1:8080' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: SCHEMAS,
      responses: { Error: { description: 'an error with its code (docs/http.md#errors)', content: json(ref('Error')) } },
    },
  }
}
