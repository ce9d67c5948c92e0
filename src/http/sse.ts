/**
 * Following a partition with Server-Sent Events: each record is an event `record` whose `id` is
 * its offset, so a client that reconnects with `Last-Event-ID: n` resumes at `n + 1`. Waiting is
 * the partition's own (event-driven `records({ follow })`); a comment line every `heartbeatMs`
 * keeps proxies and clients from timing the stream out. A slow client is not buffered without
 * bound: the stream waits for `drain` before reading the next record.
 *
 * At most `streamsMax` streams are open at once (TOO_MANY_STREAMS past it). A stream ends when the
 * client goes away, the server closes, or its topic is deleted.
 */
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { Partition } from '../partition.js'
import { HttpError, describeError } from './errors.js'
import { Gauge } from './limits.js'
import { type Encoding, recordToJson } from './records-json.js'

interface OpenStream {
  topic: string
  stop: AbortController
}

export class StreamHub {
  private readonly gauge: Gauge
  private readonly streams = new Set<OpenStream>()

  constructor(
    streamsMax: number,
    private readonly heartbeatMs: number,
  ) {
    this.gauge = new Gauge(streamsMax)
  }

  get open(): number {
    return this.gauge.open
  }

  /** Streams `partition` from `from` into `res` until the client, the server or the topic ends it. */
  async follow(res: ServerResponse, partition: Partition, from: number, encoding: Encoding): Promise<void> {
    if (!this.gauge.tryTake()) throw new HttpError('TOO_MANY_STREAMS', `${this.gauge.max} streams are open (streamsMax)`)
    const stream: OpenStream = { topic: partition.topic, stop: new AbortController() }
    this.streams.add(stream)
    const { signal } = stream.stop
    res.on('close', () => stream.stop.abort())
    res.socket?.setNoDelay(true)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    res.write(`retry: 1000\n: following ${partition.topic}/${partition.id} from offset ${from}\n\n`)
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), this.heartbeatMs)
    try {
      for await (const record of partition.records({ from, follow: true, signal })) {
        const event = `id: ${record.offset}\nevent: record\ndata: ${JSON.stringify(recordToJson(record, encoding))}\n\n`
        if (!res.write(event)) await once(res, 'drain', { signal }).catch(() => undefined)
        if (signal.aborted) break
      }
    } catch (error) {
      if (!signal.aborted) res.write(`event: error\ndata: ${JSON.stringify(describeError(error).body)}\n\n`)
    } finally {
      clearInterval(heartbeat)
      this.streams.delete(stream)
      this.gauge.give()
      res.end()
    }
  }

  /** Ends the streams of `topic` (it is being deleted). */
  endTopic(topic: string): void {
    for (const stream of this.streams) if (stream.topic === topic) stream.stop.abort()
  }

  /** Ends every stream (the server is closing). */
  endAll(): void {
    for (const stream of this.streams) stream.stop.abort()
  }
}

/** Where a follow starts: `Last-Event-ID` + 1 when the client resumes, else `from`, else the end. */
export function followStart(lastEventId: string | string[] | undefined, from: number | undefined, partition: Partition): number {
  if (typeof lastEventId === 'string' && /^\d+$/.test(lastEventId)) return Number(lastEventId) + 1
  return from ?? partition.highWatermark
}
