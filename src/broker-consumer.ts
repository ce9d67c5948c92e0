/**
 * BrokerConsumer: a member of a BrokerConsumerGroup (broker-group.ts), a Consumer whose partitions
 * are named by topic and partition; the slot table (broker-group-slots.ts) translates.
 */
import type { SlotTable, TopicPartition } from './broker-group-slots.js'
import type { Consumer, PollOptions } from './consumer.js'
import type { ConsumedRecord } from './partition.js'

/** A member of a BrokerConsumerGroup: a Consumer whose partitions are named by topic and partition. */
export class BrokerConsumer {
  constructor(
    private readonly consumer: Consumer,
    private readonly table: SlotTable,
  ) {}

  get memberId(): string {
    return this.consumer.memberId
  }

  /** The topics' partitions this member owns now. */
  get assignment(): TopicPartition[] {
    return this.consumer.assignment.map((slot) => ({ ...this.table.slots[slot]! }))
  }

  poll(options?: PollOptions): Promise<ConsumedRecord[]> {
    return this.consumer.poll(options)
  }

  /** Commits `record.offset + 1` for the record's topic and partition, or every position consumed so far. */
  commit(record?: Pick<ConsumedRecord, 'topic' | 'partition' | 'offset'>): Promise<void> {
    return this.consumer.commit(record)
  }

  /** Moves the position of an owned partition (replay or skip). */
  seek(topic: string, partition: number, offset: number): void {
    this.consumer.seek(this.table.slotOf(topic, partition), offset)
  }

  position(topic: string, partition: number): number | undefined {
    return this.consumer.position(this.table.slotOf(topic, partition))
  }

  [Symbol.asyncIterator](): AsyncGenerator<ConsumedRecord, void, undefined> {
    return this.consumer[Symbol.asyncIterator]()
  }

  close(): Promise<void> {
    return this.consumer.close()
  }
}
