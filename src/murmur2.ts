/**
 * Key hashing: Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) and the default keyed
 * partition placement built on it. Pure functions with no I/O, for the queue layer to place keyed
 * records.
 *
 * Invariant: results match Kafka's Java client bit for bit, so a key lands on the same partition
 * number here as it would in a Kafka topic with the same partition count. Java's int arithmetic wraps
 * at 32 bits; here `Math.imul` does the wrapping multiply and `| 0` / `>>>` keep values 32-bit.
 */
import { assert } from './assert.js'
import { LogError } from './errors.js'

const SEED = 0x9747b28c
const M = 0x5bd1e995
const R = 24

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2): signed 32-bit result. Strings are hashed as UTF-8, as `send` stores them. */
export function murmur2(key: Uint8Array | string): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  if (!(bytes instanceof Uint8Array)) throw new LogError('INVALID_ARGUMENT', 'murmur2 takes a Uint8Array or a string')
  return murmur2Range(bytes, 0, bytes.length)
}

/** murmur2 of bytes [start, end) of `bytes`, without a view (the producer hashes keys inside encoded envelopes). */
export function murmur2Range(bytes: Uint8Array, start: number, end: number): number {
  assert(Number.isInteger(start) && start >= 0, 'start must be a byte position')
  assert(Number.isInteger(end) && end >= start && end <= bytes.length, 'end must lie in [start, bytes.length]')
  const length = end - start
  const blockEnd = end - (length % 4)
  let h = (SEED ^ length) | 0

  for (let at = start; at < blockEnd; at += 4) {
    let k = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)
    k = Math.imul(k, M)
    k ^= k >>> R
    k = Math.imul(k, M)
    h = Math.imul(h, M)
    h ^= k
  }

  // Kafka's tail is a switch on length % 4 that falls through from case 3 to case 1; the
  // conditions below are that fall-through spelled out (noFallthroughCasesInSwitch forbids it).
  const tailBytes = length % 4
  if (tailBytes >= 3) h ^= bytes[blockEnd + 2]! << 16
  if (tailBytes >= 2) h ^= bytes[blockEnd + 1]! << 8
  if (tailBytes >= 1) {
    h ^= bytes[blockEnd]!
    h = Math.imul(h, M)
  }

  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h | 0
}

/** Kafka's default keyed placement: (murmur2(key) & 0x7fffffff) % partitionCount. */
export function partitionForKey(key: Uint8Array | string, partitionCount: number): number {
  return partitionForHash(murmur2(key), partitionCount)
}

/** The partition of a key whose murmur2 is `hash`. */
export function partitionForHash(hash: number, partitionCount: number): number {
  assert(Number.isSafeInteger(partitionCount), 'partitionCount must be an integer')
  assert(partitionCount > 0, 'partitionCount must be positive')
  // Masking the sign bit (Kafka's Utils.toPositive), not Math.abs: the two differ for every
  // negative hash, and only the mask puts a key where a Kafka producer would.
  return (hash & 0x7fffffff) % partitionCount
}
