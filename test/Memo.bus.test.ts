/**
 * Invalidation, tags, refresh, set and commit notices on a simulated fleet (`Testing.fleet`,
 * the in-memory store, whose notices are delivered at once), under `TestClock`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Schema, Scope, TestClock } from "effect"
import { Memo } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const windowMs = 60_000

/** A keyed loader whose value is the lookup's run number; tagged by the key's family. */
const makePages = (duration = 200) =>
  Effect.map(Testing.producer((run) => Effect.succeed(run), { duration }), (producer) => ({
    producer,
    pages: Memo.loader({
      key: (k: string) => k,
      window: windowMs,
      schema: Schema.Number,
      lookup: (_k: string) => producer.effect,
      tags: (k: string) => ["all", k.split(":")[0]!]
    })
  }))

const everyPod = <A, E>(fleet: Testing.Fleet, effect: Effect.Effect<A, E, Memo.Memo>) =>
  Effect.forEach(fleet.pods, (pod) => Testing.instantly(pod.run(effect)))

describe("invalidation on a fleet", () => {
  it.scoped("after invalidate returns, no pod answers a hit with the old value; one recompute fleet-wide", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(4)
      const { pages, producer } = yield* makePages()
      const cold = yield* Effect.fork(Effect.forEach(fleet.pods, (pod) => pod.run(pages.get("report:1")), { concurrency: "unbounded" }))
      yield* TestClock.adjust(200)
      expect(yield* Fiber.join(cold)).toEqual([1, 1, 1, 1])
      for (const info of yield* everyPod(fleet, pages.getWithInfo("report:1"))) expect(info).toMatchObject({ value: 1, cache: "hit" })

      yield* fleet.pods[2]!.run(pages.invalidate("report:1"))
      // every pod serves the last-known-good value at once, as stale, and one pod recomputes
      for (const info of yield* everyPod(fleet, pages.getWithInfo("report:1"))) {
        expect(info).toMatchObject({ value: 1, cache: "stale", stale: true })
      }
      yield* TestClock.adjust(200)
      for (const info of yield* everyPod(fleet, pages.getWithInfo("report:1"))) {
        expect(info).toMatchObject({ value: 2, cache: "hit", stale: false })
      }
      expect(yield* producer.runs).toBe(2)
      expect((yield* producer.stats).maxRunning).toBe(1)
    }))

  it.scoped("a tag reaches every key it was given to, on every pod", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(3)
      const { pages, producer } = yield* makePages(100)
      const keys = ["market:1", "market:2", "shop:1"]
      for (const key of keys) {
        yield* Effect.fork(Effect.forEach(fleet.pods, (pod) => pod.run(pages.get(key)), { concurrency: "unbounded" }))
        yield* TestClock.adjust(100)
      }
      expect(yield* producer.runs).toBe(3)
      expect(yield* fleet.pods[0]!.run(Memo.invalidateTag("market"))).toBe(2)
      for (const pod of fleet.pods) {
        expect(yield* Testing.instantly(pod.run(pages.getWithInfo("market:1")))).toMatchObject({ cache: "stale" })
        expect(yield* Testing.instantly(pod.run(pages.getWithInfo("market:2")))).toMatchObject({ cache: "stale" })
        expect(yield* Testing.instantly(pod.run(pages.getWithInfo("shop:1")))).toMatchObject({ cache: "hit", value: 3 })
      }
      yield* TestClock.adjust(100)
      expect(yield* producer.runs).toBe(5) // one recompute per invalidated key, fleet-wide
      expect(yield* fleet.pods[1]!.run(Memo.invalidateTag("nothing"))).toBe(0)
    }))

  it.scoped("a lookup that started before the invalidation is stored, but not as fresh", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      const { pages, producer } = yield* makePages(1_000)
      const first = yield* Effect.fork(a.run(pages.getWithInfo("k")))
      yield* TestClock.adjust(300)
      yield* b.run(pages.invalidate("k")) // run 1 is under way
      yield* TestClock.adjust(700)
      // the cold caller gets run 1 (there was nothing else), marked stale
      expect(yield* Fiber.join(first)).toMatchObject({ value: 1, stale: true })
      // nobody answers it as a hit; the next request recomputes once
      for (const pod of fleet.pods) expect(yield* Testing.instantly(pod.run(pages.getWithInfo("k")))).toMatchObject({ value: 1, cache: "stale" })
      yield* TestClock.adjust(1_000)
      for (const pod of fleet.pods) expect(yield* Testing.instantly(pod.run(pages.getWithInfo("k")))).toMatchObject({ value: 2, cache: "hit" })
      expect(yield* producer.runs).toBe(2)
    }))

  it.scoped("refresh recomputes now, once fleet-wide, and answers the new value", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(3)
      const { pages, producer } = yield* makePages(500)
      const cold = yield* Effect.fork(fleet.pods[0]!.run(pages.get("k")))
      yield* TestClock.adjust(500)
      yield* Fiber.join(cold)
      const refreshed = yield* Effect.fork(fleet.pods[1]!.run(pages.refresh("k")))
      // meanwhile every pod serves the last value at once, as stale
      for (const info of yield* everyPod(fleet, pages.getWithInfo("k"))) expect(info).toMatchObject({ value: 1, cache: "stale" })
      yield* TestClock.adjust(500)
      expect(yield* Fiber.join(refreshed)).toMatchObject({ value: 2, stale: false, computedAt: 1_000 })
      expect(yield* producer.runs).toBe(2)
      for (const info of yield* everyPod(fleet, pages.getWithInfo("k"))) expect(info).toMatchObject({ value: 2, cache: "hit" })
    }))

  it.scoped("refreshes from several pods each answer a value computed after their own call", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(3)
      const { pages, producer } = yield* makePages(500)
      const cold = yield* Effect.fork(fleet.pods[0]!.run(pages.get("k")))
      yield* TestClock.adjust(500)
      yield* Fiber.join(cold)
      const refreshes = yield* Effect.fork(Effect.forEach(fleet.pods, (pod) => pod.run(pages.refresh("k")), { concurrency: "unbounded" }))
      yield* TestClock.adjust(1_000)
      const infos = yield* Fiber.join(refreshes)
      const starts = (yield* producer.stats).startedAt
      // each refresh invalidated what was running when it was called: a run that started
      // before the last of them cannot be its answer, so a second run follows the first
      expect(starts).toEqual([0, 500, 1_000])
      for (const info of infos) expect(info.computedAt).toBeGreaterThanOrEqual(1_000)
      expect(infos.at(-1)).toMatchObject({ value: 3, stale: false })
    }))

  it.scoped("set stores this window's value everywhere at once; a lookup running meanwhile cannot overwrite it", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(3)
      const { pages, producer } = yield* makePages(1_000)
      const running = yield* Effect.fork(fleet.pods[0]!.run(pages.getWithInfo("k")))
      yield* TestClock.adjust(100)
      const written = yield* fleet.pods[1]!.run(pages.set("k", 42))
      expect(written).toMatchObject({ value: 42, cache: "hit", stale: false })
      const afterSet = yield* everyPod(fleet, pages.getWithInfo("k"))
      expect(afterSet.map((i) => [i.value, i.cache]), JSON.stringify(afterSet)).toEqual([[42, "hit"], [42, "hit"], [42, "hit"]])
      yield* TestClock.adjust(900)
      // the older lookup's commit was refused (fenced): its caller got the newer value
      expect(yield* Fiber.join(running)).toMatchObject({ value: 42 })
      for (const info of yield* everyPod(fleet, pages.getWithInfo("k"))) expect(info).toMatchObject({ value: 42, cache: "hit" })
      expect(Option.getOrThrow((yield* fleet.store.get("k")).stored).data).toBe("42")
      expect(yield* producer.runs).toBe(1)
    }))

  it.scoped("while a pod's subscription is down it answers no hits, and checks the store again once it is back", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      const { pages, producer } = yield* makePages(100)
      const cold = yield* Effect.fork(Effect.forEach(fleet.pods, (pod) => pod.run(pages.get("k"))))
      yield* TestClock.adjust(100)
      yield* Fiber.join(cold)
      yield* b.disconnect
      yield* a.run(pages.invalidate("k")) // b cannot hear of it
      expect(yield* Testing.instantly(b.run(pages.getWithInfo("k")))).toMatchObject({ value: 1, cache: "stale" })
      yield* b.reconnect
      // back: L1 is still not trusted; once its retry is due (redisRetry after the failed
      // attempt) it checks the store, which says stale, and one recompute runs
      expect(yield* Testing.instantly(b.run(pages.getWithInfo("k")))).toMatchObject({ value: 1, cache: "stale" })
      yield* TestClock.adjust(250)
      expect(yield* Testing.instantly(b.run(pages.getWithInfo("k")))).toMatchObject({ value: 1, cache: "stale" })
      yield* TestClock.adjust(100)
      expect(yield* Testing.instantly(b.run(pages.getWithInfo("k")))).toMatchObject({ value: 2, cache: "hit" })
      expect(yield* producer.runs).toBe(2)
    }))

  it.scoped("a cold waiter wakes on the holder's commit, not at its next poll", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2, { pollInterval: "10 seconds" })
      const { pages, producer } = yield* makePages(300)
      const leader = yield* Effect.fork(fleet.pods[0]!.run(pages.getWithInfo("k")))
      yield* TestClock.adjust(10)
      const follower = yield* Effect.fork(fleet.pods[1]!.run(pages.getWithInfo("k")))
      yield* TestClock.adjust(290) // the commit lands at 300 ms; the next poll would be at 10 s
      expect(yield* Fiber.join(leader)).toMatchObject({ value: 1, cache: "miss" })
      expect(yield* Fiber.join(follower)).toMatchObject({ value: 1, cache: "miss" })
      expect(yield* producer.runs).toBe(1)
    }))

  it.scoped("a waiter claims as soon as the holder lets go of the lock (a shutdown), not at its next poll", () =>
    Effect.gen(function*() {
      const { pages, producer } = yield* makePages(1_000)
      const { Redis } = yield* Effect.promise(() => import("../src/index.js"))
      const server = Redis.makeMemoryServer()
      const settings = { pollInterval: "10 seconds", lease: "30 seconds" } as const
      const runtimeIn = (scope: Scope.Scope) =>
        Effect.flatMap(Redis.makeMemory({ tenant: "t", server }), (store) =>
          Memo.make(settings).pipe(Effect.provideService(Redis.Redis, store), Scope.extend(scope)))
      const shutdown = yield* Scope.make()
      const a = yield* runtimeIn(shutdown)
      const b = yield* runtimeIn(yield* Effect.scope)
      yield* Effect.fork(Effect.provideService(pages.get("k"), Memo.Memo, a))
      yield* TestClock.adjust(10)
      const waiter = yield* Effect.fork(Effect.provideService(pages.getWithInfo("k"), Memo.Memo, b))
      yield* TestClock.adjust(10)
      yield* Scope.close(shutdown, Exit.void) // a's run is interrupted and its lock released
      yield* TestClock.adjust(1)
      expect((yield* producer.stats).startedAt).toHaveLength(2) // b took over at once
      yield* TestClock.adjust(1_000)
      expect(yield* Fiber.join(waiter)).toMatchObject({ value: 2, cache: "miss" })
    }))

  it.scoped("set tags the key like a run does: a tag's invalidation reaches a key only ever set", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2)
      const { pages, producer } = yield* makePages(100)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      yield* a.run(pages.set("market:9", 42))
      expect(yield* Testing.instantly(b.run(pages.getWithInfo("market:9")))).toMatchObject({ value: 42, cache: "hit" })
      yield* b.run(Memo.invalidateTag("market"))
      expect(yield* Testing.instantly(a.run(pages.getWithInfo("market:9")))).toMatchObject({ value: 42, cache: "stale" })
      yield* TestClock.adjust(100)
      expect(yield* producer.runs).toBe(1)
    }))

  it.scoped("a tag's invalidation leaves no mark on a member whose records are gone", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(1)
      const producer = yield* Testing.producer((run) => Effect.succeed(run), { duration: 0 })
      const lookup = () => producer.effect
      const kept = Memo.loader({ key: (k: string) => k, window: windowMs, schema: Schema.Number, lookup, tags: ["shared"] })
      const brief = Memo.loader({ key: (k: string) => k, window: windowMs, schema: Schema.Number, lookup, tags: ["shared"], retain: windowMs })
      const pod = fleet.pods[0]!
      yield* pod.run(kept.get("kept"))
      yield* pod.run(brief.get("gone"))
      // past retain: the brief key's records are dropped; the tag set lives on for the kept one
      yield* TestClock.adjust(windowMs + 1)
      expect(Option.isNone((yield* fleet.store.get("gone")).stored)).toBe(true)
      expect(yield* pod.run(Memo.invalidateTag("shared"))).toBe(2)
      expect((yield* fleet.store.get("kept")).mark).toBe(1)
      expect((yield* fleet.store.get("gone")).mark).toBe(-1)
    }))

  it.scoped("tenants never see each other's notices", () =>
    Effect.gen(function*() {
      // one store per tenant over one server: an invalidation in one tenant leaves the other's hits alone
      const { pages } = yield* makePages(0)
      const server = (yield* Effect.promise(() => import("../src/Redis.js"))).makeMemoryServer()
      const { Redis } = yield* Effect.promise(() => import("../src/index.js"))
      const runtimeOf = (tenant: string) =>
        Effect.flatMap(Redis.makeMemory({ tenant, server }), (store) => Memo.make().pipe(Effect.provideService(Redis.Redis, store)))
      const a = yield* runtimeOf("a")
      const b = yield* runtimeOf("b")
      yield* Effect.provideService(pages.get("k"), Memo.Memo, a)
      yield* Effect.provideService(pages.get("k"), Memo.Memo, b)
      yield* Effect.provideService(pages.invalidate("k"), Memo.Memo, a)
      expect(yield* Testing.instantly(Effect.provideService(pages.getWithInfo("k"), Memo.Memo, a))).toMatchObject({ cache: "stale" })
      expect(yield* Testing.instantly(Effect.provideService(pages.getWithInfo("k"), Memo.Memo, b))).toMatchObject({ cache: "hit" })
    }))
})
