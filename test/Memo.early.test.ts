/**
 * Early runs: `keepWarm` computes the next window's value before its boundary, the store keeps it
 * beside the current one, and every process switches to it at the boundary. Under `TestClock`, on
 * the in-memory store (the store contract covers the same on Redis).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as SpyStore from "./support/spy.js"

const W = 10_000
const options = { key: "dashboard", window: W, schema: Schema.Number }

const pod = (server: Redis.MemoryServer) =>
  Effect.gen(function*() {
    const { layer, spy } = yield* SpyStore.layer(server)
    const runtime = yield* Effect.provide(Memo.make(), layer)
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Memo.Memo, runtime)
    return { spy, run }
  })

/** A lookup that answers its run number after `ms` of virtual time. */
const lookupOf = (ms: number) => Effect.runSync(Testing.producer((run) => Effect.succeed(run), { duration: ms }))

const at = (t: number) => Effect.flatMap(TestClock.currentTimeMillis, (now) => TestClock.adjust(t - now))

/** Two processes, `a` keeping the key warm (1 s runs), once the first run is done and `b` holds it. */
const warmed = Effect.gen(function*() {
  const server = Redis.makeMemoryServer()
  const p = lookupOf(1_000)
  const a = yield* pod(server)
  const b = yield* pod(server)
  const page = Memo.memoWithInfo(options, p.effect)
  const loader = Memo.loader({ ...options, lookup: () => p.effect })
  yield* a.run(Memo.keepWarm(options, p.effect))
  yield* at(1_500)
  expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 1 })
  return { a, b, loader, p, page }
})

describe("Memo early runs", () => {
  it.scoped("at the boundary every process answers the early value as a hit, with no store call", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = lookupOf(1_000)
      const a = yield* pod(server)
      const b = yield* pod(server)
      const page = Memo.memoWithInfo(options, p.effect)
      yield* a.run(Memo.keepWarm(options, p.effect))
      yield* at(1_500) // the first run is done: 1 s runs, a lead of 1.25 s
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 1, cache: "hit" })
      yield* at(W - 1)
      // computed, committed for window 1, and not yet the answer
      expect(yield* p.runs).toBe(2)
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 1, bucket: 0, cache: "hit", nextValueAt: W })
      b.spy.reset()
      a.spy.reset()
      yield* at(W)
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 2, bucket: 1, cache: "hit", stale: false })
      expect(yield* Testing.instantly(a.run(page))).toMatchObject({ value: 2, bucket: 1, cache: "hit", stale: false })
      expect(b.spy.total()).toBe(0)
      expect(a.spy.total()).toBe(0)
      yield* at(W + 2_000)
      expect(yield* p.runs).toBe(2) // the window's claim found it fresh
    }))

  it.scoped("a run still going at the boundary: the current value answers at once, as stale, and the run commits as today", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = lookupOf(1_000)
      const a = yield* pod(server)
      const b = yield* pod(server)
      const page = Memo.memoWithInfo(options, p.effect)
      // a lead shorter than the run: it ends 500 ms after the boundary
      yield* a.run(Memo.keepWarm({ ...options, lead: "500 millis" }, p.effect))
      yield* at(1_500)
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 1 })
      yield* at(W + 1)
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 1, cache: "stale", stale: true })
      yield* at(W + 600)
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 2, bucket: 1, cache: "hit" })
      expect(yield* p.runs).toBe(2)
    }))

  it.scoped("an invalidation after an early commit makes that value stale when its window opens", () =>
    Effect.gen(function*() {
      const { a, b, loader, p, page } = yield* warmed
      yield* at(W - 100) // run 2 committed for window 1
      expect(yield* p.runs).toBe(2)
      yield* b.run(loader.invalidate())
      yield* at(W)
      // both processes: the early value is not this window's answer
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ cache: "stale", stale: true })
      expect(yield* Testing.instantly(a.run(page))).toMatchObject({ cache: "stale", stale: true })
      yield* at(W + 1_500)
      expect(yield* Testing.instantly(b.run(page))).toMatchObject({ value: 3, bucket: 1, cache: "hit" })
      expect(yield* p.runs).toBe(3) // one recompute for the fleet
    }))

  it.scoped("a set after an early commit wins: no process switches to the early value", () =>
    Effect.gen(function*() {
      const { a, b, loader, page } = yield* warmed
      yield* at(W - 100)
      yield* b.run(loader.set(undefined, 42))
      yield* at(W + 1)
      for (const x of [a, b]) expect((yield* Testing.instantly(x.run(page))).value).not.toBe(2)
    }))

  it.scoped("lead: false starts the window's run at the boundary, as before", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = lookupOf(1_000)
      const a = yield* pod(server)
      yield* a.run(Memo.keepWarm({ ...options, lead: false }, p.effect))
      yield* at(1_500)
      yield* at(W - 1)
      expect(yield* p.runs).toBe(1)
      expect(yield* Testing.instantly(a.run(Memo.memoWithInfo(options, p.effect)))).toMatchObject({ value: 1, nextValueAt: W + 1_000 })
      yield* at(W + 1)
      expect(yield* p.runs).toBe(2)
    }))

  it("a lead that is not \"auto\", false or a duration shorter than the window is a defect at definition", () => {
    const effect = Effect.succeed(1)
    expect(() => Memo.keepWarm({ ...options, lead: "10 seconds" }, effect)).toThrow(Memo.InvalidOptions)
    expect(() => Memo.keepWarm({ ...options, lead: -5 }, effect)).toThrow(Memo.InvalidOptions)
    expect(() => Memo.keepWarm({ ...options, lead: "soon" as never }, effect)).toThrow(Memo.InvalidOptions)
    expect(() => Memo.keepWarm({ ...options, lead: "2 seconds" }, effect)).not.toThrow()
  })

  it("cacheHeaders tell when the next value will be there", () => {
    const info: Memo.Info<number> = {
      value: 1,
      bucket: 0,
      computedAt: 100,
      stale: false,
      nextBoundary: W,
      cache: "hit",
      windowMs: W,
      serverNow: 5_000,
      nextValueAt: W + 1_200
    }
    expect(Memo.cacheHeaders(info)["x-next-value-at"]).toBe(String(W + 1_200))
  })
})
