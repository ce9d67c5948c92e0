#!/usr/bin/env node
/**
 * The `seglog` executable (package.json "bin"): runs runCli with the process's arguments and
 * streams and sets the exit code. SIGINT is handled only by commands that ask for it
 * (`tail --follow`, which then closes its readers and exits 0; `serve`, on SIGINT or SIGTERM); every other command keeps Node's
 * default of dying at once. A closed stdout pipe (`seglog dump … | head`) ends the process quietly.
 */
import { runCli } from './run-cli.js'

process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

function interruptSignal(): AbortSignal {
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort())
  process.once('SIGTERM', () => controller.abort())
  return controller.signal
}

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, interrupt: interruptSignal })
