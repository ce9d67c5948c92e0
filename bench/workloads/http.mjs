/**
 * HTTP broker workloads (child side): what seglog/http costs on top of the in-process API.
 *
 * - baseline: `Topic.sendBatch` of 100 records (8-byte key, 100 B value, 1 partition, sync 'never')
 *   through a Broker in this process, one batch awaited after the other.
 * - produce: the same records as JSON (base64 key and value; or `format: 'utf8'`, JSON text; or
 *   `format: 'binary'`, application/vnd.seglog.batch) over HTTP to a BrokerServer in this
 *   process, from a load client in a process of its own (bench/lib/http-load-client.mjs: keep-alive
 *   connections, each sending the next batch when its answer came; `transport: 'raw'` writes each
 *   request serialized once on a plain socket, as wrk or autocannon do, `'node'` goes through
 *   node:http's agent). A round is one client run; its
 *   time is the client's own (from the first request to the last answer), so process start-up is not
 *   counted. Latency is per request (send to answer), merged over rounds. info.clientCpuShare is
 *   the client's CPU time over its elapsed time (of the 2 cores it competes for: 1.0 = one core).
 * - floor (diagnostic): the same client against a bare node:http server that only reads the body,
 *   JSON.parses it and answers the same small JSON: what node's HTTP and JSON cost on this machine
 *   with no seglog at all, the ceiling of any HTTP front written on node:http.
 * - SSE: a follower on `/follow` (its own agent and socket) and one `topic.send` at a time in this
 *   process: latency from before the send to the event's arrival, per record.
 */
import { execFile } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Broker } from '../../dist/index.js'
import { createBrokerServer } from '../../dist/http/index.js'
import { runRounds } from '../lib/rounds.mjs'
import { LatencyRecorder } from '../lib/stats.mjs'

const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'http-load-client.mjs')
const run = promisify(execFile)

/** The records the load client sends, as producer records. */
function recordBatch(batch, valueBytes) {
  const value = Buffer.alloc(valueBytes, 0x61)
  return Array.from({ length: batch }, (_, i) => ({ key: Buffer.from(`key-${i}`), value }))
}

async function openTopic(dir) {
  const broker = await Broker.open(dir, { sync: 'never' })
  const topic = await broker.topic('load', { partitions: 1 })
  return { broker, topic }
}

/** Baseline: in-process sendBatch(batch), awaited one after the other. */
export async function httpInProcessSendBatch({ dir, rounds, recordsPerRound, batch, valueBytes }) {
  const { broker, topic } = await openTopic(dir)
  const records = recordBatch(batch, valueBytes)
  const measured = await runRounds({
    name: `in-process sendBatch(${batch})`,
    rounds,
    round: async () => {
      for (let sent = 0; sent < recordsPerRound; sent += batch) await topic.sendBatch(records)
      return { ops: recordsPerRound }
    },
  })
  await broker.close()
  return measured
}

/** HTTP produce of batches (`format`: json, utf8 or binary) from a load client process; rounds timed by the client. */
export async function httpProduce({ dir, rounds, recordsPerRound, batch, valueBytes, connections, format = 'json', transport = 'node' }) {
  const { broker } = await openTopic(dir)
  const server = createBrokerServer(broker, { auth: 'none' })
  const { url } = await server.listen({ host: '127.0.0.1', port: 0 })
  try {
    return await clientRounds({ url, rounds, recordsPerRound, batch, valueBytes, connections, format, transport })
  } finally {
    await server.close()
    await broker.close()
  }
}

/** Diagnostic floor: the load client against node:http + JSON.parse and nothing else. */
export async function httpFloor({ rounds, recordsPerRound, batch, valueBytes, connections, transport = 'node' }) {
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      const { records } = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      const text = JSON.stringify({ count: records.length, offsets: [{ partition: 0, offset: 0, count: records.length }] })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    return await clientRounds({ url: `http://127.0.0.1:${server.address().port}`, rounds, recordsPerRound, batch, valueBytes, connections, transport })
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
}

/** One load-client process per round (plus a warmup round); throughput and latency as the client measured them. */
async function clientRounds({ url, rounds, recordsPerRound, batch, valueBytes, connections, format = 'json', transport }) {
  const latency = new LatencyRecorder()
  const opsPerSec = []
  const roundMs = []
  let clientCpuMs = 0
  let elapsedMs = 0
  let bodyBytes = 0
  for (let round = -1; round < rounds; round++) {
    const args = [CLIENT, `--url=${url}`, '--topic=load', `--connections=${connections}`, `--requests=${recordsPerRound / batch}`, `--batch=${batch}`, `--valueBytes=${valueBytes}`, `--format=${format}`, `--transport=${transport}`, '--timeLimitMs=120000', '--samples']
    const { stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 })
    const report = JSON.parse(stdout)
    if (report.errors !== 0 || report.non2xx !== 0 || report.records !== recordsPerRound) throw new Error(`load client: ${JSON.stringify({ ...report, latenciesUs: undefined })}`)
    if (round < 0) continue // warmup
    opsPerSec.push(report.recordsPerSec)
    roundMs.push(report.elapsedMs)
    clientCpuMs += report.clientCpuMs
    elapsedMs += report.elapsedMs
    bodyBytes = report.bodyBytes
    for (const us of report.latenciesUs) latency.add(us)
  }
  return { opsPerSec, roundMs, opsPerRound: opsPerSec.map(() => recordsPerRound), ...latency.percentiles(), info: { connections, batch, format, transport, bodyBytes, clientProcess: true, clientCpuShare: Number((clientCpuMs / elapsedMs).toFixed(3)) } }
}

/** SSE delivery latency: send one record in-process, wait for its event on the follow stream. */
export async function httpSseLatency({ dir, rounds, eventsPerRound, valueBytes }) {
  const { broker, topic } = await openTopic(dir)
  const server = createBrokerServer(broker, { auth: 'none' })
  const { url } = await server.listen({ host: '127.0.0.1', port: 0 })
  const agent = new http.Agent({ keepAlive: true })
  let waiting
  let received = -1
  let buffered = ''
  const request = http.get(`${url}/topics/load/partitions/0/follow?from=0`, { agent }, (res) => {
    res.setEncoding('utf8')
    res.on('data', (chunk) => {
      buffered += chunk
      for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
        const block = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        const id = /^id: (\d+)$/m.exec(block)
        if (id) received = Number(id[1])
      }
      if (waiting && received >= waiting.offset) waiting.resolve()
    })
  })
  const latency = new LatencyRecorder()
  const record = { key: 'k', value: Buffer.alloc(valueBytes, 0x61) }
  try {
    const measured = await runRounds({
      name: 'SSE delivery',
      rounds,
      round: async (phase) => {
        for (let i = 0; i < eventsPerRound; i++) {
          const started = performance.now()
          const arrived = new Promise((resolve) => (waiting = { offset: topic.partition(0).endOffset, resolve }))
          await topic.send(record)
          await arrived
          if (phase === 'run') latency.add((performance.now() - started) * 1000)
        }
        return { ops: eventsPerRound }
      },
    })
    return { ...measured, ...latency.percentiles() }
  } finally {
    request.destroy()
    agent.destroy()
    await server.close()
    await broker.close()
  }
}
