/**
 * Records as `dump` and `tail` show them: a log's records as stored, a topic partition's decoded
 * from their envelope (key, headers, value; docs/format.md, "Record envelope").
 */
import { decodeEnvelope } from '../format.js'
import type { LogRecord } from '../segmented-log.js'
import { type CliIo, type PrintableRecord, formatRecordJson, formatRecordLine } from './output.js'

/** `partition` is given for a topic's partition logs, whose payloads are envelopes. */
export function viewRecord(record: LogRecord, partition: number | undefined): PrintableRecord {
  if (partition === undefined) return { offset: record.offset, timestampMs: record.timestampMs, value: record.value }
  const envelope = decodeEnvelope(record.value, record.offset)
  return {
    partition,
    offset: record.offset,
    timestampMs: record.timestampMs,
    size: record.value.length,
    key: envelope.key,
    headers: envelope.headers,
    value: envelope.value,
  }
}

/** Prints one record as a line of text, or as one JSON object per line with `json`. */
export function printRecord(io: CliIo, record: PrintableRecord, json: boolean): void {
  io.stdout.write(json ? formatRecordJson(record) : formatRecordLine(record))
}
