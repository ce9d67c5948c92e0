/**
 * BrokerServer: a `Broker` behind HTTP. `handler` is a plain node `(req, res)` listener that can be
 * mounted in any node server; `listen()` starts a node:http server of its own (127.0.0.1 unless
 * told otherwise). Each request is authenticated first (only `/health` and `/openapi.json` are
 * public), then routed; whatever a handler throws is answered as `{ error: { code, message } }`
 * (errors.ts), so no request can crash the server.
 *
 * `close()` ends every SSE stream and session (long polls answer SHUTTING_DOWN), stops the job
 * workers and callbacks, stops accepting connections and waits for the requests in flight (cut
 * after `closeGraceMs`). It does not close the broker, which belongs to the caller.
 */
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Broker } from '../broker.js'
import { LogError, ioError } from '../errors.js'
import { AccessControl, type AuthConfig } from './auth.js'
import { HttpError, sendError } from './errors.js'
import { addGroupRoutes } from './group-routes.js'
import { addJobRoutes } from './job-routes.js'
import { JobService } from './job-service.js'
import type { JobServiceOptions } from './jobs.js'
import { type HttpLimits, resolveLimits } from './limits.js'
import { openApiDocument } from './openapi.js'
import { Router, sendJson } from './router.js'
import { SessionTable } from './sessions.js'
import { addShareRoutes } from './share-routes.js'
import { StreamHub } from './sse.js'
import { addTopicRoutes } from './topic-routes.js'
import { TopicAccess } from './topics.js'

export interface BrokerServerOptions {
  /** An auth config (docs/http.md), a ready AccessControl, or 'none' (no access control: loopback only). */
  auth: AuthConfig | AccessControl | 'none'
  limits?: Partial<HttpLimits>
  /** Job queues: defaults and callbacks (jobs.ts). */
  jobs?: JobServiceOptions
  /** Where internal errors are reported (never with tokens). Default: console.error. */
  log?: (line: string) => void
  /** How long close() waits for requests in flight before cutting their connections. Default 5,000 ms. */
  closeGraceMs?: number
}

export interface ListenOptions {
  host?: string
  port?: number
}

const PUBLIC_PATHS = new Set(['/health', '/openapi.json'])

export class BrokerServer {
  readonly handler: RequestListener
  readonly limits: HttpLimits
  readonly jobs: JobService
  readonly access: AccessControl
  private readonly router = new Router()
  private readonly streams: StreamHub
  private readonly sessions: SessionTable
  private readonly log: (line: string) => void
  private readonly closeGraceMs: number
  private server: http.Server | undefined
  private closing: Promise<void> | undefined

  constructor(
    readonly broker: Broker,
    options: BrokerServerOptions,
  ) {
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'options must be an object { auth, limits?, jobs? }')
    this.access = accessOf(options.auth)
    this.limits = resolveLimits(options.limits)
    this.log = options.log ?? ((line) => console.error(line))
    this.closeGraceMs = options.closeGraceMs ?? 5_000
    const topics = new TopicAccess(broker)
    this.streams = new StreamHub(this.limits.streamsMax, this.limits.heartbeatMs)
    this.sessions = new SessionTable(this.limits.sessionsMax, this.limits.sessionIdleMs)
    this.jobs = new JobService(topics, options.jobs ?? {}, this.log)
    topics.onDelete((name) => {
      this.streams.endTopic(name)
      void this.sessions.endTopic(name)
    })
    addTopicRoutes(this.router, topics, this.streams, this.limits)
    addGroupRoutes(this.router, broker, topics, this.sessions, this.limits)
    addShareRoutes(this.router, broker, topics, this.sessions, this.limits)
    addJobRoutes(this.router, this.jobs, this.sessions, this.limits)
    this.handler = (req, res) => void this.handle(req, res)
  }

  /** Listens on `host` (default 127.0.0.1) and `port` (default 8080; 0 picks a free one). */
  async listen({ host = '127.0.0.1', port = 8080 }: ListenOptions = {}): Promise<{ host: string; port: number; url: string }> {
    if (this.server) throw new LogError('INVALID_ARGUMENT', 'the server is listening already')
    const server = http.createServer({ maxHeaderSize: this.limits.headerBytesMax, requestTimeout: this.limits.requestTimeoutMs }, this.handler)
    server.keepAliveTimeout = 5_000
    this.server = server
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (error) {
      this.server = undefined
      throw ioError(`could not listen on ${host}:${port}`, error)
    }
    const address = server.address() as AddressInfo
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return { host: address.address, port: address.port, url: `http://${shown}:${address.port}` }
  }

  /** Open SSE streams and sessions, for monitoring and tests. */
  get stats(): { streams: number; sessions: number } {
    return { streams: this.streams.open, sessions: this.sessions.open }
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown()
    return this.closing
  }

  private async shutDown(): Promise<void> {
    this.streams.endAll()
    await this.sessions.closeAll()
    await this.jobs.close()
    const server = this.server
    if (!server) return
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeIdleConnections()
    const grace = setTimeout(() => server.closeAllConnections(), this.closeGraceMs)
    await closed
    clearTimeout(grace)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (this.closing) throw new HttpError('SHUTTING_DOWN', 'the server is closing')
      const url = parseUrl(req.url)
      if (PUBLIC_PATHS.has(url.pathname) && (req.method === 'GET' || req.method === 'HEAD')) {
        sendJson(res, 200, url.pathname === '/health' ? { status: 'ok' } : openApiDocument())
        return
      }
      const principal = this.access.authenticate(req.headers.authorization)
      const { handler, params } = this.router.match(req.method ?? 'GET', url.pathname)
      await handler({ req, res, url, params, principal })
    } catch (error) {
      sendError(res, error, this.log)
    }
  }
}

function parseUrl(text: string | undefined): URL {
  try {
    return new URL(text ?? '/', 'http://localhost')
  } catch {
    throw new LogError('INVALID_ARGUMENT', 'malformed request URL')
  }
}

function accessOf(auth: BrokerServerOptions['auth']): AccessControl {
  if (auth === 'none') return AccessControl.none()
  if (auth instanceof AccessControl) return auth
  if (auth === undefined) throw new LogError('INVALID_ARGUMENT', "auth is required: an auth config, or 'none' for no access control")
  return AccessControl.fromConfig(auth)
}

/** A BrokerServer for `broker`: mount `server.handler`, or call `server.listen()`. */
export function createBrokerServer(broker: Broker, options: BrokerServerOptions): BrokerServer {
  return new BrokerServer(broker, options)
}
