/**
 * A consumer group's committed offsets, read from its offsets log (`groups/<id>/offsets/`) by a
 * readOnly handle: the log is replayed from its start, the newest record for a partition wins and a
 * snapshot replaces everything before it (docs/format.md, "Group offsets records"), as
 * offset-store.ts does when the owner opens the group.
 */
import { OFFSET_RECORD_SNAPSHOT, decodeOffsetRecord } from '../format.js'
import { openReader } from './target.js'

/** Committed offsets (the next offset to read) by partition. */
export async function readCommittedOffsets(dir: string, onRecords: (records: number) => void = () => undefined): Promise<Map<number, number>> {
  const committed = new Map<number, number>()
  const log = await openReader(dir)
  try {
    let records = 0
    for await (const { offset, value } of log.records()) {
      const record = decodeOffsetRecord(value, offset, dir)
      if (record.kind === OFFSET_RECORD_SNAPSHOT) committed.clear()
      for (const [partition, next] of record.offsets) committed.set(partition, next)
      onRecords(++records)
    }
  } finally {
    await log.close()
  }
  return committed
}
