/**
 * GroupSessions: the consumer-group part of one owner connection, shared by a topic's owner
 * (topic-owner.ts) and a broker consumer group's (broker-group-owner.ts). It performs the
 * coordinator's plain-data protocol (`join`, `heartbeat`, `leave`, `commit`, `info`), remembers
 * the members added over the connection, pushes their new states (`group`) after every rebalance,
 * and removes them when the connection closes (their process may have died, even by SIGKILL): their
 * partitions move to the live members at once instead of after sessionTimeoutMs.
 */
import { LogError } from './errors.js'
import type { GroupCoordinator } from './group-coordinator.js'
import { groupInfo, memberState, type MemberState } from './group-link.js'
import type { WireHeader } from './wire.js'

/** A member state as plain JSON for the wire. */
export type WireMemberState = { generation: number; assignment: number[]; starts: [number, number | null][] } | null

export function memberStateToWire(state: MemberState | undefined): WireMemberState {
  if (!state) return null
  return { generation: state.generation, assignment: [...state.assignment], starts: [...state.starts].map(([partition, start]) => [partition, start ?? null]) }
}

export const GROUP_OPS: ReadonlySet<string> = new Set(['join', 'heartbeat', 'leave', 'commit', 'info'])

export class GroupSessions {
  /** Member ids added over this connection, per group id. */
  private readonly members = new Map<string, Set<string>>()
  private readonly unsubscribe: (() => void)[] = []

  constructor(private readonly push: (header: WireHeader) => void) {}

  /** One of GROUP_OPS on the group's coordinator. */
  async perform(header: WireHeader, coordinator: GroupCoordinator): Promise<unknown> {
    const groupId = String(header.group)
    const memberId = String(header.memberId)
    switch (header.op) {
      case 'join':
        return this.join(groupId, coordinator, header.memberId as string | undefined)
      case 'heartbeat':
        coordinator.heartbeat(memberId)
        return { state: memberStateToWire(memberState(coordinator, memberId)) }
      case 'leave':
        coordinator.leave(memberId)
        this.members.get(groupId)?.delete(memberId)
        return null
      case 'commit':
        if (!Array.isArray(header.offsets) || !Array.isArray(header.rewinds)) throw new LogError('INVALID_ARGUMENT', 'commit needs offsets and rewinds')
        await coordinator.commit(memberId, Number(header.generation), header.offsets as [number, number][], new Set(header.rewinds as number[]))
        return null
      case 'info':
        return groupInfo(coordinator)
      default:
        throw new LogError('INVALID_ARGUMENT', `unknown group operation '${String(header.op)}'`)
    }
  }

  /** The connection closed: its members leave their groups now. */
  async forget(coordinatorOf: (groupId: string) => Promise<GroupCoordinator> | undefined): Promise<void> {
    for (const remove of this.unsubscribe.splice(0)) remove()
    for (const [groupId, memberIds] of this.members) {
      const coordinator = await coordinatorOf(groupId)?.catch(() => undefined)
      if (coordinator && !coordinator.isClosed) for (const memberId of memberIds) coordinator.leave(memberId)
    }
    this.members.clear()
  }

  private join(groupId: string, coordinator: GroupCoordinator, memberId: string | undefined): unknown {
    let members = this.members.get(groupId)
    if (!members) {
      members = new Set()
      this.members.set(groupId, members)
      const ids = members
      this.unsubscribe.push(coordinator.onChange(() => this.pushStates(groupId, coordinator, ids)))
    }
    const view = coordinator.join(memberId)
    members.add(view.memberId)
    return { memberId: view.memberId, state: memberStateToWire(memberState(coordinator, view.memberId)) }
  }

  private pushStates(groupId: string, coordinator: GroupCoordinator, memberIds: Set<string>): void {
    const states: [string, WireMemberState][] = [...memberIds].map((memberId) => [memberId, memberStateToWire(memberState(coordinator, memberId))])
    for (const [memberId, state] of states) if (state === null) memberIds.delete(memberId)
    this.push({ push: 'group', group: groupId, states, closed: coordinator.isClosed })
  }
}
