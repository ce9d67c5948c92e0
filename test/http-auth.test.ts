/**
 * seglog/http access control: deny by default (no token → 401, unknown token → 401, a token
 * without the permission → 403), permissions per topic pattern, hashed tokens in the auth file,
 * sessions bound to the token that opened them, and tokens never in logs or answers.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AccessControl, type AuthConfig } from '../src/http/auth.js'
import { type Fixture, startFixture } from './helpers/http.js'
import { tempDir } from './helpers/temp-dir.js'

const ADMIN = 'admin-token-0123456789'
const WRITER = 'writer-token-0123456789'
const READER = 'reader-token-0123456789'
const OTHER_READER = 'other-reader-0123456789'

const CONFIG: AuthConfig = {
  tokens: {
    [ADMIN]: 'admin',
    [`sha256:${createHash('sha256').update(WRITER).digest('hex')}`]: 'writer',
    [READER]: 'reader',
    [OTHER_READER]: 'reader',
  },
  roles: {
    admin: [{ topics: '*', allow: ['admin', 'produce', 'consume'] }],
    writer: [{ topics: 'sensor.*', allow: ['produce'] }],
    reader: [{ topics: 'sensor.*', allow: ['consume'] }],
  },
}

let fixture: Fixture | undefined
const logged: string[] = []
afterEach(async () => {
  await fixture?.close()
  fixture = undefined
  logged.length = 0
})

async function start(): Promise<Fixture> {
  fixture = await startFixture({ auth: CONFIG, log: (line) => logged.push(line) })
  for (const name of ['sensor.a', 'billing']) expect((await fixture.call('POST', '/topics', { token: ADMIN, json: { name } })).status).toBe(201)
  return fixture
}

const produce = (f: Fixture, topic: string, token?: string) => f.call('POST', `/topics/${topic}/records`, { token, json: { value: 'eA==' } })
const read = (f: Fixture, topic: string, token?: string) => f.call('GET', `/topics/${topic}/partitions/0/records`, { token })

describe('seglog/http auth matrix', () => {
  it.each([
    ['no token', undefined, 'sensor.a', 401, 401],
    ['an unknown token', 'not-a-known-token-000', 'sensor.a', 401, 401],
    ['the writer on its pattern', WRITER, 'sensor.a', 200, 403],
    ['the reader on its pattern', READER, 'sensor.a', 403, 200],
    ['the writer outside its pattern', WRITER, 'billing', 403, 403],
    ['the reader outside its pattern', READER, 'billing', 403, 403],
    ['the admin anywhere', ADMIN, 'billing', 200, 200],
  ])('%s may produce and consume as the table says', async (_who, token, topic, produceStatus, readStatus) => {
    const f = await start()
    const produced = await produce(f, topic, token)
    expect(produced.status).toBe(produceStatus)
    const consumed = await read(f, topic, token)
    expect(consumed.status).toBe(readStatus)
    for (const answer of [produced, consumed]) {
      if (answer.status === 401) expect(answer.json.error.code).toBe('UNAUTHORIZED')
      if (answer.status === 403) expect(answer.json.error.code).toBe('FORBIDDEN')
    }
  })

  it('lets only admin create and delete topics, and lists only visible topics', async () => {
    const f = await start()
    expect((await f.call('POST', '/topics', { token: WRITER, json: { name: 'sensor.b' } })).status).toBe(403)
    expect((await f.call('DELETE', '/topics/sensor.a', { token: READER })).status).toBe(403)
    expect((await f.call('GET', '/topics', { token: READER })).json).toEqual({ topics: ['sensor.a'] })
    expect((await f.call('GET', '/topics', { token: ADMIN })).json).toEqual({ topics: ['billing', 'sensor.a'] })
    expect((await f.call('GET', '/topics/billing', { token: READER })).status).toBe(403)
    expect((await f.call('DELETE', '/topics/sensor.a', { token: ADMIN })).status).toBe(204)
  })

  it('checks a group subscription against every topic, and binds a session to its token', async () => {
    const f = await start()
    const refused = await f.call('POST', '/groups/g/members', { token: READER, json: { topics: ['sensor.a', 'billing'] } })
    expect(refused.status).toBe(403)
    const joined = await f.call('POST', '/groups/g/members', { token: READER, json: { topics: ['sensor.a'], memberId: 'm1' } })
    expect(joined.status).toBe(201)
    const stolen = await f.call('POST', '/groups/g/members/m1/poll', { token: OTHER_READER, json: {} })
    expect([stolen.status, stolen.json.error.code]).toEqual([403, 'FORBIDDEN'])
    expect((await f.call('POST', '/groups/g/members/m1/poll', { token: READER, json: {} })).status).toBe(200)
  })

  it('applies queue permissions to the job API (jobs.<queue>)', async () => {
    const f = await start()
    expect((await f.call('POST', '/queues/render/jobs', { token: WRITER, json: { msg: 1 } })).status).toBe(403)
    const submitted = await f.call('POST', '/queues/render/jobs', { token: ADMIN, json: { msg: 1 } })
    expect(submitted.status).toBe(201)
    expect((await f.call('GET', `/queues/render/jobs/${submitted.json.id}`, { token: READER })).status).toBe(403)
    expect((await f.call('GET', `/queues/render/jobs/${submitted.json.id}`)).status).toBe(401)
  })

  it('never logs or echoes a token', async () => {
    const f = await start()
    const answers = [await produce(f, 'sensor.a', 'wrong-token-secret-123'), await read(f, 'billing', READER)]
    for (const answer of answers) expect(answer.body.toString()).not.toMatch(/token-secret|reader-token/)
    expect(logged.join('\n')).not.toMatch(/token/)
  })
})

describe('AccessControl', () => {
  it('reads an auth file, and refuses bad ones with INVALID_ARGUMENT', () => {
    const dir = tempDir('auth')
    const file = path.join(dir, 'auth.json')
    fs.writeFileSync(file, JSON.stringify(CONFIG))
    const access = AccessControl.fromFile(file)
    expect(access.authenticate(`Bearer ${READER}`).can('consume', 'sensor.x')).toBe(true)
    expect(access.authenticate(`Bearer ${READER}`).can('consume', 'sensorx')).toBe(false)
    for (const bad of [{ tokens: { [READER]: 'ghost' }, roles: {} }, { tokens: { short: 'r' }, roles: { r: [] } }, { tokens: {}, roles: { r: [{ topics: '*', allow: ['write'] }] } }, []]) {
      expect(() => AccessControl.fromConfig(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
    }
    fs.writeFileSync(file, '{ not json')
    expect(() => AccessControl.fromFile(file)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
  })
})
