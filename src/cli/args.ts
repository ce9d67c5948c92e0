/**
 * Command-line arguments of `seglog`: which command, which directory, which options.
 *
 * Parsing is pure (argv in, a typed `Invocation` out). Anything the user typed wrong is a
 * `UsageError` (exit code 2, usage printed), kept apart from `LogError`s (exit code 1), which say
 * what was found on disk. Options take `--name value` or `--name=value`; counts and offsets are
 * non-negative safe integers.
 */

export const COMMANDS = ['verify', 'dump', 'stats', 'tail', 'repair', 'serve'] as const
export type CommandName = (typeof COMMANDS)[number]

export interface CommandOptions {
  from: number | undefined
  count: number | undefined
  partition: number | undefined
  json: boolean
  follow: boolean
  /** serve: where to listen, and the auth file. */
  host: string | undefined
  port: number | undefined
  auth: string | undefined
  sync: string | undefined
}

export type Invocation =
  | { kind: 'help'; topic: CommandName | undefined }
  | { kind: 'command'; command: CommandName; dir: string; options: CommandOptions }

/** A command line that cannot be run as typed. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly code = 'USAGE' as const
}

interface OptionSpec {
  name: keyof CommandOptions
  takesValue: boolean
  /** The value is text (a host, a file), not a count. */
  text?: boolean
}

const OPTIONS: Record<string, OptionSpec> = {
  '--from': { name: 'from', takesValue: true },
  '--count': { name: 'count', takesValue: true },
  '--partition': { name: 'partition', takesValue: true },
  '--json': { name: 'json', takesValue: false },
  '--follow': { name: 'follow', takesValue: false },
  '-f': { name: 'follow', takesValue: false },
  '--host': { name: 'host', takesValue: true, text: true },
  '--port': { name: 'port', takesValue: true },
  '--auth': { name: 'auth', takesValue: true, text: true },
  '--sync': { name: 'sync', takesValue: true, text: true },
}

/** Which options each command accepts. */
const ACCEPTS: Record<CommandName, readonly (keyof CommandOptions)[]> = {
  verify: [],
  dump: ['from', 'count', 'partition', 'json'],
  stats: [],
  tail: ['count', 'partition', 'json', 'follow'],
  repair: [],
  serve: ['host', 'port', 'auth', 'sync'],
}

function isCommand(word: string | undefined): word is CommandName {
  return (COMMANDS as readonly string[]).includes(word ?? '')
}

/** Parses the arguments after `seglog` (process.argv.slice(2)). */
export function parseArgs(argv: readonly string[]): Invocation {
  const [first, ...rest] = argv
  if (first === undefined) throw new UsageError('no command given')
  if (first === 'help' || first === '--help' || first === '-h') {
    return { kind: 'help', topic: isCommand(rest[0]) ? rest[0] : undefined }
  }
  if (!isCommand(first)) throw new UsageError(`unknown command '${first}'`)
  if (rest.includes('--help') || rest.includes('-h')) return { kind: 'help', topic: first }
  const { positionals, options } = parseOptions(first, rest)
  if (positionals.length === 0) throw new UsageError(`${first}: missing <dir>`)
  if (positionals.length > 1) throw new UsageError(`${first}: unexpected argument '${positionals[1]}'`)
  return { kind: 'command', command: first, dir: positionals[0]!, options }
}

function parseOptions(command: CommandName, args: readonly string[]): { positionals: string[]; options: CommandOptions } {
  const options: CommandOptions = { from: undefined, count: undefined, partition: undefined, json: false, follow: false, host: undefined, port: undefined, auth: undefined, sync: undefined }
  const positionals: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    const equals = arg.indexOf('=')
    const flag = equals === -1 ? arg : arg.slice(0, equals)
    const spec = OPTIONS[flag]
    if (!spec || !ACCEPTS[command].includes(spec.name)) throw new UsageError(`${command}: unknown option '${flag}'`)
    if (!spec.takesValue) {
      if (equals !== -1) throw new UsageError(`${command}: ${flag} takes no value`)
      ;(options[spec.name] as boolean) = true
      continue
    }
    const text = equals === -1 ? args[++i] : arg.slice(equals + 1)
    if (text === undefined) throw new UsageError(`${command}: ${flag} needs a value`)
    if (spec.text) (options[spec.name] as string) = text
    else (options[spec.name] as number) = parseCount(command, flag, text)
  }
  return { positionals, options }
}

function parseCount(command: CommandName, flag: string, text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(value)) throw new UsageError(`${command}: ${flag} must be a non-negative integer, got '${text}'`)
  return value
}

export const USAGE = `usage: seglog <command> <dir> [options]

commands:
  verify <dir>                  check every checksum and index entry; exit 1 on damage (read-only)
  dump <dir> [--from N] [--count N] [--partition P] [--json]
                                print records (read-only)
  stats <dir>                   segments, offsets, bytes; a topic's partitions and group lag (read-only)
  tail <dir> [--count N] [--partition P] [--follow] [--json]
                                print the last N records (default 10); --follow waits for new ones
                                until interrupted (read-only)
  repair <dir>                  run crash recovery now, as opening the log as its writer does, and
                                report what was cut or rebuilt; refused while a writer holds the log
  serve <dir> [--host 127.0.0.1] [--port 8080] [--auth <file>] [--sync always|interval|never]
                                run an HTTP broker over the broker directory <dir> (docs/http.md)
                                until interrupted; without --auth only on a loopback host
  help [command]                this text

<dir> is a log directory (segment files) or a topic directory (topic.json); for serve, a
broker directory (one topic per subdirectory).
exit codes: 0 ok, 1 damage found or an error (message with its code), 2 usage error
`
