/**
 * An in-memory B+tree (`sorted-btree`, BTree<number, Uint8Array>): the pure-algorithm baseline, with
 * no I/O, no framing and no checksums. Values are stored by reference (no copy). Nothing persists:
 * `open` of a fixture rebuilds the tree in the process (untimed).
 */
import sortedBtree from 'sorted-btree'

const BTree = sortedBtree.default ?? sortedBtree

export const name = 'btree'

export async function open() {
  const tree = new BTree()
  let count = 0
  return {
    tree,
    get count() {
      return count
    },
    appendBatch(values) {
      for (let i = 0; i < values.length; i++) tree.set(count + i, values[i])
      count += values.length
    },
    get(key) {
      return tree.get(key)
    },
    scan(from, to, visit) {
      let seen = 0
      tree.forRange(from, to, false, (_key, value) => {
        visit(value)
        seen++
      })
      return seen
    },
    truncate(records) {
      if (count <= records) return
      tree.deleteRange(records, count, true)
      count = records
    },
    close() {},
  }
}
