/**
 * A group's subscription to topics of a broker: a list of names or a RegExp, and a watch of the
 * broker directory that calls back when topics may have appeared (each change the directory watch
 * reports, and every second in any case, in case the watch misses one or is unavailable).
 */
import fs from 'node:fs'
import { LogError } from './errors.js'

const RESCAN_MS = 1000

/** Whether a topic name is subscribed; INVALID_ARGUMENT for anything but a non-empty name list or a RegExp. */
export function subscription(topics: unknown): (name: string) => boolean {
  if (topics instanceof RegExp) {
    const pattern = new RegExp(topics.source, topics.flags.replace(/[gy]/g, '')) // no lastIndex state between calls
    return (name) => pattern.test(name)
  }
  if (!Array.isArray(topics) || topics.length === 0 || !topics.every((name) => typeof name === 'string')) {
    throw new LogError('INVALID_ARGUMENT', 'topics must be a non-empty list of topic names or a RegExp')
  }
  const names = new Set(topics as string[])
  return (name) => names.has(name)
}

/** The subscription as a comparable string (a RegExp by its source and flags, a list as its sorted names). */
export function subscriptionKey(topics: readonly string[] | RegExp): string {
  return topics instanceof RegExp ? `RegExp:${String(topics)}` : JSON.stringify([...new Set(topics)].sort())
}

/** Calls `rescan` when the directory changes and every second; returns the stop function. */
export function watchTopics(dir: string, rescan: () => void): () => void {
  const timer = setInterval(rescan, RESCAN_MS)
  timer.unref()
  let watcher: fs.FSWatcher | undefined
  try {
    watcher = fs.watch(dir, { persistent: false }, rescan)
    watcher.on('error', () => watcher?.close())
  } catch {
    // no inotify: the timer still finds new topics
  }
  return () => {
    clearInterval(timer)
    watcher?.close()
  }
}
