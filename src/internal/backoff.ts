/**
 * The one back-off formula: after the n-th failure in a row (fleet-wide under Redis, where the
 * release script applies the same formula to its own count), wait `base * 2^(n-1)`, at most `max`.
 */
export const delay = (failures: number, baseMs: number, maxMs: number): number =>
  Math.max(1, Math.floor(Math.min(baseMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30), maxMs)))
