/**
 * Every metric in `Metrics.ts` moves where it should: one scenario per metric family, on the
 * in-memory store under `TestClock` (the breaker gauge on an ioredis store with nothing behind
 * its port). Metrics are process-global, so each check reads a delta.
 */
import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Fiber, Metric, MetricState, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import { freePort } from "./support/services.js"
import * as SpyStore from "./support/spy.js"

const WINDOW = 10_000

class Boom extends Data.TaggedError("Boom")<{}> {}

/** Sum of the metric `name` over the series carrying all of `tags` (counters, gauges, histogram counts). */
const read = (name: string, tags: Record<string, string> = {}) =>
  Effect.map(Metric.snapshot, (pairs) => {
    let total = 0
    for (const pair of pairs) {
      if (pair.metricKey.name !== name) continue
      if (!Object.entries(tags).every(([k, v]) => pair.metricKey.tags.some((t) => t.key === k && t.value === v))) continue
      const state: unknown = pair.metricState
      if (MetricState.isCounterState(state)) total += Number(state.count)
      else if (MetricState.isGaugeState(state)) total += Number(state.value)
      else if (MetricState.isHistogramState(state)) total += state.count
    }
    return total
  })

/** How much each of `reads` moved while `effect` ran. */
const deltas = <A, E, R>(reads: Record<string, Effect.Effect<number>>, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const before = yield* Effect.all(reads)
    yield* effect
    const after = yield* Effect.all(reads)
    return Object.fromEntries(Object.keys(reads).map((k) => [k, after[k]! - before[k]!]))
  })

/** One simulated process over `server` (several of them over one server form a fleet). */
const pod = (server: Redis.MemoryServer, settings: Partial<Memo.Settings> = {}) =>
  Effect.gen(function*() {
    const { layer, spy } = yield* SpyStore.layer(server)
    const runtime = yield* Effect.provide(Memo.make(settings), layer)
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Memo.Memo, runtime)
    return { run, spy }
  })

const options = (key: string) => ({ key, window: WINDOW, schema: Schema.Number })

describe("Metrics", () => {
  it.scoped("requests by result, producer runs and duration, lock outcomes, commits, stale age, L1 size", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const a = yield* pod(server)
      const b = yield* pod(server)
      let runs = 0
      const producer = Effect.sync(() => ++runs).pipe(Effect.delay(100))
      const o = options("requests")
      const d = yield* deltas({
        cold: read("lockstep_requests_total", { result: "cold" }),
        l1: read("lockstep_requests_total", { result: "l1" }),
        redis: read("lockstep_requests_total", { result: "redis" }),
        stale: read("lockstep_requests_total", { result: "stale" }),
        leaderRuns: read("lockstep_producer_runs_total", { outcome: "success", mode: "leader" }),
        durations: read("lockstep_producer_duration_seconds"),
        acquired: read("lockstep_lock_total", { outcome: "acquired" }),
        committed: read("lockstep_commits_total", { outcome: "committed" }),
        staleAge: read("lockstep_stale_age_windows")
      }, Effect.gen(function*() {
        const cold = yield* Effect.fork(a.run(Memo.memo(o, producer)))
        yield* TestClock.adjust(100)
        yield* Fiber.join(cold) // cold, acquired, one leader run, committed
        yield* a.run(Memo.memo(o, producer)) // l1
        yield* b.run(Memo.memo(o, producer)) // redis: fresh in the store, not in b's L1
        yield* TestClock.adjust(WINDOW) // a's value is one window old now
        yield* a.run(Memo.memo(o, producer)) // stale, refresh starts
        yield* TestClock.adjust(100)
      }))
      expect(d).toEqual({ cold: 1, l1: 1, redis: 1, stale: 1, leaderRuns: 2, durations: 2, acquired: 2, committed: 2, staleAge: 1 })
      expect(yield* read("lockstep_l1_entries")).toBeGreaterThanOrEqual(1)
    }))

  it.scoped("a failing producer: failure runs, back-off claims, and an error only for a cold request", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const a = yield* pod(server, { failureBackoff: "5 seconds" })
      const b = yield* pod(server, { failureBackoff: "5 seconds" })
      const o = options("failing")
      const d = yield* deltas({
        failed: read("lockstep_producer_runs_total", { outcome: "failure" }),
        errors: read("lockstep_requests_total", { result: "error" }),
        backoff: read("lockstep_lock_total", { outcome: "backoff" })
      }, Effect.gen(function*() {
        const cold = yield* Effect.fork(Effect.either(a.run(Memo.memo(o, Effect.fail(new Boom()).pipe(Effect.delay(10))))))
        yield* TestClock.adjust(10)
        yield* Fiber.join(cold)
        const other = yield* Effect.fork(Effect.either(b.run(Memo.memo(o, Effect.fail(new Boom())))))
        yield* TestClock.adjust(5_100) // it waits out the marker, then fails on its own
        yield* Fiber.join(other)
      }))
      expect(d.failed).toBeGreaterThanOrEqual(1)
      expect(d.errors).toBeGreaterThanOrEqual(2) // both cold requests failed: no value anywhere
      expect(d.backoff).toBeGreaterThanOrEqual(1) // the second pod saw the fleet's back-off marker
    }))

  it.scoped("Redis errors by operation and reason, and local runs while it is unreachable", () =>
    Effect.gen(function*() {
      const a = yield* pod(Redis.makeMemoryServer(), { degradedAfter: 0 })
      a.spy.down = true
      const o = options("down")
      const d = yield* deltas({
        redisErrors: read("lockstep_redis_errors_total", { reason: "Unavailable" }),
        localRuns: read("lockstep_producer_runs_total", { outcome: "success", mode: "local" })
      }, Effect.gen(function*() {
        const cold = yield* Effect.fork(a.run(Memo.memo(o, Effect.succeed(1).pipe(Effect.delay(10)))))
        yield* TestClock.adjust(510) // three claims, redisRetry apart, then the local run
        yield* Fiber.join(cold)
      }))
      expect(d.redisErrors).toBeGreaterThanOrEqual(1)
      expect(d.localRuns).toBe(1)
      const labelled = yield* Effect.map(Metric.snapshot, (pairs) =>
        pairs.filter((p) => p.metricKey.name === "lockstep_redis_errors_total").map((p) => p.metricKey.tags.map((t) => t.key).sort().join(",")))
      expect(new Set(labelled)).toEqual(new Set(["operation,reason"]))
    }))

  it.scoped("decode failures: a stored value the schema rejects is counted and recomputed", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const tenant = "decode"
      const store = yield* Redis.makeMemory({ tenant, server })
      const claim = yield* store.claim("decode", { windowMs: WINDOW, leaseMs: 1000, token: "x", force: false, retainMs: 0 })
      if (claim._tag !== "Acquired") return yield* Effect.dieMessage(claim._tag)
      yield* store.commit("decode", { data: "{not json", bucket: claim.bucket, fence: claim.fence, windowMs: WINDOW, computedAt: 0 }, "x", { retainMs: 0 })
      const { layer } = yield* SpyStore.layer(server, tenant)
      const runtime = yield* Effect.provide(Memo.make(), layer)
      const d = yield* deltas({ decode: read("lockstep_decode_failures_total") }, Effect.gen(function*() {
        const got = yield* Effect.fork(Effect.provideService(Memo.memo(options("decode"), Effect.succeed(7)), Memo.Memo, runtime))
        yield* TestClock.adjust(10)
        expect(yield* Fiber.join(got)).toBe(7)
      }))
      expect(d.decode).toBeGreaterThanOrEqual(1)
    }))

  it.live("the breaker gauge follows the ioredis store's breaker: open after repeated failures", () =>
    Effect.gen(function*() {
      const tenant = `breaker-${Date.now()}`
      const port = yield* Effect.promise(() => freePort()) // nothing listens there
      const store = yield* Redis.make({
        tenant,
        redis: { host: "127.0.0.1", port },
        connectTimeout: "10 millis",
        breakerThreshold: 2,
        breakerCooldown: "1 minute"
      })
      const gauge = read("lockstep_redis_breaker_state", { tenant })
      expect(yield* gauge).toBe(0)
      for (let i = 0; i < 2; i++) yield* Effect.either(store.get("k"))
      expect(yield* gauge).toBe(2)
      expect(yield* store.health).toBe("open")
    }).pipe(Effect.scoped))
})
