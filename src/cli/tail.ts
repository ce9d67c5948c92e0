/**
 * `seglog tail <dir> [--count N] [--partition P] [--follow] [--json]`: the last N records (default
 * 10) of a log, or of each partition of a topic; with `--follow`, then every record the writer
 * appends, until interrupted. Readers only: a followed log is woken by the library's directory
 * watch (and its slow poll), never by taking the writer's lock.
 */
import type { SegmentedLog } from '../segmented-log.js'
import type { CommandOptions } from './args.js'
import { UsageError } from './args.js'
import type { CliIo } from './output.js'
import { printRecord, viewRecord } from './record-view.js'
import { openReader, partitionDir, resolveTarget, selectedPartitions } from './target.js'

export const TAIL_COUNT_DEFAULT = 10

interface Tailed {
  log: SegmentedLog
  partition: number | undefined
}

export async function runTail(dir: string, options: CommandOptions, io: CliIo): Promise<number> {
  const tailed = await openTailed(dir, options.partition)
  try {
    const ends = tailed.map(({ log, partition }) => printLast(log, partition, options, io))
    if (options.follow) {
      const signal = io.interrupt?.() ?? new AbortController().signal
      await Promise.all(tailed.map(({ log, partition }, i) => follow(log, partition, ends[i]!, signal, options, io)))
    }
  } finally {
    await Promise.all(tailed.map(({ log }) => log.close()))
  }
  return 0
}

async function openTailed(dir: string, partition: number | undefined): Promise<Tailed[]> {
  const target = resolveTarget(dir)
  if (target.kind === 'log') {
    if (partition !== undefined) throw new UsageError('tail: --partition applies to topic directories only')
    return [{ log: await openReader(target.dir), partition: undefined }]
  }
  const tailed: Tailed[] = []
  try {
    for (const id of selectedPartitions(target, partition)) tailed.push({ log: await openReader(partitionDir(target, id)), partition: id })
  } catch (error) {
    await Promise.all(tailed.map(({ log }) => log.close()))
    throw error
  }
  return tailed
}

/** Prints the last `--count` records visible now; returns the offset after them. */
function printLast(log: SegmentedLog, partition: number | undefined, options: CommandOptions, io: CliIo): number {
  const end = log.highWatermark
  const from = Math.max(log.startOffset, end - (options.count ?? TAIL_COUNT_DEFAULT))
  for (let offset = from; offset < end; offset++) printRecord(io, viewRecord(log.readRecord(offset), partition), options.json)
  return end
}

async function follow(log: SegmentedLog, partition: number | undefined, from: number, signal: AbortSignal, options: CommandOptions, io: CliIo): Promise<void> {
  for await (const record of log.records({ from, follow: true, signal })) printRecord(io, viewRecord(record, partition), options.json)
}
