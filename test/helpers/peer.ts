/**
 * Peer: a topic handle in a worker thread or a child process (test/fixtures/topic-peer.mjs), driven
 * by requests. `kill()` SIGKILLs the process or terminates the thread, as a crash would.
 */
import { type ChildProcess, fork } from 'node:child_process'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { REPO } from './build-dist.js'

/** The default script; another fixture speaking the same requests may be given (share-peer.mjs). */
export const TOPIC_PEER = path.join(REPO, 'test', 'fixtures', 'topic-peer.mjs')

export interface PeerRecord {
  partition: number
  offset: number
  key: string | null
  value: string
}

export class PeerError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message)
  }
}

type Reply = { id: number; ok: boolean; result?: unknown; error?: { code?: string; message: string } } | { ready: true }

export class Peer {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  readonly exited: Promise<void>

  private constructor(
    readonly kind: 'thread' | 'process',
    private readonly post: (message: unknown) => void,
    private readonly stop: () => void,
    on: (listener: (reply: Reply) => void) => void,
    onExit: (listener: () => void) => void,
    readonly pid: number,
  ) {
    on((reply) => {
      if ('ready' in reply) return
      const pending = this.pending.get(reply.id)
      if (!pending) return
      this.pending.delete(reply.id)
      if (reply.ok) pending.resolve(reply.result)
      else pending.reject(new PeerError(reply.error?.code, reply.error?.message ?? 'peer failed'))
    })
    this.exited = new Promise((resolve) =>
      onExit(() => {
        for (const { reject } of this.pending.values()) reject(new PeerError('EXITED', 'peer exited'))
        this.pending.clear()
        resolve()
      }),
    )
  }

  static thread(script = TOPIC_PEER): Promise<Peer> {
    const worker = new Worker(script)
    return Peer.ready(
      new Peer(
        'thread',
        (message) => worker.postMessage(message),
        () => void worker.terminate(),
        (listener) => worker.on('message', listener),
        (listener) => worker.once('exit', listener),
        process.pid,
      ),
      (listener) => worker.once('message', listener),
    )
  }

  static process(script = TOPIC_PEER): Promise<Peer> {
    const child: ChildProcess = fork(script, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    return Peer.ready(
      new Peer(
        'process',
        (message) => child.send(message as object),
        () => child.kill('SIGKILL'),
        (listener) => child.on('message', listener as (message: unknown) => void),
        (listener) => child.once('exit', listener),
        child.pid!,
      ),
      (listener) => child.once('message', listener),
    )
  }

  private static ready(peer: Peer, once: (listener: () => void) => void): Promise<Peer> {
    return new Promise((resolve) => once(() => resolve(peer)))
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.post({ id, cmd, ...args })
    })
  }

  /** A crash: SIGKILL for a process, terminate() for a thread. Resolves once it is gone. */
  async kill(): Promise<void> {
    this.stop()
    await this.exited
  }

  /** Closes the peer's handles, then ends it. */
  async close(): Promise<void> {
    await this.call('close').catch(() => undefined)
    await this.kill()
  }
}
