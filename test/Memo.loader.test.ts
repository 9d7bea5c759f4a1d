/**
 * Keyed loaders, under `TestClock` on the in-memory store: one definition for a family of keys,
 * checks at definition, the lookup's own scope, uninterruptible registration of a key's run,
 * injective keys, bounded per-key state, and `keepWarm` under skew and over long windows.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Data, Effect, Exit, Fiber, FiberId, Option, RuntimeFlags, RuntimeFlagsPatch, Schema, Scope, Supervisor, TestClock } from "effect"
import { Memo, Window } from "../src/index.js"
import type { Engine } from "../src/internal/memo/runtime.js"
import * as Testing from "../src/Testing.js"

const windowMs = 10_000

class NotFound extends Data.TaggedError("NotFound")<{ readonly id: number }> {}

const Stats = Schema.Struct({ id: Schema.Number, run: Schema.Number })

/** A keyed page: each id's value records which run of its lookup produced it. */
const makeItems = (options: { readonly duration?: number } = {}) =>
  Effect.map(
    Testing.producer((run) => Effect.succeed(run), { duration: options.duration ?? 100 }),
    (producer) => ({
      producer,
      items: Memo.loader({
        key: (id: number) => `market:item:${id}`,
        window: windowMs,
        schema: Stats,
        lookup: (id: number) =>
          id < 0 ? Effect.fail(new NotFound({ id })) : Effect.map(producer.effect, (run) => ({ id, run }))
      })
    })
  )

const engineOf = Effect.map(Memo.Memo, (runtime) => runtime as unknown as Engine)

/**
 * Interrupts one fiber just before its `at`-th step: a supervisor sees every step of the fibers
 * it supervises (with op supervision on), so an interruption lands exactly there.
 */
const interruptAt = (at: number) => {
  let target: Fiber.RuntimeFiber<unknown, unknown> | undefined
  let steps = 0
  const supervisor = {
    [Supervisor.SupervisorTypeId]: { _T: (_: never) => _ },
    value: Effect.void,
    onStart: () => {},
    onEnd: () => {},
    onEffect: (fiber: Fiber.RuntimeFiber<unknown, unknown>) => {
      if (fiber === target && ++steps === at) fiber.unsafeInterruptAsFork(FiberId.none)
    },
    onSuspend: () => {},
    onResume: () => {},
    map: () => supervisor,
    zip: () => supervisor,
    onRun: (execution: () => unknown) => execution()
  } as unknown as Supervisor.Supervisor<void>
  return {
    supervisor,
    target: (fiber: Fiber.RuntimeFiber<any, any>) => {
      target = fiber
    },
    steps: () => steps
  }
}

describe("Memo.loader", () => {
  it.effect("one definition serves a family of keys, each cached on its own", () =>
    Effect.gen(function*() {
      const { items, producer } = yield* makeItems()
      const first = yield* Effect.fork(Effect.all([items.get(1), items.get(2), items.get(1)], { concurrency: "unbounded" }))
      yield* TestClock.adjust(100)
      expect(yield* Fiber.join(first)).toEqual([{ id: 1, run: 1 }, { id: 2, run: 2 }, { id: 1, run: 1 }].sort(() => 0).map((x) => x))
      expect(yield* producer.runs).toBe(2)
      const info = yield* Testing.instantly(items.getWithInfo(2))
      expect(info).toMatchObject({ value: { id: 2 }, cache: "hit", stale: false, windowMs, bucket: 0, serverNow: 100 })
      expect(items.keyOf(7)).toBe("market:item:7")
      // the typed error of the lookup, and only that: no InvalidOptions in a request
      expectTypeOf(items.get).returns.toEqualTypeOf<Effect.Effect<typeof Stats.Type, NotFound, Memo.Memo>>()
      const timed = Memo.loader({ key: "t", window: "1 minute", schema: Schema.Number, lookup: () => Effect.succeed(1), timeout: "1 second" })
      expectTypeOf(timed.get).returns.toEqualTypeOf<Effect.Effect<number, Memo.WaitTimeout, Memo.Memo>>()
      expect(yield* Effect.flip(Effect.fork(items.get(-1)).pipe(Effect.flatMap(Fiber.join)))).toEqual(new NotFound({ id: -1 }))
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("peek answers what L1 or the store holds, and never runs the lookup", () =>
    Effect.gen(function*() {
      const { items, producer } = yield* makeItems()
      expect(yield* items.peek(1)).toEqual(Option.none())
      const got = yield* Effect.fork(items.get(1))
      yield* TestClock.adjust(100)
      yield* Fiber.join(got)
      expect(Option.getOrThrow(yield* items.peek(1))).toMatchObject({ value: { id: 1, run: 1 }, cache: "hit" })
      yield* TestClock.adjust(windowMs)
      expect(Option.getOrThrow(yield* items.peek(1))).toMatchObject({ value: { id: 1, run: 1 }, cache: "stale", stale: true })
      expect(yield* producer.runs).toBe(1)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cacheHeaders: fresh until the next boundary, stale with max-age 0", () =>
    Effect.gen(function*() {
      const { items } = yield* makeItems()
      const got = yield* Effect.fork(items.get(1))
      yield* TestClock.adjust(2_500)
      yield* Fiber.join(got)
      expect(Memo.cacheHeaders(yield* items.getWithInfo(1))).toEqual({
        "cache-control": "public, max-age=9, stale-while-revalidate=10",
        "age": "2",
        "x-cache": "hit",
        "x-server-now": "2500",
        "x-next-boundary": "10000",
        "x-computed-at": "100",
        // not computed ahead: the next value comes the lookup's run time (100 ms) after the boundary
        "x-next-value-at": "10100"
      })
      yield* TestClock.adjust(windowMs)
      expect(Memo.cacheHeaders(yield* items.getWithInfo(1))).toMatchObject({ "cache-control": "public, max-age=0, stale-while-revalidate=10", "x-cache": "stale" })
    }).pipe(Effect.provide(Testing.layer)))

  it("static options are checked where the loader is defined", () => {
    const base = { key: (id: number) => `k:${id}`, window: "1 minute" as const, schema: Schema.Number, lookup: () => Effect.succeed(1) }
    for (const bad of [{ window: 0 }, { window: "banana" }, { timeout: -1 }, { retain: "1 second" }, { lookup: 5 }, { key: 9 }]) {
      expect(() => Memo.loader({ ...base, ...bad } as never), JSON.stringify(bad)).toThrow(Memo.InvalidOptions)
    }
    const loader = Memo.loader({ ...base, key: (id: number) => (id === 0 ? (undefined as never) : `k:${id}`) })
    expect(() => loader.keyOf(0)).toThrow(/not a string/)
    expect(() => Memo.keepWarm(loader, 1, { lag: "banana" as never })).toThrow(Memo.InvalidOptions)
    expect(() => Memo.keepWarm(loader, 1, { lag: "-10 millis" })).toThrow(Memo.InvalidOptions)
  })

  it.effect("Memo.memo built on every request: each call's own options, a bad one refused every time, checks kept per schema and durations", () =>
    Effect.gen(function*() {
      const Schema1 = Schema.Struct({ n: Schema.Number })
      // windows as numbers and as text, more of them than the checks kept per schema
      const windows = [...Array.from({ length: 80 }, (_, i) => 1_000 * (i + 1)), "3 seconds", "3000 millis", 3_000] as const
      for (let round = 0; round < 2; round++) {
        for (const [i, window] of windows.entries()) {
          const info = yield* Memo.memoWithInfo({ key: `per-call:${i}`, window, schema: Schema1 }, Effect.succeed({ n: i }))
          expect(info.value).toEqual({ n: i })
          expect(info.windowMs).toBe(typeof window === "number" ? window : 3_000)
        }
        // a bad option throws on every call, after good ones with the same schema and before them
        for (const bad of [{ window: "soon" }, { window: 1_000, timeout: -1 }, { window: 1_000, retain: 10 }]) {
          expect(() => Memo.memo({ key: "bad", schema: Schema1, ...bad } as never, Effect.succeed({ n: 0 })), JSON.stringify(bad)).toThrow(Memo.InvalidOptions)
        }
        expect(() => Memo.memo({ key: "tags", window: 1_000, schema: Schema1, tags: [1] as never }, Effect.succeed({ n: 0 }))).toThrow(Memo.InvalidOptions)
      }
      // the same key, another timeout: the request waits under its own
      const slow = Effect.as(Effect.sleep(5_000), { n: 1 })
      const waited = yield* Effect.fork(Effect.exit(Memo.memo({ key: "timed", window: 60_000, schema: Schema1, timeout: 1_000 }, slow)))
      yield* TestClock.adjust(1_000)
      const exit = yield* Fiber.join(waited)
      expect(Exit.isFailure(exit) && String(exit.cause)).toMatch(/WaitTimeout/)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("the lookup gets a scope of its own: interrupting the first caller, or closing its scope, never touches the run", () =>
    Effect.gen(function*() {
      const resources = { opened: 0, closed: 0 }
      const lookup = () =>
        Effect.gen(function*() {
          const resource = yield* Effect.acquireRelease(
            Effect.sync(() => ({ id: ++resources.opened, open: true })),
            (r) => Effect.sync(() => {
              r.open = false
              resources.closed++
            })
          )
          yield* Effect.sleep(1_000)
          // a resource closed under the run would be noticed here
          if (!resource.open) return yield* Effect.dieMessage("the lookup's resource was closed while it ran")
          return resource.id
        })
      const page = Memo.loader({ key: "scoped", window: windowMs, schema: Schema.Number, lookup })
      expectTypeOf(page.get).returns.toEqualTypeOf<Effect.Effect<number, never, Memo.Memo>>()

      // cold: the first caller runs in a scope of its own and is interrupted mid-run
      const firstScope = yield* Scope.make()
      const first = yield* Effect.fork(Effect.provideService(page.get(), Scope.Scope, firstScope))
      const second = yield* Effect.fork(page.get())
      yield* TestClock.adjust(500)
      yield* Fiber.interrupt(first)
      yield* Scope.close(firstScope, Exit.void)
      yield* TestClock.adjust(500)
      expect(yield* Fiber.join(second)).toBe(1)
      expect(resources).toEqual({ opened: 1, closed: 1 }) // closed when the run ended

      // stale: the refresh runs after the request (and its scope) are long gone
      for (let w = 1; w <= 3; w++) {
        yield* TestClock.adjust(windowMs)
        yield* Effect.scoped(Testing.instantly(page.get()))
        yield* TestClock.adjust(1_000)
        expect(yield* Testing.instantly(page.getWithInfo()), `window ${w}`).toMatchObject({ value: w + 1, bucket: w, stale: false })
      }
      expect(resources).toEqual({ opened: 4, closed: 4 })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("the lookup runs under its lockstep.produce span, not under the span of the caller that started it", () =>
    Effect.gen(function*() {
      // the span a lookup sees: its spans (a query's, say) are that span's children
      const seen: Array<{ readonly name: string; readonly mode: unknown }> = []
      const lookup = () =>
        Effect.gen(function*() {
          const span = yield* Effect.option(Effect.currentSpan)
          seen.push(Option.match(span, {
            onNone: () => ({ name: "none", mode: undefined }),
            onSome: (s) => ({ name: s.name, mode: s.attributes.get("lockstep.mode") })
          }))
          yield* Effect.sleep(100)
          return seen.length
        })
      const page = Memo.loader({ key: "traced", window: windowMs, schema: Schema.Number, lookup })
      // a cold request inside a span of the application's (an HTTP request's)
      expect(yield* page.get().pipe(Effect.withSpan("app.request"), Effect.fork, Effect.tap(() => TestClock.adjust(100)), Effect.flatMap(Fiber.join))).toBe(1)
      // keepWarm's run after the boundary, under keepWarm's own span
      yield* Memo.keepWarm(page, undefined, { lead: false })
      yield* TestClock.adjust(windowMs + 200)
      expect(seen.length).toBeGreaterThanOrEqual(2)
      // before the fix the lookup saw the caller's span (`app.request`, `lockstep.keepWarm`)
      expect(seen).toEqual(seen.map(() => ({ name: "lockstep.produce", mode: "leader" })))
    }).pipe(Effect.scoped, Effect.provide(Testing.layer)))

  it.effect("no interruption of a cold caller, at any step, can leave its key without a worker", () =>
    Effect.gen(function*() {
      const stuck: Array<number> = []
      let reached = 0
      for (let step = 1; step <= 200; step++) {
        const outcome = yield* Effect.gen(function*() {
          const page = Memo.loader({ key: "k", window: windowMs, schema: Schema.Number, lookup: () => Effect.as(Effect.sleep(10), 1) })
          const probe = interruptAt(step)
          const caller = yield* Effect.fork(page.get().pipe(
            Effect.supervised(probe.supervisor),
            Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
          ))
          probe.target(caller)
          yield* Effect.yieldNow()
          const hit = probe.steps() >= step
          yield* Fiber.interrupt(caller)
          // whatever state the key was left in, the next caller gets its value
          const next = yield* Effect.fork(page.get())
          yield* TestClock.adjust(10)
          yield* TestClock.adjust(10)
          const polled = yield* Fiber.poll(next)
          if (Option.isNone(polled)) yield* Fiber.interrupt(next)
          return { ok: Option.isSome(polled) && Exit.isSuccess(polled.value), hit }
        }).pipe(Effect.provide(Testing.layer))
        if (!outcome.ok) stuck.push(step)
        if (outcome.hit) reached = step
      }
      expect(stuck).toEqual([])
      expect(reached).toBeGreaterThan(15) // the interruptions did land all along the caller's path
    }))

  it.effect("keys that differ only in lone surrogates are different keys", () =>
    Effect.gen(function*() {
      const page = Memo.loader({ key: (title: string) => title, window: windowMs, schema: Schema.String, lookup: (title: string) => Effect.succeed(title) })
      for (const title of ["report:\uD83D", "report:\uD83C", "report:\uFFFD", "report:"]) {
        expect(yield* page.get(title)).toBe(title)
      }
      for (const title of ["report:\uD83D", "report:\uD83C", "report:\uFFFD", "report:"]) {
        expect(yield* Testing.instantly(page.get(title))).toBe(title)
      }
    }).pipe(Effect.provide(Testing.layer)))

  const capacity = 10
  it.effect("per-key state stays bounded by l1Capacity, whatever keys fail", () =>
    Effect.gen(function*() {
      const engine = yield* engineOf
      const failing = Memo.loader({
        key: (n: number) => `failing:${n}`,
        window: windowMs,
        schema: Schema.Number,
        lookup: (n: number) => n < 0 ? Effect.succeed(0) : Effect.fail(new NotFound({ id: n }))
      })
      // 15 times the capacity in distinct keys whose cold lookup fails (every key's back-off is
      // one sleeper that TestClock wakes on its own, so the scale is what costs real time)
      for (let n = 0; n < 15 * capacity; n += 5 * capacity) {
        yield* Effect.forEach(Array.from({ length: 5 * capacity }, (_, i) => n + i), (i) => Effect.either(failing.get(i)), { concurrency: "unbounded" })
      }
      // and 5 times the capacity in keys that hold a value whose refresh then keeps failing (back-off per key)
      const flaky = Memo.loader({
        key: (n: number) => `flaky:${n}`,
        window: windowMs,
        schema: Schema.Number,
        lookup: (n: number) => Effect.flatMap(Effect.clock, (c) => c.unsafeCurrentTimeMillis() < windowMs ? Effect.succeed(n) : Effect.fail(new NotFound({ id: n })))
      })
      yield* Effect.forEach(Array.from({ length: 5 * capacity }, (_, i) => i), (i) => flaky.get(i), { concurrency: capacity })
      yield* TestClock.adjust(windowMs)
      yield* Effect.forEach(Array.from({ length: 5 * capacity }, (_, i) => i), (i) => flaky.get(i), { concurrency: capacity })
      yield* TestClock.adjust(100)
      const sizes = yield* engine.sizes
      expect(sizes.l1).toBeLessThanOrEqual(capacity)
      expect(sizes.heard).toBeLessThanOrEqual(capacity)
      expect(sizes).toMatchObject({ waiting: 0, inflight: 0, writeBacks: 0 })
    }).pipe(Effect.provide(Testing.layerWith({ l1Capacity: capacity }))))
})

describe("Memo.keepWarm", () => {
  for (const skewMs of [1, 120, 249, -1, -120, -249]) {
    it.scoped(`warms every window with the pod's clock ${skewMs} ms off the store's (early runs off)`, () =>
      Effect.gen(function*() {
        const fleet = yield* Testing.fleet(1)
        const pod = fleet.pods[0]!
        yield* pod.setClockSkew(skewMs)
        const { items, producer } = yield* makeItems({ duration: 100 })
        yield* pod.run(Memo.keepWarm(items, 1, { lag: "50 millis", lead: false }))
        yield* TestClock.adjust(200)
        for (let w = 1; w <= 5; w++) {
          // on the store's clock: the boundary, the lag, the run, and a little
          yield* TestClock.adjust(windowMs)
          expect(yield* Testing.instantly(pod.run(items.getWithInfo(1))), `window ${w}`).toMatchObject({
            value: { id: 1, run: w + 1 },
            bucket: w,
            cache: "hit"
          })
        }
        const starts = (yield* producer.stats).startedAt.map((t) => t - skewMs)
        expect(starts.map((t) => Window.bucketOf(t, windowMs))).toEqual([0, 1, 2, 3, 4, 5])
      }))

    it.scoped(`computes each next window's value before its boundary with the pod's clock ${skewMs} ms off the store's`, () =>
      Effect.gen(function*() {
        const fleet = yield* Testing.fleet(1)
        const pod = fleet.pods[0]!
        yield* pod.setClockSkew(skewMs)
        const { items, producer } = yield* makeItems({ duration: 100 })
        yield* pod.run(Memo.keepWarm(items, 1, { lag: "50 millis" }))
        yield* TestClock.adjust(200)
        for (let w = 1; w <= 5; w++) {
          // to a millisecond before the store's boundary, and one past it: the new value, as a hit
          yield* TestClock.adjust(w === 1 ? windowMs - 201 : windowMs - 2)
          // the current value until then (a pod whose clock is ahead, within the skew it does not
          // correct, calls it stale a little early, as without early runs)
          expect(yield* Testing.instantly(pod.run(items.getWithInfo(1))), `before window ${w}`).toMatchObject({
            value: { id: 1, run: w },
            bucket: w - 1,
            ...(skewMs < 0 ? { cache: "hit" } : {})
          })
          yield* TestClock.adjust(2)
          expect(yield* Testing.instantly(pod.run(items.getWithInfo(1))), `window ${w}`).toMatchObject({
            value: { id: 1, run: w + 1 },
            bucket: w,
            cache: "hit"
          })
        }
        // the first run learns the lead (100 ms runs: 350 ms); each later one starts within it
        const starts = (yield* producer.stats).startedAt.map((t) => t - skewMs)
        expect(starts.map((t) => Window.bucketOf(t, windowMs))).toEqual([0, 0, 1, 2, 3, 4])
        for (const t of starts.slice(1)) expect(windowMs - (t % windowMs)).toBeLessThanOrEqual(350)
      }))
  }

  it.effect("keeps warming windows longer than a timer can sleep (30 days)", () =>
    Effect.gen(function*() {
      const producer = yield* Testing.producer((run) => Effect.succeed(run))
      const monthly = Memo.loader({ key: "monthly", window: "30 days", schema: Schema.Number, lookup: () => producer.effect })
      yield* Memo.keepWarm(monthly, undefined, { lag: "1 second" })
      yield* TestClock.adjust("1 second")
      for (let m = 1; m <= 3; m++) yield* TestClock.adjust("30 days")
      expect(yield* producer.runs).toBe(4)
      expect(yield* Testing.instantly(monthly.getWithInfo())).toMatchObject({ value: 4, cache: "hit", bucket: 3 })
    }).pipe(Effect.provide(Testing.layer), Effect.scoped))
})

// the lookup's context, checked at the type level: a lookup needing a Scope does not make the
// request need one
const _scopedLookup = Memo.loader({
  key: "x",
  window: "1 minute",
  schema: Schema.Number,
  lookup: () => Effect.as(Effect.addFinalizer(() => Effect.void), 1)
})
expectTypeOf(_scopedLookup.get).returns.toEqualTypeOf<Effect.Effect<number, never, Memo.Memo>>()
