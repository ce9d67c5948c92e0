// Corruption harness: damages every kind of file seglog writes, in every way a disk or a person can
// (byte flips, zeroed ranges, truncations, appended garbage, deletion), then opens and reads
// everything in a child process and classifies what happened.
//
//   npm run test:corruption -- [--seeds 5] [--seed 1] [--dir .test-tmp/corruption-harness] [--json out.json]
//                              [--kinds 'active .log,topic.json'] [--damages 'flip body,delete'] [--variants clean]
//
// For each seed and variant ('clean': closed cleanly; 'crashed': closed, then the clean-shutdown
// markers removed and the writer's LOCK files put back, as a SIGKILL leaves them) a fixture is built
// once in a child process: a SegmentedLog (`log/`, 2 KiB segments, several sealed, a checkpoint from
// deleteBefore inside a segment, singles and batches) and a Topic (`topic/`, 2 partitions, group `g`
// that committed several times). Each case copies the fixture, damages one file, and a check child
// reads it: the log as a readOnly reader (before any repair), then as the writer (open = recovery,
// read every offset, records(), append one record, close, reopen, read again), and the topic (every
// partition's records, the group's committed offsets). Payloads derive from (offset, seed), so the
// child knows every byte that must come back.
//
// Outcomes, worst first (a case takes the worst of its phases):
//   crash        the child died by a signal, or something threw that is not a LogError    FAILURE
//   wrong-bytes  a read returned bytes that were never written there (or a committed offset
//                that was never committed)                                                 FAILURE
//   lost-intact  records (or commits) BEFORE the damaged one were lost or refused            FAILURE
//   typed-error  a LogError with a code (which codes: listed)
//   repaired     opened and read without error, recovery cut the damage; only records at or
//                after the damaged one (from the start of its batch) are gone
//   unchanged    no visible effect
// The process exits non-zero when any case is a FAILURE. Internal modes (children of the harness):
//   node corruption-harness.mjs --build <dir> <seed> <variant>    writes a fixture + manifest.json
//   node corruption-harness.mjs --check                           cases as JSON lines on stdin
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, '..', '..')
const SELF = fileURLToPath(import.meta.url)
const { SegmentedLog, Topic, LogError, mmapAvailable } = await import(new URL('../../dist/index.js', import.meta.url).href)
const format = await import(new URL('../../dist/format.js', import.meta.url).href)

// ---------------------------------------------------------------------------------------------
// Deterministic data

const LOG_RECORDS = 150
const LOG_OPTIONS = { segmentBytesMax: 2048 }
const TOPIC_PARTITIONS = 2
const TOPIC_RECORDS_PER_PARTITION = 30
const TOPIC_OPTIONS = { partitions: TOPIC_PARTITIONS, segmentBytesMax: 1024 }
const GROUP = 'g'
const CASE_TIMEOUT_MS = 20_000

export function generator(start) {
  let state = start >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) >>> 0
  }
}

function hashText(text) {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** The payload of log offset `offset` in the fixture of `seed`; generation 1 marks records appended by a check. */
export function payloadFor(offset, seed, generation = 0) {
  const bytes = Buffer.alloc(40 + ((offset * 37 + seed * 13 + generation * 7) % 90))
  for (let i = 0; i < bytes.length; i++) bytes[i] = (offset * 31 + seed * 17 + generation * 59 + i * 7) & 0xff
  bytes.write(`s${seed}:g${generation}:o${offset}:`, 'latin1')
  return bytes
}

const timestampFor = (offset) => 1_700_000_000_000 + offset * 10
const topicKey = (partition, index) => `p${partition}-k${index}`

function topicValue(partition, index, seed) {
  const bytes = Buffer.alloc(20 + ((index * 11 + partition * 5 + seed) % 60))
  for (let i = 0; i < bytes.length; i++) bytes[i] = (index * 13 + partition * 101 + seed * 7 + i) & 0xff
  bytes.write(`s${seed}:p${partition}:i${index}:`, 'latin1')
  return bytes
}

// ---------------------------------------------------------------------------------------------
// Fixture (runs in a child, so that the LOCK files it leaves name a writer that is gone)

async function buildFixture(dir, seed, variant) {
  const random = generator(hashText(`fixture ${seed}`))
  const logDir = path.join(dir, 'log')
  const log = await SegmentedLog.open(logDir, LOG_OPTIONS)
  const batches = []
  for (let offset = 0; offset < LOG_RECORDS; ) {
    const count = random() % 5 === 0 ? Math.min(2 + (random() % 5), LOG_RECORDS - offset) : 1
    const offsets = Array.from({ length: count }, (_, i) => offset + i)
    const first = count === 1
      ? await log.append(payloadFor(offset, seed), { timestampMs: timestampFor(offset) })
      : await log.appendBatch(offsets.map((o) => payloadFor(o, seed)), { timestampMs: offsets.map(timestampFor) })
    if (first !== offset) throw new Error(`fixture: append landed at ${first}, not ${offset}`)
    batches.push([offset, count])
    offset += count
  }
  // Delete the oldest segment and start inside the next one, so that the checkpoint is written.
  const start = log.segments[1].baseOffset + 2
  await log.deleteBefore(start)
  const manifest = {
    seed,
    variant,
    log: { start: log.startOffset, end: log.endOffset, segments: log.segments.map((s) => [s.baseOffset, s.nextOffset]), batches },
    topic: { partitions: [] },
    group: { records: [] },
  }
  if (manifest.log.segments.length < 5) throw new Error('fixture: expected at least 4 sealed segments')

  const topic = await Topic.open(path.join(dir, 'topic'), TOPIC_OPTIONS)
  for (let p = 0; p < TOPIC_PARTITIONS; p++) {
    for (let i = 0; i < TOPIC_RECORDS_PER_PARTITION; i += 6) {
      const indexes = Array.from({ length: Math.min(6, TOPIC_RECORDS_PER_PARTITION - i) }, (_, k) => i + k)
      await topic.sendBatch(indexes.map((index) => ({ partition: p, key: topicKey(p, index), value: topicValue(p, index, seed) })))
    }
    manifest.topic.partitions.push(topic.partition(p).endOffset)
  }
  const consumer = await topic.consumerGroup(GROUP).join()
  for (;;) {
    const records = await consumer.poll({ maxRecords: 7 })
    if (records.length === 0) break
    await consumer.commit()
  }
  await consumer.close()

  const locks = variant === 'crashed' ? filesNamed(dir, format.LOCK_FILE).map((file) => [file, fs.readFileSync(file)]) : []
  await topic.close()
  await log.close()

  // The group's offsets log, record by record, as the harness will check committed offsets against it.
  const offsetsDir = path.join(dir, 'topic', 'groups', GROUP, 'offsets')
  const reader = await SegmentedLog.open(offsetsDir, { readOnly: true })
  for await (const { offset, value } of reader.records()) {
    const record = format.decodeOffsetRecord(value, offset, offsetsDir)
    for (const [partition, committed] of record.offsets) manifest.group.records.push([offset, partition, committed])
  }
  await reader.close()

  if (variant === 'crashed') {
    for (const [file, bytes] of locks) fs.writeFileSync(file, bytes)
    for (const file of filesNamed(dir, format.CLEAN_SHUTDOWN_FILE)) fs.rmSync(file)
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest))
}

function filesNamed(dir, name) {
  return fs.readdirSync(dir, { recursive: true }).filter((entry) => path.basename(entry) === name).map((entry) => path.join(dir, entry))
}

// ---------------------------------------------------------------------------------------------
// File kinds and damage kinds

/** What the harness knows about a file before damaging it: its layout and which records live where. */
function storeLayout(file) {
  const bytes = fs.readFileSync(file)
  const base = format.parseSegmentFileName(path.basename(file)).baseOffset
  const frames = [] // [position, end, offset, flags]
  for (let at = format.FILE_HEADER_BYTES; at + format.FRAME_HEADER_BYTES <= bytes.length; ) {
    const header = format.decodeFrameHeader(bytes, at)
    const end = at + format.FRAME_HEADER_BYTES + header.payloadBytes
    if (end > bytes.length) break
    frames.push([at, end, base + header.relativeOffset, header.flags])
    at = end
  }
  return { base, frames }
}

function segmentFile(dir, which, suffix) {
  const stores = fs.readdirSync(dir).filter((name) => name.endsWith(format.STORE_SUFFIX)).sort()
  const name = which === 'newest' ? stores.at(-1) : stores[which]
  return path.join(dir, name.replace(format.STORE_SUFFIX, suffix))
}

/**
 * File kinds: where the file is (`pick(caseDir, random)`), which records it holds
 * (`firstAffected(file, from)`: the lowest offset damage at byte `from` can touch), and which
 * directory's records to measure losses in ('log', 'group', or 'none': no record may be lost).
 */
export const FILE_KINDS = {
  'sealed .log': {
    scope: 'log',
    pick: (dir, random) => segmentFile(path.join(dir, 'log'), random() % sealedCount(dir), format.STORE_SUFFIX),
  },
  'sealed .index': {
    scope: 'log',
    pick: (dir, random) => segmentFile(path.join(dir, 'log'), random() % sealedCount(dir), format.INDEX_SUFFIX),
  },
  'active .log': { scope: 'log', pick: (dir) => segmentFile(path.join(dir, 'log'), 'newest', format.STORE_SUFFIX) },
  'active .index': { scope: 'log', pick: (dir) => segmentFile(path.join(dir, 'log'), 'newest', format.INDEX_SUFFIX) },
  checkpoint: { scope: 'none', phases: 'log', pick: (dir) => path.join(dir, 'log', format.CHECKPOINT_FILE) },
  'clean-shutdown': { scope: 'none', phases: 'log', pick: (dir) => path.join(dir, 'log', format.CLEAN_SHUTDOWN_FILE) },
  LOCK: { scope: 'none', phases: 'log', pick: (dir) => path.join(dir, 'log', format.LOCK_FILE) },
  'topic.json': { scope: 'none', phases: 'topic', pick: (dir) => path.join(dir, 'topic', format.TOPIC_METADATA_FILE) },
  'group .log': { scope: 'group', pick: (dir) => segmentFile(groupDir(dir), 'newest', format.STORE_SUFFIX) },
  'group .index': { scope: 'group', pick: (dir) => segmentFile(groupDir(dir), 'newest', format.INDEX_SUFFIX) },
}

const groupDir = (dir) => path.join(dir, 'topic', 'groups', GROUP, 'offsets')
const sealedCount = (dir) => fs.readdirSync(path.join(dir, 'log')).filter((name) => name.endsWith(format.STORE_SUFFIX)).length - 1
const HEADER_BYTES = format.FILE_HEADER_BYTES
const between = (random, from, to) => from + (random() % Math.max(1, to - from)) // [from, to)

/**
 * Damage kinds. `apply(file, bytes, random, layout)` changes the file and returns the damaged byte
 * range [from, to) of the original (an append: [size, size); a deletion: [0, size)), or undefined
 * when the damage does not apply (a flip in an empty file). `bytes` is undefined for a missing file.
 */
export const DAMAGES = {
  'flip header': {
    apply(file, bytes, random) {
      if (!bytes?.length) return undefined
      const at = random() % Math.min(bytes.length, HEADER_BYTES)
      bytes[at] ^= 1 << (random() % 8)
      fs.writeFileSync(file, bytes)
      return [at, at + 1]
    },
  },
  'flip body': {
    apply(file, bytes, random) {
      if (!bytes?.length) return undefined
      const at = bytes.length > HEADER_BYTES ? between(random, HEADER_BYTES, bytes.length) : random() % bytes.length
      bytes[at] ^= 1 + (random() % 255)
      fs.writeFileSync(file, bytes)
      return [at, at + 1]
    },
  },
  'zero range': {
    apply(file, bytes, random) {
      if (!bytes?.length) return undefined
      const from = random() % bytes.length
      const to = Math.min(bytes.length, from + 8 + (random() % 120))
      bytes.fill(0, from, to)
      fs.writeFileSync(file, bytes)
      return [from, to]
    },
  },
  'truncate to 0': {
    apply(file, bytes) {
      if (!bytes?.length) return undefined
      fs.truncateSync(file, 0)
      return [0, bytes.length]
    },
  },
  'truncate mid-header': {
    apply(file, bytes, random) {
      if (!bytes || bytes.length < 2) return undefined
      const at = between(random, 1, Math.min(bytes.length, HEADER_BYTES))
      fs.truncateSync(file, at)
      return [at, bytes.length]
    },
  },
  'truncate mid-record': {
    apply(file, bytes, random, layout) {
      if (!bytes || bytes.length < 2) return undefined
      let at
      if (layout?.frames?.length) {
        const [position, end] = layout.frames[random() % layout.frames.length]
        at = between(random, position + 1, end)
      } else if (layout?.entrySize && bytes.length > HEADER_BYTES + layout.entrySize) {
        const entries = (bytes.length - HEADER_BYTES) / layout.entrySize
        at = HEADER_BYTES + (random() % entries) * layout.entrySize + between(random, 1, layout.entrySize)
      } else at = between(random, 1, bytes.length)
      fs.truncateSync(file, at)
      return [at, bytes.length]
    },
  },
  'append random': {
    apply(file, bytes, random) {
      const garbage = Buffer.alloc(8 + (random() % 200))
      for (let i = 0; i < garbage.length; i++) garbage[i] = random() & 0xff
      fs.appendFileSync(file, garbage)
      return [bytes?.length ?? 0, bytes?.length ?? 0]
    },
  },
  'append zeros': {
    apply(file, bytes, random) {
      fs.appendFileSync(file, Buffer.alloc(16 * (1 + (random() % 8)))) // whole index entries of zeros, too
      return [bytes?.length ?? 0, bytes?.length ?? 0]
    },
  },
  delete: {
    apply(file, bytes) {
      if (!bytes) return undefined
      fs.rmSync(file)
      return [0, bytes.length]
    },
  },
}

/** The lowest record offset that damage over bytes [from, to) of `file` can touch (Infinity: none). */
function firstAffected(file, range, layout) {
  const [from, to] = range
  if (!layout) return Infinity
  if (from === to) return Infinity // appended bytes: no record lives there
  if (from < HEADER_BYTES) return layout.base
  if (layout.frames) {
    const hit = layout.frames.find(([, end]) => end > from)
    return hit ? hit[2] : Infinity
  }
  return layout.base + Math.floor((from - HEADER_BYTES) / layout.entrySize)
}

/** The first offset of the batch holding `offset`: recovery keeps whole batches only. */
function batchStart(batchEnds, offset) {
  if (!Number.isFinite(offset)) return offset
  let start = 0
  for (const end of batchEnds) {
    if (end >= offset) break
    start = end + 1
  }
  return Math.min(start, offset)
}

/** Offsets of every frame that ends a batch, over every store of `dir`. */
function batchEndsIn(dir) {
  const ends = []
  for (const name of fs.readdirSync(dir).filter((entry) => entry.endsWith(format.STORE_SUFFIX)).sort()) {
    for (const [, , offset, flags] of storeLayout(path.join(dir, name)).frames) if (flags & format.FLAG_BATCH_END) ends.push(offset)
  }
  return ends
}

// ---------------------------------------------------------------------------------------------
// The check child: reads a damaged fixture and reports raw observations (classification is the parent's).

const isLogError = (error) => error instanceof LogError && typeof error.code === 'string'

/** Runs one phase; a LogError ends it as a typed error, anything else is a crash. */
async function phase(action) {
  const observed = { errors: {}, wrong: [], ok: [] }
  try {
    await action(observed)
  } catch (error) {
    if (!isLogError(error)) return { ...observed, crash: String(error?.stack ?? error) }
    observed.errors[`${observed.where ?? 'open'}:${error.code}`] = (observed.errors[`${observed.where ?? 'open'}:${error.code}`] ?? 0) + 1
    if (observed.where === undefined) observed.openError = error.code
  }
  return observed
}

function countError(observed, where, error) {
  if (!isLogError(error)) throw error
  observed.errors[`${where}:${error.code}`] = (observed.errors[`${where}:${error.code}`] ?? 0) + 1
}

function readEvery(log, seed, observed) {
  for (let offset = log.startOffset; offset < log.endOffset; offset++) {
    let bytes
    try {
      bytes = log.read(offset)
    } catch (error) {
      countError(observed, 'read', error)
      continue
    }
    if (Buffer.compare(bytes, payloadFor(offset, seed)) === 0) observed.ok.push(offset)
    else observed.wrong.push(offset)
  }
}

async function iterateRecords(log, seed, observed) {
  let expected = log.startOffset
  try {
    for await (const { offset, value } of log.records({ from: log.startOffset })) {
      if (offset !== expected || Buffer.compare(value, payloadFor(offset, seed)) !== 0) observed.wrong.push(offset)
      expected = offset + 1
    }
  } catch (error) {
    countError(observed, 'records', error)
  }
  observed.iterated = expected - log.startOffset
}

async function checkLog(dir, seed, readOnly) {
  return phase(async (observed) => {
    const log = await SegmentedLog.open(dir, readOnly ? { readOnly: true } : LOG_OPTIONS)
    observed.where = 'read'
    try {
      observed.start = log.startOffset
      observed.end = log.endOffset
      observed.recovery = log.recovery
      readEvery(log, seed, observed)
      await iterateRecords(log, seed, observed)
      if (readOnly) return
      observed.where = 'append'
      const end = log.endOffset
      const extra = payloadFor(end, seed, 1)
      if ((await log.append(extra)) !== end) observed.wrong.push(end)
    } finally {
      await log.close()
    }
    observed.where = 'reopen'
    const again = await SegmentedLog.open(dir, LOG_OPTIONS)
    try {
      const end = again.endOffset - 1
      if (end !== observed.end || Buffer.compare(again.read(end), payloadFor(end, seed, 1)) !== 0) observed.wrong.push(end)
      const before = observed.ok.length
      const reread = { errors: {}, wrong: [], ok: [] }
      for (let offset = again.startOffset; offset < end; offset++) {
        try {
          if (Buffer.compare(again.read(offset), payloadFor(offset, seed)) !== 0) observed.wrong.push(offset)
          else reread.ok.push(offset)
        } catch (error) {
          countError(observed, 'reopen', error)
        }
      }
      if (reread.ok.length < before) observed.errors['reopen:fewer-records'] = before - reread.ok.length
    } finally {
      await again.close()
    }
  })
}

async function checkTopic(dir, seed) {
  return phase(async (observed) => {
    const topic = await Topic.open(dir)
    observed.where = 'read'
    observed.partitions = []
    try {
      for (let p = 0; p < topic.partitionCount; p++) {
        const partition = topic.partition(p)
        const seen = { start: partition.startOffset, end: partition.endOffset, ok: 0, wrong: 0 }
        for (let offset = partition.startOffset; offset < partition.endOffset; offset++) {
          try {
            const record = partition.read(offset)
            const same = Buffer.compare(record.value, topicValue(p, offset, seed)) === 0 && Buffer.from(record.key ?? []).toString() === topicKey(p, offset)
            if (same) seen.ok++
            else seen.wrong++
          } catch (error) {
            countError(observed, 'partition', error)
          }
        }
        observed.partitions.push(seen)
      }
      observed.where = 'group'
      const group = topic.consumerGroup(GROUP)
      const committed = []
      for (let p = 0; p < topic.partitionCount; p++) committed.push((await group.committed(p)) ?? null)
      observed.committed = committed
    } finally {
      await topic.close()
    }
  })
}

async function checkCase(item) {
  const result = { id: item.id }
  if (item.phases !== 'topic') {
    result.reader = await checkLog(path.join(item.dir, 'log'), item.seed, true)
    result.writer = await checkLog(path.join(item.dir, 'log'), item.seed, false)
  }
  if (item.phases !== 'log') result.topic = await checkTopic(path.join(item.dir, 'topic'), item.seed)
  return result
}

async function checkChild() {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue
    const item = JSON.parse(line)
    process.stdout.write(`begin ${item.id}\n`)
    process.stdout.write(`result ${JSON.stringify(await checkCase(item))}\n`)
  }
}

// ---------------------------------------------------------------------------------------------
// Classification

export const OUTCOMES = ['crash', 'wrong-bytes', 'lost-intact', 'typed-error', 'repaired', 'unchanged']
export const FAILURES = new Set(['crash', 'wrong-bytes', 'lost-intact'])
const worse = (a, b) => (OUTCOMES.indexOf(a) <= OUTCOMES.indexOf(b) ? a : b)

function classifyLog(observed, manifest, allowedFrom) {
  if (observed.crash) return { outcome: 'crash', detail: observed.crash.split('\n')[0] }
  const codes = Object.keys(observed.errors)
  if (observed.wrong.length > 0) return { outcome: 'wrong-bytes', codes, detail: `wrong bytes at ${observed.wrong.slice(0, 5).join(', ')}` }
  if (observed.openError) return { outcome: 'typed-error', codes }
  const ok = new Set(observed.ok)
  const lost = []
  for (let offset = manifest.log.start; offset < manifest.log.end; offset++) if (!ok.has(offset)) lost.push(offset)
  const lostIntact = lost.filter((offset) => offset < allowedFrom)
  const resurrected = observed.ok.filter((offset) => offset < manifest.log.start).length
  const notes = resurrected > 0 ? [`startOffset ${observed.start} (was ${manifest.log.start}): ${resurrected} deleted records readable again`] : []
  if (lostIntact.length > 0) {
    return { outcome: 'lost-intact', codes, lost: lost.length, detail: `lost ${lostIntact.length} records before the damage (${lostIntact.slice(0, 5).join(', ')}…), damage from ${allowedFrom}`, notes }
  }
  if (codes.length > 0) return { outcome: 'typed-error', codes, lost: lost.length, notes }
  const cut = observed.recovery && (observed.recovery.recordsCut > 0 || observed.recovery.segmentsRemoved > 0)
  if (lost.length > 0 || cut) return { outcome: 'repaired', codes, lost: lost.length, notes }
  return { outcome: 'unchanged', codes, lost: 0, notes }
}

function classifyTopic(observed, manifest, groupAllowedFrom) {
  if (observed.crash) return { outcome: 'crash', detail: observed.crash.split('\n')[0] }
  const codes = Object.keys(observed.errors)
  if (observed.openError) return { outcome: 'typed-error', codes }
  const partitions = observed.partitions ?? []
  if (partitions.some((p) => p.wrong > 0)) return { outcome: 'wrong-bytes', codes, detail: 'a partition record changed' }
  let lostRecords = 0
  manifest.topic.partitions.forEach((count, p) => (lostRecords += count - (partitions[p]?.ok ?? 0)))
  const notes = []
  if (partitions.length !== manifest.topic.partitions.length) notes.push(`topic reopened with ${partitions.length} partitions (was ${manifest.topic.partitions.length})`)
  let outcome = 'unchanged'
  let detail
  if (observed.committed) {
    const group = classifyCommitted(observed.committed, manifest, groupAllowedFrom)
    outcome = group.outcome
    detail = group.detail
  }
  if (lostRecords > 0 && codes.length === 0) {
    outcome = worse(outcome, 'lost-intact')
    detail = `${lostRecords} partition records are not readable${notes.length ? ` (${notes[0]})` : ''}`
  }
  if (codes.length > 0) outcome = worse(outcome, 'typed-error')
  return { outcome, codes, lost: lostRecords, detail, notes }
}

/** Committed offsets against the group log's records: only commits at or after the damage may be lost. */
function classifyCommitted(committed, manifest, allowedFrom) {
  let outcome = 'unchanged'
  let detail
  for (let p = 0; p < manifest.topic.partitions.length; p++) {
    const records = manifest.group.records.filter(([, partition]) => partition === p)
    const history = new Set(records.map(([, , value]) => value))
    const kept = records.filter(([offset]) => offset < allowedFrom)
    const floorAt = kept.length > 0 ? kept.at(-1)[0] : -1
    const valid = new Set(records.filter(([offset]) => offset >= floorAt).map(([, , value]) => value))
    const seen = committed[p] ?? null
    const final = records.at(-1)?.[2] ?? null
    if (seen === final) continue
    if (seen === null ? floorAt < 0 : valid.has(seen)) {
      outcome = worse(outcome, 'repaired')
      detail = `partition ${p} committed ${seen} (last commit ${final})`
    } else if (seen === null || history.has(seen)) {
      outcome = worse(outcome, 'lost-intact')
      detail = `partition ${p} committed ${seen}: commits before the damage were lost`
    } else {
      outcome = worse(outcome, 'wrong-bytes')
      detail = `partition ${p} committed ${seen}, which was never committed`
    }
  }
  return { outcome, detail }
}

export function classify(item, result) {
  const manifest = item.manifest
  const logAllowed = item.scope === 'log' ? item.allowedFrom : Infinity
  const groupAllowed = item.scope === 'group' ? item.allowedFrom : Infinity
  const phases = {}
  if (result.reader) phases.reader = classifyLog(result.reader, manifest, logAllowed)
  if (result.writer) phases.writer = classifyLog(result.writer, manifest, logAllowed)
  if (result.topic) phases.topic = classifyTopic(result.topic, manifest, groupAllowed)
  let outcome = 'unchanged'
  const codes = new Set()
  const notes = new Set()
  const details = []
  for (const [name, verdict] of Object.entries(phases)) {
    outcome = worse(outcome, verdict.outcome)
    for (const code of verdict.codes ?? []) codes.add(`${name}:${code}`)
    for (const note of verdict.notes ?? []) notes.add(note)
    if (verdict.detail) details.push(`${name}: ${verdict.detail}`)
  }
  const lost = Math.max(0, ...Object.values(phases).map((verdict) => verdict.lost ?? 0))
  return { outcome, phases, codes: [...codes], notes: [...notes], details, lost }
}

// ---------------------------------------------------------------------------------------------
// Running cases

/** Builds the fixture of (seed, variant) in a child process. */
function runBuild(dir, seed, variant) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, '--build', dir, String(seed), variant], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fixture build failed (${code}): ${stderr}`))))
  })
}

/**
 * Runs `items` through check children, one at a time per child. A child that dies mid-case (signal,
 * uncaught exception, timeout) makes that case a crash; a new child takes the rest.
 */
async function runChecks(items, onResult) {
  let rest = items
  while (rest.length > 0) {
    const { results, begun, code, signal, stderr, timedOut } = await runCheckChild(rest)
    for (const result of results) onResult(result)
    const answered = new Set(results.map((result) => result.id))
    const dead = begun !== undefined && !answered.has(begun) ? begun : undefined
    if (dead === undefined && results.length === 0) throw new Error(`check child failed before any case (code ${code}, ${signal}): ${stderr}`)
    if (dead !== undefined) {
      const why = timedOut ? `timed out after ${CASE_TIMEOUT_MS} ms` : `child died (code ${code}, signal ${signal})`
      onResult({ id: dead, died: `${why}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` })
      answered.add(dead)
    }
    rest = rest.filter((item) => !answered.has(item.id))
  }
}

function runCheckChild(items) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, '--check'], { stdio: ['pipe', 'pipe', 'pipe'] })
    const results = []
    let begun
    let stderr = ''
    let partial = ''
    let timedOut = false
    let watchdog
    const arm = () => {
      clearTimeout(watchdog)
      watchdog = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, CASE_TIMEOUT_MS)
    }
    arm()
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop()
      for (const line of lines) {
        if (line.startsWith('begin ')) {
          begun = line.slice(6)
          arm()
        } else if (line.startsWith('result ')) {
          results.push(JSON.parse(line.slice(7)))
          if (results.length === items.length) child.stdin.end()
        }
      }
    })
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    child.stdin.on('error', () => undefined) // the child may die before reading everything
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(watchdog)
      resolve({ results, begun, code, signal, stderr, timedOut })
    })
    for (const item of items) child.stdin.write(`${JSON.stringify(strip(item))}\n`)
  })
}

const strip = ({ id, dir, seed, phases }) => ({ id, dir, seed, phases })

/** Copies the fixture, damages one file, and describes the case (what may be lost, which phases run). */
function prepareCase(template, manifest, caseDir, fileKind, damageName, damage, seed, variant) {
  fs.rmSync(caseDir, { recursive: true, force: true })
  fs.cpSync(template, caseDir, { recursive: true })
  const kind = FILE_KINDS[fileKind]
  const random = generator(hashText(`${seed} ${variant} ${fileKind} ${damageName}`))
  const file = kind.pick(caseDir, random)
  const bytes = fs.existsSync(file) ? fs.readFileSync(file) : undefined
  let layout
  if (bytes && bytes.length >= HEADER_BYTES && file.endsWith(format.STORE_SUFFIX)) layout = storeLayout(file)
  if (bytes && file.endsWith(format.INDEX_SUFFIX)) {
    layout = { base: format.parseSegmentFileName(path.basename(file)).baseOffset, entrySize: format.INDEX_ENTRY_BYTES }
  }
  const batchEnds = kind.scope === 'none' ? [] : batchEndsIn(path.dirname(file))
  const range = damage.apply(file, bytes, random, layout)
  if (range === undefined) return undefined
  const allowedFrom = kind.scope === 'none' ? Infinity : batchStart(batchEnds, firstAffected(file, range, layout))
  return {
    id: path.basename(caseDir),
    dir: caseDir,
    seed,
    variant,
    fileKind,
    damage: damageName,
    file: path.relative(caseDir, file),
    range,
    scope: kind.scope,
    phases: kind.phases ?? (kind.scope === 'group' ? 'topic' : 'log'),
    allowedFrom,
    manifest,
  }
}

/**
 * Runs every (seed, variant, file kind, damage kind) case and returns them classified. `damages`
 * may add damage kinds (tests use it to forge a record whose checksum still matches).
 */
export async function runCorruptionCases({
  seeds = 5,
  seed = 1,
  baseDir,
  fileKinds = Object.keys(FILE_KINDS),
  damages = DAMAGES,
  variants = ['clean', 'crashed'],
  keepFailures = true,
  onCase,
}) {
  fs.mkdirSync(baseDir, { recursive: true })
  const started = Date.now()
  const items = []
  for (let s = seed; s < seed + seeds; s++) {
    for (const variant of variants) {
      const template = path.join(baseDir, `fixture-${s}-${variant}`)
      fs.rmSync(template, { recursive: true, force: true })
      await runBuild(template, s, variant)
      const manifest = JSON.parse(fs.readFileSync(path.join(template, 'manifest.json'), 'utf8'))
      fileKinds.forEach((fileKind, k) => {
        Object.entries(damages).forEach(([damageName, damage], d) => {
          const caseDir = path.join(baseDir, `case-${s}-${variant}-${k}-${d}`)
          const item = prepareCase(template, manifest, caseDir, fileKind, damageName, damage, s, variant)
          if (item) items.push(item)
          else fs.rmSync(caseDir, { recursive: true, force: true })
        })
      })
    }
  }
  const byId = new Map(items.map((item) => [item.id, item]))
  const cases = []
  await runChecks(items, (result) => {
    const item = byId.get(result.id)
    const verdict = result.died ? { outcome: 'crash', phases: {}, codes: [], notes: [], details: [result.died], lost: 0 } : classify(item, result)
    const entry = { seed: item.seed, variant: item.variant, fileKind: item.fileKind, damage: item.damage, file: item.file, range: item.range, allowedFrom: item.allowedFrom, ...verdict }
    cases.push(entry)
    if (!FAILURES.has(entry.outcome) || !keepFailures) fs.rmSync(item.dir, { recursive: true, force: true })
    onCase?.(entry, cases.length, items.length)
  })
  for (let s = seed; s < seed + seeds; s++) for (const variant of variants) fs.rmSync(path.join(baseDir, `fixture-${s}-${variant}`), { recursive: true, force: true })
  const failures = cases.filter((entry) => FAILURES.has(entry.outcome))
  return { cases, failures, elapsedMs: Date.now() - started }
}

// ---------------------------------------------------------------------------------------------
// Reporting

const LETTERS = { crash: 'C', 'wrong-bytes': 'W', 'lost-intact': 'L', 'typed-error': 'E', repaired: 'R', unchanged: 'U' }

/** A Markdown table: file kind × damage kind → outcome counts, then the error codes per file kind. */
export function formatTable(cases) {
  const kinds = [...new Set(cases.map((entry) => entry.fileKind))]
  const damages = [...new Set(cases.map((entry) => entry.damage))]
  const cell = (entries) => {
    if (entries.length === 0) return 'n/a'
    const counts = {}
    for (const entry of entries) counts[entry.outcome] = (counts[entry.outcome] ?? 0) + 1
    return OUTCOMES.filter((outcome) => counts[outcome]).map((outcome) => `${LETTERS[outcome]}${counts[outcome]}`).join(' ')
  }
  const lines = [`| file \\ damage | ${damages.join(' | ')} |`, `|---|${damages.map(() => '---').join('|')}|`]
  for (const kind of kinds) {
    lines.push(`| ${kind} | ${damages.map((damage) => cell(cases.filter((entry) => entry.fileKind === kind && entry.damage === damage))).join(' | ')} |`)
  }
  lines.push('', 'U unchanged, R repaired, E typed-error, L lost-intact (FAILURE), W wrong-bytes (FAILURE), C crash (FAILURE)', '')
  lines.push('| file | error codes seen (phase:where:code) | most records lost in one case | notes |', '|---|---|---|---|')
  for (const kind of kinds) {
    const entries = cases.filter((entry) => entry.fileKind === kind)
    const codes = [...new Set(entries.flatMap((entry) => entry.codes))].sort()
    const notes = [...new Set(entries.flatMap((entry) => entry.notes.map((note) => note.replace(/\d+/g, 'N'))))]
    lines.push(`| ${kind} | ${codes.join(', ') || '–'} | ${Math.max(0, ...entries.map((entry) => entry.lost))} | ${notes.join('; ') || ''} |`)
  }
  return lines.join('\n')
}

function flag(name, fallback) {
  const args = process.argv.slice(2)
  const at = args.findIndex((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))
  if (at < 0) return fallback
  return args[at].includes('=') ? args[at].split('=')[1] : args[at + 1]
}

const mode = process.argv[2]
if (mode === '--build') {
  const [dir, seed, variant] = process.argv.slice(3)
  await buildFixture(dir, Number(seed), variant)
} else if (mode === '--check') {
  await checkChild()
} else if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  const seeds = Number(flag('seeds', 5))
  const seed = Number(flag('seed', 1))
  const baseDir = path.resolve(flag('dir', path.join(REPO, '.test-tmp', 'corruption-harness')))
  const only = (name, all) => (flag(name, undefined) ?? all.join(',')).split(',').filter((entry) => all.includes(entry))
  const fileKinds = only('kinds', Object.keys(FILE_KINDS))
  const damages = Object.fromEntries(only('damages', Object.keys(DAMAGES)).map((name) => [name, DAMAGES[name]]))
  const variants = only('variants', ['clean', 'crashed'])
  process.stdout.write(`corruption harness: seeds ${seed}..${seed + seeds - 1}, ${variants.join(' and ')} fixtures, mmap ${mmapAvailable() ? 'on' : 'off (addon missing)'}, in ${baseDir}\n`)
  const result = await runCorruptionCases({
    seeds,
    seed,
    baseDir,
    fileKinds,
    damages,
    variants,
    onCase: (entry, done, total) => {
      if (FAILURES.has(entry.outcome)) {
        process.stdout.write(`FAILURE ${entry.outcome}: seed ${entry.seed} ${entry.variant} ${entry.fileKind} (${entry.file}) ${entry.damage} ${JSON.stringify(entry.range)}: ${entry.details.join('; ')}\n`)
      }
      if (done % 100 === 0 || done === total) process.stdout.write(`  ${done}/${total} cases\n`)
    },
  })
  const json = flag('json', undefined)
  if (json) fs.writeFileSync(json, JSON.stringify(result.cases, null, 1))
  process.stdout.write(`\n${formatTable(result.cases)}\n\n`)
  process.stdout.write(`${result.cases.length} cases in ${(result.elapsedMs / 1000).toFixed(1)} s: ${result.failures.length} failures\n`)
  process.exitCode = result.failures.length === 0 ? 0 : 1
}
