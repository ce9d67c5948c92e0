/**
 * SlotGatedLink: the link a broker group's members use, over the handle's SwitchableGroupLink. A
 * handle that does not own the group learns of new slots (a topic found later) from the owner's
 * state pushes before it has their readers; until the slot table is loaded (broker-group-slots.ts),
 * a member keeps seeing its previous state, whose commits the coordinator fences, exactly as before
 * any rebalance reaches a member. Joining waits for the handle to have an owner (a takeover in
 * progress) and for the member's slots to be known.
 */
import { LogError } from './errors.js'
import type { GroupOptions } from './group-coordinator.js'
import type { GroupInfo, GroupLink, MemberState } from './group-link.js'
import type { SlotTable } from './broker-group-slots.js'

/** Owns nothing until its slots are known (only seen by a member whose first state was not covered). */
const NOTHING_YET: MemberState = { generation: -2, assignment: [], starts: new Map() }

export class SlotGatedLink implements GroupLink {
  private readonly shown = new Map<string, MemberState>()
  private readonly listeners = new Set<() => void>()

  constructor(
    private readonly inner: GroupLink,
    private readonly table: SlotTable,
    /** After a DISCONNECTED call: resolves true once the handle has an owner again, false when it closed. */
    private readonly reconnected: () => Promise<boolean>,
  ) {
    inner.onChange(() => this.notify())
  }

  get groupId(): string {
    return this.inner.groupId
  }

  get options(): GroupOptions {
    return this.inner.options
  }

  get isClosed(): boolean {
    return this.inner.isClosed
  }

  async join(memberId: string | undefined): Promise<string> {
    for (;;) {
      let joined: string
      try {
        joined = await this.inner.join(memberId)
      } catch (error) {
        if (error instanceof LogError && error.code === 'DISCONNECTED' && (await this.reconnected())) continue
        throw error
      }
      const state = this.inner.state(joined)
      if (state && !this.table.covers(state.assignment)) await this.table.load()
      return joined
    }
  }

  state(memberId: string): MemberState | undefined {
    const state = this.inner.state(memberId)
    if (!state) {
      this.shown.delete(memberId)
      return undefined
    }
    if (this.table.covers(state.assignment)) {
      this.shown.set(memberId, state)
      return state
    }
    this.table.load().then(
      () => this.notify(),
      () => undefined, // a damaged table: the next call tries again and the owner reports it
    )
    return this.shown.get(memberId) ?? NOTHING_YET
  }

  heartbeat(memberId: string): void {
    this.inner.heartbeat(memberId)
  }

  commit(memberId: string, generation: number, offsets: readonly [number, number][], rewinds: ReadonlySet<number>): Promise<void> {
    return this.inner.commit(memberId, generation, offsets, rewinds)
  }

  leave(memberId: string): Promise<void> {
    this.shown.delete(memberId)
    return this.inner.leave(memberId)
  }

  /** The group's state, with the slot table loaded far enough to name every slot in it. */
  async info(): Promise<GroupInfo> {
    for (;;) {
      try {
        const info = await this.inner.info()
        if (info.committed.length > this.table.slots.length) await this.table.load()
        return info
      } catch (error) {
        if (error instanceof LogError && error.code === 'DISCONNECTED' && (await this.reconnected())) continue
        throw error
      }
    }
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener()
  }
}
