/**
 * The read path's CRC-32C (src/crc32c.ts) must agree with the write path's (crc-32/crc32c, through
 * format.ts's crc32c) on every length and alignment, with and without a word view.
 */
import { describe, expect, it } from 'vitest'
import { crc32cRange, wordsOver } from '../src/crc32c.js'
import { crc32c } from '../src/format.js'

/** Deterministic bytes (xorshift32), so a failure names a reproducible case. */
function randomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length)
  let state = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    bytes[i] = state & 0xff
  }
  return bytes
}

describe('crc32cRange', () => {
  it('gives the CRC-32C check value of "123456789" (0xE3069283)', () => {
    const bytes = new TextEncoder().encode('123456789')
    expect(crc32cRange(bytes, undefined, 0, bytes.length)).toBe(0xe3069283)
    const aligned = new Uint8Array(12)
    aligned.set(bytes)
    expect(crc32cRange(aligned, wordsOver(aligned), 0, bytes.length)).toBe(0xe3069283)
  })

  it('agrees with crc-32/crc32c on every range of a buffer, with and without words', () => {
    const bytes = randomBytes(160, 7)
    const words = wordsOver(bytes)
    expect(words).toBeDefined()
    let compared = 0
    for (let start = 0; start < 12; start++) {
      for (let end = start; end <= bytes.length; end++) {
        const expected = crc32c(bytes.subarray(start, end))
        expect(crc32cRange(bytes, undefined, start, end)).toBe(expected)
        expect(crc32cRange(bytes, words, start, end)).toBe(expected)
        compared++
      }
    }
    expect(compared).toBe(12 * 161 - 66)
  })

  it('agrees on large buffers (record-sized and segment-sized reads)', () => {
    for (const length of [1024, 65_536 + 3]) {
      const bytes = randomBytes(length, length)
      expect(crc32cRange(bytes, wordsOver(bytes), 1, length)).toBe(crc32c(bytes.subarray(1)))
    }
  })

  it('makes no word view over bytes that do not start on a 4-byte boundary', () => {
    const buffer = new ArrayBuffer(64)
    expect(wordsOver(new Uint8Array(buffer, 2, 40))).toBeUndefined()
    const view = wordsOver(new Uint8Array(buffer, 8, 41))
    expect(view?.length).toBe(10)
  })
})
