/**
 * `memo` behaviour under `TestClock`, on the in-memory store (same protocol as Redis, time from
 * `Clock`). Several runtimes over one in-memory server stand for several processes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Either, Exit, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as SpyStore from "./support/spy.js"

const WINDOW = 10_000

class Boom extends Data.TaggedError("Boom")<{ readonly attempt: number }> {}

/**
 * A lookup whose value is its run number, taking `ms` of virtual time; `state` reads its
 * counters (synchronously, for brevity) and `fail` switches it to failing with `Boom`.
 */
const producer = (ms: number) => {
  const made = Effect.runSync(Testing.producer((run) => Effect.succeed(run), {
    duration: ms,
    failWith: (run) => new Boom({ attempt: run })
  }))
  return {
    effect: made.effect,
    state: {
      get runs() {
        return Effect.runSync(made.runs)
      },
      get completed() {
        return Effect.runSync(made.stats).succeeded
      }
    },
    fail: (on: boolean) => Effect.runSync(made.setFailing(on))
  }
}

/** One simulated process: its own runtime over a shared in-memory server. */
const pod = (server: Redis.MemoryServer, settings: Partial<Memo.Settings> = {}, tenant = "default") =>
  Effect.gen(function*() {
    const { layer, spy } = yield* SpyStore.layer(server, tenant)
    const runtime = yield* Effect.provide(Memo.make(settings), layer)
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Memo.Memo, runtime)
    return { runtime, spy, run }
  })

const immediately = Testing.instantly

const options = { key: "dashboard", window: WINDOW, schema: Schema.Number }

describe("Memo", () => {
  it.scoped("a fresh L1 hit does no Redis I/O", () =>
    Effect.gen(function*() {
      const p = producer(1000)
      const { run, spy } = yield* pod(Redis.makeMemoryServer())
      const first = yield* Effect.fork(run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(1000)
      expect(yield* Fiber.join(first)).toBe(1)
      spy.reset()
      for (let i = 0; i < 100; i++) expect(yield* immediately(run(Memo.memo(options, p.effect)))).toBe(1)
      expect(spy.total()).toBe(0)
      expect(p.state.runs).toBe(1)
    }))

  it.scoped("concurrent cold callers share one producer run", () =>
    Effect.gen(function*() {
      const p = producer(2000)
      const { run } = yield* pod(Redis.makeMemoryServer())
      const callers = yield* Effect.fork(
        Effect.all(Array.from({ length: 50 }, () => run(Memo.memoWithInfo(options, p.effect))), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(2000)
      const infos = yield* Fiber.join(callers)
      expect(p.state.runs).toBe(1)
      expect(new Set(infos.map((i) => i.value))).toEqual(new Set([1]))
      expect(infos[0]).toMatchObject({ bucket: 0, cache: "miss", stale: false, nextBoundary: WINDOW, computedAt: 2000 })
    }))

  it.scoped("a stale value is served at once while one background refresh runs", () =>
    Effect.gen(function*() {
      const p = producer(5000)
      const { run } = yield* pod(Redis.makeMemoryServer())
      const first = yield* Effect.fork(run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(5000)
      yield* Fiber.join(first)
      yield* TestClock.adjust(WINDOW - 4000) // t = 11 s: window 1, the value is from window 0
      for (let i = 0; i < 20; i++) {
        const info = yield* immediately(run(Memo.memoWithInfo(options, p.effect)))
        expect(info).toMatchObject({ value: 1, bucket: 0, stale: true, cache: "stale", nextBoundary: 2 * WINDOW })
      }
      expect(p.state.runs).toBe(2)
      yield* TestClock.adjust(5000)
      const fresh = yield* immediately(run(Memo.memoWithInfo(options, p.effect)))
      expect(fresh).toMatchObject({ value: 2, bucket: 1, stale: false, cache: "hit" })
      expect(p.state.runs).toBe(2)
    }))

  it.scoped("a request that waited reports staleness as of its answer, not its start", () =>
    Effect.gen(function*() {
      const p = producer(5000)
      const { run } = yield* pod(Redis.makeMemoryServer())
      const waited = yield* Effect.fork(run(Memo.memoWithInfo({ ...options, window: 2000 }, p.effect)))
      yield* TestClock.adjust(5000)
      expect(yield* Fiber.join(waited)).toMatchObject({ value: 1, bucket: 0, stale: true, nextBoundary: 6000, cache: "miss" })
    }))

  it.scoped("a process that takes the lock serves the newer stored value while it produces", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = producer(1000)
      const o = { ...options, window: 2000 }
      const a = yield* pod(server)
      const b = yield* pod(server)
      const first = yield* Effect.fork(b.run(Memo.memo(o, p.effect)))
      yield* TestClock.adjust(2000) // t = 2 s: b holds run 1 (window 0)
      expect(yield* Fiber.join(first)).toBe(1)
      b.spy.setDown(true) // b misses a's commit notice
      const second = yield* Effect.fork(a.run(Memo.memo(o, p.effect)))
      yield* TestClock.adjust(2000) // t = 4 s: a produced run 2 for window 1
      expect(yield* Fiber.join(second)).toBe(1) // a served the stale value at once
      expect(p.state.runs).toBe(2)
      b.spy.setDown(false)
      // b's L1 still holds run 1; its refresh takes the lock and learns of run 2 on the way
      expect(yield* immediately(b.run(Memo.memo(o, p.effect)))).toBe(1)
      expect(yield* immediately(b.run(Memo.memo(o, p.effect)))).toBe(2)
      expect(p.state.runs).toBe(3)
    }))

  it.scoped("a process hears another's commit, with its value: no read, no wait", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = producer(1000)
      const o = { ...options, window: 2000 }
      const a = yield* pod(server)
      const b = yield* pod(server)
      const first = yield* Effect.fork(b.run(Memo.memo(o, p.effect)))
      yield* TestClock.adjust(2000)
      expect(yield* Fiber.join(first)).toBe(1)
      const second = yield* Effect.fork(a.run(Memo.memo(o, p.effect)))
      yield* TestClock.adjust(1000) // t = 3 s: a committed run 2 for window 1
      expect(yield* Fiber.join(second)).toBe(1)
      b.spy.reset()
      expect(yield* immediately(b.run(Memo.memoWithInfo(o, p.effect)))).toMatchObject({ value: 2, bucket: 1, cache: "hit" })
      expect(b.spy.total()).toBe(0)
      expect(p.state.runs).toBe(2)
    }))

  it.scoped("a restarted process serves the last-known-good value at once, however old", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = producer(3000)
      const before = yield* pod(server)
      const first = yield* Effect.fork(before.run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(3000)
      yield* Fiber.join(first)
      yield* TestClock.adjust("6 hours")
      const after = yield* pod(server)
      const info = yield* immediately(after.run(Memo.memoWithInfo(options, p.effect)))
      expect(info).toMatchObject({ value: 1, stale: true, cache: "stale" })
      yield* TestClock.adjust(3000)
      expect(yield* immediately(after.run(Memo.memo(options, p.effect)))).toBe(2)
    }))

  it.scoped("a failing producer: the last value is served, the fleet backs off, then it recovers", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = producer(100)
      const a = yield* pod(server, { failureBackoff: "2 seconds" })
      const b = yield* pod(server, { failureBackoff: "2 seconds" })
      const first = yield* Effect.fork(a.run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(100)
      yield* Fiber.join(first)
      p.fail(true)
      yield* TestClock.adjust(WINDOW)
      expect(yield* immediately(a.run(Memo.memo(options, p.effect)))).toBe(1)
      yield* TestClock.adjust(100) // the refresh fails
      expect(p.state.runs).toBe(2)
      // within the back-off neither this process nor another one tries again, and nobody errs
      for (let i = 0; i < 10; i++) {
        expect(yield* immediately(a.run(Memo.memo(options, p.effect)))).toBe(1)
        expect(yield* immediately(b.run(Memo.memo(options, p.effect)))).toBe(1)
        yield* TestClock.adjust(150)
      }
      expect(p.state.runs).toBe(2)
      yield* TestClock.adjust(1000) // past the back-off marker
      p.fail(false)
      expect(yield* immediately(b.run(Memo.memo(options, p.effect)))).toBe(1)
      yield* TestClock.adjust(100)
      expect(p.state.runs).toBe(3)
      expect(yield* immediately(b.run(Memo.memo(options, p.effect)))).toBe(3)
    }))

  it.scoped("with no value anywhere, callers get the producer's own typed error", () =>
    Effect.gen(function*() {
      const p = producer(100)
      p.fail(true)
      const { run } = yield* pod(Redis.makeMemoryServer())
      const callers = yield* Effect.fork(
        Effect.all(Array.from({ length: 5 }, () => Effect.flip(run(Memo.memo(options, p.effect)))), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(100)
      const errors = yield* Fiber.join(callers)
      expect(errors.map((e) => e._tag)).toEqual(Array(5).fill("Boom"))
      expect(p.state.runs).toBe(1)
    }))

  it.scoped("a cold request with a timeout fails with WaitTimeout; the computation goes on", () =>
    Effect.gen(function*() {
      const p = producer(5000)
      const { run } = yield* pod(Redis.makeMemoryServer())
      const timed = { ...options, timeout: "1 second" } as const
      const waiting = yield* Effect.fork(Effect.flip(run(Memo.memo(timed, p.effect))))
      yield* TestClock.adjust(1000)
      const error = yield* Fiber.join(waiting)
      expect(error).toMatchObject({ _tag: "WaitTimeout", key: "dashboard" })
      yield* TestClock.adjust(4000)
      expect(yield* immediately(run(Memo.memo(timed, p.effect)))).toBe(1)
      expect({ runs: p.state.runs, completed: p.state.completed }).toEqual({ runs: 1, completed: 1 })
      expect(() => Memo.memo({ ...options, timeout: "0 seconds" } as const, p.effect)).toThrow(Memo.InvalidOptions)
    }))

  it.scoped("interrupting one waiter does not cancel the shared computation", () =>
    Effect.gen(function*() {
      const p = producer(1000)
      const { run } = yield* pod(Redis.makeMemoryServer())
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(run(Memo.memo(options, p.effect))))
      yield* TestClock.adjust(100)
      yield* Fiber.interrupt(fibers[0]!)
      yield* TestClock.adjust(900)
      expect(yield* Fiber.join(fibers[1]!)).toBe(1)
      expect(yield* Fiber.join(fibers[2]!)).toBe(1)
      expect({ runs: p.state.runs, completed: p.state.completed }).toEqual({ runs: 1, completed: 1 })
    }))

  it.scoped("a stored value that fails to decode is a miss: recomputed, then replaced", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const store = yield* Redis.makeMemory({ server })
      for (const data of ["{not json", "\"a string\"", "null"]) {
        const claim = yield* store.claim("dashboard", { windowMs: WINDOW, leaseMs: 1000, token: "x", force: true, retainMs: 0 })
        if (claim._tag !== "Acquired") return yield* Effect.dieMessage(claim._tag)
        yield* store.commit("dashboard", { data, bucket: claim.bucket, fence: claim.fence, windowMs: WINDOW, computedAt: 0 }, "x", { retainMs: 0 })
        const p = producer(10)
        const { run } = yield* pod(server)
        const got = yield* Effect.fork(run(Memo.memo(options, p.effect)))
        yield* TestClock.adjust(10)
        expect(yield* Fiber.join(got)).toBe(1)
        expect(p.state.runs).toBe(1)
        const stored = Option.getOrThrow((yield* store.get("dashboard")).stored)
        expect(stored.data).toBe("1")
      }
    }))

  it.effect("invalid options throw InvalidOptions where the loader is defined, never in a request", () =>
    Effect.gen(function*() {
      const p = producer(0)
      const bad: Array<unknown> = [
        { ...options, key: 42 },
        { ...options, window: 0 },
        { ...options, window: "-1 seconds" },
        { ...options, window: "banana" },
        { ...options, schema: undefined },
        { ...options, timeout: "0 millis" },
        { ...options, retain: "1 second" }, // shorter than the window
        { ...options, tags: "dashboards" },
        null
      ]
      for (const o of bad) {
        expect(() => Memo.memo(o as typeof options, p.effect), JSON.stringify(o)).toThrow(Memo.InvalidOptions)
        expect(() => Memo.memoWithInfo(o as typeof options, p.effect), JSON.stringify(o)).toThrow(Memo.InvalidOptions)
        expect(() => Memo.keepWarm(o as typeof options, p.effect), JSON.stringify(o)).toThrow(Memo.InvalidOptions)
      }
      for (const lag of ["banana", "-1 seconds", -5, Infinity]) {
        expect(() => Memo.keepWarm({ ...options, lag: lag as never }, p.effect), String(lag)).toThrow(/lag/)
      }
      // any string is a key, the empty one too
      expect(yield* Effect.provide(Memo.memo({ ...options, key: "" }, Effect.succeed(7)), Testing.layer)).toBe(7)
      expect(p.state.runs).toBe(0)
      const layerExit = yield* Effect.exit(
        Effect.provide(Memo.Memo, Memo.layerWith({ lease: 0 }).pipe(Layer.provide(Redis.layerMemory)))
      )
      expect(Exit.isFailure(layerExit) && String(layerExit.cause)).toContain("lease")
      for (const settings of [{ maxRun: "30 days" }, { pollInterval: 0 }, { l1Capacity: 0 }, { degradedAfter: "banana" }]) {
        const exit = yield* Effect.exit(Effect.provide(Memo.Memo, Memo.layerWith(settings as never).pipe(Layer.provide(Redis.layerMemory))))
        expect(Exit.isFailure(exit), JSON.stringify(settings)).toBe(true)
        expect(String(Exit.isFailure(exit) && exit.cause)).toContain(Object.keys(settings)[0])
      }
    }))

  it.scoped("the holder renews its lease while it produces, so nobody else starts", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = producer(30_000)
      const settings = { lease: "3 seconds" } as const
      const a = yield* pod(server, settings)
      const b = yield* pod(server, settings)
      const first = yield* Effect.fork(a.run(Memo.memo({ ...options, window: "1 minute" }, p.effect)))
      yield* TestClock.adjust(10_000)
      const second = yield* Effect.fork(b.run(Memo.memo({ ...options, window: "1 minute" }, p.effect)))
      yield* TestClock.adjust(20_000)
      expect(yield* Fiber.join(first)).toBe(1)
      yield* TestClock.adjust(100) // the next poll finds the committed value
      expect(yield* Fiber.join(second)).toBe(1)
      expect(p.state.runs).toBe(1)
      expect(a.spy.calls.renew).toBeGreaterThanOrEqual(9)
      expect(b.spy.calls.claim).toBeGreaterThan(1) // it polled
    }))

  it.scoped("a holder cut off past its lease is superseded, and its late value never overwrites", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const store = yield* Redis.makeMemory({ server })
      const p = producer(5000)
      const settings = { lease: "2 seconds", degradedAfter: 0 } as const
      const a = yield* pod(server, settings)
      const b = yield* pod(server, settings)
      const first = yield* Effect.fork(a.run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(500)
      a.spy.setDown(true) // the holder loses Redis: its renewals fail, its lease lapses
      const second = yield* Effect.fork(b.run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(2000)
      expect(p.state.runs).toBe(2) // taken over once the lease lapsed
      yield* TestClock.adjust(2700) // the old holder finishes first, but cannot commit
      expect(yield* Fiber.join(first)).toBe(1)
      a.spy.setDown(false)
      yield* TestClock.adjust(2500)
      expect(yield* Fiber.join(second)).toBe(2)
      yield* TestClock.adjust(3000) // the old holder's write-back retries meet the newer value
      const stored = Option.getOrThrow((yield* store.get("dashboard")).stored)
      // the second claim's value, under its fence (the first claim's, at t = 0, was 1)
      expect(stored.data).toBe("2")
      expect(stored.fence).toBeGreaterThan(1)
    }))

  it.scoped("Redis unreachable: serve from L1, produce locally once per window, write back on recovery", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const store = yield* Redis.makeMemory({ server })
      const p = producer(100)
      const a = yield* pod(server, { degradedAfter: "1 second" })
      a.spy.setDown(true)
      const cold = yield* Effect.fork(a.run(Memo.memo(options, p.effect)))
      // cold, it asks the store three times, redisRetry (250 ms) apart, then runs on its own
      yield* TestClock.adjust(499)
      expect(p.state.runs).toBe(0)
      yield* TestClock.adjust(101)
      expect(yield* Fiber.join(cold)).toBe(1)
      for (let i = 0; i < 5; i++) expect(yield* immediately(a.run(Memo.memo(options, p.effect)))).toBe(1)
      yield* TestClock.adjust(WINDOW - 500) // t = 10.1 s: stale, but within degradedAfter of the boundary
      expect(yield* immediately(a.run(Memo.memo(options, p.effect)))).toBe(1)
      yield* TestClock.adjust(500)
      expect(yield* immediately(a.run(Memo.memo(options, p.effect)))).toBe(1)
      expect(p.state.runs).toBe(1)
      yield* TestClock.adjust(500) // t = 11.1 s: past degradedAfter
      for (let i = 0; i < 5; i++) expect(yield* immediately(a.run(Memo.memo(options, p.effect)))).toBe(1)
      yield* TestClock.adjust(100)
      expect(yield* immediately(a.run(Memo.memo(options, p.effect)))).toBe(2)
      expect(p.state.runs).toBe(2)
      a.spy.setDown(false)
      yield* TestClock.adjust(2000)
      const stored = Option.getOrThrow((yield* store.get("dashboard")).stored)
      expect({ data: stored.data, bucket: stored.bucket }).toEqual({ data: "2", bucket: 1 })
    }))

  it.scoped("keepWarm refreshes right after each boundary, once per window across processes", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = producer(200)
      const pods = [yield* pod(server), yield* pod(server), yield* pod(server)]
      for (const x of pods) yield* x.run(Memo.keepWarm({ ...options, lag: "50 millis" }, p.effect))
      yield* TestClock.adjust(300)
      expect(p.state.runs).toBe(1)
      for (let w = 1; w <= 5; w++) {
        yield* TestClock.adjust(WINDOW)
        for (const x of pods) {
          const info = yield* immediately(x.run(Memo.memoWithInfo(options, p.effect)))
          expect(info).toMatchObject({ value: w + 1, bucket: w, cache: "hit" })
        }
      }
      expect(p.state.runs).toBe(6)
    }))

  it.scoped("tenants never share values", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = producer(10)
      const a = yield* pod(server, {}, "tenant-a")
      const b = yield* pod(server, {}, "tenant-b")
      const fa = yield* Effect.fork(a.run(Memo.memo(options, p.effect)))
      const fb = yield* Effect.fork(b.run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(10)
      expect(new Set([yield* Fiber.join(fa), yield* Fiber.join(fb)])).toEqual(new Set([1, 2]))
    }))

  it.scoped("works data-last in a pipe, with the producer's own requirements", () =>
    Effect.gen(function*() {
      class Rate extends Effect.Tag("Rate")<Rate, { readonly value: number }>() {}
      const { run } = yield* pod(Redis.makeMemoryServer())
      const loader = Rate.pipe(
        Effect.map((r) => r.value * 2),
        Memo.memo({ key: "rate", window: "1 minute", schema: Schema.Number })
      )
      const value = yield* run(loader).pipe(Effect.provideService(Rate, { value: 21 }))
      expect(value).toBe(42)
      const either = yield* Effect.either(run(loader).pipe(Effect.provideService(Rate, { value: 0 })))
      expect(either).toEqual(Either.right(42))
    }))
})
