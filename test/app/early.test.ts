/**
 * The explorer with `KEEP_WARM` and a slow ledger (each query 1 s, a dashboard run 2 s), under
 * `TestClock`: from the boundary plus the browsers' refresh lag (250 ms) on, the share of requests
 * answered as fresh hits, with early runs (`KEEP_WARM_LEAD=auto`, the default) and without
 * (`off`), and the number of runs per window.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { fixtureLedger, getJson, server, settle, slowed } from "./support.js"

const W = 10_000
const STEP = 250
const WINDOWS = 5

/** Requests every 250 ms from each boundary + 250 ms to the next, for `WINDOWS` windows after the first. */
const measure = (lead: string) => {
  const ledger = slowed(fixtureLedger(), 1_000, "span")
  return Effect.gen(function*() {
    yield* settle()
    yield* TestClock.adjust(2_500) // the first run (2 s) is done
    yield* settle()
    expect((yield* getJson("/api/dashboard")).headers["x-cache"]).toBe("hit")
    let hits = 0
    let total = 0
    let nextValueAtBoundary = 0
    for (let w = 1; w <= WINDOWS; w++) {
      for (let t = w * W + STEP; t < (w + 1) * W; t += STEP) {
        yield* TestClock.adjust(t - (yield* TestClock.currentTimeMillis))
        yield* settle(2)
        const r = yield* getJson("/api/dashboard")
        total++
        if (r.headers["x-cache"] === "hit" && r.json.meta.bucket === w) hits++
        if (Number(r.headers["x-next-value-at"]) === (w + 1) * W) nextValueAtBoundary++
      }
    }
    yield* TestClock.adjust((WINDOWS + 1) * W - (yield* TestClock.currentTimeMillis) - 1)
    yield* settle()
    return { share: hits / total, total, starts: ledger.starts, nextValueAtBoundary }
  }).pipe(Effect.provide(server(ledger.layer, { WINDOW: "10 seconds", KEEP_WARM: "dashboard", KEEP_WARM_LEAD: lead })))
}

describe("explorer: keep-warm with early runs", () => {
  it.scoped("with early runs, >= 99 % of requests from boundary + 250 ms are fresh hits, one run per window", () =>
    Effect.gen(function*() {
      const after = yield* measure("auto")
      console.log(`explorer, dashboard with 2 s runs: fresh hits from boundary + 250 ms: ${(100 * after.share).toFixed(1)} % of ${after.total} with early runs`)
      expect(after.share).toBeGreaterThanOrEqual(0.99)
      // one run per window: the first, then one for each window up to the one after the last
      const windows = after.starts.map((t) => Math.floor((t + 2_500) / W))
      expect(windows).toEqual(Array.from({ length: windows.length }, (_, i) => i))
      expect(after.starts.length).toBe(WINDOWS + 2)
      // the answers told the browsers the next value comes at the boundary
      expect(after.nextValueAtBoundary).toBe(after.total)
    }))

  it.scoped("without early runs, the window opens stale for as long as the run takes", () =>
    Effect.gen(function*() {
      const before = yield* measure("off")
      console.log(`explorer, dashboard with 2 s runs: fresh hits from boundary + 250 ms: ${(100 * before.share).toFixed(1)} % of ${before.total} without early runs`)
      expect(before.share).toBeLessThan(0.9)
      expect(before.starts.map((t) => Math.floor(t / W))).toEqual(Array.from({ length: WINDOWS + 1 }, (_, i) => i))
    }))
})
