/**
 * `runCli(args, io)`: runs one `seglog` command and resolves to its exit code, without touching
 * process state, so tests run it in-process and main.ts wraps it for the shell.
 *
 * Exit codes: 0 done (verify: no damage); 1 a LogError (printed with its code) or damage found by
 * verify/repair; 2 a usage error or `help` (usage on stderr).
 */
import { LogError } from '../errors.js'
import { type CommandName, type CommandOptions, USAGE, UsageError, parseArgs } from './args.js'
import { runDump } from './dump.js'
import type { CliIo } from './output.js'
import { runRepair } from './repair.js'
import { runServe } from './serve.js'
import { runStats } from './stats.js'
import { runTail } from './tail.js'
import { runVerify } from './verify.js'

export type { CliIo, OutputStream } from './output.js'

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

/** Runs `seglog` with `args` (the words after `seglog`: process.argv.slice(2)). */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const invocation = parseArgs(args)
    if (invocation.kind === 'help') {
      io.stderr.write(USAGE)
      return EXIT_USAGE
    }
    return await dispatch(invocation.command, invocation.dir, invocation.options, io)
  } catch (error) {
    return report(error, io)
  }
}

function dispatch(command: CommandName, dir: string, options: CommandOptions, io: CliIo): Promise<number> {
  switch (command) {
    case 'verify':
      return runVerify(dir, io)
    case 'dump':
      return runDump(dir, options, io)
    case 'stats':
      return runStats(dir, io)
    case 'tail':
      return runTail(dir, options, io)
    case 'repair':
      return runRepair(dir, io)
    case 'serve':
      return runServe(dir, options, io)
  }
}

function report(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    io.stderr.write(`seglog: ${error.message}\n\n${USAGE}`)
    return EXIT_USAGE
  }
  if (error instanceof LogError) {
    const offset = error.offset === undefined ? '' : ` [offset ${error.offset}]`
    const where = error.path === undefined ? '' : ` (${error.path})`
    io.stderr.write(`seglog: ${error.message}${offset}${where}\n`)
    if (error.code === 'LOCKED') io.stderr.write('seglog: stop the writer first; verify, dump, stats and tail work while it runs\n')
    return EXIT_FAILED
  }
  io.stderr.write(`seglog: unexpected error (a bug in seglog, please report it): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  return EXIT_FAILED
}
