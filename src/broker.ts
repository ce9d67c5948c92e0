/**
 * Broker: many topics in one directory, one subdirectory per topic (`<dir>/<name>/`, a Topic).
 *
 * Names follow Kafka's rule (letters, digits, `.`, `_`, `-`; at most 249 characters; not `.` or
 * `..`), so a name is always a safe single path component. `defaults` (topic and log options) apply
 * to every topic the broker creates, under what `topic(name, options)` gives. A topic is opened once
 * per broker and shared by its callers; `close()` closes them all. Several brokers (threads,
 * processes) may open one directory: each topic is then owned by its first opener and the others
 * forward to it, as with `Topic.open`.
 */
import fs from 'node:fs'
import path from 'node:path'
import { BrokerConsumerGroup, type BrokerGroupOptions } from './broker-group.js'
import { BrokerShareGroup, type BrokerShareGroupOptions } from './broker-share-group.js'
import { LogError, ioError } from './errors.js'
import { TOPIC_METADATA_FILE } from './format.js'
import { probeLock } from './lock.js'
import { Topic, type TopicOptions } from './topic.js'

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/
/** Topics being deleted are renamed to this prefix: '@' is not allowed in topic names. */
const DELETING_PREFIX = '@deleting-'

export function checkTopicName(name: unknown): string {
  if (typeof name !== 'string' || !TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new LogError('INVALID_ARGUMENT', `topic names are 1–249 letters, digits, '.', '_' or '-' (not '.' or '..'), got ${JSON.stringify(name)}`)
  }
  return name
}

/** Options compared by value (a RegExp by its source and flags). */
function groupKey(options: BrokerGroupOptions | BrokerShareGroupOptions): string {
  if (options === null || typeof options !== 'object') return String(options)
  return JSON.stringify(options, (_name, value: unknown) => (value instanceof RegExp ? `RegExp:${String(value)}` : value))
}

export class Broker {
  private readonly open = new Map<string, Promise<Topic>>()
  private readonly groups = new Map<string, { group: BrokerConsumerGroup; key: string }>()
  private readonly shareGroups = new Map<string, { group: BrokerShareGroup; key: string }>()
  private closed = false

  private constructor(
    readonly dir: string,
    private readonly defaults: TopicOptions,
  ) {}

  /** Opens (creating if missing) the broker directory `dir`; `defaults` apply to the topics it creates. */
  static async open(dir: string, defaults: TopicOptions = {}): Promise<Broker> {
    if (typeof dir !== 'string' || dir.length === 0) throw new LogError('INVALID_ARGUMENT', 'dir must be a non-empty string')
    if (defaults === null || typeof defaults !== 'object' || Array.isArray(defaults)) throw new LogError('INVALID_ARGUMENT', 'defaults must be an object')
    const absolute = path.resolve(dir)
    try {
      fs.mkdirSync(absolute, { recursive: true })
      for (const name of fs.readdirSync(absolute)) {
        if (name.startsWith(DELETING_PREFIX)) fs.rmSync(path.join(absolute, name), { recursive: true, force: true })
      }
    } catch (error) {
      throw ioError('could not create the broker directory', error, absolute)
    }
    return new Broker(absolute, { ...defaults })
  }

  /** The topic `name`, created with the broker's defaults and `options` if it does not exist. */
  topic(name: string, options: TopicOptions = {}): Promise<Topic> {
    try {
      this.checkOpen()
      checkTopicName(name)
      if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new LogError('INVALID_ARGUMENT', 'topic options must be an object')
    } catch (error) {
      return Promise.reject(error)
    }
    let topic = this.open.get(name)
    if (!topic) {
      topic = Topic.open(path.join(this.dir, name), { ...this.defaults, ...options })
      topic.catch(() => this.open.delete(name))
      this.open.set(name, topic)
    }
    return topic
  }

  /**
   * Whether this handle holds topic `name` open (or is opening it). An open topic exists: only
   * deleteTopic removes one, and it closes this handle's copy first (another handle's delete is
   * refused with LOCKED while this one holds it). The HTTP layer uses it to skip a stat per request.
   */
  holdsOpen(name: string): boolean {
    return this.open.has(name)
  }

  /** Names of the topics present in the directory (created by any handle), sorted. */
  topics(): string[] {
    this.checkOpen()
    let names: string[]
    try {
      names = fs.readdirSync(this.dir)
    } catch (error) {
      throw ioError('could not list the broker directory', error, this.dir)
    }
    return names.filter((name) => TOPIC_NAME.test(name) && name !== '.' && name !== '..' && fs.existsSync(path.join(this.dir, name, TOPIC_METADATA_FILE))).sort()
  }

  /**
   * Removes the topic `name`: its partitions and its groups' state. Refused with LOCKED while a
   * handle in another thread or process still has it open.
   */
  async deleteTopic(name: string): Promise<void> {
    this.checkOpen()
    checkTopicName(name)
    const dir = path.join(this.dir, name)
    if (!fs.existsSync(path.join(dir, TOPIC_METADATA_FILE))) throw new LogError('INVALID_ARGUMENT', `topic '${name}' does not exist`, { path: dir })
    const mine = this.open.get(name)
    this.open.delete(name)
    if (mine) await (await mine.catch(() => undefined))?.close()
    const holder = probeLock(dir)
    if (holder.kind === 'live') throw new LogError('LOCKED', `topic '${name}' is open in another thread or process (pid ${holder.pid})`, { path: dir })
    // Renamed aside first (to a name no topic can have), so it leaves topics() at once and a crash
    // never leaves half a topic behind; open() removes what a crash left aside.
    const aside = path.join(this.dir, `${DELETING_PREFIX}${name}-${process.pid}-${Date.now()}`)
    try {
      fs.renameSync(dir, aside)
      fs.rmSync(aside, { recursive: true, force: true })
    } catch (error) {
      throw ioError('could not delete the topic', error, dir)
    }
  }

  /**
   * A consumer group over several topics: `topics` lists names or is a RegExp (topics created later
   * that match join within a second). One handle per group id and broker; members may live in other
   * threads and processes that open the same directory (broker-group.ts).
   */
  consumerGroup(groupId: string, options: BrokerGroupOptions): BrokerConsumerGroup {
    return this.groupFor(this.groups, 'consumer', groupId, options, () => {
      const group = new BrokerConsumerGroup(groupId, this, options)
      // One that could not open (another handle's subscription differs, a damaged slot table) is
      // forgotten, so that a later call tries again, as topic() does.
      group.opening.catch(() => {
        if (this.groups.get(groupId)?.group === group) this.groups.delete(groupId)
      })
      return group
    })
  }

  /**
   * A share group over several topics (a list or a RegExp, picked up as for consumerGroup): each
   * member takes records from every subscribed topic's share group under one member id
   * (broker-share-group.ts). Members may live in other threads and processes.
   */
  shareGroup(groupId: string, options: BrokerShareGroupOptions): BrokerShareGroup {
    return this.groupFor(this.shareGroups, 'share', groupId, options, () => new BrokerShareGroup(groupId, this, options))
  }

  /** The group open under `groupId`, or a new one; the same id with other options is refused. */
  private groupFor<G>(groups: Map<string, { group: G; key: string }>, kind: string, groupId: string, options: BrokerGroupOptions | BrokerShareGroupOptions, create: () => G): G {
    this.checkOpen()
    const key = groupKey(options)
    const known = groups.get(groupId)
    if (known && known.key !== key) throw new LogError('INVALID_ARGUMENT', `${kind} group '${groupId}' is already open with other options`)
    if (known) return known.group
    const group = create()
    groups.set(groupId, { group, key })
    return group
  }

  /** Closes every group and topic this broker opened. Later calls throw LOG_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all([...this.groups.values(), ...this.shareGroups.values()].map(({ group }) => group.close()))
    this.groups.clear()
    this.shareGroups.clear()
    const topics = await Promise.allSettled([...this.open.values()])
    this.open.clear()
    await Promise.all(topics.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)))
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', 'broker is closed', { path: this.dir })
  }
}
