/**
 * A tiny seeded PRNG (Marsaglia's xorshift32) so every run reads the same offsets and writes the
 * same payload bytes. Not for anything but benchmarks.
 */
export const DEFAULT_SEED = 0x9e3779b9

export class XorShift32 {
  constructor(seed = DEFAULT_SEED) {
    this.state = seed >>> 0 || 1
  }

  /** Next value in [0, 2^32). */
  nextU32() {
    let x = this.state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.state = x >>> 0
    return this.state
  }

  /** Next value in [0, bound) for bound ≤ 2^32 (modulo bias is irrelevant here). */
  below(bound) {
    return this.nextU32() % bound
  }

  /** Fills `bytes` with pseudo-random bytes. */
  fill(bytes) {
    const whole = bytes.length & ~3
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (let i = 0; i < whole; i += 4) view.setUint32(i, this.nextU32(), true)
    for (let i = whole; i < bytes.length; i++) bytes[i] = this.nextU32() & 0xff
    return bytes
  }
}

/** `count` random offsets in [0, bound), generated outside any timed region. */
export function randomOffsets(rng, count, bound) {
  const offsets = new Uint32Array(count)
  for (let i = 0; i < count; i++) offsets[i] = rng.below(bound)
  return offsets
}
