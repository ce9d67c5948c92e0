/**
 * Tests whose child processes or workers import the built package call `ensureBuilt()` (in a
 * beforeAll): it builds dist/ unless dist/ is newer than every source file. A lock directory keeps
 * two test files from rewriting dist/ at once, or while the other's children import it.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export function ensureBuilt(): void {
  const lock = path.join(REPO, '.test-tmp', 'dist-build.lock')
  fs.mkdirSync(path.dirname(lock), { recursive: true })
  const deadline = Date.now() + 120_000
  for (;;) {
    try {
      fs.mkdirSync(lock)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const ageMs = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
      if (ageMs > 300_000) fs.rmSync(lock, { recursive: true, force: true }) // left by a killed run
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100)
    }
  }
  try {
    if (!distIsFresh()) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, stdio: 'pipe' })
  } finally {
    fs.rmSync(lock, { recursive: true, force: true })
  }
}

function distIsFresh(): boolean {
  const sources = (fs.readdirSync(path.join(REPO, 'src'), { recursive: true }) as string[]).filter((name) => name.endsWith('.ts'))
  return sources.every((name) => {
    const built = fs.statSync(path.join(REPO, 'dist', name.replace(/\.ts$/, '.js')), { throwIfNoEntry: false })
    return built !== undefined && built.mtimeMs >= fs.statSync(path.join(REPO, 'src', name)).mtimeMs
  })
}
