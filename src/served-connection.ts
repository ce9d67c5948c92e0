/**
 * ServedConnection: one connection an owner serves on its local socket (a topic's owner,
 * topic-owner.ts, or a broker consumer group's, broker-group-owner.ts). It owns the framing
 * (wire.ts), one answer per request, the `retry` answer once the owner is closing (the request is
 * never applied, so the forwarder can resend it to the next owner), and the graceful close: the
 * forwarder is told `closing`, gets its answers, and hangs up. What a request does is the subclass's.
 */
import net from 'node:net'
import { MessageReader, type WireHeader, type WireMessage, errorToWire, writeMessage } from './wire.js'

export abstract class ServedConnection {
  private readonly reader = new MessageReader()
  private readonly inFlight = new Set<Promise<void>>()

  constructor(
    protected readonly socket: net.Socket,
    /** Whether the owner is closing (requests are answered `retry` from then on). */
    private readonly isClosing: () => boolean,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      let messages: WireMessage[]
      try {
        messages = this.reader.push(chunk)
      } catch {
        socket.destroy() // a peer that breaks framing is cut off; it reconnects and resends
        return
      }
      for (const message of messages) this.track(this.answer(message))
    })
    socket.on('error', () => socket.destroy())
  }

  /** What the request asks for; its result is the answer (a LogError thrown is answered as one). */
  protected abstract perform(header: WireHeader, body: Buffer): Promise<unknown>

  send(header: WireHeader, body?: Uint8Array): void {
    if (this.socket.destroyed) return
    writeMessage(this.socket, header, body)
  }

  /** Tells the forwarder to stop, answers what it sent meanwhile, and waits (up to `waitMs`) for it to hang up. */
  async closeGracefully(waitMs: number): Promise<void> {
    if (this.socket.destroyed) return
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()))
    this.send({ push: 'closing' })
    const timer = setTimeout(() => this.socket.destroy(), waitMs)
    await closed
    clearTimeout(timer)
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work)
    void work.finally(() => this.inFlight.delete(work))
  }

  private async answer({ header, body }: WireMessage): Promise<void> {
    const id = header.id
    if (this.isClosing()) return this.send({ id, retry: true })
    try {
      const result = await this.perform(header, body)
      this.send({ id, ok: true, result })
    } catch (error) {
      this.send({ id, ok: false, error: errorToWire(error) })
    }
  }
}

/** A server on `address` (an idle one does not keep its process alive; open connections do). */
export async function listenLocal(address: string, accept: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(accept)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(address, () => {
      server.off('error', reject)
      resolve()
    })
  })
  server.unref()
  return server
}
