/**
 * `seglog dump <dir> [--from N] [--count N] [--partition P] [--json]`: prints records in offset
 * order through a readOnly handle (no lock, no writes, no repairs). For a topic, every partition in
 * turn unless `--partition` picks one; `--from` and `--count` apply to each partition. A `--from`
 * below the log's start offset starts at the start offset. Damage stops the dump with the record's
 * LogError (CORRUPT_RECORD, exit code 1).
 */
import type { CommandOptions } from './args.js'
import { UsageError } from './args.js'
import type { CliIo } from './output.js'
import { printRecord, viewRecord } from './record-view.js'
import { openReader, partitionDir, resolveTarget, selectedPartitions } from './target.js'

export async function runDump(dir: string, options: CommandOptions, io: CliIo): Promise<number> {
  const target = resolveTarget(dir)
  if (target.kind === 'log') {
    if (options.partition !== undefined) throw new UsageError('dump: --partition applies to topic directories only')
    await dumpLog(target.dir, undefined, options, io)
    return 0
  }
  for (const partition of selectedPartitions(target, options.partition)) {
    await dumpLog(partitionDir(target, partition), partition, options, io)
  }
  return 0
}

async function dumpLog(dir: string, partition: number | undefined, options: CommandOptions, io: CliIo): Promise<void> {
  const log = await openReader(dir)
  try {
    const from = Math.max(options.from ?? log.startOffset, log.startOffset)
    const to = options.count === undefined ? undefined : from + options.count
    for await (const record of log.records({ from, to })) printRecord(io, viewRecord(record, partition), options.json)
  } finally {
    await log.close()
  }
}
