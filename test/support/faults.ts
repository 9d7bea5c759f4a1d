/**
 * The fault suite's checks, over the bench of `./bench.ts` (re-exported): what every scenario
 * ends with, and the fleet's promise of one start per window.
 */
import { expect } from "vitest"
import type { Fleet, Loaded } from "./fleet.js"
import { type Bench, MAX_HEAP_MB, MAX_RSS_MB, note } from "./bench.js"

export * from "./bench.js"

/**
 * What holds in every scenario: the stored `(bucket, fence)` never went down, no process served
 * an older window than it had served, no caller saw an error (unless `errorsAllowed`), no
 * unhandled rejection or exception in any pod, and memory stayed bounded.
 */
export const checkInvariants = (
  bench: Bench,
  options: {
    readonly errorsAllowed?: boolean
    /** Instants at which the store lost its data (restarted empty): the watch is checked between them. */
    readonly storeLostAt?: ReadonlyArray<number>
  } = {}
) => {
  const cuts = [0, ...(options.storeLostAt ?? []), Infinity]
  for (let i = 1; i < cuts.length; i++) {
    expect(bench.watch.decreases(cuts[i - 1], cuts[i]), "stored (bucket, fence) went down").toEqual([])
  }
  expect(bench.watch.samples.length, "the watch saw the store").toBeGreaterThan(0)
  expect(bench.fleet.of("fatal").map((m) => `pod ${m.id} ${m.kind}: ${m.message}`)).toEqual([])
  expect(bench.summaries.length).toBeGreaterThan(0)
  note("memory", {
    [bench.tenant]: {
      maxRssMb: Math.max(...bench.summaries.map((s) => s.rssMb)),
      maxHeapUsedMb: Math.max(...bench.summaries.map((s) => s.heapUsedMb))
    }
  })
  for (const s of bench.summaries) {
    expect(s.regressions, `pod ${s.id} served an older window than before`).toBe(0)
    if (!options.errorsAllowed) expect(s.errors, `pod ${s.id}: ${s.firstError}`).toBe(0)
    expect(s.rssMb, `pod ${s.id} RSS`).toBeLessThan(MAX_RSS_MB)
    expect(s.heapUsedMb, `pod ${s.id} heap`).toBeLessThan(MAX_HEAP_MB)
  }
}

/**
 * The fleet's promise, asserted on a finished load: exactly one producer start for each of at
 * least `minWindows` consecutive windows (counted by the window claimed), every caller answered,
 * no process back to an older window than it had served, and most windows' values reaching every
 * pod (on two loaded cores a value can land so late that a pod skips from the window before to
 * the one after).
 */
export const expectOneStartPerWindow = (
  fleet: Fleet,
  summaries: ReadonlyArray<Loaded>,
  options: { readonly windowMs: number; readonly minWindows: number; readonly minCallsPerPod: number }
) => {
  const starts = fleet.startsPerClaimedBucket()
  const buckets = [...starts.keys()].sort((a, b) => a - b)
  const first = buckets[0]!
  expect(buckets.length).toBeGreaterThanOrEqual(options.minWindows)
  expect(buckets).toEqual(Array.from({ length: buckets[buckets.length - 1]! - first + 1 }, (_, i) => first + i))
  for (const [bucket, count] of starts) {
    expect(count, `starts in window ${bucket}:\n${fleet.explain(bucket, options.windowMs)}`).toBe(1)
  }
  for (const s of summaries) {
    expect(s.errors, s.firstError).toBe(0)
    expect(s.regressions).toBe(0)
    expect(s.calls).toBeGreaterThan(options.minCallsPerPod)
    expect(Object.keys(s.servedBuckets).length).toBeGreaterThanOrEqual(Math.ceil(buckets.length * 0.8))
  }
}
