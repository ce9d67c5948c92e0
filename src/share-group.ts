/**
 * ShareGroup: the application's handle on one share group of a topic (queue semantics, like
 * Kafka's share groups, KIP-932). Members `join` and take records from every partition at once;
 * each record is held by one member at a time. Every handle of one group id on one topic shares
 * the coordinator kept by the topic's owner (share-coordinator.ts), reached through a ShareLink.
 */
import { LogError } from './errors.js'
import type { Partition } from './partition.js'
import { ShareConsumer } from './share-consumer.js'
import type { ShareLink } from './share-link.js'

export type { ShareGroupOptions } from './share-coordinator.js'

export class ShareGroup {
  constructor(
    readonly groupId: string,
    /** Resolves to the group's link (the coordinator is opened on first use). */
    private readonly link: () => Promise<ShareLink>,
    private readonly partitions: readonly Partition[],
  ) {}

  /** Joins the group as a new member (or with the given id); resolves to the member. */
  async join(options: { memberId?: string } = {}): Promise<ShareConsumer> {
    if (options === null || typeof options !== 'object') throw new LogError('INVALID_ARGUMENT', 'join options must be an object')
    const link = await this.link()
    const memberId = await link.join(options.memberId)
    return new ShareConsumer(memberId, link, this.partitions)
  }
}
