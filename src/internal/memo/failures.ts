/**
 * The failures this process met, per key, while the key backs off. A cold request for a key
 * that backs off fails at once with the failure that started the back-off, rather than wait
 * it out: back-off decides when the lookup runs again, never how long a request waits.
 *
 * Bounded like the L1 (the least recently failed key goes first): a crawler on missing ids
 * makes one entry per id, each gone once its back-off is over.
 */
import type * as Cause from "effect/Cause"

export interface Failed {
  readonly cause: Cause.Cause<unknown>
  /** Until when the key backs off, on the store's clock as corrected. */
  readonly until: number
  /** Failures in a row met by this process alone (the store unreachable), for its own back-off. */
  readonly count: number
}

export interface Failures {
  /** The failure to answer with at `now`, if the key still backs off. */
  readonly get: (key: string, now: number) => Failed | undefined
  readonly record: (key: string, cause: Cause.Cause<unknown>, until: number, count?: number) => void
  /** Failures in a row of the key, even past its back-off (a success clears them). */
  readonly count: (key: string) => number
  readonly clear: (key: string) => void
  readonly size: () => number
}

export const make = (capacity: number): Failures => {
  const failed = new Map<string, Failed>()
  return {
    get: (key, now) => {
      const f = failed.get(key)
      return f !== undefined && now < f.until ? f : undefined
    },
    record: (key, cause, until, count = 1) => {
      failed.delete(key)
      failed.set(key, { cause, until, count })
      if (failed.size > capacity) failed.delete(failed.keys().next().value!)
    },
    count: (key) => failed.get(key)?.count ?? 0,
    clear: (key) => {
      failed.delete(key)
    },
    size: () => failed.size
  }
}
