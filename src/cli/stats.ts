/**
 * `seglog stats <dir>`: a log's segments (base offset, records, bytes, sealed or active), its start
 * and end offsets and total bytes; for a topic, every partition, and every consumer group with its
 * committed offset and lag per partition. Read-only and cheap: record counts come from segment base
 * offsets and the newest segment's tail, not from a scan (`verify` checks the bytes).
 */
import { fileBytes } from '../fs-util.js'
import type { SegmentedLog } from '../segmented-log.js'
import { readCommittedOffsets } from './group-offsets.js'
import { type CliIo, Progress, formatCount, formatTable, formatTimestamp } from './output.js'
import { type TopicTarget, groupOffsetsDir, openReader, partitionDir, resolveTarget } from './target.js'
import { describeWriter, probeWriter } from './writer-probe.js'

interface PartitionEnd {
  startOffset: number
  endOffset: number
}

export async function runStats(dir: string, io: CliIo): Promise<number> {
  const target = resolveTarget(dir)
  if (target.kind === 'log') {
    await withReader(target.dir, (log) => io.stdout.write(formatLogStats('log', log)))
    return 0
  }
  io.stdout.write(`topic ${target.dir}: ${target.partitions} partition(s), created ${formatTimestamp(target.createdMs)}\n`)
  const ends: PartitionEnd[] = []
  for (let partition = 0; partition < target.partitions; partition++) {
    await withReader(partitionDir(target, partition), (log) => {
      io.stdout.write(formatLogStats(`partition ${partition}`, log))
      ends.push({ startOffset: log.startOffset, endOffset: log.highWatermark })
    })
  }
  await printGroups(target, ends, io)
  return 0
}

async function withReader(dir: string, use: (log: SegmentedLog) => void): Promise<void> {
  const log = await openReader(dir)
  try {
    use(log)
  } finally {
    await log.close()
  }
}

function formatLogStats(name: string, log: SegmentedLog): string {
  const segments = log.segments
  const rows = segments.map((segment, i) => {
    const state = i === segments.length - 1 ? 'active' : 'sealed'
    return [segment.baseOffset, segment.count, fileBytes(segment.storePath) ?? 0, state]
  })
  const bytes = rows.reduce((sum, row) => sum + (row[2] as number), 0)
  return [
    `${name} ${log.dir} (${describeWriter(probeWriter(log.dir))})\n`,
    formatTable(['base offset', 'records', 'bytes', 'state'], rows),
    `  ${segments.length} segment(s), start offset ${log.startOffset}, end offset ${log.highWatermark}, ` +
      `${formatCount(log.highWatermark - log.startOffset)} records, ${formatCount(bytes)} bytes\n`,
  ].join('')
}

/** Each group's committed offsets and lag, as ConsumerGroup.lag() computes it. */
async function printGroups(target: TopicTarget, ends: readonly PartitionEnd[], io: CliIo): Promise<void> {
  if (target.groups.length === 0) {
    io.stdout.write('no consumer groups\n')
    return
  }
  const progress = new Progress(io.stderr, 'stats: reading group offsets')
  for (const groupId of target.groups) {
    const committed = await readCommittedOffsets(groupOffsetsDir(target, groupId), (records) => progress.update(records, 'records'))
    progress.done()
    const rows = ends.map(({ startOffset, endOffset }, partition) => {
      const offset = committed.get(partition)
      const lag = endOffset - Math.max(offset ?? startOffset, startOffset)
      return [partition, offset ?? '-', endOffset, lag]
    })
    const totalLag = rows.reduce((sum, row) => sum + (row[3] as number), 0)
    io.stdout.write(`group ${groupId}: total lag ${formatCount(totalLag)}\n`)
    io.stdout.write(formatTable(['partition', 'committed', 'end offset', 'lag'], rows))
  }
}
