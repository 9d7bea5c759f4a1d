/**
 * The testing kit, used the way a user would: a simulated fleet under `TestClock`. The first test
 * is the in-process twin of the real-Redis fleet test: one producer run per window across pods.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Schema, TestClock } from "effect"
import { Memo, Window } from "lockstep"
import * as Testing from "lockstep/testing"

const windowMs = 2_000
const options = { key: "report", window: "2 seconds", schema: Schema.Number } as const

/** A page whose value is the number of the producer run that computed it. */
const makePage = (settings: Parameters<typeof Testing.producer>[1] = {}, window: Duration.DurationInput = options.window) =>
  Effect.map(
    Testing.producer((run) => Effect.succeed(run), settings),
    (producer) => ({ producer, page: Memo.memoWithInfo({ ...options, window }, producer.effect) })
  )

/** `perPod` concurrent requests on every pod at once; the results of all of them, pod by pod. */
const burst = <A, E>(fleet: Testing.Fleet, effect: Effect.Effect<A, E, Memo.Memo>, perPod: number) =>
  Effect.forEach(
    fleet.pods,
    (pod) => pod.run(Effect.all(Array.from({ length: perPod }, () => effect), { concurrency: "unbounded" })),
    { concurrency: "unbounded" }
  )

const bucketsOf = (instants: ReadonlyArray<number>) => instants.map((t) => Window.bucketOf(t, windowMs))

const storedBucket = (fleet: Testing.Fleet) =>
  Effect.map(fleet.store.get(options.key), ({ stored }) => Option.map(stored, (s) => ({ bucket: s.bucket, fence: s.fence })))

describe("Testing.fleet", () => {
  it.scoped("runs the producer once per window across 4 pods under concurrent load", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(4)
      const { page, producer } = yield* makePage({ duration: "300 millis" })
      const windows = 5
      let lastFence = 0

      for (let w = 0; w < windows; w++) {
        // 25 concurrent requests per pod right at the boundary, 25 more mid-refresh
        const atBoundary = yield* Effect.fork(burst(fleet, page, 25))
        yield* TestClock.adjust("100 millis")
        const midRefresh = yield* Effect.fork(burst(fleet, page, 25))
        yield* TestClock.adjust("400 millis")
        for (const info of [...(yield* Fiber.join(atBoundary)), ...(yield* Fiber.join(midRefresh))].flat()) {
          // window 0 is a cold start (everyone waits for run 1); later windows serve the last value
          expect(info).toMatchObject(w === 0 ? { value: 1, cache: "miss" } : { value: w, stale: true, cache: "stale" })
        }

        // the refresh has landed everywhere: fresh, from one run for the whole fleet
        const settled = (yield* burst(fleet, page, 10)).flat()
        expect(settled.every((i) => i.value === w + 1 && i.bucket === w && !i.stale && i.cache === "hit")).toBe(true)
        expect(yield* producer.runs).toBe(w + 1)

        const stored = Option.getOrThrow(yield* storedBucket(fleet))
        expect(stored.bucket).toBe(w)
        expect(stored.fence).toBeGreaterThan(lastFence)
        lastFence = stored.fence

        yield* TestClock.adjust(windowMs - 500) // to the next boundary
      }

      const stats = yield* producer.stats
      expect(bucketsOf(stats.startedAt)).toEqual([0, 1, 2, 3, 4])
      expect(stats).toMatchObject({ started: windows, succeeded: windows, maxRunning: 1 })
    }))

  it.scoped("serves the last value at once across a boundary, on warm and cold pods alike", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(3)
      const [a, b, c] = fleet.pods as [Testing.Pod, Testing.Pod, Testing.Pod]
      // a slow query: half the window
      const { page, producer } = yield* makePage({ duration: "5 seconds" }, "10 seconds")

      const cold = yield* Effect.fork(a.run(page))
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(cold)).toMatchObject({ value: 1, bucket: 0, cache: "miss" })

      yield* TestClock.adjust("5 seconds") // t = 10 s: window 1
      // pod a holds the value in L1; pod b has never seen the key and reads it from the store
      const fromL1 = yield* Testing.instantly(a.run(page))
      const fromStore = yield* Testing.instantly(b.run(page))
      for (const info of [fromL1, fromStore]) {
        expect(info).toMatchObject({ value: 1, bucket: 0, stale: true, cache: "stale", nextBoundary: 20_000 })
      }
      expect((yield* producer.stats).running).toBe(1) // one refresh under way, not two

      // while the 5 s producer runs, every request on every pod is still answered at once
      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("1 second")
        for (const pod of [a, b, c]) {
          expect(yield* Testing.instantly(pod.run(page))).toMatchObject({ value: 1, stale: true })
        }
      }
      // t = 15 s: run 2 lands; 100 ms more for the pods that poll for it
      yield* TestClock.adjust("1100 millis")
      for (const pod of fleet.pods) {
        expect(yield* Testing.instantly(pod.run(page))).toMatchObject({ value: 2, bucket: 1, stale: false, cache: "hit" })
      }
      expect((yield* producer.stats).startedAt).toEqual([0, 10_000])
    }))

  it.scoped("takes over from a crashed holder only once its lease has lapsed", () =>
    Effect.gen(function*() {
      const leaseMs = 3_000
      const fleet = yield* Testing.fleet(4, { lease: `${leaseMs} millis`, pollInterval: "50 millis" })
      const [holder, ...others] = fleet.pods as [Testing.Pod, ...Array<Testing.Pod>]
      const { page, producer } = yield* makePage({ duration: "1 second" }, "1 minute")

      // cold start: the holder takes the lock first, then everyone else waits for its value
      const onHolder = yield* Effect.fork(holder.run(page))
      yield* TestClock.adjust(0)
      expect(yield* producer.runs).toBe(1)
      const waiting = yield* Effect.forEach(others, (pod) => Effect.fork(pod.run(page)))
      yield* TestClock.adjust("500 millis")

      yield* holder.crash // mid-run: the lock is neither released nor renewed
      expect(holder.status).toBe("crashed")
      expect(Exit.isInterrupted(yield* Fiber.await(onHolder))).toBe(true)
      expect(yield* producer.stats).toMatchObject({ started: 1, interrupted: 1, running: 0 })

      // nobody may take over while the lease lives (a released lock would be taken within 50 ms)
      yield* TestClock.adjust(leaseMs - 500 - 1)
      expect(yield* producer.runs).toBe(1)

      yield* TestClock.adjust("1 millis") // t = lease: the lock lapses, the next poll takes it
      yield* TestClock.adjust("100 millis")
      const takeover = (yield* producer.stats).startedAt[1]!
      expect(takeover).toBeGreaterThanOrEqual(leaseMs)
      expect(takeover).toBeLessThanOrEqual(leaseMs + 50)

      yield* TestClock.adjust("1 second")
      for (const fiber of waiting) {
        expect(yield* Fiber.join(fiber)).toMatchObject({ value: 2, bucket: 0, cache: "miss" })
      }
      expect(yield* producer.stats).toMatchObject({ started: 2, succeeded: 1, maxRunning: 1 })
      // the taker's fence, above the crashed holder's (1, issued at t = 0)
      expect(Option.getOrThrow(yield* storedBucket(fleet)).fence).toBeGreaterThan(1)

      // a dead pod takes no requests; restarted, it is a cold process that reads the store
      expect(Exit.isFailure(yield* Effect.exit(holder.run(page)))).toBe(true)
      yield* holder.restart
      expect(yield* Testing.instantly(holder.run(page))).toMatchObject({ value: 2, cache: "hit" })
      expect(yield* producer.runs).toBe(2)
    }))

  it.scoped("backs off after producer failures: bounded attempts, last good value, no errors", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(4) // failureBackoff 1 s, doubling per failure, up to 30 s
      const { page, producer } = yield* makePage({ duration: "100 millis" })

      // (waiting pods poll every 50 ms: leave them time to see the value)
      yield* burst(fleet, page, 1).pipe(TestClock.adjustWith("200 millis"))

      yield* producer.setFailing(true)
      yield* TestClock.adjust(windowMs - 200) // t = 2 s: window 1, the database is down
      yield* fleet.pods[3]!.restart // a cold pod joins while the producer fails

      // 20 s of traffic: 5 concurrent requests on every pod every 100 ms
      const served: Array<Memo.Info<number>> = []
      for (let t = 0; t < 20_000; t += 100) {
        const results = yield* Testing.instantly(Effect.either(burst(fleet, page, 5)))
        if (results._tag === "Left") expect.fail(`a caller got an error: ${String(results.left)}`)
        served.push(...results.right.flat())
        yield* TestClock.adjust("100 millis")
      }
      expect(served.length).toBe(200 * 4 * 5)
      expect(served.every((i) => i.value === 1 && i.stale)).toBe(true)

      // every attempt after the first failure waited for the fleet-wide back-off marker
      const attempts = (yield* producer.stats).startedAt.slice(1)
      const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!)
      expect(attempts.length).toBeGreaterThanOrEqual(3) // it keeps trying
      expect(attempts.length).toBeLessThanOrEqual(20) // at most one attempt per second, fleet-wide
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1_000)
      expect((yield* producer.stats).failed).toBe(attempts.length)

      // the database is back: the next attempt after the back-off succeeds and everyone gets it
      yield* producer.setFailing(false)
      for (let i = 0; i < 310; i++) { // up to the 30 s maximum back-off, and one more window
        yield* burst(fleet, page, 1)
        yield* TestClock.adjust("100 millis")
        if ((yield* producer.stats).succeeded === 2) break
      }
      yield* TestClock.adjust(windowMs) // a fresh window: the new value is refreshed once more
      yield* burst(fleet, page, 1)
      yield* TestClock.adjust("200 millis")
      const after = (yield* burst(fleet, page, 1)).flat()
      expect(after.every((i) => i.value === after[0]!.value && i.value > 1 && !i.stale)).toBe(true)
    }))

  it.scoped("keepWarm with early runs: one run per window across the fleet, every pod on the new value from the boundary", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(4)
      const { page, producer } = yield* makePage({ duration: "200 millis" })
      const warm = Memo.keepWarm({ ...options, lag: "100 millis" }, producer.effect)
      yield* Effect.forEach(fleet.pods, (pod) => pod.run(warm))
      yield* TestClock.adjust("400 millis") // the first run is done, and its duration known
      for (let w = 1; w < 7; w++) {
        if (w === 4) yield* fleet.pods[0]!.crash // the others keep the key warm
        yield* TestClock.adjust(windowMs * w + 1 - (yield* TestClock.currentTimeMillis))
        for (const pod of fleet.pods.filter((p) => p.status === "up")) {
          expect(yield* Testing.instantly(pod.run(page)), `window ${w}`).toMatchObject({ value: w + 1, bucket: w, stale: false, cache: "hit" })
        }
      }
      const stats = yield* producer.stats
      // one run per window, each (after the first) in the lead time before its window
      expect(stats.startedAt.length).toBe(7)
      expect(bucketsOf(stats.startedAt)).toEqual([0, 0, 1, 2, 3, 4, 5])
      for (const t of stats.startedAt.slice(1)) expect(windowMs - (t % windowMs)).toBeLessThanOrEqual(450)
    }))

  it.scoped("keepWarm refreshes once per window across the fleet, so requests are always hits (early runs off)", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(4)
      const { page, producer } = yield* makePage({ duration: "200 millis" })
      const warm = Memo.keepWarm({ ...options, lag: "100 millis", lead: false }, producer.effect)
      // keepWarm lives in the pod's scope: it runs until that pod crashes
      yield* Effect.forEach(fleet.pods, (pod) => pod.run(warm))

      yield* TestClock.adjust("400 millis") // t = 0.4 s: the first run is done, waiting pods have polled
      for (let w = 0; w < 6; w++) {
        if (w === 3) yield* fleet.pods[0]!.crash // the others keep the key warm
        const live = fleet.pods.filter((pod) => pod.status === "up")
        for (const pod of live) {
          expect(yield* Testing.instantly(pod.run(page))).toMatchObject({ value: w + 1, bucket: w, stale: false, cache: "hit" })
        }
        yield* TestClock.adjust(windowMs) // boundary + lag + run time + a poll: warm again
      }
      const stats = yield* producer.stats
      expect(bucketsOf(stats.startedAt)).toEqual([0, 1, 2, 3, 4, 5, 6])
      expect(stats.startedAt.slice(1).map((t) => t % windowMs)).toEqual([100, 100, 100, 100, 100, 100])
    }))

  it.scoped("a pod whose clock is ahead corrects from the store and causes no extra run", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      yield* b.setClockSkew(1_500) // b believes it is 1.5 s later than it is
      const { page, producer } = yield* makePage()

      yield* a.run(page)
      yield* TestClock.adjust("600 millis") // b's clock says 2.1 s: the next window, by its reckoning
      // b's first read of the store tells it the true time: the stored value is fresh, no claim
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 1, bucket: 0 })
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 1, cache: "hit", stale: false, nextBoundary: 2_000 })
      expect(yield* producer.runs).toBe(1)
    }))

  it.scoped("a pod cut off from the store serves its last value, then produces on its own", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(3) // degradedAfter 1 s
      const [cut, ...rest] = fleet.pods as [Testing.Pod, ...Array<Testing.Pod>]
      const { page, producer } = yield* makePage()

      yield* burst(fleet, page, 1).pipe(TestClock.adjustWith("100 millis"))
      yield* cut.disconnect
      yield* TestClock.adjust(windowMs - 100) // window 1
      yield* burst(fleet, page, 3)
      yield* TestClock.adjust(0)
      expect(yield* producer.runs).toBe(2) // the connected pods refreshed once, together
      expect(yield* Testing.instantly(cut.run(page))).toMatchObject({ value: 1, stale: true })

      yield* TestClock.adjust("1 second") // past degradedAfter: the cut-off pod produces locally
      yield* Testing.instantly(cut.run(page))
      yield* TestClock.adjust(0)
      // made without the store: served, but not as fresh until the store confirms it
      expect(yield* Testing.instantly(cut.run(page))).toMatchObject({ value: 3, bucket: 1, stale: true })
      expect(yield* producer.runs).toBe(3) // ≤ 2 runs per window while the store is unreachable
      for (const pod of rest) {
        expect(yield* Testing.instantly(pod.run(page))).toMatchObject({ value: 2, bucket: 1 })
      }
    }))
})

describe("Testing.layer", () => {
  it.effect("gives one process Memo over a private in-memory store", () =>
    Effect.gen(function*() {
      const { page, producer } = yield* makePage()
      expect(yield* page).toMatchObject({ value: 1, cache: "miss" })
      expect(yield* Testing.instantly(page)).toMatchObject({ value: 1, cache: "hit" })
      yield* TestClock.adjust(windowMs)
      expect(yield* Testing.instantly(page)).toMatchObject({ value: 1, cache: "stale" })
      yield* TestClock.adjust(0)
      expect(yield* page).toMatchObject({ value: 2, cache: "hit" })
      expect(yield* producer.runs).toBe(2)
    }).pipe(Effect.provide(Testing.layer)))
})
