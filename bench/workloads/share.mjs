/**
 * Share-group workloads (child side), next to the consumer group they are compared with: 4 members
 * in one process draining a 4-partition topic fixture of 100 B records (built by queue.mjs's
 * buildTopicFixture) from offset 0, with a no-op handler (each record's first value byte is read).
 *
 * - consumer group (baseline): 4 members of a new group per round (joined untimed), each polling
 *   its own partition with poll({ maxRecords }) + commit() per poll.
 * - share group: 4 members of a new share group per round (joined untimed), each polling from every
 *   partition with poll({ maxRecords }) and acknowledging each poll's records one ack() call per
 *   record in shuffled order (the calls of one poll share one fsync), awaited before the next poll.
 *
 * A round ends when the members together have consumed (committed or acknowledged) every record.
 */
import { Topic } from '../../dist/index.js'
import { XorShift32 } from '../lib/prng.mjs'
import { runRounds } from '../lib/rounds.mjs'

const MEMBERS = 4
/** How long a member without records waits before asking again (it is woken earlier by the group). */
const IDLE_WAIT_MS = 5
let sink = 0

/** Rounds that each drain the fixture with `MEMBERS` new members; `drain(members, state)` runs the round. */
async function memberRounds(name, { fixture, recordsPerRound, rounds }, joinMembers, drain) {
  const topic = await Topic.open(fixture.dir)
  let members = []
  let roundNumber = 0
  const info = { polls: 0 }
  const leave = async () => {
    for (const member of members) await member.close()
    members = []
  }
  try {
    const measured = await runRounds({
      name,
      rounds,
      before: async () => {
        await leave()
        members = await joinMembers(topic, `${name.replace(/\W+/g, '-')}-${process.pid}-${roundNumber++}`)
      },
      round: async () => {
        const state = { done: 0, touched: 0 }
        await Promise.all(members.map((member) => drain(member, state, info)))
        if (state.done !== recordsPerRound) throw new Error(`${name} consumed ${state.done} records, expected ${recordsPerRound}`)
        sink += state.touched
        return { ops: recordsPerRound }
      },
    })
    await leave()
    return { ...measured, info: { partitions: topic.partitionCount, members: MEMBERS, pollsPerRound: info.polls / (rounds + 1), sink: sink & 0xff } }
  } finally {
    await leave()
    await topic.close()
  }
}

async function joinAll(group) {
  const members = []
  for (let i = 0; i < MEMBERS; i++) members.push(await group.join({ memberId: `bench-${i}` }))
  return members
}

/** Baseline: a consumer group of 4 members, poll({ maxRecords }) + commit() per poll. */
export async function consumerGroupDrain({ fixture, recordsPerRound, rounds, maxRecords }) {
  return memberRounds('consumer group', { fixture, recordsPerRound, rounds }, (topic, id) => joinAll(topic.consumerGroup(id)), async (member, state, info) => {
    while (state.done < recordsPerRound) {
      const records = await member.poll({ maxRecords })
      if (records.length === 0) return // its partition is drained (the fixture does not grow)
      for (const record of records) state.touched += record.value[0]
      info.polls++
      await member.commit()
      state.done += records.length
    }
  })
}

/** A share group of 4 members: poll({ maxRecords }), then one ack() per record in shuffled order. */
export async function shareGroupDrain({ fixture, recordsPerRound, rounds, maxRecords }) {
  const random = new XorShift32()
  return memberRounds('share group', { fixture, recordsPerRound, rounds }, (topic, id) => joinAll(topic.shareGroup(id)), async (member, state, info) => {
    while (state.done < recordsPerRound) {
      const records = await member.poll({ maxRecords, timeoutMs: IDLE_WAIT_MS })
      if (records.length === 0) continue // the others hold the rest, or the window is full: woken when it moves
      for (const record of records) state.touched += record.value[0]
      info.polls++
      shuffle(records, random)
      await Promise.all(records.map((record) => member.ack(record)))
      state.done += records.length
    }
  })
}

function shuffle(items, random) {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.below(i + 1)
    const item = items[i]
    items[i] = items[j]
    items[j] = item
  }
}
