/**
 * murmur2 matches Kafka's Java client (the vectors are UtilsTest.testMurmur2's), and keyed placement
 * masks the sign bit the way Kafka's Utils.toPositive does.
 */
import { describe, expect, it } from 'vitest'
import { murmur2, murmur2Range, partitionForKey } from '../src/murmur2.js'

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

/**
 * A second, deliberately different implementation: unbounded BigInt arithmetic reduced mod 2^32 at
 * every step, with Java's fall-through written as a loop. It checks the 32-bit wrapping of the
 * Math.imul version on lengths the published vectors leave out (0, 1, 5, ...).
 */
function murmur2Reference(bytes: Uint8Array): number {
  const mask = 0xffffffffn
  const m = 0x5bd1e995n
  const mul = (a: bigint, b: bigint): bigint => (a * b) & mask
  let h = (0x9747b28cn ^ BigInt(bytes.length)) & mask
  const blocks = Math.floor(bytes.length / 4)
  for (let block = 0; block < blocks; block++) {
    let k = 0n
    for (let shift = 3; shift >= 0; shift--) k = (k << 8n) | BigInt(bytes[block * 4 + shift] ?? 0)
    k = mul(k, m)
    k ^= k >> 24n
    k = mul(k, m)
    h = mul(h, m) ^ k
  }
  const tail = bytes.length % 4
  for (let index = tail - 1; index >= 0; index--) h ^= BigInt(bytes[blocks * 4 + index] ?? 0) << BigInt(8 * index)
  if (tail > 0) h = mul(h, m)
  h ^= h >> 13n
  h = mul(h, m)
  h ^= h >> 15n
  return Number(BigInt.asIntN(32, h))
}

/** Deterministic bytes (xorshift32), so a failure reproduces. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  let state = seed | 1
  return Uint8Array.from({ length }, () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return state & 0xff
  })
}

describe('murmur2', () => {
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ])('hashes %j to Kafka’s %i', (text, expected) => {
    expect(murmur2(utf8(text))).toBe(expected)
  })

  it.each(Array.from({ length: 41 }, (_, length) => [length]))('agrees with a BigInt reference at %i bytes', (length) => {
    for (let seed = 1; seed <= 20; seed++) {
      const bytes = pseudoRandomBytes(length, seed * 7919 + length)
      expect(murmur2(bytes)).toBe(murmur2Reference(bytes))
    }
  })

  it('returns a signed 32-bit integer', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const hash = murmur2(pseudoRandomBytes(seed % 17, seed))
      expect(Number.isInteger(hash)).toBe(true)
      expect(hash).toBeGreaterThanOrEqual(-(2 ** 31))
      expect(hash).toBeLessThan(2 ** 31)
      expect(hash | 0).toBe(hash)
    }
  })

  it('hashes a range of a buffer (murmur2Range) as it hashes a view of that range', () => {
    const backing = pseudoRandomBytes(64, 99)
    for (let start = 0; start <= 20; start++) {
      for (let end = start; end <= start + 21; end++) expect(murmur2Range(backing, start, end)).toBe(murmur2(backing.subarray(start, end)))
    }
  })

  it('reads only the view, not the rest of its buffer', () => {
    const backing = utf8('xx21yy')
    expect(murmur2(backing.subarray(2, 4))).toBe(-973932308)
  })
})

describe('partitionForKey', () => {
  it.each([
    ['21', 10],
    ['foobar', 3],
    ['abc', 7],
    ['a-little-bit-longer-string', 12],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', 1],
  ])('places %j among %i partitions by (murmur2 & 0x7fffffff) %% n', (text, partitionCount) => {
    const key = utf8(text)
    expect(partitionForKey(key, partitionCount)).toBe((murmur2(key) & 0x7fffffff) % partitionCount)
  })

  it('masks the sign bit of a negative hash instead of taking its absolute value', () => {
    const key = utf8('21')
    expect(murmur2(key)).toBe(-973932308)
    // -973932308 & 0x7fffffff = 2^31 - 973932308 = 1173551340; Math.abs would give 973932308.
    expect(partitionForKey(key, 10)).toBe(0)
    expect(partitionForKey(key, 7)).toBe(1173551340 % 7)
    expect(Math.abs(murmur2(key)) % 10).toBe(8)
  })

  it.each([1, 2, 3, 7, 16, 100])('always lands in [0, %i)', (partitionCount) => {
    const seen = new Set<number>()
    for (let seed = 1; seed <= 500; seed++) {
      const partition = partitionForKey(pseudoRandomBytes(1 + (seed % 24), seed), partitionCount)
      expect(Number.isInteger(partition)).toBe(true)
      expect(partition).toBeGreaterThanOrEqual(0)
      expect(partition).toBeLessThan(partitionCount)
      seen.add(partition)
    }
    // 500 keys spread over every one of a few partitions and most of 100: nothing is stuck.
    if (partitionCount <= 16) expect(seen.size).toBe(partitionCount)
    else expect(seen.size).toBeGreaterThan(90)
  })
})

describe('murmur2 with string keys', () => {
  it.each(['21', 'foobar', 'job-0001', 'ключ'])('hashes %s as its UTF-8 bytes, as send stores it', (key) => {
    expect(murmur2(key)).toBe(murmur2(Buffer.from(key, 'utf8')))
    expect(partitionForKey(key, 7)).toBe(partitionForKey(Buffer.from(key, 'utf8'), 7))
  })

  it('gives Kafka\'s vector for the string "21"', () => {
    expect(murmur2('21')).toBe(-973932308)
  })
})
