/**
 * SQLite through better-sqlite3 (12.x), WAL journal, one table (id INTEGER PRIMARY KEY, value BLOB):
 * the rowid B-tree keyed by the record's offset.
 *
 * Modes set `synchronous`: 'off' (no fsync at all), 'normal' (WAL: fsync only at checkpoints, so a
 * power loss can drop the latest commits: not durable), 'full' (WAL fsynced at every commit: durable).
 * Appends: a prepared INSERT inside one transaction per batch (1,000 rows). Point reads: prepared
 * `SELECT value WHERE id = ?` with `.pluck()`. Scans: `id >= ? AND id < ? ORDER BY id` iterated with
 * `.pluck()`. Durable single appends: one autocommit INSERT each (one transaction, one WAL fsync).
 */
import Database from 'better-sqlite3'
import fs from 'node:fs'
import path from 'node:path'

export const name = 'sqlite'

export async function open(dir, mode = 'normal') {
  fs.mkdirSync(dir, { recursive: true })
  const db = new Database(path.join(dir, 'log.db'))
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${mode.toUpperCase()}`)
  db.exec('CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, value BLOB NOT NULL)')
  const insert = db.prepare('INSERT INTO log (id, value) VALUES (?, ?)')
  const select = db.prepare('SELECT value FROM log WHERE id = ?').pluck()
  const range = db.prepare('SELECT value FROM log WHERE id >= ? AND id < ? ORDER BY id').pluck()
  let count = db.prepare('SELECT coalesce(max(id) + 1, 0) FROM log').pluck().get()
  const insertMany = db.transaction((first, values) => {
    for (let i = 0; i < values.length; i++) insert.run(first + i, values[i])
  })
  return {
    db,
    get count() {
      return count
    },
    appendBatch(values) {
      insertMany(count, values)
      count += values.length
    },
    appendDurable(value) {
      insert.run(count++, value)
    },
    get(key) {
      return select.get(key)
    },
    scan(from, to, visit) {
      let seen = 0
      for (const value of range.iterate(from, to)) {
        visit(value)
        seen++
      }
      return seen
    },
    truncate(records) {
      if (count <= records) return
      db.prepare('DELETE FROM log WHERE id >= ?').run(records)
      db.pragma('wal_checkpoint(TRUNCATE)')
      count = records
    },
    close() {
      db.close()
    },
  }
}
