/**
 * OwnerClient: a handle's connection to the topic's owner (topic-owner.ts), from another thread or
 * process of the same machine. Requests are answered in any order (matched by id); the owner also
 * pushes high watermarks and member states, which this side hands to its listeners.
 *
 * If the connection ends before a request is answered, the request fails with DISCONNECTED (a
 * forwarded batch may or may not have been appended: the owner died between the two). A request the
 * owner refused to start because it was closing fails with a RetryElsewhere error, which the
 * topic turns into a resend to the next owner (nothing was applied).
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { LogError } from './errors.js'
import type { GroupOptions } from './group-coordinator.js'
import type { GroupInfo, GroupLink, MemberState } from './group-link.js'
import { FORWARDED_SLOT_BYTES, MessageReader, type WireHeader, errorFromWire, putForwardedSlot, writeMessage } from './wire.js'
import type { EncodedRecords } from './producer-record.js'
import type { WireMemberState } from './group-sessions.js'

/** The owner's socket: abstract (no file to go stale) on Linux, a file in the temp dir elsewhere. */
export function ownerAddress(topicDir: string): string {
  const digest = createHash('sha256').update(path.resolve(topicDir)).digest('hex').slice(0, 32)
  return process.platform === 'linux' ? `\0seglog-${digest}` : path.join(os.tmpdir(), `seglog-${digest}.sock`)
}

/** The owner was closing and did not start the request: send it to the next owner. */
export class RetryElsewhere extends Error {}

export interface OwnerEvents {
  ends(ends: [number, number][]): void
  group(groupId: string, states: [string, WireMemberState][], closed: boolean): void
  /** A share group's coordinator has a new version (records may be available again). */
  share?(groupId: string, version: number): void
  /** The connection ended without close() being called. */
  lost(): void
}

interface Pending {
  resolve: (result: unknown) => void
  reject: (error: Error) => void
}

export class OwnerClient {
  private readonly reader = new MessageReader()
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private closedByUs = false
  /** The owner said it is closing: nothing new is sent; the connection ends once every answer is in. */
  private draining = false
  /** Waiters that keep the process alive (see hold). */
  private holds = 0

  private constructor(
    private readonly socket: net.Socket,
    private readonly events: OwnerEvents,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const { header } of this.reader.push(chunk)) this.receive(header)
      } catch {
        socket.destroy()
      }
    })
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.ended())
  }

  /** Connects to the owner at `address` (rejects when nobody listens there). */
  static connect(address: string, events: OwnerEvents): Promise<OwnerClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(address)
      socket.once('error', reject)
      socket.once('connect', () => {
        socket.off('error', reject)
        socket.unref() // like a file handle: an open topic alone does not keep the process alive
        resolve(new OwnerClient(socket, events))
      })
    })
  }

  request(header: WireHeader, body?: Uint8Array): Promise<unknown> {
    if (this.draining) return Promise.reject(new RetryElsewhere('the owner is closing'))
    if (this.socket.destroyed) return Promise.reject(disconnected())
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.socket.ref() // a request waiting for its answer keeps the process alive
      writeMessage(this.socket, { ...header, id }, body)
    })
  }

  /** Keeps the process alive (the socket referenced) until the returned release is called. */
  hold(): () => void {
    this.holds++
    this.socket.ref()
    let released = false
    return () => {
      if (released) return
      released = true
      this.holds--
      this.unrefWhenIdle()
    }
  }

  private unrefWhenIdle(): void {
    if (this.holds === 0 && this.pending.size === 0) this.socket.unref()
  }

  get isConnected(): boolean {
    return !this.socket.destroyed
  }

  close(): void {
    this.closedByUs = true
    this.socket.destroy()
  }

  private receive(header: WireHeader): void {
    if (header.push === 'ends') return this.events.ends(header.ends as [number, number][])
    if (header.push === 'group') return this.events.group(String(header.group), header.states as [string, WireMemberState][], header.closed === true)
    if (header.push === 'share') return this.events.share?.(String(header.group), Number(header.version))
    if (header.push === 'closing') {
      this.draining = true
      return this.hangUpWhenAnswered()
    }
    const pending = this.pending.get(Number(header.id))
    if (!pending) return
    this.pending.delete(Number(header.id))
    this.unrefWhenIdle()
    if (header.retry === true) pending.reject(new RetryElsewhere('the owner is closing'))
    else if (header.ok === true) pending.resolve(header.result)
    else pending.reject(errorFromWire(header.error))
    this.hangUpWhenAnswered()
  }

  private hangUpWhenAnswered(): void {
    if (this.draining && this.pending.size === 0) this.socket.end()
  }

  private ended(): void {
    const pending = [...this.pending.values()]
    this.pending.clear()
    for (const { reject } of pending) reject(disconnected())
    if (!this.closedByUs) this.events.lost()
  }
}

function disconnected(): LogError {
  return new LogError('DISCONNECTED', "the topic's owner went away before answering; a forwarded batch may or may not have been appended")
}

/**
 * The body of a forwarded send (topic-owner.ts reads it): the shares' framed scratches one after the
 * other, each envelope preceded by its slot (wire.ts: its size and timestamp, NaN for append time),
 * which is where the owner's log puts the frame header, so the owner copies runs of records at once
 * as it does for its own sends. One copy per partition of the batch.
 */
export function encodeForwarded(encoded: EncodedRecords): Buffer {
  let bodyBytes = 0
  for (const partition of encoded.partitions) {
    const { ends } = encoded.framedOf(partition)
    bodyBytes += ends[ends.length - 1]!
  }
  const body = Buffer.allocUnsafe(bodyBytes)
  let at = 0
  for (const partition of encoded.partitions) {
    const { bytes, ends } = encoded.framedOf(partition)
    const timestamps = encoded.timestampsFor(partition, Number.NaN)
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    for (let i = 0; i + 1 < ends.length; i++) {
      const slot = ends[i]!
      putForwardedSlot(view, slot, ends[i + 1]! - slot - FORWARDED_SLOT_BYTES, typeof timestamps === 'number' ? timestamps : timestamps[i]!)
    }
    at += bytes.copy(body, at, 0, ends[ends.length - 1]!)
  }
  return body
}

export function memberStateFromWire(state: WireMemberState): MemberState | undefined {
  if (!state) return undefined
  return { generation: state.generation, assignment: state.assignment, starts: new Map(state.starts.map(([partition, start]) => [partition, start ?? undefined])) }
}

/**
 * A group reached over the owner connection. Member states are what the owner last said (join and
 * heartbeat answers, pushes after each rebalance). Heartbeats go out at most every
 * sessionTimeoutMs / 6 per member (the consumer ticks every third of it, polls call more often).
 */
export class RemoteGroupLink implements GroupLink {
  private readonly states = new Map<string, MemberState>()
  private readonly lastHeartbeatMs = new Map<string, number>()
  private readonly listeners = new Set<() => void>()
  private closed = false

  constructor(
    readonly groupId: string,
    readonly options: GroupOptions,
    private readonly explicit: boolean,
    private readonly request: (header: WireHeader) => Promise<unknown>,
  ) {}

  get isClosed(): boolean {
    return this.closed
  }

  async join(memberId: string | undefined): Promise<string> {
    const answer = (await this.groupRequest('join', memberId === undefined ? {} : { memberId })) as { memberId: string; state: WireMemberState }
    this.setState(answer.memberId, answer.state)
    return answer.memberId
  }

  state(memberId: string): MemberState | undefined {
    return this.states.get(memberId)
  }

  heartbeat(memberId: string): void {
    const now = Date.now()
    if (!this.states.has(memberId) || now - (this.lastHeartbeatMs.get(memberId) ?? 0) < this.options.sessionTimeoutMs / 6) return // the consumer ticks every third of it
    this.lastHeartbeatMs.set(memberId, now)
    this.groupRequest('heartbeat', { memberId }).then(
      (answer) => this.setState(memberId, (answer as { state: WireMemberState }).state),
      (error: unknown) => {
        if (error instanceof LogError && error.code === 'UNKNOWN_MEMBER') this.setState(memberId, null)
      },
    )
  }

  async commit(memberId: string, generation: number, offsets: readonly [number, number][], rewinds: ReadonlySet<number>): Promise<void> {
    await this.groupRequest('commit', { memberId, generation, offsets, rewinds: [...rewinds] })
  }

  async leave(memberId: string): Promise<void> {
    this.states.delete(memberId)
    this.lastHeartbeatMs.delete(memberId)
    await this.groupRequest('leave', { memberId })
  }

  async info(): Promise<GroupInfo> {
    const info = (await this.groupRequest('info', {})) as { generation: number; members: GroupInfo['members']; committed: (number | null)[] }
    return { ...info, committed: info.committed.map((offset) => offset ?? undefined) }
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The owner pushed new states for this connection's members. */
  receiveStates(states: [string, WireMemberState][], closed: boolean): void {
    for (const [memberId, state] of states) if (this.states.has(memberId)) this.setState(memberId, state, false)
    if (closed) this.closed = true
    this.notify()
  }

  /** The handle closed: later calls of its consumers throw LOG_CLOSED. */
  close(): void {
    this.closed = true
    this.states.clear()
    this.notify()
  }

  /** This link's connection is gone: its members are no longer known anywhere. */
  detach(): void {
    this.states.clear()
    this.notify()
  }

  private groupRequest(op: string, fields: WireHeader): Promise<unknown> {
    return this.request({ op, group: this.groupId, options: this.options, explicit: this.explicit, ...fields })
  }

  private setState(memberId: string, state: WireMemberState, notify = true): void {
    const decoded = memberStateFromWire(state)
    const known = this.states.get(memberId)
    if (decoded && known && decoded.generation < known.generation) return // an answer overtaken by a push
    if (decoded) this.states.set(memberId, decoded)
    else this.states.delete(memberId)
    if (notify) this.notify()
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener()
  }
}
