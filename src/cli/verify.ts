/**
 * `seglog verify <dir>`: checks every checksum and index entry of a log, or of every partition log
 * and group offsets log of a topic (log-check.ts), and prints a report per segment. Exit code 1 when
 * anything is damaged. Changes nothing, so it runs safely beside a live writer.
 */
import fs from 'node:fs'
import path from 'node:path'
import { type Damage, type LogCheck, checkLog } from './log-check.js'
import { type CliIo, Progress, formatCount, formatTable } from './output.js'
import { type Target, groupOffsetsDir, partitionDir, resolveTarget } from './target.js'
import { describeWriter } from './writer-probe.js'

/** A log of the target with the name the report gives it. */
export interface NamedLog {
  name: string
  dir: string
}

/** The logs a target holds: itself, or a topic's partitions and group offsets logs. */
export function logsOf(target: Target): NamedLog[] {
  if (target.kind === 'log') return [{ name: 'log', dir: target.dir }]
  const partitions = Array.from({ length: target.partitions }, (_, i) => ({ name: `partition ${i}`, dir: partitionDir(target, i) }))
  const groups = target.groups.map((groupId) => ({ name: `group ${groupId} offsets`, dir: groupOffsetsDir(target, groupId) }))
  return [...partitions, ...groups]
}

export async function runVerify(dir: string, io: CliIo): Promise<number> {
  const target = resolveTarget(dir)
  if (target.kind === 'topic') io.stdout.write(`topic ${target.dir}: ${target.partitions} partition(s), ${target.groups.length} group(s)\n`)
  const progress = new Progress(io.stderr, 'verify')
  const damages: Damage[] = []
  let records = 0
  let bytes = 0
  const logs = logsOf(target)
  for (const log of logs) {
    if (!fs.existsSync(log.dir)) {
      damages.push({ offset: undefined, file: log.dir, why: `${log.name}: directory is missing` })
      continue
    }
    const check = checkLog(log.dir, (done) => progress.update(records + done, 'records checked'))
    progress.done()
    io.stdout.write(formatLogCheck(log.name, check))
    damages.push(...check.damages)
    records += check.segments.reduce((sum, segment) => sum + segment.records, 0)
    bytes += check.segments.reduce((sum, segment) => sum + segment.bytes, 0)
  }
  io.stdout.write(formatVerdict(damages, logs.length, records, bytes))
  return damages.length === 0 ? 0 : 1
}

/** One log's report: a row per segment, then its offsets and totals. */
export function formatLogCheck(name: string, check: LogCheck): string {
  const rows = check.segments.map((segment) => {
    const first = segment.damages[0]
    const status = segment.status === 'damaged' ? 'DAMAGED' : segment.status === 'writing' ? 'ok, tail being written' : segment.status
    const problem = first ? `${first.offset === undefined ? '' : `offset ${first.offset}: `}${first.why} (${path.basename(first.file)})` : ''
    return [path.basename(segment.storePath, '.log'), segment.records, segment.bytes, status, problem]
  })
  const records = check.segments.reduce((sum, segment) => sum + segment.records, 0)
  const bytes = check.segments.reduce((sum, segment) => sum + segment.bytes, 0)
  const lines = [
    `${name} ${check.dir} (${describeWriter(check.writer)})\n`,
    formatTable(['segment', 'records', 'bytes', 'status', 'problem'], rows),
    `  start offset ${check.startOffset}, end offset ${check.endOffset}, ${formatCount(records)} records checked, ${formatCount(bytes)} bytes\n`,
  ]
  const other = check.damages.filter((damage) => !check.segments.some((segment) => segment.damages.includes(damage)))
  for (const damage of other) lines.push(`  DAMAGED: ${damage.why} (${damage.file})\n`)
  return lines.join('')
}

function formatVerdict(damages: readonly Damage[], logs: number, records: number, bytes: number): string {
  if (damages.length === 0) return `verify: OK (${logs} log(s), ${formatCount(records)} records, ${formatCount(bytes)} bytes)\n`
  const first = damages.find((damage) => damage.offset !== undefined) ?? damages[0]!
  const lines = [`verify: DAMAGED (${damages.length} problem(s))\n`]
  if (first.offset !== undefined) lines.push(`  first damaged offset ${first.offset} in ${first.file}: ${first.why}\n`)
  for (const damage of damages) {
    if (damage === first && first.offset !== undefined) continue
    lines.push(`  ${damage.offset === undefined ? '' : `offset ${damage.offset} in `}${damage.file}: ${damage.why}\n`)
  }
  lines.push('  (`seglog repair` cuts torn tails and rebuilds indexes; damaged records in sealed segments need a backup or replica)\n')
  return lines.join('')
}
