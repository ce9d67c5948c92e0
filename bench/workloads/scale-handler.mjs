/**
 * The stand-in for a model: a fixed amount of arithmetic per record (an xorshift chain seeded by
 * the record's bytes), so the work is CPU time, not wall time, and two replicas on one core would
 * gain nothing.
 */
export function cpuBoundHandler(value, iterations) {
  let state = (value[0] | (value[1] << 8) | (value[2] << 16) | (value[3] << 24)) ^ 0x9e3779b9
  for (let i = 0; i < iterations; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
  }
  return state
}
