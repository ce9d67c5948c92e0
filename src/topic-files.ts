/**
 * The files of a topic directory as Topic.open finds them: `topic.json` (read, or created under
 * the topic's lock), the topic's lock, and the partitions' logs.
 */
import fs from 'node:fs'
import path from 'node:path'
import { LogError, ioError, isLogError } from './errors.js'
import { TOPIC_METADATA_FILE, type TopicMetadata, decodeTopicMetadata, encodeTopicMetadata } from './format.js'
import { writeFileAtomic } from './fs-util.js'
import { DirectoryLock } from './lock.js'
import type { SegmentedLogOptions } from './options.js'
import { SegmentedLog } from './segmented-log.js'

const PARTITIONS_MAX = 10_000
/** Options that describe one open handle, not the topic, and are never stored in topic.json. */
const PER_OPEN_OPTIONS = ['readOnly', 'mmap'] as const

export function checkPartitionCount(partitions: number | undefined): void {
  if (partitions !== undefined && (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX)) {
    throw new LogError('INVALID_ARGUMENT', `partitions must be an integer in [1, ${PARTITIONS_MAX}], got ${String(partitions)}`)
  }
}

/** The topic's lock, or undefined when a live handle elsewhere holds it. */
export function tryLock(dir: string): DirectoryLock | undefined {
  try {
    return DirectoryLock.acquire(dir)
  } catch (error) {
    if (isLogError(error, 'LOCKED')) return undefined
    throw error
  }
}

export function guard<T>(lock: DirectoryLock, action: () => T): T {
  try {
    return action()
  } catch (error) {
    lock.release()
    throw error
  }
}

export async function guardAsync<T>(lock: DirectoryLock, action: () => Promise<T>): Promise<T> {
  try {
    return await action()
  } catch (error) {
    lock.release()
    throw error
  }
}

export async function openLogs(dir: string, partitions: number, options: SegmentedLogOptions): Promise<SegmentedLog[]> {
  const logs: SegmentedLog[] = []
  try {
    for (let i = 0; i < partitions; i++) logs.push(await SegmentedLog.open(path.join(dir, `partition-${i}`), options))
  } catch (error) {
    await Promise.all(logs.map((log) => log.close()))
    throw error
  }
  return logs
}

/** The stored metadata, or undefined when the topic was not created yet; TOPIC_MISMATCH on another count. */
export function readMetadata(dir: string, partitions: number | undefined): TopicMetadata | undefined {
  const file = path.join(dir, TOPIC_METADATA_FILE)
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError('could not read topic metadata', error, file)
  }
  const metadata = decodeTopicMetadata(bytes, file)
  if (partitions !== undefined && partitions !== metadata.partitions) {
    throw new LogError('TOPIC_MISMATCH', `topic has ${metadata.partitions} partitions, opened with ${partitions}`, { path: dir })
  }
  return metadata
}

function listPartitionDirs(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((name) => /^partition-\d+$/.test(name))
  } catch (error) {
    throw ioError('could not list the topic directory', error, dir)
  }
}

/** Under the topic's lock: the stored metadata, or new metadata written for a new topic. */
export function readOrCreateMetadata(dir: string, partitions: number | undefined, logOptions: SegmentedLogOptions): TopicMetadata {
  const existing = readMetadata(dir, partitions)
  if (existing) return existing
  // Partitions without topic.json: the metadata was lost, not never written. A new topic over them
  // could hide partitions (a count of 1 over partition-0..2): refuse instead of guessing.
  const orphans = listPartitionDirs(dir)
  if (orphans.length > 0) {
    throw new LogError('CORRUPT_FILE', `${TOPIC_METADATA_FILE} is missing but ${orphans.length} partition director${orphans.length === 1 ? 'y exists' : 'ies exist'}; restore it (partitions: ${orphans.length}?)`, {
      path: path.join(dir, TOPIC_METADATA_FILE),
    })
  }
  const stored: Record<string, unknown> = { ...logOptions }
  for (const name of PER_OPEN_OPTIONS) delete stored[name]
  const metadata: TopicMetadata = { partitions: partitions ?? 1, createdMs: Date.now(), logOptions: stored }
  writeFileAtomic(path.join(dir, TOPIC_METADATA_FILE), encodeTopicMetadata(metadata))
  return metadata
}
