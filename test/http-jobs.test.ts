/**
 * seglog/http job queues (MLQ-style) over loopback: submit and get an id; states queued → running
 * → done, with attempts; results as bytes with a content type by extension; retries with backoff,
 * dead letters after maxAttempts and at once for a PermanentJobError; callbacks to a loopback
 * server; remote workers on the worker endpoints; state rebuilt from the topics after a restart.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { PermanentJobError } from '../src/http/job-worker.js'
import { type Fixture, startFixture } from './helpers/http.js'
import { tempDir } from './helpers/temp-dir.js'

let fixture: Fixture | undefined
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await fixture?.close()
  fixture = undefined
})

const JOBS = { defaults: { maxAttempts: 3, backoffMs: 10, lockMs: 5_000 } }

async function start(dir?: string): Promise<Fixture> {
  fixture = await startFixture({ jobs: JOBS }, dir)
  return fixture
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out; last: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const submit = async (f: Fixture, queue: string, body: unknown) => {
  const answer = await f.call('POST', `/queues/${queue}/jobs`, { json: body })
  expect(answer.status).toBe(201)
  return answer.json.id as number
}
const status = (f: Fixture, queue: string, id: number) => f.call('GET', `/queues/${queue}/jobs/${id}`).then((a) => a.json)
const finished = (s: any): boolean => s.state === 'done' || s.state === 'dead'

/** A loopback server that collects the JSON bodies POSTed to it. */
async function callbackSink(): Promise<{ url: string; bodies: any[] }> {
  const bodies: any[] = []
  const server = http.createServer((req, res) => {
    let text = ''
    req.on('data', (chunk) => (text += chunk))
    req.on('end', () => {
      bodies.push(JSON.parse(text))
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies }
}

describe('seglog/http jobs, in-process workers', () => {
  it('runs a job: id, state and attempts, result as bytes, content type by extension', async () => {
    const f = await start()
    const stop = await f.server.jobs.handle('multiply', (job) => {
      const { arg1, arg2 } = JSON.parse(Buffer.from(job.payload).toString()) as { arg1: number; arg2: number }
      return { body: String(arg1 * arg2), contentType: 'text/plain' }
    })
    cleanups.push(stop)
    const id = await submit(f, 'multiply', { msg: { arg1: 6, arg2: 3 } })
    expect(id).toBe(0)
    const done = await until(() => status(f, 'multiply', id), finished)
    expect(done).toMatchObject({ id, queue: 'multiply', state: 'done', attempts: 1, contentType: 'text/plain', resultBytes: 2 })
    const result = await f.call('GET', `/queues/multiply/jobs/${id}/result`)
    expect([result.status, result.body.toString(), result.headers.get('content-type')]).toEqual([200, '18', 'text/plain'])
    const png = await f.call('GET', `/queues/multiply/jobs/${id}/result.png`)
    expect([png.body.toString(), png.headers.get('content-type')]).toEqual(['18', 'image/png'])
    const queue = await f.call('GET', '/queues/multiply')
    expect(queue.json.states).toMatchObject({ done: 1, queued: 0 })
  })

  it('retries with backoff until success, dead-letters after maxAttempts, and at once on PermanentJobError', async () => {
    const f = await start()
    const seen: [string, number][] = []
    const stop = await f.server.jobs.handle('flaky', (job) => {
      const kind = JSON.parse(Buffer.from(job.payload).toString()) as string
      seen.push([kind, job.attempt])
      if (kind === 'third-time-lucky' && job.attempt < 3) throw new Error('GPU out of memory')
      if (kind === 'poison') throw new Error('model crashed')
      if (kind === 'invalid') throw new PermanentJobError('unknown model')
      return `ok on attempt ${job.attempt}`
    })
    cleanups.push(stop)
    const lucky = await submit(f, 'flaky', { msg: 'third-time-lucky' })
    const poison = await submit(f, 'flaky', { msg: 'poison' })
    const invalid = await submit(f, 'flaky', { msg: 'invalid' })
    const states = await Promise.all([lucky, poison, invalid].map((id) => until(() => status(f, 'flaky', id), finished)))
    expect(states.map((s) => [s.state, s.attempts])).toEqual([
      ['done', 3],
      ['dead', 3],
      ['dead', 1],
    ])
    expect(states[1].error).toBe('model crashed')
    expect(states[2].error).toBe('unknown model')
    expect((await f.call('GET', `/queues/flaky/jobs/${lucky}/result`)).body.toString()).toBe('ok on attempt 3')
    expect(seen.filter(([kind]) => kind === 'poison').map(([, attempt]) => attempt)).toEqual([1, 2, 3])
    const notDone = await f.call('GET', `/queues/flaky/jobs/${poison}/result`)
    expect([notDone.status, notDone.json.error.code]).toEqual([409, 'JOB_NOT_DONE'])
  })

  it('calls the callback URL when a job ends (done and dead)', async () => {
    const f = await start()
    const sink = await callbackSink()
    cleanups.push(await f.server.jobs.handle('hooks', (job) => {
      if (Buffer.from(job.payload).toString() === '"fail"') throw new PermanentJobError('no')
      return 'fine'
    }))
    const good = await submit(f, 'hooks', { msg: 'work', callback: sink.url })
    const bad = await submit(f, 'hooks', { msg: 'fail', callback: sink.url })
    await until(async () => sink.bodies.length, (n) => n >= 2)
    const byId = new Map(sink.bodies.map((body) => [body.id, body]))
    expect(byId.get(good)).toMatchObject({ queue: 'hooks', state: 'done', attempts: 1, resultUrl: `/queues/hooks/jobs/${good}/result` })
    expect(byId.get(bad)).toMatchObject({ state: 'dead', attempts: 1, error: 'no' })
    const refused = await f.call('POST', '/queues/hooks/jobs', { json: { msg: 1, callback: 'file:///etc/passwd' } })
    expect([refused.status, refused.json.error.code]).toEqual([400, 'INVALID_ARGUMENT'])
  })
})

describe('seglog/http jobs, remote workers', () => {
  it('joins, long-polls for jobs (woken by a submission), posts a result and a failure', async () => {
    const f = await start()
    expect((await f.call('POST', '/queues/render/workers', { json: { memberId: 'gpu-1' } })).status).toBe(201)
    const waiting = f.call('POST', '/queues/render/workers/gpu-1/poll', { json: { timeoutMs: 10_000 } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const id = await f.call('POST', '/queues/render/jobs', { body: Buffer.from([1, 2, 3]), headers: { 'content-type': 'application/x-scene' } }).then((a) => a.json.id)
    const [job] = (await waiting).json.jobs
    expect(job).toMatchObject({ id, attempt: 1, contentType: 'application/x-scene', payload: Buffer.from([1, 2, 3]).toString('base64') })
    expect((await status(f, 'render', id)).state).toBe('running')
    const image = Buffer.from('\x89PNG fake', 'latin1')
    expect((await f.call('POST', `/queues/render/workers/gpu-1/jobs/${id}/result`, { body: image, headers: { 'content-type': 'image/png' } })).status).toBe(204)
    const result = await f.call('GET', `/queues/render/jobs/${id}/result`)
    expect([result.headers.get('content-type'), result.body.equals(image)]).toEqual(['image/png', true])
    const again = await f.call('POST', `/queues/render/workers/gpu-1/jobs/${id}/result`, { body: image })
    expect([again.status, again.json.error.code]).toEqual([409, 'FENCED'])

    const second = await submit(f, 'render', { payload: Buffer.from('x').toString('base64') })
    const [held] = (await f.call('POST', '/queues/render/workers/gpu-1/poll', { json: { timeoutMs: 5_000 } })).json.jobs
    expect(held.id).toBe(second)
    expect((await f.call('POST', `/queues/render/workers/gpu-1/jobs/${second}/failure`, { json: { error: 'bad scene', retry: false } })).status).toBe(204)
    const dead = await until(() => status(f, 'render', second), finished)
    expect(dead).toMatchObject({ state: 'dead', attempts: 1, error: 'bad scene' })
    expect((await f.call('DELETE', '/queues/render/workers/gpu-1')).status).toBe(204)
  })

  it.each([
    ['GET', '/queues/render/jobs/7', undefined, 404, 'UNKNOWN_JOB'],
    ['GET', '/queues/render/jobs/x', undefined, 400, 'INVALID_ARGUMENT'],
    ['GET', '/queues/bad.name/jobs/0', undefined, 400, 'INVALID_ARGUMENT'],
    ['GET', '/queues/render/jobs/0/output.png', undefined, 404, 'NOT_FOUND'],
    ['POST', '/queues/render/jobs', { msg: 1, payload: 'eA==' }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/queues/render/jobs', { nothing: true }, 400, 'INVALID_ARGUMENT'],
  ])('%s %s answers %i %s', async (method, path, json, code, errorCode) => {
    const f = await start()
    const answer = await f.call(method, path, json === undefined ? {} : { json })
    expect([answer.status, answer.json.error.code]).toEqual([code, errorCode])
  })
})

describe('seglog/http jobs and topic deletion', () => {
  it('deletes a queue with its topics; a new queue of that name starts empty', async () => {
    const f = await start()
    const stop = await f.server.jobs.handle('old', () => 'result')
    const id = await submit(f, 'old', { msg: 1 })
    await until(() => status(f, 'old', id), finished)
    await stop()
    expect((await f.call('DELETE', '/queues/old')).status).toBe(204)
    expect((await f.call('GET', '/topics')).json.topics.filter((name: string) => name.startsWith('jobs.old'))).toEqual([])
    expect(await submit(f, 'old', { msg: 2 })).toBe(0)
    expect((await status(f, 'old', 0)).state).toBe('queued')
  })

  it('retires a queue whose topic is deleted; its next use opens it again', async () => {
    const f = await start()
    expect(await submit(f, 'gone', { msg: 1 })).toBe(0)
    expect((await f.call('DELETE', '/topics/jobs.gone')).status).toBe(204)
    expect(await submit(f, 'gone', { msg: 2 })).toBe(0)
    expect((await status(f, 'gone', 0)).state).toBe('queued')
    expect((await f.call('GET', '/queues/gone')).json.submitted).toBe(1)
  })
})

describe('seglog/http jobs across a restart', () => {
  it('rebuilds states, attempts and results from the topics; a running job is queued again and then runs', async () => {
    const dir = tempDir('jobs-restart')
    let f = await start(dir)
    await f.call('POST', '/queues/q/workers', { json: { memberId: 'w' } })
    const done = await submit(f, 'q', { msg: 'done' })
    const dead = await submit(f, 'q', { msg: 'dead' })
    const running = await submit(f, 'q', { msg: 'running' })
    const queued = await submit(f, 'q', { msg: 'queued' })
    const jobs = (await f.call('POST', '/queues/q/workers/w/poll', { json: { maxJobs: 3 } })).json.jobs
    expect(jobs.map((job: { id: number }) => job.id)).toEqual([done, dead, running])
    await f.call('POST', `/queues/q/workers/w/jobs/${done}/result`, { body: 'result bytes', headers: { 'content-type': 'text/plain' } })
    await f.call('POST', `/queues/q/workers/w/jobs/${dead}/failure`, { json: { error: 'hopeless', retry: false } })
    await until(() => status(f, 'q', dead), finished)
    expect((await status(f, 'q', running)).state).toBe('running')
    await f.close()

    f = await start(dir)
    const states = await Promise.all([done, dead, running, queued].map((id) => status(f, 'q', id)))
    expect(states.map((s) => [s.state, s.attempts])).toEqual([
      ['done', 1],
      ['dead', 1],
      ['queued', 1],
      ['queued', 0],
    ])
    expect((await f.call('GET', `/queues/q/jobs/${done}/result`)).body.toString()).toBe('result bytes')
    cleanups.push(await f.server.jobs.handle('q', (job) => `redone ${job.attempt}`))
    const rerun = await until(() => status(f, 'q', running), finished)
    expect([rerun.state, rerun.attempts]).toEqual(['done', 2])
    expect((await until(() => status(f, 'q', queued), finished)).attempts).toBe(1)
  })
})
