/**
 * Whether a live writer holds a log, found without taking or touching its `LOCK` (lock.ts
 * `probeLock`: the holder the lock file names, and whether exactly that OS thread still runs).
 * `verify` uses the answer only to tell a tail being written (a live writer) from a torn tail (a crash).
 */
import { type LockState, probeLock } from '../lock.js'

export type WriterState = LockState

export function probeWriter(dir: string): WriterState {
  return probeLock(dir)
}

export function describeWriter(state: WriterState): string {
  if (state.kind === 'live') return `live writer (pid ${state.pid})`
  if (state.kind === 'dead') return `no live writer (stale lock of pid ${state.pid})`
  return 'no writer'
}
