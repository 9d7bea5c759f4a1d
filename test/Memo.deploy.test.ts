/**
 * A rolling deploy that changes a loader's schema: two versions of the loader serve the same key
 * at once, each with its own `Schema`. Neither can read the other's value; neither may take turns
 * recomputing it with the other. Each version's lookup runs at most once per window for the
 * whole fleet, and invalidations, tags and purges reach both.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Memo, Redis } from "lockstep"
import { createCache } from "lockstep/promise"
import * as Testing from "lockstep/testing"
import { inject } from "vitest"
import { z } from "zod"
import { freshTenant, redisCase } from "./support/stores.js"

/** A real epoch, window-aligned: versions take the store's clock into account. */
const T0 = 1_700_000_040_000

/** Runs of each version of the loader, by window of the store's clock. */
const makeRuns = () => {
  const runs = new Map<string, number>()
  const record = (version: string, windowMs: number) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const at = `${version}@${Math.floor(now / windowMs)}`
      runs.set(at, (runs.get(at) ?? 0) + 1)
    })
  const most = () => Math.max(0, ...runs.values())
  return { runs, record, most, show: () => JSON.stringify(Object.fromEntries(runs)) }
}

/**
 * The same key in the old release (a number) and the new one (an object with that number in it);
 * `value` is what the lookups compute, `durationMs` how long they take (virtual time).
 */
const versions = (
  key: string,
  windowMs: number,
  record: (version: string, windowMs: number) => Effect.Effect<void>,
  options: { readonly value?: () => number; readonly durationMs?: number; readonly tags?: ReadonlyArray<string> } = {}
) => {
  const value = options.value ?? (() => 42)
  const run = (version: string) =>
    Effect.zipRight(record(version, windowMs), options.durationMs === undefined ? Effect.void : Effect.sleep(options.durationMs))
  return {
    old: Memo.loader({
      key,
      window: windowMs,
      schema: Schema.Number,
      lookup: () => Effect.as(run("old"), value()),
      ...(options.tags === undefined ? {} : { tags: options.tags })
    }),
    next: Memo.loader({
      key,
      window: windowMs,
      schema: Schema.Struct({ total: Schema.Number, currency: Schema.String }),
      lookup: () => Effect.map(run("next"), () => ({ total: value(), currency: "EUR" })),
      ...(options.tags === undefined ? {} : { tags: options.tags })
    })
  }
}

describe("a rolling deploy that changes a loader's schema", () => {
  it.scoped("two versions on one in-memory store, 20 requests alternating: each version's lookup runs at most once per window", () =>
    Effect.gen(function*() {
      const W = 60_000
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2)
      const runs = makeRuns()
      const { next, old } = versions("page", W, runs.record)
      for (let i = 0; i < 20; i++) {
        const request: Effect.Effect<unknown> = i % 2 === 0 ? fleet.pods[0]!.run(old.get()) : fleet.pods[1]!.run(next.get())
        const fiber = yield* Effect.fork(request)
        yield* TestClock.adjust(W / 8)
        // each version answers its own shape
        expect(yield* Fiber.join(fiber)).toEqual(i % 2 === 0 ? 42 : { total: 42, currency: "EUR" })
      }
      expect(runs.most(), runs.show()).toBeLessThanOrEqual(1)
      // 20 requests over 2.5 windows: both versions ran in each of them
      expect(runs.runs.size).toBeGreaterThanOrEqual(6)
    }))

  it.scoped("two processes of each version, bursts at every boundary: one run per version per window for the fleet", () =>
    Effect.gen(function*() {
      const W = 60_000
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(4)
      const runs = makeRuns()
      const { next, old } = versions("page", W, runs.record, { durationMs: 1_000 })
      // pods 0 and 1 run the old release, 2 and 3 the new one
      const request = (pod: number): Effect.Effect<unknown> => fleet.pods[pod]!.run(pod < 2 ? old.get() : (next.get() as Effect.Effect<unknown, never, Memo.Memo>))
      for (let window = 0; window < 3; window++) {
        const burst = yield* Effect.fork(
          Effect.forEach([0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0], request, { concurrency: "unbounded" })
        )
        yield* TestClock.adjust(3_000)
        const answers = yield* Fiber.join(burst)
        answers.forEach((a, i) => expect(a).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0][i]! < 2 ? 42 : { total: 42, currency: "EUR" }))
        // later requests in the window: hits, no run
        for (let i = 0; i < 8; i++) {
          yield* request(i % 4)
          yield* TestClock.adjust(1_000)
        }
        yield* TestClock.adjust(W - 11_000)
      }
      expect(runs.most(), runs.show()).toBe(1)
      expect(runs.runs.size, runs.show()).toBe(6)
    }))

  it.scoped("an invalidation, a tag and a purge reach both versions; neither answers its old value as a hit", () =>
    Effect.gen(function*() {
      const W = 60_000
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2)
      let generation = 1
      const runs = makeRuns()
      const { next, old } = versions("page", W, runs.record, { value: () => generation, tags: ["pages"] })
      const both = Effect.gen(function*() {
        const a = yield* fleet.pods[0]!.run(old.getWithInfo())
        const b = yield* fleet.pods[1]!.run(next.getWithInfo())
        return [a, b] as const
      })
      const expectBoth = (n: number) =>
        Effect.gen(function*() {
          yield* both
          yield* TestClock.adjust(1_000)
          const [a, b] = yield* both
          expect(a).toMatchObject({ value: n, cache: "hit" })
          expect(b).toMatchObject({ value: { total: n }, cache: "hit" })
        })
      yield* expectBoth(1)
      const notOld = (n: number) =>
        Effect.gen(function*() {
          const [a, b] = yield* both
          expect(a.cache === "hit" && a.value === n, JSON.stringify(a)).toBe(false)
          expect(b.cache === "hit" && b.value.total === n, JSON.stringify(b)).toBe(false)
        })
      // a key's invalidation, from either version
      generation = 2
      yield* fleet.pods[1]!.run(next.invalidate())
      yield* notOld(1)
      yield* expectBoth(2)
      // a tag's
      generation = 3
      yield* fleet.pods[0]!.run(Memo.invalidateTag("pages"))
      yield* notOld(2)
      yield* expectBoth(3)
      // a purge: both versions' values go
      generation = 4
      yield* fleet.pods[0]!.run(old.purge())
      expect(Option.isNone(yield* fleet.pods[1]!.run(next.peek()))).toBe(true)
      yield* notOld(3)
      yield* expectBoth(4)
      // one run per version for each of the four values
      expect(Object.fromEntries(runs.runs)).toEqual({ [`old@${T0 / W}`]: 4, [`next@${T0 / W}`]: 4 })
    }))

  it.scoped("a record written without a schema identity (an earlier release) is read by the version whose schema decodes it", () =>
    Effect.gen(function*() {
      const W = 60_000
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(1)
      const runs = makeRuns()
      const { old } = versions("page", W, runs.record)
      const claim = yield* fleet.store.claim("page", { windowMs: W, leaseMs: 10_000, token: "earlier", force: false, retainMs: 0 })
      if (claim._tag !== "Acquired") return expect.unreachable(claim._tag)
      yield* fleet.store.commit("page", { data: "7", bucket: claim.bucket, fence: claim.fence, windowMs: W, computedAt: T0 }, "earlier", { retainMs: 0 })
      expect(yield* fleet.pods[0]!.run(old.getWithInfo())).toMatchObject({ value: 7, cache: "hit" })
      expect(runs.runs.size).toBe(0)
    }))

  it.scopedLive("two versions on a real redis-server, two processes each: each version's lookup runs at most once per window", () =>
    Effect.gen(function*() {
      const W = 1_000
      const tenant = freshTenant("deploy")
      const store = redisCase().layer(tenant)
      // four processes' runtimes, two per release, on one server
      const runtimes = yield* Effect.forEach([0, 1, 2, 3], () => Layer.build(Memo.layer.pipe(Layer.provide(store))))
      const runs = makeRuns()
      const { next, old } = versions("page", W, runs.record, { durationMs: 50 })
      const request = (pod: number): Effect.Effect<unknown> =>
        Effect.provide(pod < 2 ? old.get() : (next.get() as Effect.Effect<unknown, never, Memo.Memo>), runtimes[pod]!)
      // start just after a boundary, so that 20 requests 150 ms apart span three windows
      yield* Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(W - (now % W) + 20))
      for (let i = 0; i < 20; i++) {
        // a pod of each version at once, then the other two
        const pods = i % 2 === 0 ? [0, 2] : [1, 3]
        const answers = yield* Effect.forEach(pods, request, { concurrency: "unbounded" })
        expect(answers).toEqual([42, { total: 42, currency: "EUR" }])
        yield* Effect.sleep(150)
      }
      expect(runs.most(), runs.show()).toBeLessThanOrEqual(1)
      expect(runs.runs.size).toBeGreaterThanOrEqual(6)
      const raw = yield* Layer.build(store)
      expect(Option.isSome((yield* Effect.provide(Effect.flatMap(Redis.Redis, (s) => s.get("page")), raw)).stored)).toBe(true)
    }), 20_000)

  it("the Promise facade with a Standard Schema: schemaVersion tells the versions apart, one run per version per window", async () => {
    const W = 1_000
    const tenant = freshTenant("deploy-promise")
    const redis = `redis://127.0.0.1:${inject("redisPort")}`
    const runs = new Map<string, number>()
    const record = (version: string) => {
      const at = `${version}@${Math.floor(Date.now() / W)}`
      runs.set(at, (runs.get(at) ?? 0) + 1)
    }
    const before = createCache({ redis, tenant })
    const after = createCache({ redis, tenant })
    try {
      const old = before.loader({
        key: "page",
        window: W,
        schema: z.number(),
        schemaVersion: "1",
        lookup: () => (record("old"), 42)
      })
      const next = after.loader({
        key: "page",
        window: W,
        schema: z.object({ total: z.number() }),
        schemaVersion: "2",
        lookup: () => (record("next"), { total: 42 })
      })
      await new Promise((resolve) => setTimeout(resolve, W - (Date.now() % W) + 20))
      for (let i = 0; i < 20; i++) {
        expect(i % 2 === 0 ? await old.get() : await next.get()).toEqual(i % 2 === 0 ? 42 : { total: 42 })
        await new Promise((resolve) => setTimeout(resolve, 150))
      }
      expect(Math.max(...runs.values()), JSON.stringify(Object.fromEntries(runs))).toBeLessThanOrEqual(1)
      expect(runs.size).toBeGreaterThanOrEqual(6)
    } finally {
      await Promise.all([before.close(), after.close()])
    }
  }, 20_000)

  it.effect("a value's identity follows the encoded shape of its schema, and schemaVersion; a bad schemaVersion is InvalidOptions", () =>
    Effect.gen(function*() {
      const identity = (key: string, schema: Schema.Schema<any, any>, value: unknown, schemaVersion?: string) =>
        Effect.gen(function*() {
          const loader = Memo.loader({
            key,
            window: 60_000,
            schema,
            lookup: () => Effect.succeed(value),
            ...(schemaVersion === undefined ? {} : { schemaVersion })
          })
          yield* loader.get()
          const read = yield* Effect.flatMap(Memo.Memo, (memo) => memo.store.get(key))
          return Option.getOrThrow(read.stored).schema
        })
      const number = yield* identity("a", Schema.Number, 1)
      expect(number).toMatch(/^[\w-]{16}$/)
      // a refinement or a transformation to the same stored shape: the same identity
      expect(yield* identity("b", Schema.Number.pipe(Schema.positive()), 1)).toBe(number)
      expect(yield* identity("c", Schema.NumberFromString, 1)).toBe(yield* identity("d", Schema.String, "1"))
      // another stored shape, or another schemaVersion: another identity
      expect(yield* identity("e", Schema.String, "1")).not.toBe(number)
      expect(yield* identity("f", Schema.Struct({ n: Schema.Number }), { n: 1 })).not.toBe(
        yield* identity("g", Schema.Struct({ m: Schema.Number }), { m: 1 })
      )
      expect(yield* identity("h", Schema.Number, 1, "2")).not.toBe(number)
      for (const schemaVersion of ["", "x".repeat(101), 2]) {
        expect(() =>
          Memo.loader({ key: "k", window: 60_000, schema: Schema.Number, lookup: () => Effect.succeed(1), schemaVersion: schemaVersion as string })
        ).toThrow(Memo.InvalidOptions)
      }
    }).pipe(Effect.provide(Testing.layer)))
})
