// seglog quickstart: append, roll segments, reopen, read by offset, scan, follow, truncate.
// Run with: npm install && npm run demo
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SegmentedLog, mmapAvailable } from '../dist/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seglog-demo-'))
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const say = (...parts) => console.log('•', ...parts)

say(`log directory: ${dir}`)
say(`memory-mapped reads: ${mmapAvailable() ? 'available (native addon loaded)' : 'not available, using pread'}`)

// 1. Append with group-committed fsync: every append below resolves only once it is on disk.
let log = await SegmentedLog.open(dir, { segmentBytesMax: 16 * 1024, sync: 'always' })
const started = performance.now()
const offsets = await Promise.all(
  Array.from({ length: 2000 }, (_, i) => log.append(encoder.encode(JSON.stringify({ image: `field-${i % 50}.png`, leaf: i }))))
)
const elapsedMs = performance.now() - started
say(`appended ${offsets.length} records durably in ${elapsedMs.toFixed(0)} ms (offsets ${offsets[0]}..${offsets.at(-1)})`)
const first = await log.appendBatch(['detect', 'crop', 'classify', 'store'].map((stage) => encoder.encode(stage)))
say(`appended a batch of 4 atomically at offsets ${first}..${first + 3}`)
say(`the log rolled into ${log.segments.length} segments of at most 16 KiB`)
await log.close()

// 2. Reopen: a clean close means no scan, only a cheap check of the newest segment's tail.
log = await SegmentedLog.open(dir)
say(`reopened: offsets [${log.startOffset}, ${log.endOffset}), scanned on open: ${log.recovery.scanned}`)
say(`read(1234) → ${decoder.decode(log.read(1234))}`)
say(`read(${first + 2}) → ${decoder.decode(log.read(first + 2))}`)

// 3. A reader follows the writer: it wakes when new records land, no polling loop.
const reader = await SegmentedLog.open(dir, { readOnly: true })
const stop = new AbortController()
const followed = (async () => {
  const seen = []
  for await (const record of reader.records({ from: log.endOffset, follow: true, signal: stop.signal })) {
    seen.push(decoder.decode(record.value))
    if (seen.length === 3) stop.abort()
  }
  return seen
})()
for (const word of ['new', 'model', 'version']) await log.append(encoder.encode(word))
await log.sync()
say(`a readOnly follower saw: ${(await followed).join(', ')}`)
await reader.close()

// 4. Replay from a point in time, then cut the tail.
const scanned = []
for await (const record of log.records({ from: 1998, to: 2002 })) scanned.push(`${record.offset}:${decoder.decode(record.value)}`)
say(`records({ from: 1998, to: 2002 }) → ${scanned.join(' | ')}`)
await log.truncate(2000)
say(`truncate(2000) → endOffset ${log.endOffset}; the batch and the follower's records are gone`)
const removed = await log.deleteBefore(1000)
say(`deleteBefore(1000) removed ${removed} whole segments; startOffset is now ${log.startOffset}`)
await log.close()

fs.rmSync(dir, { recursive: true, force: true })
say('done')
