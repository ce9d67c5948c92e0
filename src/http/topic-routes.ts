/**
 * Topic endpoints: create, list, describe, delete; produce (JSON single or batch, a binary batch,
 * or one raw record); read a range, read one record raw; follow a partition (SSE). Permissions: `admin`
 * creates and deletes, `produce` produces, `consume` reads and follows; listing shows the topics
 * the caller holds any permission on, describing needs any permission on the topic.
 */
import type { IncomingMessage } from 'node:http'
import { LogError } from '../errors.js'
import type { Partition } from '../partition.js'
import type { ProducerRecord } from '../producer-record.js'
import type { Topic } from '../topic.js'
import { type Principal, requirePermission } from './auth.js'
import { HttpError } from './errors.js'
import type { HttpLimits } from './limits.js'
import { BATCH_CONTENT_TYPE, decodeBatch } from './batch-format.js'
import { offsetRuns, parseEncoding, parseProduceBody, parseRawRecord, recordToJson, sendRawRecord } from './records-json.js'
import { fieldInteger, isJson, onlyFields, parseInteger, queryInteger, readBody, readJsonObject } from './request.js'
import { type Call, type Router, sendJson } from './router.js'
import { type StreamHub, followStart } from './sse.js'
import { type TopicAccess, describeTopic } from './topics.js'

const PARTITIONS_MAX = 10_000
const OFFSET_MAX = Number.MAX_SAFE_INTEGER

function canSee(principal: Principal, topic: string): boolean {
  return principal.can('consume', topic) || principal.can('produce', topic) || principal.can('admin', topic)
}

/** The partition `params.partition` of `topic`, UNKNOWN_PARTITION if it has none such. */
function partitionOf(topic: Topic, text: string): Partition {
  const id = parseInteger(text, 'partition', 0, PARTITIONS_MAX)
  if (id >= topic.partitionCount) throw new LogError('UNKNOWN_PARTITION', `topic '${topic.name}' has ${topic.partitionCount} partition(s), not ${id}`)
  return topic.partition(id)
}

/** OFFSET_OUT_OF_RANGE unless `offset` lies in [startOffset, highWatermark] (the end is a valid start). */
function checkStart(partition: Partition, offset: number): void {
  if (offset < partition.startOffset || offset > partition.highWatermark) {
    throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${partition.startOffset}, ${partition.highWatermark}] of ${partition.topic}/${partition.id}`, { offset })
  }
}

/** A produce request's records: a JSON body, a binary batch (batch-format.ts), or one raw record. */
async function produceRecords(req: IncomingMessage, limits: HttpLimits): Promise<ProducerRecord[]> {
  if (isJson(req)) return parseProduceBody(await readJsonObject(req, limits.bodyBytesMax), limits.recordsPerRequestMax)
  const body = await readBody(req, limits.bodyBytesMax)
  if (isBatch(req)) return decodeBatch(body, limits.recordsPerRequestMax)
  return [parseRawRecord(req, body)]
}

function isBatch(req: IncomingMessage): boolean {
  const type = req.headers['content-type']
  return type !== undefined && type.toLowerCase().startsWith(BATCH_CONTENT_TYPE) && (type.length === BATCH_CONTENT_TYPE.length || /^[\s;]/.test(type.slice(BATCH_CONTENT_TYPE.length)))
}

export function addTopicRoutes(router: Router, topics: TopicAccess, streams: StreamHub, limits: HttpLimits): void {
  const consumable = async (call: Call): Promise<Topic> => {
    requirePermission(call.principal, 'consume', call.params.topic!)
    return topics.open(call.params.topic!)
  }

  router.add('GET', '/topics', async ({ res, principal }) => {
    sendJson(res, 200, { topics: topics.list().filter((name) => canSee(principal, name)) })
  })

  router.add('POST', '/topics', async ({ req, res, principal }) => {
    const body = await readJsonObject(req, limits.bodyBytesMax)
    onlyFields(body, ['name', 'partitions'])
    if (typeof body.name !== 'string') throw new LogError('INVALID_ARGUMENT', 'name must be a topic name')
    requirePermission(principal, 'admin', body.name)
    const partitions = fieldInteger(body, 'partitions', 1, 1, PARTITIONS_MAX)
    const topic = await topics.create(body.name, { partitions })
    sendJson(res, 201, describeTopic(topic))
  })

  router.add('GET', '/topics/:topic', async ({ res, params, principal }) => {
    if (!canSee(principal, params.topic!)) throw new HttpError('FORBIDDEN', `role '${principal.role}' has no permission on '${params.topic}'`)
    sendJson(res, 200, describeTopic(await topics.open(params.topic!)))
  })

  router.add('DELETE', '/topics/:topic', async ({ res, params, principal }) => {
    requirePermission(principal, 'admin', params.topic!)
    await topics.delete(params.topic!)
    res.writeHead(204).end()
  })

  router.add('POST', '/topics/:topic/records', async ({ req, res, params, principal }) => {
    requirePermission(principal, 'produce', params.topic!)
    const topic = await topics.open(params.topic!)
    const records = await produceRecords(req, limits)
    const results = records.length === 1 ? [await topic.send(records[0]!)] : await topic.sendBatch(records)
    sendJson(res, 200, { count: results.length, offsets: offsetRuns(results) })
  })

  router.add('GET', '/topics/:topic/partitions/:partition/records', async (call) => {
    const partition = partitionOf(await consumable(call), call.params.partition!)
    const from = queryInteger(call.url, 'from', partition.startOffset, 0, OFFSET_MAX)!
    const max = queryInteger(call.url, 'max', 100, 1, limits.pollRecordsMax)!
    const encoding = parseEncoding(call.url.searchParams.get('encoding') ?? undefined)
    checkStart(partition, from)
    const end = Math.min(partition.highWatermark, from + max)
    const records = []
    for (let offset = from; offset < end; offset++) records.push(recordToJson(partition.read(offset), encoding))
    sendJson(call.res, 200, { records, nextOffset: end, highWatermark: partition.highWatermark })
  })

  router.add('GET', '/topics/:topic/partitions/:partition/records/:offset', async (call) => {
    const partition = partitionOf(await consumable(call), call.params.partition!)
    const offset = parseInteger(call.params.offset!, 'offset', 0, OFFSET_MAX)
    if (offset >= partition.highWatermark) throw new LogError('OFFSET_OUT_OF_RANGE', `offset ${offset} is not below the high watermark ${partition.highWatermark}`, { offset })
    sendRawRecord(call.res, partition.read(offset))
  })

  router.add('GET', '/topics/:topic/partitions/:partition/follow', async (call) => {
    const partition = partitionOf(await consumable(call), call.params.partition!)
    const from = followStart(call.req.headers['last-event-id'], queryInteger(call.url, 'from', undefined, 0, OFFSET_MAX), partition)
    const encoding = parseEncoding(call.url.searchParams.get('encoding') ?? undefined)
    checkStart(partition, from)
    await streams.follow(call.res, partition, from, encoding)
  })
}
