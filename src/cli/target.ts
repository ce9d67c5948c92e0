/**
 * What a `<dir>` argument names: one log (segment files) or a topic (`topic.json`, whose partitions
 * are `partition-<i>/` logs and whose groups keep committed offsets in `groups/<id>/offsets/`), as
 * docs/format.md lays them out. Only reads the directory listing and topic.json.
 *
 * CLI readers open logs with `mmap: 'never'`: a diagnostic tool runs on damaged logs, and a file cut
 * by hand under a map would kill the process with SIGBUS; pread reports an error instead.
 */
import fs from 'node:fs'
import path from 'node:path'
import { LogError, ioError } from '../errors.js'
import { CHECKPOINT_FILE, TOPIC_METADATA_FILE, decodeTopicMetadata, parseSegmentFileName } from '../format.js'
import { SegmentedLog } from '../segmented-log.js'

export interface LogTarget {
  kind: 'log'
  dir: string
}

export interface TopicTarget {
  kind: 'topic'
  dir: string
  partitions: number
  createdMs: number
  /** Group ids that have an offsets log, sorted. */
  groups: string[]
}

export type Target = LogTarget | TopicTarget

/** Decides whether `dir` is a topic or a log; anything else is INVALID_ARGUMENT. */
export function resolveTarget(dir: string): Target {
  const absolute = path.resolve(dir)
  const names = listNames(absolute)
  if (names.includes(TOPIC_METADATA_FILE)) {
    const file = path.join(absolute, TOPIC_METADATA_FILE)
    const metadata = decodeTopicMetadata(readFile(file), file)
    return { kind: 'topic', dir: absolute, partitions: metadata.partitions, createdMs: metadata.createdMs, groups: listGroups(absolute) }
  }
  if (names.some((name) => parseSegmentFileName(name) !== undefined || name === CHECKPOINT_FILE)) return { kind: 'log', dir: absolute }
  throw new LogError('INVALID_ARGUMENT', 'not a seglog log or topic directory (no topic.json, no segment files)', { path: absolute })
}

export function partitionDir(topic: TopicTarget, partition: number): string {
  return path.join(topic.dir, `partition-${partition}`)
}

export function groupOffsetsDir(topic: TopicTarget, groupId: string): string {
  return path.join(topic.dir, 'groups', groupId, 'offsets')
}

/** The partitions a command covers: `--partition P` alone, else all of them. */
export function selectedPartitions(topic: TopicTarget, partition: number | undefined): number[] {
  if (partition === undefined) return Array.from({ length: topic.partitions }, (_, i) => i)
  if (partition >= topic.partitions) {
    throw new LogError('UNKNOWN_PARTITION', `partition ${partition} does not exist (the topic has ${topic.partitions})`, { path: topic.dir })
  }
  return [partition]
}

/** Opens a log as a reader: takes no lock, writes nothing, repairs nothing. */
export function openReader(dir: string): Promise<SegmentedLog> {
  return SegmentedLog.open(dir, { readOnly: true, mmap: 'never' })
}

function listNames(dir: string): string[] {
  try {
    return fs.readdirSync(dir)
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code
    if (errno === 'ENOENT' || errno === 'ENOTDIR') throw new LogError('INVALID_ARGUMENT', 'no such directory', { path: dir })
    throw ioError('could not list the directory', error, dir)
  }
}

function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file)
  } catch (error) {
    throw ioError('could not read the file', error, file)
  }
}

function listGroups(topicDir: string): string[] {
  const groupsDir = path.join(topicDir, 'groups')
  let names: string[]
  try {
    names = fs.readdirSync(groupsDir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw ioError('could not list the groups', error, groupsDir)
  }
  return names.filter((name) => fs.existsSync(path.join(groupsDir, name, 'offsets'))).sort()
}
