#!/usr/bin/env node
/**
 * Makes sure the optional mmap addon is there before the test suite runs (`npm test`, `.ci/run`).
 *
 * Users may go without the addon (reads then use pread), but the suite specifies the mapped read
 * path too, so it needs it. npm drops an optional dependency whose build failed, and on Node 24
 * and later the build of `@riaskov/mmap-io` 1.4.3 always fails by default: its binding.gyp passes
 * `-std=c++17`, and those Node headers require C++20. When the addon does not load, this installs
 * it once more with `-std=gnu++20` appended to CXXFLAGS (g++ takes the last `-std`), without
 * touching package.json or the lockfile, and exits non-zero with the reason if it still does not
 * load. Nothing is done when the addon loads, so on Node 20 and 22 this is a check.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ADDON = '@riaskov/mmap-io'
const root = fileURLToPath(new URL('../..', import.meta.url))

/** Loads the addon in a fresh process (this one's require cache would remember a failure); returns why not, or undefined. */
function loadFailure() {
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(ADDON)})`], { cwd: root, encoding: 'utf8' })
  return probe.status === 0 ? undefined : (probe.stderr.split('\n').find((line) => /Error/.test(line)) ?? `exit ${probe.status}`)
}

/** Runs npm: the npm running this script when there is one (npm_execpath), else the one on PATH. */
function npm(args, env) {
  const npmCli = process.env.npm_execpath
  const [command, argv] = npmCli ? [process.execPath, [npmCli, ...args]] : ['npm', args]
  return spawnSync(command, argv, { cwd: root, env, stdio: 'inherit' })
}

const failure = loadFailure()
if (failure === undefined) process.exit(0)

const range = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).optionalDependencies[ADDON]
console.error(`${ADDON} does not load (${failure}); building it again with -std=gnu++20 (Node ${process.versions.node})`)
const cxxFlags = `${process.env.CXXFLAGS ?? ''} -std=gnu++20`.trim()
npm(['install', '--no-save', '--foreground-scripts', `${ADDON}@${range}`], { ...process.env, CXXFLAGS: cxxFlags })

const stillFailing = loadFailure()
if (stillFailing !== undefined) {
  console.error(`${ADDON} still does not load (${stillFailing}). The test suite covers the memory-mapped read path and needs it:`)
  console.error('install a C++20 compiler (g++ 10 or later) and Python 3 for node-gyp, then run npm test again (this step retries the build).')
  process.exit(1)
}
console.error(`${ADDON} built and loads`)
