/**
 * Every test owns a fresh directory on a disk-backed file system (tmpfs hides SIGBUS), under the
 * repository's .test-tmp/ unless SEGLOG_TEST_DIR names another place, and removes it afterwards.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'

const ROOT = process.env.SEGLOG_TEST_DIR ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '.test-tmp')
const created: string[] = []

export function tempDir(label = 'log'): string {
  fs.mkdirSync(ROOT, { recursive: true })
  const dir = fs.mkdtempSync(path.join(ROOT, `${label.replace(/[^a-z0-9-]/gi, '-')}-`))
  created.push(dir)
  return dir
}

afterEach(() => {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})
