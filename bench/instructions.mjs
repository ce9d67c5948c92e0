/**
 * Instructions per random read, counted by valgrind (callgrind), for seglog (mapped read), LMDB
 * (getBinaryFast) and SQLite (prepared point SELECT) at N = 10^5, 10^6 and 10^7 records (--quick:
 * up to 10^6). Wall-clock read rates fall with N on every system because the data outgrows the CPU
 * caches and TLB (bench/README.md, growth rows); the instruction count does not depend on the memory
 * system, so it shows the algorithmic cost: constant for an O(1) lookup, growing with log N for a
 * B-tree. Counts are exact for a given run and repeat closely across runs.
 *
 * Method: each (system, N) child runs twice under callgrind with the same warmup (JIT tiering
 * depends on call counts, not time) and the same offsets generated up front, once with
 * READS_SHORT and once with READS_LONG timed-loop reads; instructions per read is the difference of
 * the two totals divided by the difference in reads, so start-up, fixture opening and warmup cancel
 * out. Children run node with V8's --single-threaded: with background compiler and GC threads,
 * their waits (spinning, under valgrind's serialized threads) made the totals vary by billions of
 * instructions between runs; on one thread GC work happens inline and is counted with the reads.
 *
 * Usage: node bench/instructions.mjs [--quick] [--systems=seglog,lmdb,sqlite]
 * Needs `valgrind` on PATH. Writes bench/results/instructions-<ISO date>.json. Fixtures live in
 * bench/.tmp/instructions/ and are deleted at the end. Takes about 5 minutes in quick mode here.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const SCRATCH = path.join(HERE, '.tmp', 'instructions')
const WARMUP_READS = 50_000
const READS_SHORT = 20_000
const READS_LONG = 120_000
const RECORD_BYTES = 100

if (process.argv[2] === '--child') await runChild(process.argv.slice(3))
else await runParent(process.argv.slice(2))

async function runParent(args) {
  const quick = args.includes('--quick')
  const systems = (args.find((arg) => arg.startsWith('--systems='))?.slice('--systems='.length) ?? 'seglog,lmdb,sqlite').split(',')
  const sizes = quick ? [100_000, 1_000_000] : [100_000, 1_000_000, 10_000_000]
  execFileSync('valgrind', ['--version'])
  const { buildPeerFixture } = await import('./workloads/peers.mjs')
  const results = []
  fs.mkdirSync(SCRATCH, { recursive: true })
  try {
    for (const records of sizes) {
      for (const system of systems) {
        const dir = path.join(SCRATCH, `${system}-${records}`)
        await buildPeerFixture({ system, dir, records, recordBytes: RECORD_BYTES })
        const short = countInstructions(system, dir, records, READS_SHORT)
        const long = countInstructions(system, dir, records, READS_LONG)
        const perRead = (long - short) / (READS_LONG - READS_SHORT)
        results.push({ system, records, instructionsPerRead: Math.round(perRead), totals: { [READS_SHORT]: short, [READS_LONG]: long } })
        console.log(`${system.padEnd(7)} N=${records.toExponential(0).padEnd(5)} ${Math.round(perRead).toLocaleString('en-US').padStart(8)} instructions per read`)
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }
  } finally {
    fs.rmSync(SCRATCH, { recursive: true, force: true })
  }
  const growth = systems.map((system) => {
    const series = results.filter((row) => row.system === system)
    const base = series[0]
    return { system, perReadRelativeToSmallestN: series.map((row) => ({ records: row.records, ratio: row.instructionsPerRead / base.instructionsPerRead })) }
  })
  for (const { system, perReadRelativeToSmallestN } of growth) {
    console.log(`${system}: ${perReadRelativeToSmallestN.map((point) => `N=${point.records.toExponential(0)}: ${point.ratio.toFixed(2)}`).join(', ')} (÷ N=10^5)`)
  }
  const file = path.join(HERE, 'results', `instructions-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const method = { tool: 'valgrind --tool=callgrind', warmupReads: WARMUP_READS, readsShort: READS_SHORT, readsLong: READS_LONG, recordBytes: RECORD_BYTES }
  fs.writeFileSync(file, `${JSON.stringify({ node: process.version, method, results, growth }, null, 2)}\n`)
  console.log(`→ ${path.relative(process.cwd(), file)}`)
}

/** Total instructions (callgrind's "Collected") of one child doing `reads` measured reads. */
function countInstructions(system, dir, records, reads) {
  const child = spawnSync(
    'valgrind',
    ['--tool=callgrind', '--smc-check=all-non-file', '--callgrind-out-file=/dev/null', process.execPath, '--single-threaded', fileURLToPath(import.meta.url), '--child', system, dir, String(records), String(reads)],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  )
  const collected = /Collected : (\d+)/.exec(child.stderr)
  if (child.status !== 0 || !collected) throw new Error(`callgrind child ${system} N=${records} failed:\n${child.stderr.slice(-2000)}`)
  return Number(collected[1])
}

/** Child: opens the fixture, generates every offset up front, warms up, then does `reads` reads. */
async function runChild([system, dir, recordsText, readsText]) {
  const records = Number(recordsText)
  const reads = Number(readsText)
  const { DEFAULT_SEED, XorShift32, randomOffsets } = await import('./lib/prng.mjs')
  const offsets = randomOffsets(new XorShift32(DEFAULT_SEED), WARMUP_READS + READS_LONG, records)
  const { read, close } = await openReader(system, dir)
  let touched = 0
  for (let i = 0; i < WARMUP_READS; i++) touched += read(offsets[i])[0]
  for (let i = WARMUP_READS; i < WARMUP_READS + reads; i++) touched += read(offsets[i])[0]
  await close()
  process.stdout.write(`${touched & 0xff}\n`)
}

async function openReader(system, dir) {
  if (system === 'seglog') {
    const { SegmentedLog } = await import('../dist/index.js')
    const log = await SegmentedLog.open(dir, { sync: 'never', mmap: 'always' })
    return { read: (offset) => log.read(offset), close: () => log.close() }
  }
  const { loadPeer } = await import('./peers/index.mjs')
  const peer = await loadPeer(system)
  const store = await peer.open(dir, system === 'lmdb' ? 'default' : 'normal')
  return { read: system === 'lmdb' ? (key) => store.getFast(key) : (key) => store.get(key), close: () => store.close() }
}
