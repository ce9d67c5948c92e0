#!/usr/bin/env node
/**
 * A bounded HTTP load client for seglog's HTTP broker (used by test/http-load.test.ts and
 * bench/workloads/http.mjs, always in a process of its own): `connections` keep-alive connections
 * each send produce requests of `batch` records (`valueBytes`-byte values) back to back until
 * `requests` requests were answered or `timeLimitMs` passed. `format`: `json` (base64 key and value,
 * the default), `utf8` (JSON with `encoding: 'utf8'`) or `binary` (application/vnd.seglog.batch, built
 * with seglog/http's encodeBatch). The body is built once and reused. `transport`: `node` (node:http's
 * agent and parser, the default) or `raw` (each connection a plain TCP socket writing the request,
 * serialized once, and reading the answer with a minimal HTTP/1.1 response parser: a load generator
 * that leaves most of the 2 cores to the server, as wrk or autocannon do). Prints one JSON line:
 * { requests, records, non2xx, errors, elapsedMs, recordsPerSec, p50Us, p99Us, clientCpuMs }
 * (clientCpuMs: this process's own CPU time while sending, so its share of the cores can be reported).
 *
 * Usage: node http-load-client.mjs --url=http://127.0.0.1:PORT --topic=T [--connections=8]
 *        [--requests=400] [--batch=100] [--valueBytes=100] [--timeLimitMs=30000] [--token=...] [--format=json|utf8|binary]
 *        [--transport=node|raw]
 */
import http from 'node:http'
import net from 'node:net'
import { BATCH_CONTENT_TYPE, encodeBatch } from '../../dist/http/index.js'

const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')).map(([k, ...v]) => [k, v.join('=')]))
const url = new URL(args.url)
const connections = Number(args.connections ?? 8)
const requests = Number(args.requests ?? 400)
const batch = Number(args.batch ?? 100)
const valueBytes = Number(args.valueBytes ?? 100)
const timeLimitMs = Number(args.timeLimitMs ?? 30_000)
const hardStop = setTimeout(() => {
  process.stderr.write('http-load-client: hard time limit reached\n')
  process.exit(3)
}, timeLimitMs + 10_000)

const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
const format = args.format ?? 'json'
const { body, contentType } = requestBody(format)
const headers = { 'content-type': contentType, 'content-length': body.length }
if (args.token) headers.authorization = `Bearer ${args.token}`

/** The one body every request sends, as bytes. */
function requestBody(format) {
  const value = Buffer.alloc(valueBytes, 0x61)
  const keys = Array.from({ length: batch }, (_, i) => Buffer.from(`key-${i}`))
  if (format === 'binary') return { body: encodeBatch(keys.map((key) => ({ key, value }))), contentType: BATCH_CONTENT_TYPE }
  if (format === 'utf8') return { body: Buffer.from(JSON.stringify({ encoding: 'utf8', records: keys.map((key) => ({ key: key.toString('utf8'), value: value.toString('utf8') })) })), contentType: 'application/json' }
  if (format !== 'json') throw new Error(`unknown --format=${format}`)
  return { body: Buffer.from(JSON.stringify({ records: keys.map((key) => ({ key: key.toString('base64'), value: value.toString('base64') })) })), contentType: 'application/json' }
}

/** One request over node:http's agent: resolves to the answer's status and text. */
function produceNode() {
  return new Promise((resolve) => {
    const req = http.request({ agent, host: url.hostname, port: url.port, method: 'POST', path: `/topics/${args.topic}/records`, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode, text }))
    })
    req.on('error', (error) => resolve({ status: 0, text: String(error) }))
    req.end(body)
  })
}

/**
 * A keep-alive connection on a plain socket: `send()` writes the serialized request and resolves to
 * the answer's status and text. Understands what the broker answers (a status line, headers with
 * content-length, a body); anything else fails the request with status 0.
 */
function rawConnection() {
  const head = Object.entries({ host: url.host, ...headers, connection: 'keep-alive' }).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  const request = Buffer.concat([Buffer.from(`POST /topics/${args.topic}/records HTTP/1.1\r\n${head}\r\n`, 'latin1'), body])
  const socket = net.connect({ host: url.hostname, port: Number(url.port) })
  socket.setNoDelay(true)
  let buffered = Buffer.alloc(0)
  let pending
  const fail = (error) => {
    if (pending) pending({ status: 0, text: String(error) })
    pending = undefined
  }
  socket.on('error', fail)
  socket.on('close', () => fail(new Error('connection closed')))
  socket.on('data', (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const headEnd = buffered.indexOf('\r\n\r\n')
    if (headEnd < 0) return
    const headText = buffered.toString('latin1', 0, headEnd)
    const length = /\r\ncontent-length: *(\d+)/i.exec(headText)
    if (!length) return fail(new Error(`answer without content-length: ${headText.slice(0, 200)}`))
    const end = headEnd + 4 + Number(length[1])
    if (buffered.length < end) return
    const status = Number(headText.slice(9, 12))
    const text = buffered.toString('utf8', headEnd + 4, end)
    buffered = buffered.subarray(end)
    const done = pending
    pending = undefined
    done?.({ status, text })
  })
  return {
    send: () => new Promise((resolve) => {
      pending = resolve
      socket.write(request)
    }),
    close: () => socket.destroy(),
  }
}

const transport = args.transport ?? 'node'
if (transport !== 'node' && transport !== 'raw') throw new Error(`unknown --transport=${transport}`)

const latenciesUs = []
let sent = 0
let answered = 0
let non2xx = 0
let errors = 0
let acknowledgedRecords = 0
let firstProblem
const cpuStarted = process.cpuUsage()
const started = performance.now()
const deadline = started + timeLimitMs

async function loop() {
  const connection = transport === 'raw' ? rawConnection() : undefined
  const produce = connection ? connection.send : produceNode
  while (sent < requests && performance.now() < deadline) {
    sent++
    const t0 = performance.now()
    const { status, text } = await produce()
    latenciesUs.push((performance.now() - t0) * 1000)
    answered++
    if (status === 0) errors++
    else if (status < 200 || status > 299) non2xx++
    else acknowledgedRecords += JSON.parse(text).count
    if ((status === 0 || status > 299) && firstProblem === undefined) firstProblem = `${status} ${text.slice(0, 200)}`
  }
  connection?.close()
}

await Promise.all(Array.from({ length: connections }, loop))
const elapsedMs = performance.now() - started
const cpu = process.cpuUsage(cpuStarted)
const clientCpuMs = (cpu.user + cpu.system) / 1000
latenciesUs.sort((a, b) => a - b)
const at = (q) => latenciesUs[Math.min(latenciesUs.length - 1, Math.floor(q * latenciesUs.length))] ?? NaN
clearTimeout(hardStop)
agent.destroy()
process.stdout.write(
  `${JSON.stringify({ requests: answered, records: acknowledgedRecords, non2xx, errors, elapsedMs, recordsPerSec: acknowledgedRecords / (elapsedMs / 1000), p50Us: at(0.5), p99Us: at(0.99), clientCpuMs, bodyBytes: body.length, firstProblem, ...('samples' in args ? { latenciesUs } : {}) })}\n`,
)
