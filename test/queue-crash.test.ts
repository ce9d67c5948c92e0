/**
 * Crash specs for consumer groups: a child process (test/fixtures/queue-child.mjs, running the built
 * package) polls and commits records one at a time and reports each commit once it resolved; the
 * parent SIGKILLs it at a random moment, reopens the topic and checks that no acknowledged commit was
 * lost (and nothing beyond the one in flight was kept), and that the next member, in the parent or in
 * a second child, resumes exactly at the committed offsets.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ConsumedRecord, Topic } from '../src/index.js'
import { ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CHILD = path.join(REPO, 'test', 'fixtures', 'queue-child.mjs')



/** mulberry32, as in test/crash.test.ts: seeds fix each trial's choices. */
function generator(start: number): () => number {
  let state = start >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) >>> 0
  }
}

const PARTITIONS = 2
const RECORDS_PER_PARTITION = 150
const GROUP = 'workers'

// ---------------------------------------------------------------------------------------------
// One run of the child: start it, kill it after some commits, read what it said.

interface Run {
  /** The last acknowledged commit per partition (absent: none in this run). */
  lastCommit: Map<number, number>
  /** Every acknowledged commit, in order. */
  commits: { partition: number; offset: number }[]
  /** The first offset the child polled from each partition. */
  first: Map<number, number>
  signal: NodeJS.Signals | null
  code: number | null
  stderr: string
}

function runChild(dir: string, maxRecords: number, killAfterCommits: number, delayMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, GROUP, String(maxRecords)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let commits = 0
    let killing = false
    const kill = (): void => {
      if (killing) return
      killing = true
      setTimeout(() => child.kill('SIGKILL'), delayMs)
    }
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk
      const lines = chunk.split('\n')
      commits += lines.filter((line) => line.startsWith('commit ')).length
      // Nothing left to read: kill it now, the point is where the commits stand.
      if (commits >= killAfterCommits || lines.includes('idle')) kill()
    })
    child.stderr.on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(watchdog)
      const lines = stdout.split('\n')
      lines.pop() // the text after the last newline, if any, is not a whole line
      const run: Run = { lastCommit: new Map(), commits: [], first: new Map(), signal, code, stderr }
      for (const line of lines) {
        const [kind, partitionText, offsetText] = line.split(' ')
        const partition = Number(partitionText)
        const offset = Number(offsetText)
        if (kind === 'commit') {
          run.commits.push({ partition, offset })
          run.lastCommit.set(partition, offset)
        } else if (kind === 'first') run.first.set(partition, offset)
        else if (kind !== 'idle') reject(new Error(`unexpected line from the child: ${line}`))
      }
      resolve(run)
    })
  })
}

// ---------------------------------------------------------------------------------------------

const openTopics: Topic[] = []

afterEach(async () => {
  for (const topic of openTopics.splice(0)) await topic.close().catch(() => undefined)
})

async function committedOffsets(topic: Topic): Promise<(number | undefined)[]> {
  const group = topic.consumerGroup(GROUP)
  return Promise.all(Array.from({ length: PARTITIONS }, (_, partition) => group.committed(partition)))
}

/**
 * After a run that started from `before`: each partition's committed offset is the last one the child
 * acknowledged, or the one commit that was in flight when it died (one past it).
 */
function expectCommittedAfter(run: Run, before: readonly (number | undefined)[], after: readonly (number | undefined)[]): void {
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const acknowledged = run.lastCommit.get(partition) ?? before[partition]
    const inFlight = (acknowledged ?? 0) + 1
    const committed = after[partition]
    // Never behind what was acknowledged...
    if (acknowledged !== undefined) expect(committed).toBeGreaterThanOrEqual(acknowledged)
    // ...and at most the commit in flight beyond it.
    expect([acknowledged, inFlight]).toContain(committed)
  }
}

/** A new member polls everything left: each partition starts at its committed offset and runs to the end. */
async function expectNewMemberResumes(topic: Topic, committed: readonly (number | undefined)[]): Promise<void> {
  const member = await topic.consumerGroup(GROUP).join({ memberId: 'checker' })
  const records: ConsumedRecord[] = await member.poll({ maxRecords: 100_000 })
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const from = committed[partition] ?? 0
    const offsets = records.filter((record) => record.partition === partition).map((record) => record.offset)
    expect(offsets).toEqual(Array.from({ length: RECORDS_PER_PARTITION - from }, (_, i) => from + i))
  }
  await member.close() // leaves without committing
}

const TRIALS = [1, 2, 3, 4].map((seed) => {
  const next = generator(seed * 104_729)
  const run = () => ({ killAfterCommits: 5 + (next() % 120), delayMs: next() % 20 })
  return { seed, maxRecords: 1 + (next() % 10), runs: [run(), run()] }
})

describe('ConsumerGroup', () => {
  describe('after the consuming process is SIGKILLed', () => {
    beforeAll(ensureBuilt, 120_000)

    it.each(TRIALS)('keeps every acknowledged commit and resumes exactly there, twice (seed $seed)', async ({ maxRecords, runs }) => {
      const dir = tempDir('queue-crash')
      const setup = await Topic.open(dir, { partitions: PARTITIONS })
      for (let partition = 0; partition < PARTITIONS; partition++) {
        await setup.sendBatch(Array.from({ length: RECORDS_PER_PARTITION }, (_, offset) => ({ value: `p${partition}-${offset}`, partition })))
      }
      await setup.close()

      let before: (number | undefined)[] = Array.from({ length: PARTITIONS }, () => undefined)
      for (const { killAfterCommits, delayMs } of runs) {
        const run = await runChild(dir, maxRecords, killAfterCommits, delayMs)
        expect(run.stderr).toBe('')
        expect(run).toMatchObject({ signal: 'SIGKILL', code: null })
        // The child resumed where the group's committed offsets stood when it started.
        for (const [partition, offset] of run.first) expect({ partition, offset }).toEqual({ partition, offset: before[partition] ?? 0 })
        expect(run.commits.length).toBeGreaterThan(0)

        const topic = await Topic.open(dir)
        openTopics.push(topic)
        const after = await committedOffsets(topic)
        expectCommittedAfter(run, before, after)
        await expectNewMemberResumes(topic, after)
        expect(await committedOffsets(topic)).toEqual(after)
        await topic.close()
        before = after
      }
    })
  })
})
