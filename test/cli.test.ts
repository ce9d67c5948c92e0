/**
 * `seglog` CLI specs (src/cli/). Logs and topics are built with the public API, damaged with fs at
 * positions computed from src/format.ts, and inspected with runCli in-process (exit code, stdout,
 * stderr). The last block runs the built dist/cli/main.js as a real process: exit codes, no progress
 * output into pipes, and `tail --follow` ended by SIGINT.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../src/cli/run-cli.js'
import { SegmentedLog, Topic } from '../src/index.js'
import {
  FILE_HEADER_BYTES,
  FLAG_BATCH_END,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  INDEX_SUFFIX,
  STORE_SUFFIX,
  encodeFrame,
  encodeIndexEntry,
  segmentFileName,
  writeU64,
} from '../src/format.js'
import { REPO, ensureBuilt } from './helpers/build-dist.js'
import { tempDir } from './helpers/temp-dir.js'

// ---------------------------------------------------------------------------------------------
// Fixtures: a log of 25 records in segments of 10 (bases 0, 10, 20), payloads and timestamps derived
// from the offset, so every test knows which bytes sit where.

const T0 = 1_700_000_000_000 // 2023-11-14T22:13:20.000Z
const RECORDS = 25
const SEGMENT_RECORDS = 10

const payloadFor = (offset: number): Buffer => Buffer.from(`record-${offset}`)
const timestampFor = (offset: number): number => T0 + offset * 1000
const storeOf = (dir: string, base: number): string => path.join(dir, segmentFileName(base, STORE_SUFFIX))
const indexOf = (dir: string, base: number): string => path.join(dir, segmentFileName(base, INDEX_SUFFIX))

/** Position of `offset`'s frame in the store of the segment whose first record is `base`. */
function framePosition(base: number, offset: number): number {
  let position = FILE_HEADER_BYTES
  for (let o = base; o < offset; o++) position += FRAME_HEADER_BYTES + payloadFor(o).length
  return position
}

const openLogs: SegmentedLog[] = []
const openTopics: Topic[] = []
afterEach(async () => {
  for (const log of openLogs.splice(0)) await log.close().catch(() => undefined)
  for (const topic of openTopics.splice(0)) await topic.close().catch(() => undefined)
})

/** Appends the fixture's records; returns the writer, still open. */
async function openWriter(dir: string, records = RECORDS): Promise<SegmentedLog> {
  const log = await SegmentedLog.open(dir, { segmentRecordsMax: SEGMENT_RECORDS })
  openLogs.push(log)
  for (let offset = log.endOffset; offset < records; offset++) await log.append(payloadFor(offset), { timestampMs: timestampFor(offset) })
  return log
}

async function makeLog(records = RECORDS): Promise<string> {
  const dir = tempDir('cli-log')
  await (await openWriter(dir, records)).close()
  return dir
}

/**
 * A topic of 2 partitions: partition 0 gets 6 keyed records with headers, partition 1 gets 4, group
 * `billing` consumes and commits all 10, then partition 1 gets 3 more (lag 3); group `audit` joins
 * and never commits (lag = every record).
 */
async function makeTopic(): Promise<{ dir: string; topic: Topic }> {
  const dir = tempDir('cli-topic')
  const topic = await Topic.open(dir, { partitions: 2, segmentRecordsMax: 4 })
  openTopics.push(topic)
  for (let i = 0; i < 6; i++) await topic.send({ partition: 0, key: `key-${i}`, value: `p0-${i}`, headers: { trace: `t${i}` }, timestamp: timestampFor(i) })
  for (let i = 0; i < 4; i++) await topic.send({ partition: 1, key: null, value: Buffer.from([0, 1, 2, i]), timestamp: timestampFor(i) })
  const billing = await topic.consumerGroup('billing').join()
  let consumed = 0
  while (consumed < 10) consumed += (await billing.poll({ maxRecords: 100, timeoutMs: 1000 })).length
  await billing.commit()
  await billing.close()
  await (await topic.consumerGroup('audit').join()).close()
  for (let i = 4; i < 7; i++) await topic.send({ partition: 1, value: `p1-${i}`, timestamp: timestampFor(i) })
  return { dir, topic }
}

/** Every file under `dir` with its bytes and modification time. */
function snapshot(dir: string): Map<string, { bytes: string; mtimeMs: number }> {
  const files = new Map<string, { bytes: string; mtimeMs: number }>()
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath, entry.name)
    files.set(path.relative(dir, file), { bytes: fs.readFileSync(file).toString('hex'), mtimeMs: fs.statSync(file).mtimeMs })
  }
  return files
}

function flipByte(file: string, position: number): void {
  const fd = fs.openSync(file, 'r+')
  const byte = Buffer.alloc(1)
  fs.readSync(fd, byte, 0, 1, position)
  byte[0] = byte[0]! ^ 0xff
  fs.writeSync(fd, byte, 0, 1, position)
  fs.closeSync(fd)
}

/** The frame header of record `relativeOffset` claiming 100 payload bytes, and 10 of them: a torn frame. */
function halfFrame(relativeOffset: number): Buffer {
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + 10, 0x61)
  frame.writeUInt32LE(0xdeadbeef, 0)
  frame.writeUInt32LE(100, 4)
  frame.writeUInt32LE(relativeOffset, 8)
  frame.writeUInt32LE(FLAG_BATCH_END, 12)
  writeU64(frame, 16, T0)
  return frame
}

/**
 * Appends a whole, checksummed record to segment 20 (store and index) without BATCH_END: the first
 * record of a batch whose end never reached the disk.
 */
function appendUnfinishedBatch(dir: string): void {
  const payload = Buffer.from('batch-start')
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + payload.length)
  encodeFrame(frame, 0, RECORDS - 20, 0, T0, payload)
  const entry = Buffer.alloc(INDEX_ENTRY_BYTES)
  encodeIndexEntry(entry, 0, { position: framePosition(20, RECORDS), payloadBytes: payload.length, timestampMs: timestampFor(RECORDS - 1) })
  fs.appendFileSync(storeOf(dir, 20), frame)
  fs.appendFileSync(indexOf(dir, 20), entry)
}

interface CliResult {
  code: number
  stdout: string
  stderr: string
}

async function cli(args: string[], options: { stderrIsTTY?: boolean; signal?: AbortSignal } = {}): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const io = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), isTTY: options.stderrIsTTY ?? false },
    interrupt: () => options.signal ?? new AbortController().signal,
  }
  const code = await runCli(args, io)
  return { code, stdout, stderr }
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// ---------------------------------------------------------------------------------------------

describe('seglog verify', () => {
  it('passes a healthy log: exit 0, one ok row per segment, offsets and totals', async () => {
    const dir = await makeLog()
    const { code, stdout, stderr } = await cli(['verify', dir])
    expect(code).toBe(0)
    expect(stderr).toBe('')
    expect(stdout).toMatch(/^\s+00000000000000000000\s+10\s+[\d,]+\s+ok$/m)
    expect(stdout).toMatch(/^\s+00000000000000000010\s+10\s+[\d,]+\s+ok$/m)
    expect(stdout).toMatch(/^\s+00000000000000000020\s+5\s+[\d,]+\s+ok$/m)
    expect(stdout).toContain('start offset 0, end offset 25, 25 records checked')
    expect(stdout).toMatch(/verify: OK \(1 log\(s\), 25 records/)
  })

  it('passes a healthy topic, checking every partition log and group offsets log', async () => {
    const { dir, topic } = await makeTopic()
    await topic.close()
    const { code, stdout } = await cli(['verify', dir])
    expect(code).toBe(0)
    expect(stdout).toContain(`partition 0 ${path.join(dir, 'partition-0')}`)
    expect(stdout).toContain(`partition 1 ${path.join(dir, 'partition-1')}`)
    expect(stdout).toContain(`group audit offsets ${path.join(dir, 'groups', 'audit', 'offsets')}`)
    expect(stdout).toContain(`group billing offsets ${path.join(dir, 'groups', 'billing', 'offsets')}`)
    expect(stdout).toMatch(/verify: OK \(4 log\(s\), 15 records/)
  })

  const damages: [string, (dir: string) => void, number, (dir: string) => string, RegExp][] = [
    ['a flipped byte in a sealed segment store', (dir) => flipByte(storeOf(dir, 10), framePosition(10, 13) + FRAME_HEADER_BYTES + 2), 13, (dir) => storeOf(dir, 10), /checksum mismatch at position/],
    ['a junk index', (dir) => fs.writeFileSync(indexOf(dir, 0), Buffer.alloc(FILE_HEADER_BYTES + 10 * 16, 0x5a)), 0, (dir) => indexOf(dir, 0), /bad magic number/],
    ['junk entries after a valid index header', (dir) => fs.writeFileSync(indexOf(dir, 10), Buffer.concat([fs.readFileSync(indexOf(dir, 10)).subarray(0, FILE_HEADER_BYTES + 4 * 16), Buffer.alloc(6 * 16, 0x5a)])), 14, (dir) => indexOf(dir, 10), /index entry of offset 14 points to position/],
    ['a truncated store', (dir) => fs.truncateSync(storeOf(dir, 0), framePosition(0, 7) + 5), 7, (dir) => storeOf(dir, 0), /torn frame/],
    ['a torn tail (garbage half-frame after the last record)', (dir) => fs.appendFileSync(storeOf(dir, 20), halfFrame(5)), 25, (dir) => storeOf(dir, 20), /torn frame at position/],
  ]

  it.each(damages)('fails on %s: exit 1, naming the first damaged offset and the file', async (_, damage, offset, file, why) => {
    const dir = await makeLog()
    damage(dir)
    const { code, stdout } = await cli(['verify', dir])
    expect(code).toBe(1)
    expect(stdout).toMatch(/DAMAGED/)
    const verdict = stdout.slice(stdout.indexOf('verify: DAMAGED'))
    expect(verdict).toContain(`first damaged offset ${offset} in ${file(dir)}: `)
    expect(verdict).toMatch(why)
  })

  it('fails on an unfinished batch at the end of a log that no live writer holds', async () => {
    const dir = await makeLog()
    appendUnfinishedBatch(dir)
    const { code, stdout } = await cli(['verify', dir])
    expect(code).toBe(1)
    expect(stdout).toContain('DAMAGED (1 problem(s))')
    expect(stdout).toContain(`first damaged offset ${RECORDS} in ${storeOf(dir, 20)}: records from offset ${RECORDS} on belong to a batch that never finished`)
  })

  it('changes no file, not even on a log that opening would repair', async () => {
    const dir = await makeLog()
    fs.appendFileSync(storeOf(dir, 20), halfFrame(5))
    fs.writeFileSync(indexOf(dir, 0), Buffer.alloc(100, 0x5a))
    const before = snapshot(dir)
    expect((await cli(['verify', dir])).code).toBe(1)
    expect(snapshot(dir)).toEqual(before)
  })

  it('finds damage while the log’s writer is still running, and accepts the tail it is writing', async () => {
    const dir = tempDir('cli-live')
    const writer = await openWriter(dir)
    flipByte(storeOf(dir, 0), framePosition(0, 3) + FRAME_HEADER_BYTES)
    const { code, stdout } = await cli(['verify', dir])
    expect(code).toBe(1)
    expect(stdout).toContain(`live writer (pid ${process.pid})`)
    expect(stdout).toContain(`first damaged offset 3 in ${storeOf(dir, 0)}`)
    expect(stdout).toContain('DAMAGED (1 problem(s))')
    expect(stdout).toMatch(/^\s+00000000000000000020\s+5\s+[\d,]+\s+ok/m)
    expect(writer.endOffset).toBe(RECORDS)
  })

  it('shows a progress counter on a terminal’s stderr, and nothing on a pipe', async () => {
    const dir = await makeLog()
    expect((await cli(['verify', dir], { stderrIsTTY: true })).stderr).toMatch(/\rverify: \d+ records checked/)
    expect((await cli(['verify', dir], { stderrIsTTY: false })).stderr).toBe('')
  })
})

describe('seglog dump', () => {
  it('prints every record: offset, ISO timestamp, size, value as text or a hex preview', async () => {
    const dir = tempDir('cli-dump')
    const log = await SegmentedLog.open(dir)
    openLogs.push(log)
    await log.append(Buffer.from('hello'), { timestampMs: T0 })
    await log.append(Buffer.from([0, 1, 0xfe, 0xff]), { timestampMs: T0 + 1 })
    await log.close()
    const { code, stdout } = await cli(['dump', dir])
    expect(code).toBe(0)
    expect(stdout).toBe(
      'offset=0 timestamp=2023-11-14T22:13:20.000Z size=5 value="hello"\n' + 'offset=1 timestamp=2023-11-14T22:13:20.001Z size=4 value=hex:0001feff\n',
    )
  })

  it('--from and --count select records across segments', async () => {
    const dir = await makeLog()
    const { stdout } = await cli(['dump', dir, '--from', '8', '--count=4'])
    expect(stdout.trim().split('\n').map((line) => /offset=(\d+)/.exec(line)?.[1])).toEqual(['8', '9', '10', '11'])
    expect(stdout).toContain(`offset=10 timestamp=${new Date(timestampFor(10)).toISOString()} size=9 value="record-10"`)
    expect((await cli(['dump', dir, '--from', '30'])).stdout).toBe('')
  })

  it('--json prints one JSON object per line; bytes that are not text as base64', async () => {
    const { dir } = await makeTopic()
    const { code, stdout } = await cli(['dump', dir, '--partition', '1', '--count', '1', '--json'])
    expect(code).toBe(0)
    expect(stdout.trim().split('\n')).toHaveLength(1)
    expect(JSON.parse(stdout)).toEqual({
      partition: 1,
      offset: 0,
      timestamp: new Date(T0).toISOString(),
      timestampMs: T0,
      size: 12,
      key: null,
      headers: {},
      value: { base64: Buffer.from([0, 1, 2, 0]).toString('base64') },
    })
  })

  it('prints a topic’s keys and headers, every partition unless --partition picks one', async () => {
    const { dir } = await makeTopic()
    const all = (await cli(['dump', dir])).stdout.trim().split('\n')
    expect(all).toHaveLength(13)
    expect(all[0]).toBe(`partition=0 offset=0 timestamp=${new Date(T0).toISOString()} size=30 key="key-0" headers={"trace":"t0"} value="p0-0"`)
    expect(all[6]).toMatch(/^partition=1 offset=0 .* key=null value=hex:00010200$/)
    const one = (await cli(['dump', dir, '--partition', '1', '--from', '4'])).stdout.trim().split('\n')
    expect(one).toEqual([4, 5, 6].map((i) => `partition=1 offset=${i} timestamp=${new Date(timestampFor(i)).toISOString()} size=12 key=null value="p1-${i}"`))
  })

  it('refuses a partition the topic does not have (UNKNOWN_PARTITION, exit 1)', async () => {
    const { dir } = await makeTopic()
    const { code, stderr } = await cli(['dump', dir, '--partition', '2'])
    expect(code).toBe(1)
    expect(stderr).toMatch(/UNKNOWN_PARTITION: partition 2 does not exist/)
  })
})

describe('seglog stats', () => {
  it('lists a log’s segments (base offset, records, bytes, sealed/active), offsets and total bytes', async () => {
    const dir = await makeLog()
    const { code, stdout } = await cli(['stats', dir])
    expect(code).toBe(0)
    const bytes = (base: number): number => fs.statSync(storeOf(dir, base)).size
    expect(stdout).toMatch(new RegExp(`^\\s+0\\s+10\\s+${bytes(0)}\\s+sealed$`, 'm'))
    expect(stdout).toMatch(new RegExp(`^\\s+10\\s+10\\s+${bytes(10)}\\s+sealed$`, 'm'))
    expect(stdout).toMatch(new RegExp(`^\\s+20\\s+5\\s+${bytes(20)}\\s+active$`, 'm'))
    const total = (bytes(0) + bytes(10) + bytes(20)).toLocaleString('en-US')
    expect(stdout).toContain(`3 segment(s), start offset 0, end offset 25, 25 records, ${total} bytes`)
  })

  it('shows a topic’s partitions and each group’s committed offsets and lag, as the library computes them', async () => {
    const { dir, topic } = await makeTopic()
    const { code, stdout } = await cli(['stats', dir])
    expect(code).toBe(0)
    expect(stdout).toContain(`topic ${dir}: 2 partition(s)`)
    expect(stdout).toMatch(/partition 0 .*\n(.*\n)*?\s+2 segment\(s\), start offset 0, end offset 6, 6 records/)
    expect(stdout).toMatch(/partition 1 .*\n(.*\n)*?\s+2 segment\(s\), start offset 0, end offset 7, 7 records/)
    const billing = stdout.slice(stdout.indexOf('group billing'))
    expect(billing).toMatch(/^group billing: total lag 3\n.*\n\s+0\s+6\s+6\s+0\n\s+1\s+4\s+7\s+3\n/)
    const audit = stdout.slice(stdout.indexOf('group audit'), stdout.indexOf('group billing'))
    expect(audit).toMatch(/^group audit: total lag 13\n.*\n\s+0\s+-\s+6\s+6\n\s+1\s+-\s+7\s+7\n/)
    const lag = await topic.consumerGroup('billing').lag()
    expect(lag.map((row) => [row.committed, row.endOffset, row.lag])).toEqual([
      [6, 6, 0],
      [4, 7, 3],
    ])
  })

  it('changes no file of a topic whose owner is running', async () => {
    const { dir } = await makeTopic()
    const before = snapshot(dir)
    expect((await cli(['stats', dir])).code).toBe(0)
    expect(snapshot(dir)).toEqual(before)
  })
})

describe('seglog tail', () => {
  it('prints the last N records (default 10)', async () => {
    const dir = await makeLog()
    const offsets = (output: string): string[] => output.trim().split('\n').map((line) => /offset=(\d+)/.exec(line)![1]!)
    expect(offsets((await cli(['tail', dir, '--count', '3'])).stdout)).toEqual(['22', '23', '24'])
    expect(offsets((await cli(['tail', dir])).stdout)).toEqual(Array.from({ length: 10 }, (_, i) => String(15 + i)))
  })

  it('--follow then prints each record the writer appends, until interrupted', async () => {
    const dir = tempDir('cli-follow')
    const writer = await openWriter(dir)
    const interrupt = new AbortController()
    let stdout = ''
    const io = { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: () => true }, interrupt: () => interrupt.signal }
    const running = runCli(['tail', dir, '--follow', '--count', '1'], io)
    await waitFor(() => stdout.includes('offset=24'))
    await writer.append(Buffer.from('appended later'), { timestampMs: T0 })
    await waitFor(() => stdout.includes('value="appended later"'))
    interrupt.abort()
    expect(await running).toBe(0)
    expect(stdout.trim().split('\n').map((line) => /offset=(\d+)/.exec(line)![1])).toEqual(['24', '25'])
  })
})

describe('seglog repair', () => {
  it('cuts a torn tail left by a garbage half-frame, reports it, and leaves a log that verifies', async () => {
    const dir = await makeLog()
    fs.appendFileSync(storeOf(dir, 20), halfFrame(5))
    const { code, stdout } = await cli(['repair', dir])
    expect(code).toBe(0)
    expect(stdout).toContain('newest segment scanned')
    expect(stdout).toContain(`cut 1 record(s) and ${FRAME_HEADER_BYTES + 10} byte(s) from the tail`)
    expect(stdout).toContain('repair: OK')
    expect(fs.statSync(storeOf(dir, 20)).size).toBe(framePosition(20, 25))
    expect((await cli(['verify', dir])).code).toBe(0)
  })

  it('cuts an unfinished batch at the end of the log', async () => {
    const dir = await makeLog()
    appendUnfinishedBatch(dir)
    const { code, stdout } = await cli(['repair', dir])
    expect(code).toBe(0)
    expect(stdout).toContain('newest segment scanned (last record does not end a batch)')
    expect(stdout).toContain('cut 1 record(s)')
    expect(fs.statSync(storeOf(dir, 20)).size).toBe(framePosition(20, RECORDS))
  })

  it('rebuilds a sealed segment’s junk index from its store', async () => {
    const dir = await makeLog()
    const good = fs.readFileSync(indexOf(dir, 10))
    fs.writeFileSync(indexOf(dir, 10), Buffer.concat([good.subarray(0, FILE_HEADER_BYTES), Buffer.alloc(good.length - FILE_HEADER_BYTES, 0x5a)]))
    const { code, stdout } = await cli(['repair', dir])
    expect(code).toBe(0)
    expect(stdout).toContain(`rebuilt ${segmentFileName(10, INDEX_SUFFIX)} from its store`)
    expect(fs.readFileSync(indexOf(dir, 10))).toEqual(good)
  })

  it('reports damage it cannot repair (a record damaged in a sealed store) and exits 1', async () => {
    const dir = await makeLog()
    flipByte(storeOf(dir, 0), framePosition(0, 4) + FRAME_HEADER_BYTES)
    const { code, stdout } = await cli(['repair', dir])
    expect(code).toBe(1)
    expect(stdout).toMatch(/offset 4: checksum mismatch/)
    expect(stdout).toContain('repair: 1 log(s) still damaged')
  })

  it('refuses while a live writer holds the log (LOCKED, exit 1) and changes nothing', async () => {
    const dir = tempDir('cli-locked')
    await openWriter(dir)
    const before = snapshot(dir)
    const { code, stdout, stderr } = await cli(['repair', dir])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/^seglog: LOCKED: /)
    expect(stderr).toContain('stop the writer first')
    expect(snapshot(dir)).toEqual(before)
  })

  it('repairs each partition of a topic, and refuses while the topic’s owner runs', async () => {
    const { dir, topic } = await makeTopic()
    expect((await cli(['repair', dir])).stderr).toMatch(/LOCKED/)
    await topic.close()
    fs.appendFileSync(storeOf(path.join(dir, 'partition-1'), 4), halfFrame(3))
    const { code, stdout } = await cli(['repair', dir])
    expect(code).toBe(0)
    const partition1 = stdout.slice(stdout.indexOf('partition 1'), stdout.indexOf('group'))
    expect(partition1).toContain('cut 1 record(s)')
    expect(stdout.slice(stdout.indexOf('partition 0'), stdout.indexOf('partition 1'))).toContain('nothing cut')
    expect(stdout).toContain('group billing offsets')
    expect((await cli(['verify', dir])).code).toBe(0)
  })
})

describe('seglog usage and errors', () => {
  it.each([
    [[]],
    [['help']],
    [['--help']],
    [['verify', '--help']],
    [['frobnicate', '/tmp']],
    [['dump']],
    [['dump', 'a', 'b']],
    [['dump', 'dir', '--count', 'ten']],
    [['dump', 'dir', '--from']],
    [['verify', 'dir', '--json']],
    [['stats', 'dir', '--follow']],
  ])('%j: usage on stderr, exit 2', async (args) => {
    const { code, stdout, stderr } = await cli(args)
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toContain('usage: seglog <command> <dir> [options]')
  })

  it('a LogError prints its code and message on stderr and exits 1', async () => {
    const missing = path.join(tempDir('cli-missing'), 'nothing-here')
    const { code, stderr } = await cli(['stats', missing])
    expect(code).toBe(1)
    expect(stderr).toBe(`seglog: INVALID_ARGUMENT: no such directory (${missing})\n`)
  })

  it('a directory that is neither a log nor a topic is refused', async () => {
    const { code, stderr } = await cli(['verify', tempDir('cli-empty')])
    expect(code).toBe(1)
    expect(stderr).toMatch(/INVALID_ARGUMENT: not a seglog log or topic directory/)
  })
})

// ---------------------------------------------------------------------------------------------
// The built executable

const MAIN = path.join(REPO, 'dist', 'cli', 'main.js')

function runMain(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

describe('dist/cli/main.js as a process', () => {
  beforeAll(() => ensureBuilt(), 180_000)

  it('starts with a shebang line', () => {
    expect(fs.readFileSync(MAIN, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node')
  })

  it('verify exits 0 on a healthy log and 1 on a damaged one, with the report on stdout and no progress in a pipe', async () => {
    const dir = await makeLog()
    expect(await runMain(['verify', dir])).toMatchObject({ code: 0, stderr: '' })
    flipByte(storeOf(dir, 10), framePosition(10, 11) + FRAME_HEADER_BYTES)
    const damaged = await runMain(['verify', dir])
    expect(damaged.code).toBe(1)
    expect(damaged.stderr).toBe('')
    expect(damaged.stdout).toContain(`first damaged offset 11 in ${storeOf(dir, 10)}: checksum mismatch`)
  })

  it('exits 2 with usage on stderr for an unknown command', async () => {
    const { code, stderr } = await runMain(['frobnicate'])
    expect(code).toBe(2)
    expect(stderr).toContain("unknown command 'frobnicate'")
  })

  it('tail --follow prints a record the writer appends afterwards, and exits 0 on SIGINT', async () => {
    const dir = tempDir('cli-follow-process')
    const writer = await openWriter(dir)
    const child = spawn(process.execPath, [MAIN, 'tail', dir, '--follow', '--count', '2'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    try {
      await waitFor(() => stdout.includes('offset=24'))
      await writer.append(Buffer.from('from the writer'), { timestampMs: T0 })
      await waitFor(() => stdout.includes('offset=25'))
    } finally {
      child.kill('SIGINT')
    }
    expect(await exited).toBe(0)
    expect(stdout.trim().split('\n')).toEqual([
      `offset=23 timestamp=${new Date(timestampFor(23)).toISOString()} size=9 value="record-23"`,
      `offset=24 timestamp=${new Date(timestampFor(24)).toISOString()} size=9 value="record-24"`,
      `offset=25 timestamp=${new Date(T0).toISOString()} size=15 value="from the writer"`,
    ])
  })
})
