/**
 * Invariant checks. An assertion failure is a bug in seglog, never a user error or a condition found
 * on disk: those are `LogError`s. Assertions are never caught and never used to validate input.
 */
export class AssertionError extends Error {
  override name = 'AssertionError'
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message)
}
