/** Order statistics over rounds and latency samples. */

export function sortedCopy(values) {
  return Float64Array.from(values).sort()
}

/** Linear-interpolated quantile (q in [0, 1]) of a sorted array. */
export function quantileSorted(sorted, q) {
  if (sorted.length === 0) return NaN
  const position = (sorted.length - 1) * q
  const low = Math.floor(position)
  const high = Math.ceil(position)
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low)
}

/** { median, min, max } of per-round figures. */
export function spread(values) {
  const sorted = sortedCopy(values)
  return { median: quantileSorted(sorted, 0.5), min: sorted[0], max: sorted[sorted.length - 1] }
}

/** Collects latency samples (µs) without allocating per sample. */
export class LatencyRecorder {
  constructor(capacity = 1 << 22) {
    this.samples = new Float64Array(capacity)
    this.count = 0
    this.dropped = 0
  }

  add(us) {
    if (this.count < this.samples.length) this.samples[this.count++] = us
    else this.dropped++
  }

  /** p50/p99 plus a 1,001-point quantile sketch, so the parent can merge passes from several children. */
  percentiles() {
    const sorted = this.samples.subarray(0, this.count).sort()
    const sketch = []
    for (let i = 0; i <= SKETCH_STEPS; i++) sketch.push(quantileSorted(sorted, i / SKETCH_STEPS))
    return { p50Us: quantileSorted(sorted, 0.5), p99Us: quantileSorted(sorted, 0.99), latency: { count: this.count, dropped: this.dropped, sketch } }
  }
}

const SKETCH_STEPS = 1000

/** Merges quantile sketches of several children (weighted by their sample counts) into p50/p99. */
export function mergeLatency(latencies) {
  const points = []
  for (const { count, sketch } of latencies) {
    if (count === 0) continue
    for (const value of sketch) points.push({ value, weight: count / sketch.length })
  }
  if (points.length === 0) return { p50Us: NaN, p99Us: NaN }
  points.sort((a, b) => a.value - b.value)
  const total = points.reduce((sum, point) => sum + point.weight, 0)
  const at = (q) => {
    let seen = 0
    for (const point of points) {
      seen += point.weight
      if (seen >= q * total) return point.value
    }
    return points[points.length - 1].value
  }
  return { p50Us: at(0.5), p99Us: at(0.99) }
}
