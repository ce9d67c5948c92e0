/**
 * Whether a live writer holds a log, found without taking or touching its `LOCK`.
 *
 * src/lock.ts decides liveness only while acquiring the lock (which writes), so the CLI's read-only
 * commands read the holder the lock file names and check, as lock.ts does, that exactly that OS
 * thread still runs (its start time in /proc/<pid>/task/<tid>/stat must match), falling back to
 * "the process exists" where /proc is missing. `verify` uses the answer only to tell a tail being
 * written (a live writer) from a torn tail (a crash).
 */
import fs from 'node:fs'
import path from 'node:path'
import { LOCK_FILE } from '../format.js'

export type WriterState =
  | { kind: 'none' }
  | { kind: 'live'; pid: number; tid: number }
  | { kind: 'dead'; pid: number }

interface LockHolder {
  pid: number
  tid: number
  threadStart: string
}

export function probeWriter(dir: string): WriterState {
  const holder = readHolder(path.join(dir, LOCK_FILE))
  if (!holder) return { kind: 'none' }
  return holderIsAlive(holder) ? { kind: 'live', pid: holder.pid, tid: holder.tid } : { kind: 'dead', pid: holder.pid }
}

export function describeWriter(state: WriterState): string {
  if (state.kind === 'live') return `live writer (pid ${state.pid})`
  if (state.kind === 'dead') return `no live writer (stale lock of pid ${state.pid})`
  return 'no writer'
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>
    if (typeof parsed.pid !== 'number' || typeof parsed.tid !== 'number') return undefined
    return { pid: parsed.pid, tid: parsed.tid, threadStart: typeof parsed.threadStart === 'string' ? parsed.threadStart : '' }
  } catch {
    return undefined // no lock, or one being created: nobody has written under it yet
  }
}

function holderIsAlive(holder: LockHolder): boolean {
  if (holder.tid !== 0 && holder.threadStart !== '') {
    return threadStartTime(`/proc/${holder.pid}/task/${holder.tid}/stat`) === holder.threadStart
  }
  try {
    process.kill(holder.pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Field 22 of a /proc stat file (start time in clock ticks since boot); undefined when gone. */
function threadStartTime(statFile: string): string | undefined {
  try {
    const stat = fs.readFileSync(statFile, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
