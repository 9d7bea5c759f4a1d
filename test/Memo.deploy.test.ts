/**
 * A rolling deploy that changes a loader's schema: two versions of the loader serve the same key
 * at once, each with its own `Schema`. Neither can read the other's value; neither may take turns
 * recomputing it with the other. Each version's lookup runs at most once per window.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Memo, Redis } from "lockstep"
import * as Testing from "lockstep/testing"
import { freshTenant, redisCase } from "./support/stores.js"

/** A real epoch, window-aligned: versions take the store's clock into account. */
const T0 = 1_700_000_040_000

/** Runs of each version of the loader, by window. */
const makeRuns = () => {
  const runs = new Map<string, number>()
  const record = (version: string, windowMs: number) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const at = `${version}@${Math.floor(now / windowMs)}`
      runs.set(at, (runs.get(at) ?? 0) + 1)
    })
  return { runs, record }
}

/** The same key in the old release (a number) and the new one (an object with that number in it). */
const versions = (key: string, windowMs: number, record: (version: string, windowMs: number) => Effect.Effect<void>) => ({
  old: Memo.loader({
    key,
    window: windowMs,
    schema: Schema.Number,
    lookup: () => Effect.as(record("old", windowMs), 42)
  }),
  next: Memo.loader({
    key,
    window: windowMs,
    schema: Schema.Struct({ total: Schema.Number, currency: Schema.String }),
    lookup: () => Effect.as(record("next", windowMs), { total: 42, currency: "EUR" })
  })
})

describe("a rolling deploy that changes a loader's schema", () => {
  it.scoped("two versions on one in-memory store: each version's lookup runs at most once per window", () =>
    Effect.gen(function*() {
      const W = 60_000
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2)
      const { record, runs } = makeRuns()
      const { next, old } = versions("page", W, record)
      for (let i = 0; i < 20; i++) {
        const request: Effect.Effect<unknown> = i % 2 === 0 ? fleet.pods[0]!.run(old.get()) : fleet.pods[1]!.run(next.get())
        const fiber = yield* Effect.fork(request)
        yield* TestClock.adjust(W / 8)
        const value = yield* Fiber.join(fiber)
        // each version answers its own shape
        expect(value).toEqual(i % 2 === 0 ? 42 : { total: 42, currency: "EUR" })
      }
      const counts = [...runs.values()]
      expect(Math.max(...counts), JSON.stringify(Object.fromEntries(runs))).toBeLessThanOrEqual(1)
      // 20 requests over 2.5 windows: both versions ran in each of them
      expect(counts.length).toBeGreaterThanOrEqual(4)
    }))

  it.scoped("an invalidation reaches both versions: each runs once more, and neither answers its old value as a hit", () =>
    Effect.gen(function*() {
      const W = 60_000
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2)
      let generation = 1
      const { record, runs } = makeRuns()
      const old = Memo.loader({
        key: "page",
        window: W,
        schema: Schema.Number,
        lookup: () => Effect.as(record("old", W), generation)
      })
      const next = Memo.loader({
        key: "page",
        window: W,
        schema: Schema.Struct({ n: Schema.Number }),
        lookup: () => Effect.as(record("next", W), { n: generation })
      })
      const both = Effect.gen(function*() {
        const a = yield* fleet.pods[0]!.run(old.getWithInfo())
        const b = yield* fleet.pods[1]!.run(next.getWithInfo())
        return [a, b] as const
      })
      yield* both
      yield* both
      generation = 2
      yield* fleet.pods[1]!.run(next.invalidate())
      const [a, b] = yield* both
      expect(a.cache === "hit" && a.value === 1).toBe(false)
      expect(b.cache === "hit" && b.value.n === 1).toBe(false)
      yield* TestClock.adjust(1_000)
      const [a2, b2] = yield* both
      expect(a2).toMatchObject({ value: 2, cache: "hit" })
      expect(b2).toMatchObject({ value: { n: 2 }, cache: "hit" })
      // one run per version before the invalidation, one after
      expect(Object.fromEntries(runs)).toEqual({ [`old@${T0 / W}`]: 2, [`next@${T0 / W}`]: 2 })
    }))

  it.scopedLive("two versions on a real redis-server: each version's lookup runs at most once per window", () =>
    Effect.gen(function*() {
      const W = 1_000
      const tenant = freshTenant("deploy")
      const store = redisCase().layer(tenant)
      // two processes' runtimes, one per release, on one server
      const oldRuntime = yield* Layer.build(Memo.layer.pipe(Layer.provide(store)))
      const nextRuntime = yield* Layer.build(Memo.layer.pipe(Layer.provide(store)))
      const { record, runs } = makeRuns()
      const { next, old } = versions("page", W, record)
      // start just after a boundary, so that 20 requests 150 ms apart span three windows
      yield* Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(W - (now % W) + 20))
      for (let i = 0; i < 20; i++) {
        const value: unknown = yield* (i % 2 === 0 ? Effect.provide(old.get(), oldRuntime) : Effect.provide(next.get(), nextRuntime))
        expect(value).toEqual(i % 2 === 0 ? 42 : { total: 42, currency: "EUR" })
        yield* Effect.sleep(150)
      }
      const counts = [...runs.values()]
      expect(Math.max(...counts), JSON.stringify(Object.fromEntries(runs))).toBeLessThanOrEqual(1)
      expect(counts.length).toBeGreaterThanOrEqual(4)
      const raw = yield* Layer.build(store)
      expect(Option.isSome((yield* Effect.provide(Effect.flatMap(Redis.Redis, (s) => s.get("page")), raw)).stored)).toBe(true)
    }), 20_000)
})
