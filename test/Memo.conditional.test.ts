/**
 * Conditional lookups and purges, under `TestClock` on `Testing.fleet`: a loader's `name` on its
 * metrics, the lookup's `previous` (from L1 or decoded from the store), `Memo.unchanged` (a new
 * version without the payload), and `purge` / `purgeTag` (gone everywhere, the next request
 * cold, a running lookup fenced).
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Option, Schema, TestClock } from "effect"
import { Memo } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { counter } from "./support/metrics.js"

const W = 10_000

const Stats = Schema.Struct({ id: Schema.Number, run: Schema.Number })

/**
 * Items whose lookup records what it was given as `previous`, and answers `unchanged` while
 * `same` says so.
 */
const makeItems = (options: { readonly same?: () => boolean; readonly duration?: number } = {}) =>
  Effect.map(Testing.producer((run) => Effect.succeed(run), { duration: options.duration ?? 100 }), (producer) => {
    const seen: Array<Option.Option<Memo.Info<typeof Stats.Type>>> = []
    const items = Memo.loader({
      key: (id: number) => `item:${id}`,
      window: W,
      schema: Stats,
      name: "item",
      tags: ["items"],
      lookup: (id: number, previous) =>
        Effect.gen(function*() {
          seen.push(previous)
          const run = yield* producer.effect
          if (options.same?.() === true) return Memo.unchanged
          return { id, run }
        })
    })
    return { items, producer, seen }
  })

describe("a loader's name", () => {
  it.effect("labels its metrics with loader, and an unnamed loader's stay unlabelled", () =>
    Effect.gen(function*() {
      const { items } = yield* makeItems()
      const plain = Memo.loader({ key: "plain", window: W, schema: Schema.Number, lookup: () => Effect.succeed(1) })
      yield* Effect.fork(Effect.all([items.get(1), plain.get()]))
      yield* TestClock.adjust(100)
      const before = {
        named: yield* counter("lockstep_requests_total", { result: "l1", loader: "item" }),
        all: yield* counter("lockstep_requests_total", { result: "l1" }),
        runs: yield* counter("lockstep_producer_runs_total", { loader: "item" })
      }
      yield* items.get(1)
      yield* items.get(1)
      yield* plain.get()
      expect((yield* counter("lockstep_requests_total", { result: "l1", loader: "item" })) - before.named).toBe(2)
      expect((yield* counter("lockstep_requests_total", { result: "l1" })) - before.all).toBe(3)
      expect(before.runs).toBeGreaterThanOrEqual(1)
      // the label set is the loaders' names, never keys
      const labels = (yield* Metric.snapshot).flatMap((p) => p.metricKey.tags.filter((t) => t.key === "loader").map((t) => t.value))
      expect(new Set(labels)).not.toContain("item:1")
    }).pipe(Effect.provide(Testing.layer)))

  it("a name that is not 1 to 100 characters is InvalidOptions where the loader is defined", () => {
    const base = { key: "k", window: "1 minute" as const, schema: Schema.Number, lookup: () => Effect.succeed(1) }
    for (const name of ["", "x".repeat(101), 7]) {
      expect(() => Memo.loader({ ...base, name } as never)).toThrow(Memo.InvalidOptions)
    }
  })
})

describe("the lookup's previous value and Memo.unchanged", () => {
  it.scoped("previous is None on a cold key, then the value it replaces, decoded from the store on a pod whose L1 is empty", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      const { items, seen } = yield* makeItems()
      yield* Effect.fork(a.run(items.get(1)))
      yield* TestClock.adjust(100)
      expect(seen).toEqual([Option.none()])
      yield* TestClock.adjust(W)
      // b never held the key: its run gets the value a committed, read from the store
      const next = yield* Effect.fork(b.run(items.getWithInfo(1)))
      yield* TestClock.adjust(100)
      expect(yield* Fiber.join(next)).toMatchObject({ value: { id: 1, run: 1 }, cache: "stale" })
      expect(seen).toHaveLength(2)
      expect(Option.getOrThrow(seen[1]!)).toMatchObject({ value: { id: 1, run: 1 }, bucket: 0, computedAt: 100, stale: true })
      expect(yield* Testing.instantly(b.run(items.get(1)))).toEqual({ id: 1, run: 2 })
    }))

  it.scoped("unchanged commits the previous value as this window's under a new version, and the fleet has it fresh", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      let same = false
      const { items, producer } = yield* makeItems({ same: () => same })
      yield* Effect.fork(Effect.all([a.run(items.get(1)), b.run(items.get(1))], { concurrency: "unbounded" }))
      yield* TestClock.adjust(100)
      const first = Option.getOrThrow((yield* fleet.store.get("item:1")).stored)
      same = true
      yield* TestClock.adjust(W)
      yield* Effect.fork(Effect.all([a.run(items.get(1)), b.run(items.get(1))], { concurrency: "unbounded" }))
      yield* TestClock.adjust(100)
      expect(yield* producer.runs).toBe(2) // one run per window for the fleet, unchanged or not
      const second = Option.getOrThrow((yield* fleet.store.get("item:1")).stored)
      expect(second).toMatchObject({ data: first.data, bucket: 1, computedAt: W + 200 })
      expect(second.fence).toBeGreaterThan(first.fence)
      // both pods answer the value as this window's, fresh, without waiting
      for (const pod of fleet.pods) {
        expect(yield* Testing.instantly(pod.run(items.getWithInfo(1)))).toMatchObject({
          value: { id: 1, run: 1 },
          bucket: 1,
          computedAt: W + 200,
          cache: "hit",
          stale: false
        })
      }
    }))

  it.scoped("unchanged over a store that lost the record sends the value whole", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(1)
      const [a] = fleet.pods as [Testing.Pod]
      let same = false
      const { items, producer } = yield* makeItems({ same: () => same })
      yield* Effect.fork(a.run(items.get(1)))
      yield* TestClock.adjust(100)
      const first = Option.getOrThrow((yield* fleet.store.get("item:1")).stored)
      same = true
      yield* TestClock.adjust(W)
      yield* fleet.lose()
      // the pod still holds the value: its run answers unchanged, and the store has no record
      expect(yield* Testing.instantly(a.run(items.get(1)))).toEqual({ id: 1, run: 1 })
      yield* TestClock.adjust(100)
      expect(yield* producer.runs).toBe(2)
      const stored = Option.getOrThrow((yield* fleet.store.get("item:1")).stored)
      expect(stored).toMatchObject({ data: first.data, bucket: 1 })
      expect(yield* Testing.instantly(a.run(items.getWithInfo(1)))).toMatchObject({ value: { id: 1, run: 1 }, cache: "hit", bucket: 1 })
    }))

  it.effect("unchanged with no previous value is the typed error UnchangedWithoutPrevious", () =>
    Effect.gen(function*() {
      const { items } = yield* makeItems({ same: () => true })
      const got = yield* Effect.fork(Effect.exit(items.get(1)))
      yield* TestClock.adjust(100)
      const exit = yield* Fiber.join(got)
      expect(Exit.isFailure(exit) && Option.getOrThrow(Exit.causeOption(exit))).toBeTruthy()
      expect(yield* Effect.flip(Effect.flatten(Effect.succeed(exit)))).toEqual(new Memo.UnchangedWithoutPrevious({ key: "item:1" }))
      // the error is in the loader's type only when its lookup may answer unchanged
      expectTypeOf(items.get).returns.toEqualTypeOf<Effect.Effect<typeof Stats.Type, Memo.UnchangedWithoutPrevious, Memo.Memo>>()
      const plain = Memo.loader({ key: "p", window: W, schema: Schema.Number, lookup: (_: void, previous) => Effect.succeed(Option.isSome(previous) ? 1 : 0) })
      expectTypeOf(plain.get).returns.toEqualTypeOf<Effect.Effect<number, never, Memo.Memo>>()
    }).pipe(Effect.provide(Testing.layer)))
})

describe("purge", () => {
  it.scoped("the value is gone everywhere: peek answers None on every pod, and the next request is cold and runs once for the fleet", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(3)
      const { items, producer } = yield* makeItems()
      yield* Effect.fork(Effect.forEach(fleet.pods, (pod) => pod.run(items.get(1)), { concurrency: "unbounded" }))
      yield* TestClock.adjust(100)
      for (const pod of fleet.pods) expect(yield* Testing.instantly(pod.run(items.get(1)))).toEqual({ id: 1, run: 1 })

      yield* fleet.pods[1]!.run(items.purge(1))
      for (const pod of fleet.pods) expect(yield* pod.run(items.peek(1))).toEqual(Option.none())
      expect(Option.isNone((yield* fleet.store.get("item:1")).stored)).toBe(true)
      // cold everywhere: every request waits for the one new run
      const again = yield* Effect.fork(Effect.forEach(fleet.pods, (pod) => pod.run(items.getWithInfo(1)), { concurrency: "unbounded" }))
      yield* TestClock.adjust(100)
      for (const info of yield* Fiber.join(again)) expect(info).toMatchObject({ value: { id: 1, run: 2 }, cache: "miss" })
      expect(yield* producer.runs).toBe(2)
    }))

  it.scoped("a lookup running when the purge came cannot bring the old value back", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      const { items, producer } = yield* makeItems({ duration: 1_000 })
      const running = yield* Effect.fork(a.run(items.get(1)))
      yield* TestClock.adjust(500)
      yield* b.run(items.purge(1))
      yield* TestClock.adjust(500)
      // run 1 finished after the purge: it is neither stored nor kept; a new run took over
      expect(Option.isNone((yield* fleet.store.get("item:1")).stored)).toBe(true)
      expect(yield* a.run(items.peek(1))).toEqual(Option.none())
      yield* TestClock.adjust(1_000)
      expect(yield* Fiber.join(running)).toEqual({ id: 1, run: 2 })
      for (const pod of fleet.pods) expect(yield* Testing.instantly(pod.run(items.get(1)))).toEqual({ id: 1, run: 2 })
      expect(yield* producer.runs).toBe(2)
    }))

  it.scoped("purgeTag removes every key of the tag, on every pod", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const { items } = yield* makeItems()
      yield* Effect.fork(Effect.forEach([1, 2], (id) => fleet.pods[0]!.run(items.get(id)), { concurrency: "unbounded" }))
      yield* TestClock.adjust(100)
      expect(yield* fleet.pods[1]!.run(Memo.purgeTag("items"))).toBe(2)
      for (const pod of fleet.pods) {
        for (const id of [1, 2]) expect(yield* pod.run(items.peek(id))).toEqual(Option.none())
      }
    }))
})
