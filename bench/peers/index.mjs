/** The systems compared with seglog, one module each, behind one small interface (see README). */
export async function loadPeer(system) {
  switch (system) {
    case 'seglog':
      return import('./seglog.mjs')
    case 'lmdb':
      return import('./lmdb.mjs')
    case 'sqlite':
      return import('./sqlite.mjs')
    case 'btree':
      return import('./btree.mjs')
    default:
      throw new Error(`unknown peer system ${system}`)
  }
}
