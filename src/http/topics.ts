/**
 * The broker's topics as the HTTP layer sees them: a topic must exist before it is produced to or
 * read (Broker.topic would create it: over HTTP only `POST /topics` creates). A topic the broker
 * holds open exists; any other costs one `stat` of `<dir>/<name>/topic.json` (so topics created by
 * other processes are found too). Names are
 * checked by the broker's rule first, so a name is always one safe path component.
 * Deleting a topic first tells the listeners (open streams and sessions on it end).
 */
import fs from 'node:fs'
import path from 'node:path'
import { type Broker, checkTopicName } from '../broker.js'
import { TOPIC_METADATA_FILE } from '../format.js'
import type { Topic, TopicOptions } from '../topic.js'
import { HttpError } from './errors.js'

export interface PartitionDescription {
  partition: number
  startOffset: number
  endOffset: number
  highWatermark: number
  bytes: number
  segments: number
}

export class TopicAccess {
  private readonly deleteListeners = new Set<(name: string) => void>()

  constructor(readonly broker: Broker) {}

  exists(name: string): boolean {
    checkTopicName(name)
    // A topic the broker holds open exists (its deleteTopic closes it first); any other is one stat
    // of its metadata file, so topics created by other processes are found too.
    return this.broker.holdsOpen(name) || fs.existsSync(path.join(this.broker.dir, name, TOPIC_METADATA_FILE))
  }

  /** The existing topic `name`; UNKNOWN_TOPIC if there is none. */
  async open(name: string): Promise<Topic> {
    if (!this.exists(name)) throw new HttpError('UNKNOWN_TOPIC', `topic '${name}' does not exist`)
    return this.broker.topic(name)
  }

  /** Creates `name`; TOPIC_EXISTS if it is there already. */
  async create(name: string, options: TopicOptions): Promise<Topic> {
    if (this.exists(name)) throw new HttpError('TOPIC_EXISTS', `topic '${name}' exists already`)
    return this.broker.topic(name, options)
  }

  /** The topic `name`, created with `options` if missing (the job queues' own topics). */
  openOrCreate(name: string, options: TopicOptions): Promise<Topic> {
    return this.broker.topic(name, options)
  }

  async delete(name: string): Promise<void> {
    if (!this.exists(name)) throw new HttpError('UNKNOWN_TOPIC', `topic '${name}' does not exist`)
    for (const listener of this.deleteListeners) listener(name)
    await this.broker.deleteTopic(name)
  }

  /** Runs `listener(name)` before a topic is deleted; returns the removal. */
  onDelete(listener: (name: string) => void): () => void {
    this.deleteListeners.add(listener)
    return () => this.deleteListeners.delete(listener)
  }

  list(): string[] {
    return this.broker.topics()
  }
}

export function describeTopic(topic: Topic): { name: string; partitions: PartitionDescription[] } {
  const partitions: PartitionDescription[] = []
  for (let i = 0; i < topic.partitionCount; i++) {
    const partition = topic.partition(i)
    const segments = partition.log.segments
    partitions.push({
      partition: i,
      startOffset: partition.startOffset,
      endOffset: partition.endOffset,
      highWatermark: partition.highWatermark,
      bytes: segments.reduce((sum, segment) => sum + segment.bytes, 0),
      segments: segments.length,
    })
  }
  return { name: topic.name, partitions }
}
