// The workload of the crash harness (crash-harness.mjs), meant to be SIGKILLed at a random moment.
//
//   node test/harness/crash-child.mjs <dir> <seed> <cycle>
//
// Opens (and so recovers) `<dir>/log` (a SegmentedLog) and `<dir>/topic` (a Topic of 3 partitions),
// both with sync: 'always' and small segments, and runs a random mix until killed: appends and
// batches (a few in flight), truncates, deleteBefore, keyed topic sends, consumer-group polls and
// commits, members joining and leaving (rebalances). Every event is one line on stdout, written with
// one write(2) to a pipe (synchronous on Linux), so what the parent reads is exactly what happened
// before the kill:
//
//   issue <first> <hash>...           log records about to be appended at first, first+1, ...
//   ack <first> <count>               that append/appendBatch resolved
//   truncate <offset> | truncated <offset>
//   delete <offset> | deleted <offset>          (deleteBefore)
//   send <hash>...                    topic records about to be sent (one sendBatch)
//   sent <partition>:<offset>:<hash>...   that sendBatch resolved
//   commit <partition>:<offset>...    a consumer commit about to be made | committed <...> resolved
//
// Hashes are the first 16 hex digits of the SHA-256 of the record's value. Imports the BUILT package.
import { createHash } from 'node:crypto'
import path from 'node:path'

const { SegmentedLog, Topic, LogError } = await import(new URL('../../dist/index.js', import.meta.url).href)

const [dir, seedText, cycleText] = process.argv.slice(2)
const seed = Number(seedText)
const cycle = Number(cycleText)

function generator(start) {
  let state = start >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) >>> 0
  }
}

const random = generator(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(cycle + 1, 0x85ebca6b))
const below = (n) => random() % n
const hashOf = (value) => createHash('sha256').update(value).digest('hex').slice(0, 16)
const line = (text) => process.stdout.write(`${text}\n`)
let serial = 0

/** A value unique across seeds, cycles and records, 1..600 bytes. */
function value() {
  const bytes = Buffer.alloc(16 + below(585))
  bytes.writeUInt32LE(seed, 0)
  bytes.writeUInt32LE(cycle, 4)
  bytes.writeUInt32LE(serial++, 8)
  for (let i = 12; i < bytes.length; i++) bytes[i] = random() & 0xff
  return bytes
}

function fail(error) {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(2)
}

const log = await SegmentedLog.open(path.join(dir, 'log'), { sync: 'always', segmentBytesMax: 4096 })
const topic = await Topic.open(path.join(dir, 'topic'), { partitions: 3, sync: 'always', segmentBytesMax: 8192 })
const group = topic.consumerGroup('g', { sessionTimeoutMs: 60_000 })
const members = []
line(`open ${log.startOffset} ${log.endOffset}`)

const inFlight = new Set()
const IN_FLIGHT_MAX = 4

function track(promise) {
  inFlight.add(promise)
  promise.then(() => inFlight.delete(promise), fail)
}

async function quiesce() {
  while (inFlight.size > 0) await Promise.all([...inFlight])
}

function append() {
  const count = below(3) === 0 ? 2 + below(9) : 1
  const values = Array.from({ length: count }, value)
  const first = log.endOffset
  line(`issue ${first} ${values.map(hashOf).join(' ')}`)
  const pending = count === 1 ? log.append(values[0]) : log.appendBatch(values)
  track(
    pending.then((offset) => {
      if (offset !== first) throw new Error(`append landed at ${offset}, expected ${first}`)
      line(`ack ${first} ${count}`)
    }),
  )
}

function send() {
  const values = Array.from({ length: 1 + below(10) }, value)
  const hashes = values.map(hashOf)
  line(`send ${hashes.join(' ')}`)
  track(
    topic.sendBatch(values.map((v, i) => ({ key: `k${below(50)}`, value: v, headers: { n: String(i) } }))).then((results) => {
      line(`sent ${results.map((r, i) => `${r.partition}:${r.offset}:${hashes[i]}`).join(' ')}`)
    }),
  )
}

async function truncate() {
  await quiesce()
  const offset = Math.max(log.startOffset, log.endOffset - below(25))
  line(`truncate ${offset}`)
  await log.truncate(offset)
  line(`truncated ${offset}`)
}

async function deleteBefore() {
  await quiesce()
  const offset = Math.min(log.endOffset, log.startOffset + below(60))
  line(`delete ${offset}`)
  await log.deleteBefore(offset)
  line(`deleted ${offset}`)
}

async function consume() {
  if (members.length === 0) return rebalance()
  const member = members[below(members.length)]
  const records = await member.poll({ maxRecords: 1 + below(40) })
  if (records.length === 0) return
  const last = new Map()
  for (const record of records) last.set(record.partition, record)
  const positions = [...last.values()].map((record) => `${record.partition}:${record.offset + 1}`).join(' ')
  line(`commit ${positions}`)
  try {
    await Promise.all([...last.values()].map((record) => member.commit(record)))
    line(`committed ${positions}`)
  } catch (error) {
    if (!(error instanceof LogError) || error.code !== 'FENCED') throw error
  }
}

async function rebalance() {
  if (members.length < 3 && (members.length === 0 || below(2) === 0)) {
    members.push(await group.join({ memberId: `c${cycle}-m${serial++}` }))
  } else {
    const [member] = members.splice(below(members.length), 1)
    await member.close()
  }
}

for (;;) {
  while (inFlight.size >= IN_FLIGHT_MAX) await Promise.race([...inFlight])
  const choice = below(100)
  try {
    if (choice < 40) append()
    else if (choice < 43) await truncate()
    else if (choice < 46) await deleteBefore()
    else if (choice < 70) send()
    else if (choice < 94) await consume()
    else await rebalance()
  } catch (error) {
    fail(error)
  }
  if (below(4) === 0) await new Promise((resolve) => setImmediate(resolve))
}
