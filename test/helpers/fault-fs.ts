/**
 * Fault injection for node:fs: makes chosen calls of chosen fs functions fail with an errno
 * (EIO, ENOSPC, EMFILE, EACCES, ...), as a failing disk, a full disk or a process out of
 * descriptors would. seglog calls fs through the module object (`import fs from 'node:fs'`), so
 * replacing a function on that object (vi.spyOn) reaches every call it makes.
 *
 * A fault names the function, the errno and which matching call fails ("the nth", counted from 1,
 * and how many from there), optionally only for files whose path matches a pattern. Descriptor-based
 * calls (writeSync, fsync, ftruncateSync, ...) are matched by the path their descriptor was opened
 * with: `watchFs()` records every openSync from then on, so call it before opening the log when a
 * fault must target a descriptor the log opens early. Everything is restored after each test.
 */
import fs from 'node:fs'
import os from 'node:os'
import { afterEach } from 'vitest'

export type Errno = 'EIO' | 'ENOSPC' | 'EMFILE' | 'EACCES'

/** The fs functions seglog uses to write, sync, open, rename and cut (see src/*.ts). */
export type FaultFunction =
  | 'writeSync'
  | 'fsync'
  | 'fsyncSync'
  | 'fdatasync'
  | 'fdatasyncSync'
  | 'openSync'
  | 'renameSync'
  | 'ftruncateSync'

export interface FaultSpec {
  fn: FaultFunction
  errno: Errno
  /** The first matching call that fails, counted from 1 (default 1). */
  nth?: number
  /** How many matching calls fail from the nth on (default 1; Infinity: every later one too). */
  times?: number
  /** Only calls on a path matching this count (a descriptor's path is the one it was opened with). */
  file?: RegExp
}

export interface Fault {
  readonly spec: Readonly<FaultSpec>
  /** Matching calls seen so far (failed or not). */
  readonly calls: number
  /** Calls that were made to fail. */
  readonly injected: number
  /** Paths of the calls that were made to fail. */
  readonly paths: readonly string[]
}

interface ActiveFault extends Fault {
  calls: number
  injected: number
  paths: string[]
}

type AnyFunction = (...args: unknown[]) => unknown
type FsFunctions = Record<FaultFunction, AnyFunction>

const faults: ActiveFault[] = []
const originals = new Map<FaultFunction, AnyFunction>()
/** The path each descriptor was opened with (by openSync while watched). */
const descriptorPaths = new Map<number, string>()

/** An error shaped like the one Node throws for a failed system call. */
export function errnoError(errno: Errno, syscall: string, file?: string): NodeJS.ErrnoException {
  const error = new Error(`${errno}: injected fault, ${syscall}${file === undefined ? '' : ` '${file}'`}`) as NodeJS.ErrnoException
  error.code = errno
  error.errno = -(os.constants.errno as Record<string, number>)[errno]!
  error.syscall = syscall
  if (file !== undefined) error.path = file
  return error
}

/** Starts recording which path each descriptor opened by openSync belongs to. Idempotent. */
export function watchFs(): void {
  for (const fn of ['writeSync', 'fsync', 'fsyncSync', 'fdatasync', 'fdatasyncSync', 'openSync', 'renameSync', 'ftruncateSync'] as const) wrap(fn)
}

/** Makes the chosen calls of `spec.fn` fail; returns a live view of what it did. */
export function injectFault(spec: FaultSpec): Fault {
  watchFs()
  const fault: ActiveFault = { spec: { nth: 1, times: 1, ...spec }, calls: 0, injected: 0, paths: [] }
  faults.push(fault)
  return fault
}

/** Stops injecting (fs works again); descriptors stay watched until the test ends. */
export function clearFaults(): void {
  faults.length = 0
}

/** The errno at the bottom of an error's cause chain (LOG_FAILED → IO_ERROR → the fs error). */
export function rootErrno(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 10 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code
    if (typeof code === 'string' && code.startsWith('E') && current.cause === undefined) return code
    current = current.cause
  }
  return undefined
}

afterEach(() => {
  clearFaults()
  for (const fn of originals.keys()) (fs as unknown as FsFunctions)[fn] = originals.get(fn)!
  originals.clear()
  descriptorPaths.clear()
})

function wrap(fn: FaultFunction): void {
  if (originals.has(fn)) return
  const target = fs as unknown as FsFunctions
  const original = target[fn]
  originals.set(fn, original)
  const replacement = function (this: unknown, ...args: unknown[]): unknown {
    const file = pathOf(fn, args[0])
    const fault = faultFor(fn, file)
    if (fault) {
      const error = errnoError(fault.spec.errno, fn.replace(/Sync$/, ''), file)
      const callback = args[args.length - 1]
      if (typeof callback === 'function' && !fn.endsWith('Sync')) {
        setImmediate(() => (callback as (error: Error) => void)(error))
        return undefined
      }
      throw error
    }
    const result = original.apply(fs, args)
    if (fn === 'openSync' && typeof result === 'number' && file !== undefined) descriptorPaths.set(result, file)
    return result
  }
  // Assigned rather than spied on: the replacement stays in place (watching descriptors) while
  // faults come and go, and vi.restoreAllMocks in a test does not remove it halfway.
  target[fn] = replacement
}

function pathOf(fn: FaultFunction, first: unknown): string | undefined {
  if (fn === 'openSync' || fn === 'renameSync') return typeof first === 'string' ? first : first instanceof URL ? first.pathname : String(first)
  return typeof first === 'number' ? descriptorPaths.get(first) : undefined
}

/** Counts the call for every fault it matches; the first whose turn it is fails it. */
function faultFor(fn: FaultFunction, file: string | undefined): ActiveFault | undefined {
  let failing: ActiveFault | undefined
  for (const fault of faults) {
    const { spec } = fault
    if (spec.fn !== fn) continue
    if (spec.file && (file === undefined || !spec.file.test(file))) continue
    fault.calls++
    if (failing || fault.calls < spec.nth! || fault.calls >= spec.nth! + spec.times!) continue
    fault.injected++
    if (file !== undefined) fault.paths.push(file)
    failing = fault
  }
  return failing
}

/** A pattern matching exactly `file` (a log directory, for its own fsync). */
export function pathIs(file: string): RegExp {
  return new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)
}
