/**
 * Pre-generated record payloads (seeded random bytes), built before anything is timed.
 *
 * A pool of `poolRecords` payloads is cut into batches of `batchRecords` consecutive payloads. A log
 * written by appending batch 0, 1, 2, ... (cycling) holds payload `offset % poolRecords` at every
 * offset, which lets baselines and sanity checks know the expected bytes without reading them back.
 */
import { XorShift32 } from './prng.mjs'

export const PAYLOAD_SEED = 0x5eed1e55

export function payloadPool(recordBytes, poolRecords, seed = PAYLOAD_SEED) {
  const rng = new XorShift32(seed)
  const backing = rng.fill(Buffer.allocUnsafe(recordBytes * poolRecords))
  const pool = new Array(poolRecords)
  // Each payload is its own Uint8Array view, as an application would pass it.
  for (let i = 0; i < poolRecords; i++) pool[i] = new Uint8Array(backing.buffer, backing.byteOffset + i * recordBytes, recordBytes)
  return pool
}

/**
 * Like payloadPool, but payload i is between meanBytes / 2 and 3 * meanBytes / 2 bytes long (seeded,
 * mean about meanBytes): records of mixed sizes, whose frames can only be found through the index.
 */
export function mixedPayloadPool(meanBytes, poolRecords, seed = PAYLOAD_SEED) {
  const rng = new XorShift32(seed ^ 0x3a3a3a3a)
  const low = meanBytes >> 1
  const lengths = Array.from({ length: poolRecords }, () => low + rng.below(meanBytes + 1))
  const total = lengths.reduce((sum, length) => sum + length, 0)
  const backing = rng.fill(Buffer.allocUnsafe(total))
  const pool = new Array(poolRecords)
  let at = 0
  for (let i = 0; i < poolRecords; i++) {
    pool[i] = new Uint8Array(backing.buffer, backing.byteOffset + at, lengths[i])
    at += lengths[i]
  }
  return pool
}

/** The payload pool a fixture was built from: `{ recordBytes, mixedSizes? }`. */
export function fixturePool({ recordBytes, mixedSizes = false }) {
  return mixedSizes ? mixedPayloadPool(recordBytes, POOL_RECORDS) : payloadPool(recordBytes, POOL_RECORDS)
}

/** The pool cut into arrays of `batchRecords` payloads; poolRecords must be a multiple of batchRecords. */
export function batchesOf(pool, batchRecords) {
  if (pool.length % batchRecords !== 0) throw new Error('pool size must be a multiple of the batch size')
  const batches = []
  for (let at = 0; at < pool.length; at += batchRecords) batches.push(pool.slice(at, at + batchRecords))
  return batches
}

/** Pool size used everywhere: 16 batches of 1,000 distinct payloads. */
export const POOL_RECORDS = 16_000
export const BATCH_RECORDS = 1_000
