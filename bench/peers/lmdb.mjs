/**
 * LMDB through `lmdb` (lmdb-js 3.x): a B+tree in one memory-mapped file. Keys are uint32 integers
 * (`keyEncoding: 'uint32'`, the record's offset), values raw bytes (`encoding: 'binary'`).
 *
 * Modes:
 * - 'nosync': `noSync: true` + `noMemInit: true`, each batch written by `transactionSync` (one
 *   synchronous transaction per batch, puts with the `append` flag since keys only grow). LMDB's
 *   fastest configuration; like seglog `sync: 'never'`, nothing is fsynced.
 * - 'default': default (durable) settings: `overlappingSync` on Linux, async `put`s that lmdb-js
 *   batches into one transaction per event-loop turn. appendBatch awaits the commit of its last
 *   put (visible, crash-consistent); the fsync overlaps later transactions.
 * - 'durable': default settings plus `separateFlushed: true`; appendDurable awaits `put().flushed`,
 *   i.e. the fsync that makes the write durable (what seglog `sync: 'always'` acknowledges).
 */
import { open as openLmdb } from 'lmdb'

export const name = 'lmdb'

export async function open(dir, mode = 'default') {
  const options = { path: dir, keyEncoding: 'uint32', encoding: 'binary', compression: false, cache: false }
  if (mode === 'nosync') Object.assign(options, { noSync: true, noMemInit: true })
  if (mode === 'durable') Object.assign(options, { separateFlushed: true })
  const db = openLmdb(options)
  let count = db.getKeysCount()
  return {
    db,
    get count() {
      return count
    },
    async appendBatch(values) {
      const first = count
      count += values.length
      if (mode === 'nosync') {
        db.transactionSync(() => {
          for (let i = 0; i < values.length; i++) db.put(first + i, values[i], { append: true })
        })
        return
      }
      let last
      for (let i = 0; i < values.length; i++) last = db.put(first + i, values[i])
      await last
    },
    /** One record, acknowledged once durable (mode 'durable'). */
    async appendDurable(value) {
      const written = db.put(count++, value)
      await (written.flushed ?? written)
    },
    get(key) {
      return db.get(key)
    },
    /** getBinaryFast: a reused buffer, valid until the next read (fine for read-and-use). */
    getFast(key) {
      return db.getBinaryFast(key)
    },
    scan(from, to, visit) {
      let seen = 0
      for (const { value } of db.getRange({ start: from, end: to, snapshot: false })) {
        visit(value)
        seen++
      }
      return seen
    },
    async truncate(records) {
      if (count <= records) return
      await db.transaction(() => {
        for (const key of db.getKeys({ start: records })) db.remove(key)
      })
      count = records
    },
    async close() {
      await db.close()
    },
  }
}
