/**
 * Access control: bearer tokens map to roles, roles to permissions (`produce`, `consume`,
 * `admin`) per topic pattern. Deny by default: no token or an unknown one is 401, a known token
 * without the permission is 403.
 *
 * Tokens are kept only as SHA-256 digests (the auth file may hold either the token or
 * `sha256:<hex>`), and a presented token's digest is compared with every known digest by
 * `timingSafeEqual`, without stopping at a match, so timing says nothing about any token. Tokens
 * are never logged and never appear in errors.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs'
import { LogError, ioError } from '../errors.js'
import { HttpError } from './errors.js'

export const PERMISSIONS = ['produce', 'consume', 'admin'] as const
export type Permission = (typeof PERMISSIONS)[number]

/** The auth file's shape (docs/http.md). */
export interface AuthConfig {
  /** token (or `sha256:<hex digest of the token>`) → role */
  tokens: Record<string, string>
  /** role → grants; a grant's `topics` is a pattern where `*` matches any characters */
  roles: Record<string, { topics: string; allow: Permission[] }[]>
}

interface Grant {
  pattern: RegExp
  allow: ReadonlySet<Permission>
}

/** Who sent a request: a role, and an id (a digest prefix, never the token) that owns sessions. */
export interface Principal {
  readonly role: string
  readonly id: string
  can(permission: Permission, topic: string): boolean
}

const SHA256_PREFIX = 'sha256:'

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** A topic pattern (`*` = any characters) as an anchored RegExp. */
export function topicPattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`)
}

export class AccessControl {
  private constructor(
    private readonly digests: { digest: Buffer; role: string }[],
    private readonly roles: ReadonlyMap<string, Grant[]> | undefined,
  ) {}

  /** No access control at all (every request may do everything): only for loopback use. */
  static none(): AccessControl {
    return new AccessControl([], undefined)
  }

  /** Checks an auth config (INVALID_ARGUMENT naming what is wrong). */
  static fromConfig(config: unknown): AccessControl {
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new LogError('INVALID_ARGUMENT', 'the auth config must be an object { tokens, roles }')
    const { tokens, roles } = config as Record<string, unknown>
    if (tokens === null || typeof tokens !== 'object' || Array.isArray(tokens)) throw new LogError('INVALID_ARGUMENT', 'auth: tokens must be an object { "<token>": "<role>" }')
    if (roles === null || typeof roles !== 'object' || Array.isArray(roles)) throw new LogError('INVALID_ARGUMENT', 'auth: roles must be an object { "<role>": [grants] }')
    const grants = new Map<string, Grant[]>()
    for (const [role, list] of Object.entries(roles as Record<string, unknown>)) grants.set(role, checkGrants(role, list))
    const digests: { digest: Buffer; role: string }[] = []
    let n = 0
    for (const [token, role] of Object.entries(tokens as Record<string, unknown>)) {
      n++
      if (typeof role !== 'string' || !grants.has(role)) throw new LogError('INVALID_ARGUMENT', `auth: token #${n} names an unknown role ${JSON.stringify(role)}`)
      digests.push({ digest: tokenDigest(token, n), role })
    }
    return new AccessControl(digests, grants)
  }

  /** Reads and checks an auth file (JSON). */
  static fromFile(file: string): AccessControl {
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (error) {
      throw ioError('could not read the auth file', error, file)
    }
    let config: unknown
    try {
      config = JSON.parse(text)
    } catch (error) {
      throw new LogError('INVALID_ARGUMENT', `the auth file is not valid JSON (${(error as Error).message})`, { path: file })
    }
    return AccessControl.fromConfig(config)
  }

  get enabled(): boolean {
    return this.roles !== undefined
  }

  /** The principal of an `Authorization` header value; UNAUTHORIZED without a known bearer token. */
  authenticate(authorization: string | undefined): Principal {
    if (!this.roles) return OPEN_PRINCIPAL
    const match = authorization === undefined ? null : /^Bearer +(\S+) *$/i.exec(authorization)
    if (!match) throw new HttpError('UNAUTHORIZED', 'a bearer token is required (Authorization: Bearer <token>)')
    const presented = digest(match[1]!)
    let role: string | undefined
    for (const known of this.digests) {
      if (timingSafeEqual(known.digest, presented) && role === undefined) role = known.role
    }
    if (role === undefined) throw new HttpError('UNAUTHORIZED', 'unknown token')
    const grants = this.roles.get(role)!
    return {
      role,
      id: presented.toString('hex').slice(0, 16),
      can: (permission, topic) => grants.some((grant) => grant.allow.has(permission) && grant.pattern.test(topic)),
    }
  }
}

const OPEN_PRINCIPAL: Principal = { role: 'anonymous', id: 'anonymous', can: () => true }

/** FORBIDDEN unless `principal` may `permission` on every topic of `topics`. */
export function requirePermission(principal: Principal, permission: Permission, topics: string | readonly string[]): void {
  for (const topic of typeof topics === 'string' ? [topics] : topics) {
    if (!principal.can(permission, topic)) throw new HttpError('FORBIDDEN', `role '${principal.role}' may not ${permission} on '${topic}'`)
  }
}

function tokenDigest(token: string, n: number): Buffer {
  if (token.startsWith(SHA256_PREFIX)) {
    const hex = token.slice(SHA256_PREFIX.length)
    if (!/^[0-9a-f]{64}$/i.test(hex)) throw new LogError('INVALID_ARGUMENT', `auth: token #${n} starts with sha256: but is not 64 hex digits`)
    return Buffer.from(hex, 'hex')
  }
  if (token.length < 16) throw new LogError('INVALID_ARGUMENT', `auth: token #${n} is shorter than 16 characters`)
  return digest(token)
}

function checkGrants(role: string, list: unknown): Grant[] {
  if (!Array.isArray(list)) throw new LogError('INVALID_ARGUMENT', `auth: role '${role}' must be a list of { topics, allow }`)
  return list.map((grant: unknown, i) => {
    const { topics, allow } = (grant ?? {}) as Record<string, unknown>
    if (typeof topics !== 'string' || topics.length === 0) throw new LogError('INVALID_ARGUMENT', `auth: role '${role}' grant ${i}: topics must be a pattern string`)
    if (!Array.isArray(allow) || !allow.every((p) => (PERMISSIONS as readonly unknown[]).includes(p))) {
      throw new LogError('INVALID_ARGUMENT', `auth: role '${role}' grant ${i}: allow must list some of ${PERMISSIONS.join(', ')}`)
    }
    return { pattern: topicPattern(topics), allow: new Set(allow as Permission[]) }
  })
}
