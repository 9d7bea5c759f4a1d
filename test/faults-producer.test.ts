/**
 * Faults of the producer and of the pods' clocks, on a real redis-server and several pod
 * processes: a producer that fails for a while, clocks skewed by ±2 s, a pod an hour ahead.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Bench, checkInvariants, note, startBench, startsPerWindow } from "./support/faults.js"
import { freePort, startRedis } from "./support/services.js"

const CALLERS = 20

let bench: Bench | undefined
afterEach(async () => {
  await bench?.stop()
  bench = undefined
})

describe("faults: producer and clocks", () => {
  it("producer failing for 6 s: last-known-good served throughout, fleet-wide attempts bounded by the back-off, 0 errors", async () => {
    const BASE = 500
    const MAX = 4000
    const FAILING_MS = 6000
    const WINDOW = 1000
    const b = bench = await startBench({
      pods: 3,
      windowMs: WINDOW,
      producerMs: 100,
      settings: { failureBackoff: BASE, maxFailureBackoff: MAX }
    })
    await b.load({ callers: CALLERS, durationMs: 2000, pauseMs: 10 })
    const lastGood = b.watch.latest()!
    const failingAt = Date.now()
    for (const p of b.fleet.pods) p.send({ type: "failing", on: true })
    const during = await b.load({ callers: CALLERS, durationMs: FAILING_MS, pauseMs: 10 })
    const recoveredAt = Date.now()
    for (const p of b.fleet.pods) p.send({ type: "failing", on: false })
    await b.load({ callers: CALLERS, durationMs: MAX + 1500, pauseMs: 10 })

    const attempts = b.fleet.of("start", failingAt).filter((m) => m.receivedAt < recoveredAt)
    const failed = b.fleet.of("finish", failingAt).filter((m) => !m.ok)
    // the back-off doubles fleet-wide, and is never longer than the loader's window (so a key
    // recovers within a window of its lookup working again): attempts at 0, 0.5, 1.5, 2.5 s
    // (+ producer time), …
    const cap = Math.min(MAX, WINDOW)
    let allowed = 0
    for (let t = 0, n = 0; t < FAILING_MS; t += Math.min(BASE * 2 ** n++, cap) + 100) allowed++
    const servedWhileFailing = [...new Set(during.flatMap((s) => Object.keys(s.servedBuckets).map(Number)))]
    const firstNew = b.watch.samples.find((x) => x.at >= recoveredAt)
    note("producer-failing", {
      attemptsWhileFailing: attempts.length,
      allowed,
      attemptTimesMs: attempts.map((m) => m.wallAt - failingAt),
      attemptsByPod: attempts.map((m) => m.id),
      failedRuns: failed.length,
      servedWhileFailing: servedWhileFailing.map((x) => x - lastGood.bucket),
      newValueAfterRecoveryMs: firstNew ? firstNew.at - recoveredAt : null
    })
    expect(attempts.length).toBeGreaterThanOrEqual(2)
    expect(attempts.length).toBeLessThanOrEqual(allowed + 1)
    // the last good value (or the one committed just as failures began) was served throughout
    for (const w of servedWhileFailing) expect(w).toBeGreaterThanOrEqual(lastGood.bucket - 1)
    expect(Math.max(...servedWhileFailing)).toBeLessThanOrEqual(lastGood.bucket + 1)
    for (const s of during) expect(s.calls).toBeGreaterThan(CALLERS * 100)
    // and once the producer works again, a new value lands within the longest back-off
    expect(firstNew).toBeDefined()
    expect(firstNew!.at - recoveredAt).toBeLessThan(MAX + 1000)
    checkInvariants(b)
  })

  it("clocks skewed by -2 s, 0, +2 s and +1 h: one start per window, nothing stored for a future window", async () => {
    const WINDOW = 1000
    const skews = [-2000, 0, 2000, 3_600_000]
    const b = bench = await startBench({
      pods: skews.length,
      windowMs: WINDOW,
      producerMs: 200,
      overrides: (id) => ({ skewMs: skews[id]! })
    })
    const summaries = await b.load({ callers: CALLERS, durationMs: 6500, pauseMs: 10 })
    const starts = startsPerWindow(b)
    const windows = [...starts.keys()].sort((x, y) => x - y)
    note("clock-skew", {
      startsPerWindow: [...starts.values()],
      startsByPod: Object.fromEntries(skews.map((s, id) => [s, b.fleet.of("start").filter((m) => m.id === id).length])),
      servedWindowsByPod: summaries.map((s) => `${skews[s.id]}: ${Object.keys(s.servedBuckets).length}`)
    })
    expect(windows.length).toBeGreaterThanOrEqual(6)
    expect(windows).toEqual(Array.from({ length: windows.length }, (_, i) => windows[0]! + i))
    for (const [w, n] of starts) expect(n, `starts in window ${w}`).toBe(1)
    // nothing was stored for a window that had not begun, and every pod followed the real windows
    for (const x of b.watch.samples) expect(x.bucket).toBeLessThanOrEqual(b.bucketOf(x.at))
    for (const s of summaries) {
      expect(Object.keys(s.servedBuckets).length, `pod with skew ${skews[s.id]}`).toBeGreaterThanOrEqual(windows.length - 1)
      expect(Math.max(...Object.keys(s.servedBuckets).map(Number))).toBeLessThanOrEqual(b.bucketOf(Date.now()))
    }
    checkInvariants(b)
  })

  it("a pod an hour ahead that starts while Redis is down: nothing stored for a future window, then it follows the real one", async () => {
    const WINDOW = 3000
    const port = await freePort()
    // Redis is not there yet: the pod's first request produces locally, on its own clock
    const absent = { port, pid: 0, dir: "", process: undefined as never, stop: async () => {} }
    const b = bench = await startBench({
      pods: 1,
      windowMs: WINDOW,
      producerMs: 100,
      redis: absent,
      overrides: () => ({ skewMs: 3_600_000 })
    })
    const first = await b.load({ callers: 5, durationMs: 500, pauseMs: 10 })
    const real = await startRedis({ port })
    try {
      await b.load({ callers: 5, durationMs: WINDOW + 3000, pauseMs: 10 })
      const last = await b.load({ callers: 5, durationMs: 1000, pauseMs: 10 })
      const rec = await b.watch.client.hgetall(`${b.tenant}:lockstep:{${b.key}}:v`)
      const commits = b.fleet.of("commit")
      const ahead = (bucket: number, at: number) => bucket - b.bucketOf(at)
      note("clock-hour-ahead", {
        servedAtFirst: Object.keys(first[0]!.servedBuckets).map((x) => ahead(Number(x), first[0]!.receivedAt)),
        commits: commits.map((m) => `${m.withToken ? "holder" : "write-back"} (${ahead(m.bucket, m.wallAt)}): ${m.outcome}`),
        servedAtLast: Object.keys(last[0]!.servedBuckets).map((x) => ahead(Number(x), last[0]!.receivedAt)),
        stored: rec.b ? ahead(Number(rec.b), Date.now()) : null
      })
      // while Redis was away it served its own value, stamped an hour ahead
      expect(Object.keys(first[0]!.servedBuckets).map(Number)[0]).toBeGreaterThan(b.bucketOf(Date.now()) + 300)
      // Redis never accepted a future window, and holds a real one now
      for (const m of commits) if (m.outcome === "committed") expect(ahead(m.bucket, m.wallAt)).toBeLessThanOrEqual(0)
      for (const m of commits) if (ahead(m.bucket, m.wallAt) > 0) expect(m.outcome).toMatch(/future|error/)
      expect(Number(rec.b)).toBeLessThanOrEqual(b.bucketOf(Date.now()))
      // and the pod, its clock corrected by Redis, serves the real windows again
      for (const x of Object.keys(last[0]!.servedBuckets).map(Number)) {
        expect(x).toBeLessThanOrEqual(b.bucketOf(Date.now()))
        expect(x).toBeGreaterThanOrEqual(b.bucketOf(Date.now()) - 1)
      }
      expect(last[0]!.errors).toBe(0)
    } finally {
      await real.stop()
    }
  })
})
