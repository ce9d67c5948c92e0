/**
 * BrokerGroupOwner: the handle that keeps a broker consumer group's state (its coordinator over
 * slots, the offsets log, the slot table) serves every other handle of the group on a local socket,
 * as a topic's owner does for its groups (topic-owner.ts): members elsewhere join, heartbeat, commit
 * and leave here (group-sessions.ts), are pushed their new states after each rebalance (a topic
 * found later is one), and leave at once when their connection closes. Records never cross this
 * socket: members read them from the topics themselves.
 *
 * Ops: `hello` (the caller's subscription and options must be the group's: INVALID_ARGUMENT
 * otherwise), the consumer-group ops, and `rescan` (look for new matching topics now). Closing is
 * graceful: requests that arrive once it started are answered `retry`, never applied.
 */
import type net from 'node:net'
import { LogError } from './errors.js'
import type { GroupCoordinator } from './group-coordinator.js'
import { GROUP_OPS, GroupSessions } from './group-sessions.js'
import { ServedConnection, listenLocal } from './served-connection.js'
import type { WireHeader } from './wire.js'

/** How long a closing owner waits for a forwarder to collect its answers and hang up. */
const CLOSE_WAIT_MS = 2000

export class BrokerGroupOwner {
  private readonly connections = new Set<BrokerGroupConnection>()
  private server: net.Server | undefined
  private closing = false

  constructor(
    readonly coordinator: GroupCoordinator,
    /** The group's subscription and options as one comparable string. */
    readonly subscriptionKey: string,
    readonly rescan: () => Promise<void>,
  ) {}

  async listen(address: string): Promise<void> {
    this.server = await listenLocal(address, (socket) => this.accept(socket))
  }

  get isClosing(): boolean {
    return this.closing
  }

  /** Tells every connection `closing`, answers what they sent, waits for them to hang up, then closes the coordinator. */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.server?.close()
    await Promise.all([...this.connections].map((connection) => connection.closeGracefully(CLOSE_WAIT_MS)))
    await this.coordinator.close()
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy()
      return
    }
    const connection = new BrokerGroupConnection(this, socket)
    this.connections.add(connection)
    socket.once('close', () => {
      this.connections.delete(connection)
      void connection.forgetMembers()
    })
  }
}

class BrokerGroupConnection extends ServedConnection {
  private readonly sessions = new GroupSessions((header) => this.send(header))

  constructor(
    private readonly owner: BrokerGroupOwner,
    socket: net.Socket,
  ) {
    super(socket, () => owner.isClosing)
  }

  forgetMembers(): Promise<void> {
    return this.sessions.forget(() => Promise.resolve(this.owner.coordinator))
  }

  protected async perform(header: WireHeader): Promise<unknown> {
    const coordinator = this.owner.coordinator
    if (header.group !== coordinator.groupId) throw new LogError('INVALID_ARGUMENT', `this socket serves consumer group '${coordinator.groupId}', not '${String(header.group)}'`)
    if (typeof header.op === 'string' && GROUP_OPS.has(header.op)) return this.sessions.perform(header, coordinator)
    switch (header.op) {
      case 'hello':
        if (header.subscription !== this.owner.subscriptionKey) {
          throw new LogError('INVALID_ARGUMENT', `consumer group '${coordinator.groupId}' is already open with other options (${this.owner.subscriptionKey})`)
        }
        return null
      case 'rescan':
        await this.owner.rescan()
        return null
      default:
        throw new LogError('INVALID_ARGUMENT', `unknown operation '${String(header.op)}'`)
    }
  }
}
