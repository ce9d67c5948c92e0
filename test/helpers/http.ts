/**
 * HTTP test fixture: a Broker in a fresh temp directory behind a BrokerServer on 127.0.0.1, port 0
 * (never a fixed port), and a small client (`call`) that answers status, headers and the body as
 * JSON or bytes. `close()` stops the server, then the broker.
 */
import http from 'node:http'
import { Broker } from '../../src/broker.js'
import { type BrokerServerOptions, createBrokerServer } from '../../src/http/server.js'
import type { BrokerServer } from '../../src/http/server.js'
import { tempDir } from './temp-dir.js'

export interface Answer {
  status: number
  headers: Headers
  body: Buffer
  json: any
}

export interface Fixture {
  dir: string
  broker: Broker
  server: BrokerServer
  url: string
  call(method: string, path: string, options?: { token?: string; json?: unknown; body?: Buffer | string; headers?: Record<string, string> }): Promise<Answer>
  close(): Promise<void>
}

export async function startFixture(options: Partial<BrokerServerOptions> = {}, dir = tempDir('http')): Promise<Fixture> {
  const broker = await Broker.open(dir)
  const server = createBrokerServer(broker, { auth: 'none', log: () => undefined, ...options })
  const { url } = await server.listen({ host: '127.0.0.1', port: 0 })
  let closed = false
  return {
    dir,
    broker,
    server,
    url,
    call: (method, path, { token, json, body, headers = {} } = {}) => call(url, method, path, { token, json, body, headers }),
    close: async () => {
      if (closed) return
      closed = true
      await server.close()
      await broker.close()
    },
  }
}

export async function call(url: string, method: string, path: string, { token, json, body, headers = {} }: { token?: string; json?: unknown; body?: Buffer | string; headers?: Record<string, string> }): Promise<Answer> {
  const allHeaders: Record<string, string> = { ...headers }
  if (token !== undefined) allHeaders.authorization = `Bearer ${token}`
  let payload: Buffer | string | undefined = body
  if (json !== undefined) {
    payload = JSON.stringify(json)
    allHeaders['content-type'] ??= 'application/json'
  }
  const response = await fetch(url + path, { method, headers: allHeaders, body: payload })
  const bytes = Buffer.from(await response.arrayBuffer())
  let parsed: unknown
  if ((response.headers.get('content-type') ?? '').startsWith('application/json') && bytes.length > 0) parsed = JSON.parse(bytes.toString())
  return { status: response.status, headers: response.headers, body: bytes, json: parsed }
}

export interface SseEvent {
  id?: string
  event?: string
  data?: string
}

/** An SSE client on node:http: collects events and comments; `waitFor(n)` resolves with the first n events. */
export function openSse(url: string, path: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = []
  const comments: string[] = []
  let status = 0
  let ended = false
  let wake: (() => void) | undefined
  let buffered = ''
  const request = http.get(url + path, { headers }, (res) => {
    status = res.statusCode ?? 0
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      buffered += chunk
      let end: number
      while ((end = buffered.indexOf('\n\n')) !== -1) {
        const block = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        const event: SseEvent = {}
        let isEvent = false
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments.push(line.slice(1).trim())
          else if (line.startsWith('id: ')) ((event.id = line.slice(4)), (isEvent = true))
          else if (line.startsWith('event: ')) ((event.event = line.slice(7)), (isEvent = true))
          else if (line.startsWith('data: ')) ((event.data = line.slice(6)), (isEvent = true))
        }
        if (isEvent && event.event !== undefined) events.push(event)
      }
      wake?.()
    })
    res.on('end', () => {
      ended = true
      wake?.()
    })
  })
  request.on('error', () => {
    ended = true
    wake?.()
  })
  const until = async (check: () => boolean, timeoutMs = 10_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`SSE: timed out (${events.length} events, ended ${ended})`)
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, 50)
      })
    }
  }
  return {
    events,
    comments,
    get status() {
      return status
    },
    get ended() {
      return ended
    },
    waitFor: async (count: number) => {
      await until(() => events.length >= count || ended)
      return events.slice(0, count)
    },
    waitEnded: () => until(() => ended),
    until,
    close: () => request.destroy(),
  }
}
