/**
 * The crash harness (test/harness/crash-harness.mjs) in CI: a few trials of SIGKILLed log, topic and
 * consumer-group workloads must end without a violation, and the harness's own checks must catch
 * damage done behind its back (so a clean run means something). `npm run test:crash -- --trials N`
 * runs many more.
 */
import fs from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

beforeAll(() => ensureBuilt(), 180_000)

interface HarnessResult {
  kills: number
  violations: { trial: number; cycle: number; what: string }[]
  events: Record<string, number>
}

type RunCrashTrials = (options: {
  trials: number
  cycles?: number
  seed?: number
  baseDir: string
  beforeCheck?: (dir: string, cycle: number, model: { log: Map<number, string> }) => void | Promise<void>
}) => Promise<HarnessResult>

async function harness(): Promise<RunCrashTrials> {
  const module = (await import(path.join(REPO, 'test', 'harness', 'crash-harness.mjs'))) as { runCrashTrials: RunCrashTrials }
  return module.runCrashTrials
}

describe('crash harness', () => {
  it('finds no violation in 6 trials of 3 kills each, and exercises every kind of operation', async () => {
    const result = await (await harness())({ trials: 6, cycles: 3, seed: 101, baseDir: tempDir('crash-harness') })
    expect(result.violations).toEqual([])
    expect(result.kills).toBe(18)
    for (const kind of ['ack', 'truncated', 'deleted', 'sent', 'committed']) expect(result.events[kind] ?? 0).toBeGreaterThan(0)
  })

  it('reports acknowledged log records that went missing', async () => {
    let acknowledged = 0
    const result = await (await harness())({
      trials: 1,
      cycles: 1,
      seed: 7,
      baseDir: tempDir('crash-harness'),
      beforeCheck: (dir, _cycle, model) => {
        // Remove the segment holding the newest acknowledged record, and every newer one: that record
        // (at least) is gone. Removing just the newest segment is not enough: it may hold no
        // acknowledged record when the kill came right after a roll or a truncate.
        acknowledged = model.log.size
        const newestAcknowledged = Math.max(...model.log.keys())
        const logDir = path.join(dir, 'log')
        const bases = fs.readdirSync(logDir).filter((name) => name.endsWith('.log')).map((name) => Number(name.replace(/\.log$/, '')))
        const holder = Math.max(...bases.filter((base) => base <= newestAcknowledged))
        for (const base of bases.filter((base) => base >= holder)) {
          for (const suffix of ['.log', '.index']) fs.rmSync(path.join(logDir, String(base).padStart(20, '0') + suffix), { force: true })
        }
        fs.rmSync(path.join(logDir, 'clean-shutdown'), { force: true })
      },
    })
    expect(acknowledged).toBeGreaterThan(0)
    expect(result.violations.some((violation) => /log: acknowledged offset \d+ is (past endOffset|below startOffset)/.test(violation.what))).toBe(true)
  })

  it('reports a topic record whose bytes changed', async () => {
    const result = await (await harness())({
      trials: 1,
      cycles: 1,
      seed: 8,
      baseDir: tempDir('crash-harness'),
      beforeCheck: (dir) => {
        // Flip a byte in the middle of partition 0's first store file (inside some record).
        const partitionDir = path.join(dir, 'topic', 'partition-0')
        const store = path.join(partitionDir, fs.readdirSync(partitionDir).filter((name) => name.endsWith('.log')).sort()[0]!)
        const bytes = fs.readFileSync(store)
        expect(bytes.length).toBeGreaterThan(200)
        bytes[Math.floor(bytes.length / 2)]! ^= 0xff
        fs.writeFileSync(store, bytes)
      },
    })
    expect(result.violations.some((violation) => violation.what.startsWith('topic:'))).toBe(true)
  })
})
