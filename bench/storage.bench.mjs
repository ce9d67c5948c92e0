/**
 * Storage-layer (and queue-layer: workloads/queue.mjs) benchmarks for seglog, and the same workloads
 * on the peer systems (LMDB, SQLite, an in-memory B+tree: peers/, workloads/peers.mjs). Run through
 * `npm run bench` / `npm run bench:quick` (they build dist/ first); see bench/README.md.
 *
 * The parent process only orchestrates: for each job of the plan (lib/plan.mjs) it forks this same
 * script as a fresh child (`--child <job JSON>`), so one workload's JIT and GC state never leaks into
 * the next, and collects the child's JSON over IPC. Fixtures shared by read workloads are built and
 * sealed by children too, and deleted when their group ends. Results go to
 * bench/results/storage-<ISO date>.json and a table goes to stdout.
 *
 * Flags: --quick (3 rounds, 1 pass, N up to 10^6), --only=<substring of job ids> (fixtures are still
 *        built), --rounds=<n>, --passes=<n>, --cpu-prof (children write V8 CPU profiles to bench/.tmp/prof/).
 */
import { execFileSync, fork } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))
const TMP_DIR = path.join(BENCH_DIR, '.tmp')
const RESULTS_DIR = path.join(BENCH_DIR, 'results')
const PROFILE_DIR = path.join(TMP_DIR, 'prof')
const CHILD_TIMEOUT_MS = 10 * 60 * 1000

const args = process.argv.slice(2)
if (args[0] === '--child') {
  await runChild(JSON.parse(args[1]))
} else {
  await runParent({
    quick: args.includes('--quick'),
    only: args.find((arg) => arg.startsWith('--only='))?.slice('--only='.length),
    cpuProf: args.includes('--cpu-prof'),
    rounds: numberFlag('--rounds='),
    passes: numberFlag('--passes='),
  })
}

function numberFlag(prefix) {
  const value = args.find((arg) => arg.startsWith(prefix))?.slice(prefix.length)
  return value === undefined ? undefined : Number(value)
}

// ---------------------------------------------------------------------------------------------
// Child: run one task, send its JSON to the parent.

async function runChild(task) {
  let message
  try {
    const result = await dispatch(task)
    message = { ok: true, result }
  } catch (error) {
    message = { ok: false, error: error?.stack ?? String(error) }
  }
  await new Promise((resolve) => process.send(message, resolve))
  process.exit(0)
}

async function dispatch(task) {
  if (task.fixtureOp) {
    if (task.fixture.kind === 'topic') return (await import('./workloads/queue.mjs')).buildTopicFixture(task.fixture)
    if (task.fixture.kind === 'peer') return (await import('./workloads/peers.mjs')).buildPeerFixture(task.fixture)
    const fixtures = await import('./lib/fixtures.mjs')
    return task.fixtureOp === 'build' ? fixtures.buildFixture(task.fixture) : fixtures.sealFixture(task.fixture)
  }
  const [append, read, queue, peers, scale] = await Promise.all([
    import('./workloads/append.mjs'),
    import('./workloads/read.mjs'),
    import('./workloads/queue.mjs'),
    import('./workloads/peers.mjs'),
    import('./workloads/scale.mjs'),
  ])
  const kinds = { ...append, ...read, ...queue, ...peers, ...scale, ...(await import('./workloads/share.mjs')), ...(await import('./workloads/http.mjs')) }
  const run = kinds[task.kind]
  if (typeof run !== 'function') throw new Error(`unknown workload kind ${task.kind}`)
  return run({ ...task.params, rounds: task.rounds, dir: task.dir, fixture: task.fixture })
}

// ---------------------------------------------------------------------------------------------
// Parent

async function runParent({ quick, only, cpuProf, rounds, passes }) {
  const { buildPlan } = await import('./lib/plan.mjs')
  const { buildRows, checkTargets, formatTable, formatTargets } = await import('./lib/report.mjs')
  const plan = buildPlan({ quick, rounds, passes })
  const started = Date.now()
  const git = gitState() // before the run: `npm run bench` built dist/ from this state just now
  fs.mkdirSync(TMP_DIR, { recursive: true })
  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  if (cpuProf) fs.mkdirSync(PROFILE_DIR, { recursive: true })
  const selected = (job) => !only || job.id.includes(only)
  const jobs = plan.groups.flatMap((group) => group.steps.filter((step) => step.job && selected(step.job)).map((step) => step.job))
  const outcomes = new Map()
  let done = 0
  const totalRuns = jobs.reduce((sum, job) => sum + (job.once ? 1 : plan.passes), 0)
  log(`seglog storage bench: ${quick ? 'quick' : 'full'} mode, ${plan.rounds} rounds × ${plan.passes} pass(es), ${jobs.length} jobs, node ${process.version}`)

  const runJob = async (job, fixture, fixtureDir, pass) => {
    const dir = job.params?.onFixture ? fixtureDir : path.join(TMP_DIR, `${job.id.replace(/[^a-z0-9]+/gi, '-')}-${process.pid}`)
    const t0 = Date.now()
    let outcome
    try {
      const label = plan.passes > 1 && !job.once ? `${job.id}-pass${pass}` : job.id
      outcome = await fork1({ kind: job.kind, params: job.params, rounds: job.rounds, dir, fixture }, label, cpuProf)
    } catch (error) {
      outcome = { error: String(error.message ?? error).split('\n')[0] }
      log(String(error.message ?? error))
    } finally {
      if (!job.params?.onFixture) fs.rmSync(dir, { recursive: true, force: true })
    }
    const passes = outcomes.get(job.id) ?? []
    passes.push(outcome)
    outcomes.set(job.id, passes)
    done++
    const median = outcome.opsPerSec ? [...outcome.opsPerSec].sort((a, b) => a - b)[outcome.opsPerSec.length >> 1] : NaN
    const what = outcome.error ? 'ERROR' : `${Math.round(median).toLocaleString('en-US')} ops/s (median)`
    log(`  [${done}/${totalRuns}] ${job.id}${job.once || plan.passes === 1 ? '' : ` pass ${pass}`}: ${what} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  }

  for (const group of plan.groups) {
    const steps = group.steps.filter((step) => step.fixtureOp || selected(step.job))
    if (!steps.some((step) => step.job)) continue
    const fixtureDir = path.join(TMP_DIR, `${group.name}-${process.pid}`)
    let fixture = group.fixture ? { ...group.fixture, dir: fixtureDir } : undefined
    try {
      // Consecutive jobs form a block that runs `passes` times interleaved; fixture steps split blocks.
      let block = []
      const runBlock = async () => {
        for (let pass = 1; pass <= plan.passes; pass++) {
          for (const job of block.filter((j) => !j.once)) await runJob(job, fixture, fixtureDir, pass)
        }
        for (const job of block.filter((j) => j.once)) await runJob(job, fixture, fixtureDir, 1)
        block = []
      }
      for (const step of steps) {
        if (step.job) {
          block.push(step.job)
          continue
        }
        await runBlock()
        const t0 = Date.now()
        const built = await fork1({ fixtureOp: step.fixtureOp, fixture }, `${group.name}-${step.fixtureOp}`, false)
        fixture = { ...fixture, segments: built.segments, sealed: step.fixtureOp === 'seal' }
        log(`  fixture ${group.name}: ${step.fixtureOp} done in ${((Date.now() - t0) / 1000).toFixed(1)} s (${built.segments.length} segments)`)
      }
      await runBlock()
    } finally {
      fs.rmSync(fixtureDir, { recursive: true, force: true })
    }
  }

  const rows = buildRows(jobs, outcomes)
  const targets = checkTargets(rows)
  const date = new Date().toISOString()
  const cpus = os.cpus()
  const report = {
    meta: {
      node: process.version,
      cpu: cpus[0]?.model ?? 'unknown',
      cores: cpus.length,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      date,
      quick,
      rounds: plan.rounds,
      passes: plan.passes,
      only: only ?? null,
      durationS: Math.round((Date.now() - started) / 1000),
      seed: '0x9e3779b9 (xorshift32)',
      git,
    },
    results: rows,
    targets,
  }
  const file = path.join(RESULTS_DIR, `storage-${date.replace(/[:.]/g, '-')}.json`)
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  console.log('')
  console.log(formatTable(rows))
  console.log('')
  console.log(formatTargets(targets))
  console.log('')
  console.log(`${rows.length} results in ${report.meta.durationS} s → ${path.relative(process.cwd(), file)}`)
  if (rows.some((row) => row.error)) process.exitCode = 1
}

/** Forks this script as a child for one task and resolves with the child's result. */
function fork1(task, label, cpuProf) {
  const execArgv = ['--expose-gc']
  if (cpuProf) execArgv.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${label.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`)
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify(task)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let message
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS)
    child.on('message', (received) => {
      message = received
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (message?.ok) resolve(message.result)
      else reject(new Error(message?.error ?? `child ${label} exited with ${signal ?? code} and no result`))
    })
  })
}

/** The commit measured, and whether src/ differed from it (the code under test may be mid-change). */
function gitState() {
  const git = (...gitArgs) => execFileSync('git', gitArgs, { cwd: path.dirname(BENCH_DIR), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  try {
    return { commit: git('rev-parse', 'HEAD'), srcDirty: git('status', '--porcelain', '--', 'src').length > 0 }
  } catch {
    return null
  }
}

function log(line) {
  process.stderr.write(`${line}\n`)
}
