/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof --only=<id>`, written to
 * bench/.tmp/prof/): self time and total (inclusive) time per function, top N.
 *
 *   node bench/profile-summary.mjs bench/.tmp/prof/read-seglog-mmap.cpuprofile [top=25]
 */
import fs from 'node:fs'
import path from 'node:path'

const [file, topArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [top]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const profile = JSON.parse(fs.readFileSync(file, 'utf8'))
const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const parents = new Map()
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)

// Sample counts → time: each sample has a timeDelta (µs) for the interval before it.
const selfUs = new Map()
let totalUs = 0
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0
  selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
  totalUs += delta
})

const keyOf = (node) => {
  const { functionName, url, lineNumber } = node.callFrame
  return `${functionName || '(anonymous)'} ${url ? path.basename(url) : ''}:${lineNumber + 1}`
}
const self = new Map()
const inclusive = new Map()
for (const [id, us] of selfUs) {
  const node = nodes.get(id)
  self.set(keyOf(node), (self.get(keyOf(node)) ?? 0) + us)
  // Inclusive: credit every distinct function on the stack once.
  const seen = new Set()
  for (let at = id; at !== undefined; at = parents.get(at)) {
    const key = keyOf(nodes.get(at))
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + us)
  }
}
const print = (title, map) => {
  console.log(`\n${title} (of ${(totalUs / 1000).toFixed(0)} ms sampled)`)
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * us) / totalUs).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`)
  }
}
print('self time', self)
print('total time', inclusive)
