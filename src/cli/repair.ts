/**
 * `seglog repair <dir>`: the recovery that opening a log as its writer runs, done explicitly and
 * reported. For each log (a topic: each partition and group offsets log, under the topic's lock so
 * that no owner starts meanwhile):
 *
 * 1. open as the writer: the newest segment's tail check, or after a crash its scan; a torn or
 *    damaged tail and an unfinished batch are cut (`log.recovery` says what was cut);
 * 2. sealed segments whose index disagrees with the store (found by log-check.ts) are opened for
 *    reading by the writer, which rebuilds their index from the store, as a first read would;
 * 3. close cleanly, then check the whole log again: whatever is still damaged (records damaged in a
 *    sealed segment's store: only a backup or replica has them) is reported, and exits 1.
 *
 * A live writer holding the log (or a topic's owner) makes the open fail with LOCKED: nothing is
 * touched.
 */
import path from 'node:path'
import { DirectoryLock } from '../lock.js'
import type { RecoveryReport } from '../log-loader.js'
import { SegmentedLog } from '../segmented-log.js'
import { type LogCheck, checkLog } from './log-check.js'
import { type CliIo, formatCount } from './output.js'
import { resolveTarget } from './target.js'
import { formatLogCheck, logsOf } from './verify.js'

interface RebuiltIndex {
  file: string
  why: string
}

export async function runRepair(dir: string, io: CliIo): Promise<number> {
  const target = resolveTarget(dir)
  const topicLock = target.kind === 'topic' ? DirectoryLock.acquire(target.dir) : undefined
  let damagedLogs = 0
  try {
    const logs = logsOf(target)
    for (const log of logs) {
      const after = await repairLog(log.name, log.dir, io)
      if (after.damages.length > 0) {
        damagedLogs++
        io.stdout.write(formatLogCheck(`still damaged: ${log.name}`, after))
      }
    }
    io.stdout.write(
      damagedLogs === 0
        ? `repair: OK (${logs.length} log(s) consistent)\n`
        : `repair: ${damagedLogs} log(s) still damaged: damaged records in sealed segments need a backup or replica\n`,
    )
  } finally {
    topicLock?.release()
  }
  return damagedLogs === 0 ? 0 : 1
}

async function repairLog(name: string, dir: string, io: CliIo): Promise<LogCheck> {
  const log = await SegmentedLog.open(dir, { mmap: 'never' })
  let rebuilt: RebuiltIndex[]
  try {
    rebuilt = rebuildDisagreeingIndexes(log)
  } finally {
    await log.close()
  }
  io.stdout.write(`${name} ${dir}\n  ${describeRecovery(log.recovery)}\n`)
  for (const index of rebuilt) io.stdout.write(`  rebuilt ${path.basename(index.file)} from its store (${index.why})\n`)
  return checkLog(dir)
}

/** Sealed segments whose only damage is in their index: the writer's first read rebuilds it. */
function rebuildDisagreeingIndexes(log: SegmentedLog): RebuiltIndex[] {
  const check = checkLog(log.dir)
  const rebuilt: RebuiltIndex[] = []
  for (const segment of log.segments) {
    if (segment.isActive) continue
    const found = check.segments.find((candidate) => candidate.baseOffset === segment.baseOffset)
    const damages = found?.damages ?? []
    if (damages.length === 0 || damages.some((damage) => damage.file !== segment.indexPath)) continue
    segment.openForRead(undefined, true)
    segment.release()
    rebuilt.push({ file: segment.indexPath, why: damages[0]!.why })
  }
  return rebuilt
}

export function describeRecovery(report: RecoveryReport): string {
  const opened = report.uncleanShutdown ? 'unclean shutdown' : 'clean shutdown'
  if (!report.scanned) return `${opened}; tail check passed, nothing cut`
  const cut = `cut ${formatCount(report.recordsCut)} record(s) and ${formatCount(report.bytesCut)} byte(s) from the tail`
  const removed = report.segmentsRemoved > 0 ? `, removed ${report.segmentsRemoved} segment(s)` : ''
  return `${opened}; newest segment scanned (${report.reason ?? 'no reason given'}); ${cut}${removed}; index rewritten`
}
