/**
 * Reading requests: the body (bounded by `bodyBytesMax`, refused early by Content-Length), JSON
 * bodies, query and path parameters as checked integers. Every malformed input is
 * INVALID_ARGUMENT (400) or an HttpError with its own 4xx code; nothing here throws anything else.
 */
import type { IncomingMessage } from 'node:http'
import { LogError } from '../errors.js'
import { HttpError } from './errors.js'

/** The whole body, at most `bytesMax` bytes (BODY_TOO_LARGE past it; the rest is not read). */
export async function readBody(req: IncomingMessage, bytesMax: number): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > bytesMax) {
    throw new HttpError('BODY_TOO_LARGE', `the body is ${declared} bytes, more than bodyBytesMax (${bytesMax})`)
  }
  // Events rather than `for await`: the async iterator costs a promise per chunk on the hot path.
  const chunks: Buffer[] = []
  let bytes = 0
  await new Promise<void>((resolve, reject) => {
    let settled = false
    const finish = (error?: Error): void => {
      if (settled) return
      settled = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', finish)
      req.off('close', onClose)
      if (error) reject(error)
      else resolve()
    }
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length
      if (bytes <= bytesMax) chunks.push(chunk)
      else {
        req.resume() // drain the rest; the answer says why
        finish(new HttpError('BODY_TOO_LARGE', `the body is more than bodyBytesMax (${bytesMax}) bytes`))
      }
    }
    const onEnd = (): void => finish()
    const onClose = (): void => {
      if (!settled) finish(new LogError('INVALID_ARGUMENT', 'the request was cut off'))
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', finish)
    req.on('close', onClose)
  })
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes)
}

/** True when the request declares a JSON body (or none at all, which counts as `{}`). */
export function isJson(req: IncomingMessage): boolean {
  const type = req.headers['content-type']
  return type === undefined || /^application\/json\b/i.test(type) || /\+json\b/i.test(type)
}

/** The JSON body as an object (an empty body is `{}`); anything else is INVALID_ARGUMENT. */
export async function readJsonObject(req: IncomingMessage, bytesMax: number): Promise<Record<string, unknown>> {
  if (!isJson(req)) throw new HttpError('UNSUPPORTED_MEDIA_TYPE', `expected application/json, got ${req.headers['content-type']}`)
  const body = await readBody(req, bytesMax)
  if (body.length === 0) return {}
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch (error) {
    throw new LogError('INVALID_ARGUMENT', `the body is not valid JSON (${(error as Error).message})`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new LogError('INVALID_ARGUMENT', 'the body must be a JSON object')
  return value as Record<string, unknown>
}

/** `text` as an integer in [min, max]; INVALID_ARGUMENT naming `what` otherwise. */
export function parseInteger(text: string, what: string, min: number, max: number): number {
  const value = /^-?\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new LogError('INVALID_ARGUMENT', `${what} must be an integer in [${min}, ${max}], got '${text}'`)
  return value
}

/** A query parameter as an integer, or `fallback` when absent. */
export function queryInteger(url: URL, name: string, fallback: number | undefined, min: number, max: number): number | undefined {
  const text = url.searchParams.get(name)
  return text === null ? fallback : parseInteger(text, name, min, max)
}

/** A body field that must be an integer in [min, max] when present. */
export function fieldInteger(body: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = body[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new LogError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`)
  }
  return value
}

/** A body field that must be a non-empty list of strings. */
export function fieldStrings(body: Record<string, unknown>, name: string): string[] {
  const value = body[name]
  if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === 'string')) {
    throw new LogError('INVALID_ARGUMENT', `${name} must be a non-empty list of strings`)
  }
  return value as string[]
}

/** A body field that must be a string when present. */
export function fieldString(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw new LogError('INVALID_ARGUMENT', `${name} must be a non-empty string`)
  return value
}

/** Refuses fields the endpoint does not know (a typo must not be silently ignored). */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const name of Object.keys(body)) {
    if (!allowed.includes(name)) throw new LogError('INVALID_ARGUMENT', `unknown field '${name}' (expected one of ${allowed.join(', ')})`)
  }
}
