/**
 * seglog/http under load and as a command: a bounded load test from a second process (keep-alive
 * connections producing 100-record batches) with no errors and no non-2xx answer, every
 * acknowledged record in the topic afterwards; `seglog serve` started as a process, used over
 * HTTP, and stopped by SIGTERM with a clean exit.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { type Fixture, call, startFixture } from './helpers/http.js'
import { tempDir } from './helpers/temp-dir.js'

const run = promisify(execFile)
const CLIENT = path.join(REPO, 'bench', 'lib', 'http-load-client.mjs')
const CLI = path.join(REPO, 'dist', 'cli', 'main.js')

let fixture: Fixture | undefined
let child: ChildProcess | undefined
afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL')
  child = undefined
  await fixture?.close()
  fixture = undefined
})

describe('seglog/http load', () => {
  it('answers 400 batches of 100 records from 8 connections of another process with no error, and keeps every record', async () => {
    fixture = await startFixture()
    expect((await fixture.call('POST', '/topics', { json: { name: 'load', partitions: 3 } })).status).toBe(201)
    const { stdout } = await run(process.execPath, [CLIENT, `--url=${fixture.url}`, '--topic=load', '--connections=8', '--requests=400', '--batch=100', '--timeLimitMs=30000'], { timeout: 60_000 })
    const report = JSON.parse(stdout)
    expect(report).toMatchObject({ requests: 400, records: 40_000, non2xx: 0, errors: 0 })
    const topic = (await fixture.call('GET', '/topics/load')).json
    expect(topic.partitions.reduce((sum: number, p: { highWatermark: number }) => sum + p.highWatermark, 0)).toBe(40_000)
  })

  it('answers binary batches from 8 raw-socket connections (the bench client) with no error, and keeps every record', async () => {
    fixture = await startFixture()
    expect((await fixture.call('POST', '/topics', { json: { name: 'raw', partitions: 2 } })).status).toBe(201)
    const { stdout } = await run(process.execPath, [CLIENT, `--url=${fixture.url}`, '--topic=raw', '--connections=8', '--requests=200', '--batch=100', '--format=binary', '--transport=raw', '--timeLimitMs=30000'], { timeout: 60_000 })
    expect(JSON.parse(stdout)).toMatchObject({ requests: 200, records: 20_000, non2xx: 0, errors: 0 })
    const topic = (await fixture.call('GET', '/topics/raw')).json
    expect(topic.partitions.reduce((sum: number, p: { highWatermark: number }) => sum + p.highWatermark, 0)).toBe(20_000)
  })
})

/** Starts `seglog serve` and resolves with its URL once it listens. */
function serve(args: string[]): Promise<{ url: string; output: () => string }> {
  child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr!.on('data', (chunk) => (output += chunk))
  return new Promise((resolve, reject) => {
    child!.stdout!.on('data', (chunk) => {
      output += chunk
      const match = /on (http:\/\/\S+),/.exec(output)
      if (match) resolve({ url: match[1]!, output: () => output })
    })
    child!.on('exit', (code) => reject(new Error(`serve exited ${code}: ${output}`)))
  })
}

describe('seglog serve', () => {
  beforeAll(() => ensureBuilt())

  it('is exported as the subpath seglog/http of the built package', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('seglog/http'); console.log(Object.keys(m).sort().join(','))"], { cwd: REPO })
    expect(stdout.trim().split(',')).toEqual(expect.arrayContaining(['AccessControl', 'BrokerServer', 'createBrokerServer', 'PermanentJobError', 'openApiDocument']))
  })

  it('serves a broker directory and stops cleanly on SIGTERM', async () => {
    const dir = tempDir('serve')
    const { url, output } = await serve([dir, '--port', '0', '--sync', 'always'])
    expect((await call(url, 'POST', '/topics', { json: { name: 't' } })).status).toBe(201)
    expect((await call(url, 'POST', '/topics/t/records', { json: { value: 'eA==' } })).json.offsets).toEqual([{ partition: 0, offset: 0, count: 1 }])
    const exited = new Promise<number | null>((resolve) => child!.on('exit', resolve))
    child!.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(output()).toContain('stopped')
    expect(fs.existsSync(path.join(dir, 't', 'topic.json'))).toBe(true)
  })

  it('requires --auth for a non-loopback host, and enforces the auth file', async () => {
    const dir = tempDir('serve-auth')
    const refused = await run(process.execPath, [CLI, 'serve', dir, '--host', '0.0.0.0', '--port', '0']).catch((error: { code: number; stderr: string }) => error)
    expect((refused as { code: number }).code).toBe(2)
    expect((refused as { stderr: string }).stderr).toContain('--auth')
    const { url: first } = await serve([dir, '--port=0'])
    const taken = await run(process.execPath, [CLI, 'serve', tempDir('serve-2'), '--port', new URL(first).port]).catch((error: { code: number; stderr: string }) => error)
    expect((taken as { code: number }).code).toBe(1)
    expect((taken as { stderr: string }).stderr).toContain('IO_ERROR: could not listen')
    child!.kill('SIGTERM')
    const badSync = await run(process.execPath, [CLI, 'serve', dir, '--sync', 'sometimes']).catch((error: { code: number; stderr: string }) => error)
    expect((badSync as { code: number }).code).toBe(2)
    const authFile = path.join(dir, 'auth.json')
    fs.writeFileSync(authFile, JSON.stringify({ tokens: { 'cli-test-token-0123': 'admin' }, roles: { admin: [{ topics: '*', allow: ['admin'] }] } }))
    const { url } = await serve([dir, '--port=0', `--auth=${authFile}`])
    expect((await call(url, 'GET', '/topics', {})).status).toBe(401)
    expect((await call(url, 'GET', '/topics', { token: 'cli-test-token-0123' })).status).toBe(200)
  })
})
