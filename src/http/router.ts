/**
 * Routing: a table of (method, path pattern) → handler. Patterns are literal segments and
 * `:name` parameters (one segment each, percent-decoded). A path that matches with another method
 * is 405, no match is 404. A handler gets the request, the response, the parsed URL, the
 * parameters and the authenticated principal; what it throws is answered by server.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { LogError } from '../errors.js'
import type { Principal } from './auth.js'
import { HttpError } from './errors.js'

export interface Call {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  params: Record<string, string>
  principal: Principal
}

export type Handler = (call: Call) => Promise<void>

interface Route {
  method: string
  segments: string[]
  handler: Handler
}

export class Router {
  private readonly routes: Route[] = []

  add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, segments: pattern.split('/').filter(Boolean), handler })
    return this
  }

  /** The handler and parameters for a request; NOT_FOUND or METHOD_NOT_ALLOWED otherwise. */
  match(method: string, pathname: string): { handler: Handler; params: Record<string, string> } {
    const parts = pathname.split('/').filter(Boolean)
    let pathMatched = false
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts)
      if (!params) continue
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { handler: route.handler, params }
      pathMatched = true
    }
    if (pathMatched) throw new HttpError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}`)
    throw new HttpError('NOT_FOUND', `no endpoint ${pathname}`)
  }
}

function matchSegments(pattern: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i]!
    if (want.startsWith(':')) params[want.slice(1)] = decodeSegment(parts[i]!)
    else if (want !== parts[i]) return undefined
  }
  return params
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new LogError('INVALID_ARGUMENT', `bad percent-encoding in path segment '${segment}'`)
  }
}

/** Answers `body` as JSON. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
}
