/**
 * A producer that hangs while Redis is healthy, on a real redis-server (or Valkey) and pod
 * processes: the holder renews its lease all along, so only `maxRun` ends the run. It must be
 * interrupted at `maxRun`, its lock turned into a back-off marker, the stop counted, and another
 * pod (or the same one) must take over within `maxRun` + lease, while every caller is served the
 * last value.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Bench, checkInvariants, note, startBench } from "./support/faults.js"

const CALLERS = 20

let bench: Bench | undefined
afterEach(async () => {
  await bench?.stop()
  bench = undefined
})

describe("faults: a hung producer", () => {
  it("hangs with Redis healthy: interrupted at maxRun (1.5 s), the lock becomes a back-off marker, taken over within maxRun + lease, 0 errors, ≤ 2 starts in the window", async () => {
    const WINDOW = 3000
    const MAX_RUN = 1500
    const LEASE = 1000
    const BACKOFF = 500
    const b = bench = await startBench({
      pods: 3,
      windowMs: WINDOW,
      producerMs: 200,
      settings: { maxRun: MAX_RUN, lease: LEASE, failureBackoff: BACKOFF, maxFailureBackoff: 2000 }
    })
    await b.load({ callers: CALLERS, durationMs: 1000, pauseMs: 10 })
    // whichever pod leads the next window hangs: every pod is told, and told off once one hangs
    const loading = b.load({ callers: CALLERS, durationMs: 2 * WINDOW + 500, pauseMs: 10 })
    // a run of the current window may be under way: only the next window's hangs
    const from = b.bucketOf(Date.now()) + 1
    for (const p of b.fleet.pods) p.send({ type: "hangNextRun", on: true, fromBucket: from })
    const hung = await b.fleet.next("start", { where: (m) => m.bucket >= from })
    for (const p of b.fleet.pods) if (p.id !== hung.id) p.send({ type: "hangNextRun", on: false })
    const stopped = await b.fleet.next("finish", { where: (m) => m.id === hung.id && m.interrupted === true, since: hung.receivedAt, timeoutMs: MAX_RUN + 3000 })
    const takeover = await b.fleet.next("start", { where: (m) => m.receivedAt > hung.receivedAt, since: hung.receivedAt, timeoutMs: MAX_RUN + LEASE + 3000 })
    const summaries = await loading

    const target = hung.bucket
    const marker = b.fleet.of("release", stopped.receivedAt - 50).find((m) => m.id === hung.id && m.key === hung.key)
    const renewals = b.fleet.of("renew", hung.receivedAt).filter((m) => m.id === hung.id && m.receivedAt <= stopped.receivedAt)
    const startsForWindow = b.fleet.of("start").filter((m) => m.bucket === target)
    const stored = b.watch.samples.filter((x) => x.bucket === target)
    const stats = await b.fleet.stats()
    const timeouts = stats.find((s) => s.id === hung.id)?.metrics["lockstep_producer_runs_total{mode=leader,outcome=timeout}"] ??
      Object.entries(stats.find((s) => s.id === hung.id)?.metrics ?? {}).find(([k]) => k.startsWith("lockstep_producer_runs_total") && k.includes("outcome=timeout"))?.[1]
    const errors = summaries.reduce((n, s) => n + s.errors, 0)
    note("hung-producer", {
      maxRunMs: MAX_RUN,
      leaseMs: LEASE,
      stoppedAfterMs: stopped.wallAt - hung.wallAt,
      holderRenewalsWhileHung: renewals.map((m) => m.outcome),
      releasedAsBackoff: marker ? marker.backoff && marker.ok : null,
      takeoverAfterStartMs: takeover.wallAt - hung.wallAt,
      takeoverPod: takeover.id === hung.id ? "same" : "other",
      startsForWindow: startsForWindow.length,
      storedForWindow: stored.map((x) => `(${x.fence}) pod ${JSON.parse(x.data).pod}`),
      timeoutsCounted: timeouts ?? null,
      calls: summaries.reduce((n, s) => n + s.calls, 0),
      byCache: summaries.map((s) => s.byCache),
      errors
    })
    // the holder kept its lease while it hung: only maxRun could end the run
    expect(renewals.length).toBeGreaterThan(0)
    expect(renewals.every((m) => m.outcome === "held")).toBe(true)
    // interrupted at maxRun (the report travels over IPC: a little later)
    expect(stopped.wallAt - hung.wallAt).toBeGreaterThanOrEqual(MAX_RUN - 20)
    expect(stopped.wallAt - hung.wallAt).toBeLessThan(MAX_RUN + 400)
    // its lock became a back-off marker, and the stop was counted
    expect(marker, "the hung holder's release").toBeDefined()
    expect(marker!.backoff && marker!.ok).toBe(true)
    expect(timeouts).toBe(1)
    // taken over within maxRun + lease (DESIGN), once the marker lapsed
    expect(takeover.wallAt - hung.wallAt).toBeGreaterThanOrEqual(MAX_RUN + BACKOFF - 50)
    expect(takeover.wallAt - hung.wallAt).toBeLessThanOrEqual(MAX_RUN + LEASE)
    // the window got its value, from the run that took over; at most 2 starts for it
    expect(startsForWindow.length).toBeLessThanOrEqual(2)
    expect(stored.length).toBeGreaterThan(0)
    expect(JSON.parse(stored[0]!.data).pod).toBe(takeover.id)
    // every caller was served (the last value while the run hung): 0 errors, nobody waited
    for (const s of summaries) expect(s.byCache.miss ?? 0).toBe(0)
    checkInvariants(b)
  })
})
