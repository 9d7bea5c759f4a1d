/**
 * `maxRun` under `TestClock` on `Testing.fleet`: a lookup that hangs while the store is healthy
 * (its holder renews the lease all along) is stopped exactly at `maxRun`; its lock becomes a
 * back-off marker; the stop is logged and counted as `lockstep_producer_runs_total{outcome="timeout"}`;
 * the cold callers that waited for it die with `Memo.MaxRunExceeded`; and once the marker lapses,
 * another pod takes over and the key gets its value.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Logger, Metric, MetricState, Option, Schema, TestClock } from "effect"
import { Memo } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const T0 = 1_700_000_000_000
const WINDOW = 60_000
const MAX_RUN = 3_000
const LEASE = 1_000
const BACKOFF = 2_000
const settings = { maxRun: MAX_RUN, lease: LEASE, failureBackoff: BACKOFF, maxFailureBackoff: 8_000, pollInterval: 50 } satisfies Partial<Memo.Settings>

/** The count of a counter's series that carries all of `tags`. */
const counter = (name: string, tags: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    let total = 0
    for (const pair of pairs) {
      if (pair.metricKey.name !== name) continue
      if (!Object.entries(tags).every(([k, v]) => pair.metricKey.tags.some((t) => t.key === k && t.value === v))) continue
      if (MetricState.isCounterState(pair.metricState)) total += Number(pair.metricState.count)
    }
    return total
  })

const timeouts = counter("lockstep_producer_runs_total", { outcome: "timeout", mode: "leader" })

describe("Memo maxRun", () => {
  it.scoped("a hung lookup is stopped at maxRun: back-off marker, logged and counted, cold callers get MaxRunExceeded, another pod takes over", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2, settings)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      // run 1 hangs (until interrupted), later runs answer their number after 100 ms
      const events: Array<string> = []
      let runs = 0
      const lookup = Effect.suspend(() => {
        const run = ++runs
        return Effect.flatMap(Effect.clockWith((c) => c.currentTimeMillis), (at) => {
          events.push(`run ${run} starts at ${at - T0}`)
          const body = run === 1 ? Effect.never : Effect.as(Effect.sleep(100), run)
          return body.pipe(Effect.onInterrupt(() =>
            Effect.flatMap(Effect.clockWith((c) => c.currentTimeMillis), (t) => Effect.sync(() => events.push(`run ${run} interrupted at ${t - T0}`)))
          ))
        })
      })
      const page = Memo.loader({ key: "hung", window: WINDOW, schema: Schema.Number, lookup: () => lookup })
      const logs: Array<string> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(message))))
      const before = yield* timeouts

      // three cold callers on the pod that leads, one on the other pod (it waits on the lock)
      const cold = yield* Effect.forEach([a, a, a], (pod) => Effect.fork(pod.run(page.get().pipe(Effect.provide(capture)))))
      yield* TestClock.adjust(0)
      const onB = yield* Effect.fork(b.run(page.get()))
      yield* TestClock.adjust(MAX_RUN - 1)
      // the holder kept its lease the whole time (renewed every third of it): nobody took over
      expect(events).toEqual(["run 1 starts at 0"])
      for (const f of cold) expect(Option.isNone(yield* Fiber.poll(f))).toBe(true)
      const held = yield* fleet.store.claim("hung", { windowMs: WINDOW, leaseMs: LEASE, token: "probe", force: false, retainMs: 0 })
      expect(held._tag).toBe("Busy")

      yield* TestClock.adjust(1) // t = maxRun
      expect(events).toEqual(["run 1 starts at 0", `run 1 interrupted at ${MAX_RUN}`])
      for (const f of cold) {
        const exit = yield* Fiber.await(f)
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const defect = Option.getOrUndefined(Cause.dieOption(exit.cause))
          expect(defect).toBeInstanceOf(Memo.MaxRunExceeded)
          expect(defect).toMatchObject({ key: "hung", maxRunMs: MAX_RUN })
        }
      }
      // the lock became a back-off marker of failureBackoff
      const marker = yield* fleet.store.claim("hung", { windowMs: WINDOW, leaseMs: LEASE, token: "probe", force: false, retainMs: 0 })
      expect(marker).toMatchObject({ _tag: "Backoff", ttlMs: BACKOFF })
      // logged and counted
      expect(logs.filter((m) => m.includes("ran past maxRun"))).toHaveLength(1)
      expect((yield* timeouts) - before).toBe(1)

      // the other pod, waiting on the lock all along, meets the back-off marker at its next
      // poll: it holds no failure to answer with, so it runs the lookup once on its own rather
      // than make its request wait the back-off out
      expect(Option.isNone(yield* Fiber.poll(onB))).toBe(true)
      yield* TestClock.adjust(BACKOFF + 200)
      expect(events.slice(2)).toHaveLength(1)
      const started = Number(events[2]!.replace("run 2 starts at ", ""))
      expect(started).toBeGreaterThan(MAX_RUN)
      expect(started).toBeLessThan(MAX_RUN + BACKOFF)
      expect(yield* Fiber.join(onB)).toBe(2)
      // and the leader of the hung run serves the new value
      expect(yield* Testing.instantly(a.run(page.get()))).toBe(2)
    }))
})
