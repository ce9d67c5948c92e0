// Crash harness: runs crash-child.mjs (a random workload over a SegmentedLog and a Topic with
// consumer commits, sync: 'always'), SIGKILLs it at a random moment, reopens everything and checks
// what survived against what the child said happened. Several kill/reopen cycles per directory, so
// recovery also runs over recovered state.
//
//   npm run test:crash -- --trials 1000 [--cycles 3] [--seed 1] [--dir .test-tmp/crash-harness]
//
// Checks after every kill (a failed check is a violation; the run ends with their list):
//   log:   every acknowledged record still in [startOffset, endOffset) is present with its bytes;
//          every record present is one that was issued at that offset (no wrong bytes); no read
//          throws (no corrupt record); an acknowledged truncate or deleteBefore stayed done; one in
//          flight left a prefix (a truncate: the end lies between its offset and the old end; a
//          deleteBefore: done or not); no batch is cut in the middle; new appends are accepted.
//   topic: every acknowledged send is at its partition and offset with its bytes; every record
//          present was sent; offsets are contiguous and every record decodes.
//   group: each partition's committed offset is at least the last acknowledged commit, at most the
//          highest commit made, and never below what the previous reopen found.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, '..', '..')
const CHILD = path.join(HERE, 'crash-child.mjs')
const { SegmentedLog, Topic } = await import(new URL('../../dist/index.js', import.meta.url).href)

const hashOf = (value) => createHash('sha256').update(value).digest('hex').slice(0, 16)

function generator(start) {
  let state = start >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** Runs the child until it printed `killAfterLines` lines, waits `delayMs`, SIGKILLs it; resolves to its lines. */
function runChild(dir, seed, cycle, killAfterLines, delayMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(seed), String(cycle)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let lines = 0
    let killing = false
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      lines += chunk.split('\n').length - 1
      if (!killing && lines >= killAfterLines) {
        killing = true
        setTimeout(() => child.kill('SIGKILL'), delayMs)
      }
    })
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(watchdog)
      const all = stdout.split('\n')
      all.pop() // a partial last line was not written whole: ignore it
      resolve({ lines: all, code, signal, stderr })
    })
  })
}

/** What the parent knows about one directory, across its kill cycles. */
function newModel() {
  return {
    /** log offset → hash of the record that must be there (acknowledged, or found and kept by a reopen). */
    log: new Map(),
    /** log offset → hash issued last at that offset (acknowledged or not). */
    issued: new Map(),
    batches: [],
    topicAcked: new Map(),
    topicIssued: new Set(),
    commitAcked: new Map(),
    commitIssuedMax: new Map(),
    committedFound: new Map(),
  }
}

/** Applies the child's lines (counting them by kind in `events`); returns what was in flight at the kill. */
function replay(model, lines, events) {
  const pending = { truncate: undefined, deleteBefore: undefined }
  for (const text of lines) {
    const [kind, ...fields] = text.split(' ')
    events[kind] = (events[kind] ?? 0) + 1
    switch (kind) {
      case 'open':
        break
      case 'issue': {
        const first = Number(fields[0])
        fields.slice(1).forEach((hash, i) => model.issued.set(first + i, hash))
        model.batches.push({ first, count: fields.length - 1 })
        break
      }
      case 'ack': {
        const first = Number(fields[0])
        for (let i = 0; i < Number(fields[1]); i++) model.log.set(first + i, model.issued.get(first + i))
        break
      }
      case 'truncate':
        pending.truncate = Number(fields[0])
        break
      case 'truncated':
        for (const offset of [...model.log.keys()]) if (offset >= Number(fields[0])) model.log.delete(offset)
        model.batches = model.batches.filter((batch) => batch.first + batch.count <= Number(fields[0]))
        pending.truncate = undefined
        break
      case 'delete':
        pending.deleteBefore = Number(fields[0])
        break
      case 'deleted':
        for (const offset of [...model.log.keys()]) if (offset < Number(fields[0])) model.log.delete(offset)
        pending.deleteBefore = undefined
        break
      case 'send':
        for (const hash of fields) model.topicIssued.add(hash)
        break
      case 'sent':
        for (const entry of fields) {
          const [partition, offset, hash] = entry.split(':')
          model.topicAcked.set(`${partition}:${offset}`, hash)
        }
        break
      case 'commit':
      case 'committed':
        for (const entry of fields) {
          const [partition, offset] = entry.split(':').map(Number)
          const target = kind === 'commit' ? model.commitIssuedMax : model.commitAcked
          target.set(partition, Math.max(target.get(partition) ?? 0, offset))
        }
        break
      default:
        throw new Error(`unexpected line from the child: ${text}`)
    }
  }
  return pending
}

/** Reopens the directory in this process and checks it against the model; returns violations. */
async function check(dir, model, pending) {
  const violations = []
  const fail = (what) => violations.push(what)
  const log = await SegmentedLog.open(path.join(dir, 'log'), { sync: 'always', segmentBytesMax: 4096 })
  try {
    const start = log.startOffset
    const end = log.endOffset
    if (pending.truncate !== undefined && end >= pending.truncate) {
      // A truncate in flight at the kill may have cut anywhere between its offset and the old end
      // (it removes newer segments first, then cuts one): what stays is a prefix, so records at or
      // past the end it reached are the ones it removed.
      for (const offset of [...model.log.keys()]) if (offset >= end) model.log.delete(offset)
    }
    for (const [offset, hash] of model.log) {
      if (offset < start) {
        if (pending.deleteBefore === undefined || offset >= pending.deleteBefore) {
          // deleted by a deleteBefore that was acknowledged: the model dropped it; anything else is a loss
          fail(`log: acknowledged offset ${offset} is below startOffset ${start}`)
        }
        continue
      }
      if (offset >= end) fail(`log: acknowledged offset ${offset} is past endOffset ${end}`)
    }
    for (const batch of model.batches) {
      const cutInside = end > batch.first && end < batch.first + batch.count
      if (cutInside && end !== pending.truncate) fail(`log: end ${end} cuts the batch at ${batch.first} (+${batch.count}) in the middle`)
    }
    for (let offset = start; offset < end; offset++) {
      let bytes
      try {
        bytes = log.read(offset)
      } catch (error) {
        fail(`log: read(${offset}) threw ${error.code ?? error.message}`)
        continue
      }
      const hash = hashOf(bytes)
      const expected = model.log.get(offset) ?? model.issued.get(offset)
      if (hash !== expected) fail(`log: offset ${offset} holds bytes that were never issued there`)
      else model.log.set(offset, hash) // found and kept: from now on it must stay
    }
    for (const offset of [...model.log.keys()]) if (offset < start || offset >= end) model.log.delete(offset)
    model.batches = []
    const next = await log.append(Buffer.from(`after-${end}`))
    if (next !== end) fail(`log: a new append landed at ${next}, not at the end ${end}`)
    model.issued.set(next, hashOf(Buffer.from(`after-${end}`)))
    model.log.set(next, model.issued.get(next))
  } finally {
    await log.close()
  }

  const topic = await Topic.open(path.join(dir, 'topic'))
  try {
    const present = new Map()
    for (let p = 0; p < topic.partitionCount; p++) {
      const partition = topic.partition(p)
      let expectedOffset = partition.startOffset
      try {
        for await (const record of partition.records()) {
          if (record.offset !== expectedOffset) fail(`topic: partition ${p} jumps from ${expectedOffset} to ${record.offset}`)
          expectedOffset = record.offset + 1
          const hash = hashOf(record.value)
          present.set(`${p}:${record.offset}`, hash)
          if (!model.topicIssued.has(hash)) fail(`topic: ${p}:${record.offset} holds a value that was never sent`)
        }
      } catch (error) {
        fail(`topic: reading partition ${p} threw ${error.code ?? error.message}`)
      }
    }
    for (const [where, hash] of model.topicAcked) {
      if (present.get(where) !== hash) fail(`topic: acknowledged send ${where} is ${present.has(where) ? 'different' : 'missing'}`)
    }
    const group = topic.consumerGroup('g', { sessionTimeoutMs: 60_000 })
    for (let p = 0; p < topic.partitionCount; p++) {
      const committed = (await group.committed(p)) ?? 0
      const acked = model.commitAcked.get(p) ?? 0
      const issued = model.commitIssuedMax.get(p) ?? 0
      const before = model.committedFound.get(p) ?? 0
      if (committed < acked) fail(`group: partition ${p} committed ${committed} < acknowledged ${acked}`)
      if (committed > issued) fail(`group: partition ${p} committed ${committed} > any commit made (${issued})`)
      if (committed < before) fail(`group: partition ${p} committed moved back from ${before} to ${committed}`)
      model.committedFound.set(p, committed)
    }
  } finally {
    await topic.close()
  }
  return violations
}

/**
 * Runs `trials` directories of `cycles` kill/reopen cycles each. `beforeCheck(dir, cycle, model)` (tests
 * only) can damage a directory to show that the checks catch it; `model.log` maps every offset the
 * log must still hold to its record's hash.
 */
export async function runCrashTrials({ trials, cycles = 3, seed = 1, baseDir, onTrial, onViolations, beforeCheck }) {
  fs.mkdirSync(baseDir, { recursive: true })
  const violations = []
  let kills = 0
  let childFailures = 0
  const events = {}
  const started = Date.now()
  for (let trial = 0; trial < trials; trial++) {
    const trialSeed = seed + trial
    const dir = path.join(baseDir, `trial-${trialSeed}`)
    fs.rmSync(dir, { recursive: true, force: true })
    const model = newModel()
    const violationsBefore = violations.length
    const choose = generator(trialSeed * 7919)
    for (let cycle = 0; cycle < cycles; cycle++) {
      const run = await runChild(dir, trialSeed, cycle, 30 + (choose() % 400), choose() % 20)
      if (run.signal !== 'SIGKILL') {
        childFailures++
        violations.push({ trial: trialSeed, cycle, what: `child ended by itself (code ${run.code}): ${run.stderr.trim()}` })
        break
      }
      kills++
      fs.writeFileSync(path.join(dir, `cycle-${cycle}.events`), `${run.lines.join('\n')}\n`) // kept with the directory when a check fails
      const pending = replay(model, run.lines, events)
      await beforeCheck?.(dir, cycle, model)
      for (const what of await check(dir, model, pending)) violations.push({ trial: trialSeed, cycle, what })
    }
    if (violations.length === violationsBefore) fs.rmSync(dir, { recursive: true, force: true })
    else onViolations?.(violations.slice(violationsBefore))
    onTrial?.({ trial: trial + 1, trials, kills, violations: violations.length })
  }
  return { trials, cycles, kills, childFailures, violations, events, elapsedMs: Date.now() - started }
}

function flag(name, fallback) {
  const args = process.argv.slice(2)
  const at = args.findIndex((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))
  if (at < 0) return fallback
  return args[at].includes('=') ? args[at].split('=')[1] : args[at + 1]
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const trials = Number(flag('trials', 100))
  const cycles = Number(flag('cycles', 3))
  const seed = Number(flag('seed', 1))
  const baseDir = path.resolve(flag('dir', path.join(REPO, '.test-tmp', 'crash-harness')))
  process.stdout.write(`crash harness: ${trials} trials × ${cycles} kills, seeds ${seed}..${seed + trials - 1}, in ${baseDir}\n`)
  const result = await runCrashTrials({
    trials,
    cycles,
    seed,
    baseDir,
    onViolations: (found) => {
      for (const violation of found) process.stdout.write(`VIOLATION trial ${violation.trial} cycle ${violation.cycle}: ${violation.what}\n`)
    },
    onTrial: ({ trial, kills, violations }) => {
      if (trial % 10 === 0 || trial === trials) process.stdout.write(`  ${trial}/${trials} trials, ${kills} kills, ${violations} violations\n`)
    },
  })
  process.stdout.write(`events seen before the kills: ${Object.entries(result.events).map(([kind, count]) => `${kind} ${count}`).join(', ')}\n`)
  process.stdout.write(`${result.kills} kills in ${(result.elapsedMs / 1000).toFixed(1)} s: ${result.violations.length} violations\n`)
  process.exitCode = result.violations.length === 0 ? 0 : 1
}
