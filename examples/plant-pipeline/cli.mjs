// The demo's command line: flags → runPipeline options (see README.md for what each one does).

export const usage = (DEFAULTS) => `node examples/plant-pipeline/pipeline.mjs [flags]
  --days=N --positions=N --leaves=N   field size (default ${DEFAULTS.days} days, ${DEFAULTS.positions} positions per area, ${DEFAULTS.leaves} leaves per photo)
  --replicas=N                        replicas of the detector and of each grader (default ${DEFAULTS.replicas})
  --detector-replicas=N --partitions=N
  --processes                         run stage replicas as child processes instead of worker threads
  --kill[=detector|<disease>]         kill replica 0 of that stage midway (default: detector)
  --retrain=<disease> | --no-retrain  replay the crops topics with a disease's new grader version (default rust)
  --session-timeout-ms=N              how long a dead replica keeps its partitions (default ${DEFAULTS.sessionTimeoutMs})
  --dir=PATH                          where the topics live (removed first; default examples/plant-pipeline/.data)
  --quiet                             no progress lines`

const FLAGS = ['help', 'days', 'positions', 'leaves', 'replicas', 'detector-replicas', 'partitions', 'session-timeout-ms', 'processes', 'kill', 'retrain', 'no-retrain', 'dir', 'quiet']

/** Options for runPipeline from `--name=value` flags; unknown flags are refused. */
export function parseArgs(argv) {
  const flags = new Map()
  for (const arg of argv) {
    const match = /^--([^=]+)(?:=(.*))?$/.exec(arg)
    if (!match || !FLAGS.includes(match[1])) throw new Error(`unknown argument ${arg}`)
    flags.set(match[1], match[2] ?? true)
  }
  const number = (name) => (flags.has(name) ? Number(flags.get(name)) : undefined)
  return {
    help: flags.has('help'),
    days: number('days'),
    positions: number('positions'),
    leaves: number('leaves'),
    replicas: number('replicas'),
    detectorReplicas: number('detector-replicas'),
    partitions: number('partitions'),
    sessionTimeoutMs: number('session-timeout-ms'),
    processes: flags.has('processes'),
    kill: !flags.has('kill') ? undefined : flags.get('kill') === true ? 'detector' : flags.get('kill'),
    retrain: flags.has('no-retrain') || flags.get('retrain') === 'none' ? null : flags.get('retrain') === true ? undefined : flags.get('retrain'),
    dir: flags.get('dir'),
    quiet: flags.has('quiet'),
  }
}
