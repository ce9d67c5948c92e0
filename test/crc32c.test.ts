/**
 * seglog's CRC-32C (src/crc32c.ts) must give exactly the values of the `crc-32` package's crc32c,
 * which wrote every checksum of format v1: on random inputs of every length up to 600 bytes, at
 * every alignment, with and without a seed, through both entry points.
 */
import CRC32C from 'crc-32/crc32c.js'
import { describe, expect, it } from 'vitest'
import { crc32c, crc32cRange, crc32cWords, wordsOf } from '../src/crc32c.js'

/** xorshift32: the same bytes on every run, so a failure can be replayed. */
function randomBytes(length: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return bytes
}

const reference = (bytes: Uint8Array, seed = 0): number => CRC32C.buf(bytes, seed) >>> 0

describe('crc32c', () => {
  it.each([
    ['empty', '', 0x00000000],
    ['"123456789" (the check value of CRC-32C)', '123456789', 0xe3069283],
    ['"a"', 'a', 0xc1d04330],
  ])('%s', (_name, text, expected) => {
    const bytes = Buffer.from(text, 'latin1')
    expect(crc32c(bytes)).toBe(expected)
    expect(crc32cWords(wordsOf(bytes), bytes, 0, bytes.length)).toBe(expected)
    expect(reference(bytes)).toBe(expected)
  })

  it('matches crc-32 on every length from 0 to 600 bytes at every start alignment', () => {
    const pool = randomBytes(4096, 7)
    const words = wordsOf(pool)
    let checked = 0
    for (let length = 0; length <= 600; length++) {
      for (let start = 0; start < 8; start++) {
        const end = start + length
        const expected = reference(pool.subarray(start, end))
        expect(crc32cRange(pool, start, end)).toBe(expected)
        expect(crc32cWords(words, pool, start, end)).toBe(expected)
        checked++
      }
    }
    expect(checked).toBe(601 * 8)
  })

  it('matches crc-32 on 5,000 random ranges, seeds and buffer offsets', () => {
    const backing = randomBytes(1 << 16, 99)
    for (let trial = 0; trial < 5000; trial++) {
      const r = randomBytes(12, trial + 1)
      const viewStart = r.readUInt16LE(0) % 64 // views that do not start at byte 0 of their ArrayBuffer
      const view = backing.subarray(viewStart, viewStart + 20_000)
      const start = r.readUInt16LE(2) % 10_000
      const end = start + (r.readUInt16LE(4) % 3000)
      const seed = r.readUInt32LE(6)
      const expected = reference(view.subarray(start, end), seed)
      expect(crc32cRange(view, start, end, seed)).toBe(expected)
      expect(crc32cWords(wordsOf(view), view, start, end, seed)).toBe(expected)
    }
  })

  it('continues a checksum from a seed: the CRC of a whole equals that of its second part seeded with the first', () => {
    const bytes = randomBytes(1000, 3)
    for (const cut of [0, 1, 15, 16, 17, 500, 999, 1000]) {
      expect(crc32cRange(bytes, cut, 1000, crc32cRange(bytes, 0, cut))).toBe(crc32c(bytes))
    }
  })
})
