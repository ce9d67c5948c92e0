/**
 * Optional memory maps. The native addon (`@riaskov/mmap-io`, the maintained fork of `mmap-io` with
 * the same API) is an optional dependency: when it is missing or failed to build, seglog reads sealed
 * segments with pread instead, and only `mmap: 'always'` fails (MMAP_UNAVAILABLE).
 *
 * Rules that keep maps safe (docs/architecture.md): a map never extends past the end of its file,
 * a mapped file is never shrunk in place (that raises SIGBUS in whoever touches the lost pages), and a
 * map is released by dropping every reference to it (the addon has no explicit unmap).
 */
import { createRequire } from 'node:module'

export interface MmapApi {
  map(size: number, protection: number, flags: number, fd: number, offset?: number, advise?: number): Buffer
  advise(buffer: Buffer, advise: number): void
  readonly PROT_READ: number
  readonly MAP_SHARED: number
  readonly MADV_RANDOM: number
  readonly MADV_SEQUENTIAL: number
  readonly MADV_NORMAL: number
}

const ADDON_NAMES = ['@riaskov/mmap-io', 'mmap-io']
let loaded: { api: MmapApi | undefined; error: unknown } | undefined

/** Loads the addon once per thread; returns undefined (and remembers why) when none loads. */
export function loadMmap(): MmapApi | undefined {
  if (loaded) return loaded.api
  if (process.env.SEGLOG_DISABLE_MMAP === '1') {
    loaded = { api: undefined, error: new Error('disabled by SEGLOG_DISABLE_MMAP=1') }
    return undefined
  }
  const require = createRequire(import.meta.url)
  let lastError: unknown
  for (const name of ADDON_NAMES) {
    try {
      const module = require(name) as MmapApi & { default?: MmapApi }
      const api = typeof module.map === 'function' ? module : module.default
      if (api && typeof api.map === 'function') {
        loaded = { api, error: undefined }
        return api
      }
    } catch (error) {
      lastError = error
    }
  }
  loaded = { api: undefined, error: lastError }
  return undefined
}

export function mmapLoadError(): unknown {
  loadMmap()
  return loaded?.error
}

/**
 * Maps `bytes` bytes of `fd` read-only and shared. `bytes` must be > 0 and within the file.
 * MADV_NORMAL, not MADV_RANDOM: random advice also turns off the kernel's fault-around, and then
 * every first touch of a page-cached page faults alone (measured slower for random reads).
 */
export function mapReadOnly(api: MmapApi, fd: number, bytes: number): Buffer {
  return api.map(bytes, api.PROT_READ, api.MAP_SHARED, fd, 0, api.MADV_NORMAL)
}

/** Whether the native mmap addon loaded in this thread. */
export function mmapAvailable(): boolean {
  return loadMmap() !== undefined
}
