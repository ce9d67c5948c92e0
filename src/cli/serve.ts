/**
 * `seglog serve <dir> [--host 127.0.0.1] [--port 8080] [--auth <file>] [--sync <mode>]`: the broker directory
 * `<dir>` behind HTTP (src/http/, docs/http.md) until interrupted (SIGINT or SIGTERM), then a clean
 * shutdown: streams and sessions end, requests in flight finish, the broker closes.
 *
 * Without `--auth` the server has no access control, so it refuses any host but a loopback one.
 * `--sync` is the topics' sync mode (the log's default, 'interval', unless given); job queues'
 * topics are always 'always'.
 */
import { once } from 'node:events'
import { Broker } from '../broker.js'
import { AccessControl } from '../http/auth.js'
import { createBrokerServer } from '../http/server.js'
import { type CommandOptions, UsageError } from './args.js'
import type { CliIo } from './output.js'

const PORT_MAX = 65_535

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

export async function runServe(dir: string, options: CommandOptions, io: CliIo): Promise<number> {
  const host = options.host ?? '127.0.0.1'
  const port = options.port ?? 8080
  if (port > PORT_MAX) throw new UsageError(`serve: --port must be at most ${PORT_MAX}`)
  if (options.auth === undefined && !isLoopback(host)) throw new UsageError(`serve: --auth <file> is required to listen on ${host} (without it only a loopback host is allowed)`)
  const sync = options.sync
  if (sync !== undefined && sync !== 'always' && sync !== 'interval' && sync !== 'never') throw new UsageError(`serve: --sync must be always, interval or never, got '${sync}'`)
  const access = options.auth === undefined ? AccessControl.none() : AccessControl.fromFile(options.auth)
  const broker = await Broker.open(dir, sync === undefined ? {} : { sync })
  const server = createBrokerServer(broker, { auth: access, log: (line) => io.stderr.write(`seglog serve: ${line}\n`) })
  try {
    const signal = io.interrupt?.() ?? new AbortController().signal
    const { url } = await server.listen({ host, port })
    const mode = access.enabled ? `tokens from ${options.auth}` : 'NO access control (loopback only)'
    io.stdout.write(`seglog serve: ${broker.dir} on ${url}, ${mode}\n`)
    if (!signal.aborted) await once(signal, 'abort')
  } finally {
    await server.close()
    await broker.close()
  }
  io.stdout.write('seglog serve: stopped\n')
  return 0
}
