/**
 * Runs a workload as timed rounds, driven by tinybench: one tinybench iteration is one round, after
 * one untimed-for-reporting warmup round. Each round times only its own body (process.hrtime) and
 * hands that duration to tinybench as `overriddenDuration`, so setup done in `before` (offset
 * generation, gc) is never timed. Returns ops/s per measured round, in round order.
 */
import { Bench } from 'tinybench'

/**
 * @param {object} spec
 * @param {string} spec.name
 * @param {number} spec.rounds measured rounds
 * @param {number} [spec.warmupRounds] rounds run first and discarded (default 1)
 * @param {(phase: 'warmup' | 'run') => void | Promise<void>} [spec.before] untimed, before each round
 * @param {(phase: 'warmup' | 'run') => Promise<{ ops: number }> | { ops: number }} spec.round the timed body
 */
export async function runRounds({ name, rounds, warmupRounds = 1, before, round }) {
  const measured = []
  let phase = 'run'
  const bench = new Bench({
    name,
    iterations: rounds,
    time: 0,
    warmup: warmupRounds > 0,
    warmupIterations: warmupRounds,
    warmupTime: 0,
    retainSamples: true,
    throws: true,
  })
  bench.add(
    name,
    async () => {
      const started = process.hrtime.bigint()
      const { ops } = await round(phase)
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      if (phase === 'run') measured.push({ ops, ms })
      return { overriddenDuration: ms }
    },
    {
      beforeEach: async (mode) => {
        phase = mode ?? 'run'
        globalThis.gc?.()
        await before?.(phase)
      },
    },
  )
  await bench.run()
  const task = bench.tasks[0]
  if (task.result.state !== 'completed') throw task.result.error ?? new Error(`rounds of ${name} ended ${task.result.state}`)
  if (measured.length !== rounds) throw new Error(`expected ${rounds} rounds, measured ${measured.length}`)
  return {
    opsPerSec: measured.map(({ ops, ms }) => ops / (ms / 1000)),
    roundMs: measured.map(({ ms }) => ms),
    opsPerRound: measured.map(({ ops }) => ops),
  }
}
