/**
 * One writer per directory, across threads and processes.
 *
 * The writer creates `LOCK` atomically (link(2) of a fully written temp file, which fails if the
 * lock exists) naming its holder: process id, OS thread id and both start times. A second opener
 * reads the holder and checks whether that exact thread still runs (`/proc/<pid>/task/<tid>/stat`
 * with a matching start time, which also defeats pid reuse). A lock whose holder is gone is taken
 * over at once, not after a lease: a SIGKILLed process or a terminated worker thread frees it the
 * moment it dies. Without /proc (not Linux) a holder in a live process counts as alive.
 */
import fs from 'node:fs'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { LogError, ioError } from './errors.js'
import { LOCK_FILE, TEMP_SUFFIX } from './format.js'
import { fsyncDirectory } from './fs-util.js'

interface Holder {
  pid: number
  tid: number
  processStart: string
  threadStart: string
  token: string
}

/** Locks held by handles of this thread, by lock path (module state is per thread in Node). */
const heldHere = new Set<string>()

export class DirectoryLock {
  private released = false
  private constructor(
    readonly file: string,
    private readonly token: string,
  ) {}

  static acquire(dir: string): DirectoryLock {
    const file = path.join(dir, LOCK_FILE)
    const me = currentHolder()
    for (let attempt = 0; attempt < 8; attempt++) {
      if (tryCreate(file, me)) {
        heldHere.add(file)
        return new DirectoryLock(file, me.token)
      }
      const holder = readHolder(file)
      if (holder === 'missing') continue
      if (holder !== 'unreadable' && holderIsAlive(file, holder, me)) {
        throw new LogError('LOCKED', `log is held by a writer (pid ${holder.pid}, thread ${holder.tid})`, { path: dir })
      }
      takeOverStale(file, holder)
    }
    throw new LogError('LOCKED', 'could not take the writer lock: it keeps changing hands', { path: dir })
  }

  release(): void {
    if (this.released) return
    this.released = true
    heldHere.delete(this.file)
    const holder = readHolder(this.file)
    if (typeof holder === 'object' && holder.token === this.token) fs.rmSync(this.file, { force: true })
  }
}

/** What holds a directory's lock, found without taking or touching it (read-only tools use this). */
export type LockState = { kind: 'none' } | { kind: 'live'; pid: number; tid: number } | { kind: 'dead'; pid: number }

export function probeLock(dir: string): LockState {
  const file = path.join(dir, LOCK_FILE)
  let holder: ReturnType<typeof readHolder>
  try {
    holder = readHolder(file)
  } catch {
    return { kind: 'none' }
  }
  if (typeof holder !== 'object') return { kind: 'none' } // none, or one being created: nobody wrote under it yet
  return holderIsAlive(file, holder, currentHolder()) ? { kind: 'live', pid: holder.pid, tid: holder.tid } : { kind: 'dead', pid: holder.pid }
}

function currentHolder(): Holder {
  const { pid, tid } = threadIdentity()
  return {
    pid,
    tid,
    processStart: startTime(`/proc/${pid}/stat`) ?? '',
    threadStart: startTime(`/proc/${pid}/task/${tid}/stat`) ?? '',
    token: randomBytes(8).toString('hex'),
  }
}

/** The OS thread running this JS thread; readlink runs synchronously on the calling thread. */
function threadIdentity(): { pid: number; tid: number } {
  try {
    const match = /^(\d+)\/task\/(\d+)$/.exec(fs.readlinkSync('/proc/thread-self'))
    if (match) return { pid: Number(match[1]), tid: Number(match[2]) }
  } catch {
    // not Linux: fall back to the process id alone
  }
  return { pid: process.pid, tid: 0 }
}

/** Field 22 of /proc/.../stat: start time in clock ticks since boot; undefined when gone. */
function startTime(statFile: string): string | undefined {
  try {
    const stat = fs.readFileSync(statFile, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function tryCreate(file: string, me: Holder): boolean {
  const temp = `${file}.${me.pid}.${me.tid}.${me.token}${TEMP_SUFFIX}`
  let linked = false
  try {
    fs.writeFileSync(temp, JSON.stringify(me))
    fs.linkSync(temp, file)
    linked = true
    fsyncDirectory(path.dirname(file))
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    if (linked) fs.rmSync(file, { force: true }) // not held after all: others must not wait for this live thread
    throw ioError('could not create the lock file', error, file)
  } finally {
    fs.rmSync(temp, { force: true })
  }
}

function readHolder(file: string): Holder | 'missing' | 'unreadable' {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw ioError('could not read the lock file', error, file)
  }
  try {
    const holder = JSON.parse(text) as Holder
    return typeof holder.pid === 'number' && typeof holder.tid === 'number' ? holder : 'unreadable'
  } catch {
    return 'unreadable' // a writer died between creating and filling a lock: only possible before link
  }
}

function holderIsAlive(file: string, holder: Holder, me: Holder): boolean {
  if (holder.pid === me.pid && holder.tid === me.tid) return heldHere.has(file)
  if (holder.tid !== 0 && holder.threadStart !== '') {
    return startTime(`/proc/${holder.pid}/task/${holder.tid}/stat`) === holder.threadStart
  }
  try {
    process.kill(holder.pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Moves a dead holder's lock aside; if a live writer slipped in meanwhile, puts its lock back. */
function takeOverStale(file: string, stale: Holder | 'unreadable'): void {
  const aside = `${file}.stale.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`
  try {
    fs.renameSync(file, aside)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw ioError('could not take over a stale lock', error, file)
  }
  const moved = readHolder(aside)
  const sameAsJudged = typeof moved === 'object' && typeof stale === 'object' ? moved.token === stale.token : moved === stale
  if (!sameAsJudged) {
    try {
      fs.linkSync(aside, file)
    } catch {
      // someone else holds the lock now; the next attempt reads it
    }
  }
  fs.rmSync(aside, { force: true })
}
