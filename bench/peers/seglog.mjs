/**
 * seglog (the built package) behind the peers' interface. Modes: 'mmap' / 'pread' (read paths,
 * `mmap: 'always'` / `'never'`), 'never' (sync: 'never' appends), 'always' (sync: 'always').
 * Read fixtures are built and sealed by lib/fixtures.mjs so every record lies in a mapped segment.
 */
import { SegmentedLog } from '../../dist/index.js'

export const name = 'seglog'

export async function open(dir, mode = 'never', extra = {}) {
  const options = { sync: mode === 'always' ? 'always' : 'never', ...extra }
  if (mode === 'mmap') options.mmap = 'always'
  if (mode === 'pread') options.mmap = 'never'
  const log = await SegmentedLog.open(dir, options)
  return {
    log,
    get count() {
      return log.endOffset
    },
    appendBatch(values) {
      return log.appendBatch(values)
    },
    appendDurable(value) {
      return log.append(value)
    },
    get(offset) {
      return log.read(offset)
    },
    async scan(from, to, visit) {
      let seen = 0
      for await (const record of log.records({ from, to })) {
        visit(record.value)
        seen++
      }
      return seen
    },
    truncate(records) {
      return log.truncate(records)
    },
    close() {
      return log.close()
    },
  }
}
