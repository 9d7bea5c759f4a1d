/**
 * A key's version never goes back, whatever the store lost: invalidations, `set`s and
 * recomputes after a data loss (`FLUSHDB`, eviction, a restart without persistence, `retain`
 * lapsing) order above every version the processes held or heard of before it, and a process
 * that holds the window's value puts it back instead of the fleet recomputing it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Memo, Redis } from "lockstep"
import * as Testing from "lockstep/testing"
import { freshTenant, redisCase } from "./support/stores.js"

const W = 60_000
/** A real epoch, window-aligned: versions take the store's clock into account. */
const T0 = 1_700_000_040_000

const setup = (pods: number, options: { readonly retain?: number } = {}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const fleet = yield* Testing.fleet(pods)
    const producer = yield* Testing.producer((run) => Effect.succeed(run), { duration: "1 second" })
    const page = Memo.loader({
      key: "page",
      window: W,
      schema: Schema.Number,
      lookup: () => producer.effect,
      ...(options.retain === undefined ? {} : { retain: options.retain })
    })
    /** A request on pod `i`, let run to its end (a lookup takes a second). */
    const get = (i: number) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(fleet.pods[i]!.run(page.getWithInfo()))
        yield* TestClock.adjust(1_000)
        return yield* Fiber.join(fiber)
      })
    /** Asks every pod until the background refreshes settle, then answers what each says. */
    const settled = Effect.gen(function*() {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < pods; i++) yield* get(i)
      }
      return yield* Effect.forEach(fleet.pods, (_, i) => get(i))
    })
    return { fleet, page, producer, get, settled }
  })

describe("versions after the store loses data", () => {
  it.scoped("an invalidation after a data loss stops every hit with the invalidated value", () =>
    Effect.gen(function*() {
      const { fleet, get, page, producer } = yield* setup(2)
      expect(yield* get(0)).toMatchObject({ value: 1, cache: "miss" })
      expect(yield* get(1)).toMatchObject({ value: 1, cache: "hit" })
      yield* fleet.lose() // FLUSHDB or eviction: the subscriptions stay up
      yield* TestClock.adjust(1_000)
      yield* fleet.pods[0]!.run(page.invalidate())
      // no pod answers the invalidated value as a hit, the caller included
      for (const i of [0, 1]) {
        const info = yield* fleet.pods[i]!.run(page.getWithInfo())
        expect(info.value === 1 && info.cache === "hit", `pod ${i}: ${JSON.stringify(info)}`).toBe(false)
      }
      yield* TestClock.adjust(1_000)
      expect(yield* producer.runs).toBe(2)
      expect(yield* get(1)).toMatchObject({ value: 2, cache: "hit" })
      expect(yield* get(0)).toMatchObject({ value: 2, cache: "hit" })
    }))

  it.scoped("a set after a data loss is what every pod answers", () =>
    Effect.gen(function*() {
      const { fleet, get, page } = yield* setup(2)
      yield* get(0)
      // a few versions before the loss
      for (let i = 0; i < 2; i++) {
        yield* fleet.pods[0]!.run(page.invalidate())
        yield* get(0)
        yield* TestClock.adjust(1_000)
      }
      yield* get(1)
      yield* fleet.lose()
      yield* TestClock.adjust(1_000)
      expect(yield* fleet.pods[0]!.run(page.set(undefined, 100))).toMatchObject({ value: 100, cache: "hit" })
      expect(yield* get(0)).toMatchObject({ value: 100, cache: "hit" })
      expect(yield* get(1)).toMatchObject({ value: 100, cache: "hit" })
    }))

  it.scoped("a key whose records lapsed (retain) is fresh again after one recompute, not stale for as long as it was read", () =>
    Effect.gen(function*() {
      const { fleet, get, page, producer, settled } = yield* setup(2, { retain: W })
      yield* get(0)
      for (let i = 0; i < 4; i++) {
        yield* fleet.pods[0]!.run(page.invalidate())
        yield* get(0)
        yield* TestClock.adjust(1_000)
      }
      const before = yield* producer.runs
      // unread for longer than retain: its records go
      yield* TestClock.adjust(3 * W)
      expect(Option.isNone((yield* fleet.store.get("page")).stored)).toBe(true)
      const answers = yield* settled
      for (const info of answers) expect(info).toMatchObject({ value: before + 1, cache: "hit", stale: false })
      expect(yield* producer.runs).toBe(before + 1)
    }))

  it.scoped("after a restart without persistence, the fleet puts back the window's value it holds, once, instead of recomputing it", () =>
    Effect.gen(function*() {
      const { fleet, get, producer, settled } = yield* setup(3)
      yield* get(0)
      yield* get(1)
      yield* get(2)
      const before = Option.getOrThrow((yield* fleet.store.get("page")).stored)
      let commits = 0
      yield* fleet.store.subscribe({ onNotice: (n) => n._tag === "Committed" && commits++, onState: () => {} })
      yield* fleet.lose({ restart: true })
      yield* TestClock.adjust(1_000)
      const answers = yield* settled
      for (const info of answers) expect(info).toMatchObject({ value: 1, cache: "hit", stale: false })
      // no run in the restart's window, one write for the fleet, under a newer version
      expect(yield* producer.runs).toBe(1)
      expect(commits).toBe(1)
      const after = Option.getOrThrow((yield* fleet.store.get("page")).stored)
      expect(after.data).toBe(before.data)
      expect(after.fence).toBeGreaterThan(before.fence)
    }))
})

describe("a lookup that started before a set the store then lost", () => {
  it.scoped("its commit is refused: no process answers its value as a hit, and the set's value is put back", () =>
    Effect.gen(function*() {
      const { fleet, get, page, producer, settled } = yield* setup(2)
      // a cold lookup on pod 0 (a second), then a set on pod 0 while it runs
      const cold = yield* Effect.fork(fleet.pods[0]!.run(page.getWithInfo()))
      yield* TestClock.adjust(10)
      expect(yield* fleet.pods[0]!.run(page.set(undefined, 100))).toMatchObject({ value: 100, cache: "hit" })
      // FLUSHDB: the set's record and the fence counter that fenced the lookup are gone
      yield* fleet.lose()
      yield* TestClock.adjust(1_000)
      yield* Fiber.join(cold)
      expect(yield* producer.runs).toBe(1)
      // a process started afterwards never heard of the set
      yield* fleet.pods[1]!.restart
      const fresh = yield* get(1)
      expect(fresh.value === 1 && fresh.cache === "hit", JSON.stringify(fresh)).toBe(false)
      // pod 0, which holds the set's value of the store's window, put it back instead of the
      // lookup's: no run after the one that was fenced, and every pod answers the set's value
      const answers = yield* settled
      expect(yield* producer.runs).toBe(1)
      for (const info of [fresh, ...answers]) expect(info).toMatchObject({ value: 100, cache: "hit" })
      expect(Option.getOrThrow((yield* fleet.store.get("page")).stored).data).toBe("100")
    }))

  it.scopedLive("on a real redis-server: its commit is refused, and a process started afterwards answers no hit with its value", () =>
    Effect.gen(function*() {
      const tenant = freshTenant("loss-commit")
      const redis = redisCase()
      const process = () => Layer.build(Memo.layer.pipe(Layer.provideMerge(redis.layer(tenant))))
      const pod0 = yield* process()
      const producer = yield* Testing.producer((run) => Effect.succeed(run), { duration: "300 millis" })
      const page = Memo.loader({ key: "page", window: W, schema: Schema.Number, lookup: () => producer.effect })
      const cold = yield* Effect.fork(Effect.provide(page.getWithInfo(), pod0))
      yield* Effect.sleep(30)
      yield* Effect.provide(page.set(undefined, 100), pod0)
      yield* redis.lose(tenant)
      yield* Fiber.join(cold)
      expect(yield* producer.runs).toBe(1)
      const pod1 = yield* process()
      const fresh = yield* Effect.provide(page.getWithInfo(), pod1)
      expect(fresh.value === 1 && fresh.cache === "hit", JSON.stringify(fresh)).toBe(false)
      const raw = yield* Effect.provide(Effect.flatMap(Redis.Redis, (s) => s.get("page")), pod1)
      expect(Option.map(raw.stored, (s) => s.data)).not.toEqual(Option.some("1"))
    }), 20_000)
})

describe("values made while the store was unreachable", () => {
  it.scoped("a set that returns is never lost: with the store unreachable it fails, and the old value is no hit", () =>
    Effect.gen(function*() {
      const { fleet, get, page, settled } = yield* setup(2)
      yield* get(0)
      yield* get(1)
      yield* fleet.pods[0]!.disconnect
      const written = yield* Effect.either(fleet.pods[0]!.run(page.set(undefined, 100)))
      if (Either.isRight(written)) {
        // had it returned, the value would have to reach every pod once the store is back
        yield* fleet.pods[0]!.reconnect
        yield* TestClock.adjust(1_000)
        for (const info of yield* settled) expect(info.value).toBe(100)
        return
      }
      expect(written.left).toBeInstanceOf(Redis.RedisError)
      const after = yield* fleet.pods[0]!.run(page.getWithInfo())
      expect(after.value === 1 && after.cache === "hit").toBe(false)
    }))

  it.scoped("a value computed during an outage is no hit after an invalidation the outage hid", () =>
    Effect.gen(function*() {
      const { fleet, get, page } = yield* setup(2)
      yield* get(0)
      yield* fleet.pods[0]!.disconnect
      // the next window, past degradedAfter: the cut-off pod runs the lookup on its own
      yield* TestClock.adjust(W + 1_000)
      yield* get(0)
      const local = yield* fleet.pods[0]!.run(page.getWithInfo())
      expect(local.value).toBe(2)
      expect(local.cache).not.toBe("hit") // nobody vouched for it yet
      // meanwhile, the fleet invalidates the key; the cut-off pod does not hear of it
      yield* fleet.pods[1]!.run(page.invalidate())
      yield* fleet.pods[0]!.reconnect
      const after = yield* fleet.pods[0]!.run(page.getWithInfo())
      expect(after.value === 2 && after.cache === "hit", JSON.stringify(after)).toBe(false)
    }))

  it.scoped("refresh with the store unreachable runs the lookup on this pod at once, and its value is not passed off as fresh", () =>
    Effect.gen(function*() {
      const { fleet, get, page, producer } = yield* setup(2)
      yield* get(0)
      // the next window, before degradedAfter: a request alone would keep serving the last value
      yield* TestClock.adjust(W)
      yield* fleet.pods[0]!.disconnect
      const fiber = yield* Effect.fork(fleet.pods[0]!.run(page.refresh()))
      yield* TestClock.adjust(1_000)
      const refreshed = yield* Fiber.join(fiber)
      expect(refreshed.value).toBe(2)
      expect(refreshed.stale).toBe(true)
      expect(yield* producer.runs).toBe(2)
    }))
})

describe("invalidate with the store unreachable", () => {
  it.scoped("fails with RedisError, and this process stops answering hits with the value at once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const memory = yield* Redis.makeMemory()
      // the store refuses invalidations (their commands time out) while notices still arrive
      const store: Redis.Store = {
        ...memory,
        invalidate: (key) => Effect.fail(new Redis.RedisError({ reason: "Timeout", operation: "invalidate", cause: key }))
      }
      const context = yield* Layer.build(Memo.layerWith({}).pipe(Layer.provide(Layer.succeed(Redis.Redis, store))))
      const producer = yield* Testing.producer((run) => Effect.succeed(run))
      const page = Memo.loader({ key: "k", window: W, schema: Schema.Number, lookup: () => producer.effect })
      expect(yield* page.getWithInfo().pipe(Effect.provide(context))).toMatchObject({ value: 1, cache: "miss" })
      expect(yield* page.getWithInfo().pipe(Effect.provide(context))).toMatchObject({ value: 1, cache: "hit" })
      const failed = yield* Effect.either(page.invalidate().pipe(Effect.provide(context)))
      expect(Either.isLeft(failed) && failed.left._tag).toBe("RedisError")
      const after = yield* Testing.instantly(page.getWithInfo().pipe(Effect.provide(context)))
      expect(after).toMatchObject({ value: 1, cache: "stale", stale: true })
    }))
})

describe("a value the fleet cannot read back", () => {
  it.scoped("a NaN (stored as null by JSON) is never committed: one run per pod and window, not one per request", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2)
      const producer = yield* Testing.producer(() => Effect.succeed(Number.NaN), { duration: "100 millis" })
      const page = Memo.loader({ key: "nan", window: W, schema: Schema.Number, lookup: () => producer.effect })
      const answers: Array<Memo.Info<number>> = []
      for (let i = 0; i < 20; i++) {
        const fiber = yield* Effect.fork(fleet.pods[i % 2]!.run(page.getWithInfo()))
        yield* TestClock.adjust(200)
        answers.push(yield* Fiber.join(fiber))
      }
      expect(yield* producer.runs).toBeLessThanOrEqual(2)
      expect(answers.every((a) => Number.isNaN(a.value))).toBe(true)
      // nothing the fleet cannot read was stored
      expect(Option.isNone((yield* fleet.store.get("nan")).stored)).toBe(true)
    }))
})

describe("bad input", () => {
  it.scoped("a tags function that returns something other than strings is an InvalidOptions defect, not a store fault", () =>
    Effect.gen(function*() {
      const page = Memo.loader({
        key: (id: number) => `item:${id}`,
        window: W,
        schema: Schema.Number,
        lookup: (id: number) => Effect.succeed(id),
        tags: () => [1 as unknown as string]
      })
      const exit = yield* Effect.exit(page.get(1).pipe(Effect.provide(Testing.layer)))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      if (Exit.isFailure(exit)) expect(Cause.squash(exit.cause)).toBeInstanceOf(Memo.InvalidOptions)
    }))

  it.effect("Memo.inspect takes a fractional count as a whole one: a page, not every key", () =>
    Effect.gen(function*() {
      const page = Memo.loader({ key: (id: number) => `item:${id}`, window: W, schema: Schema.Number, lookup: (id: number) => Effect.succeed(id) })
      for (let id = 0; id < 5; id++) yield* page.get(id)
      const first = yield* Memo.inspect({ count: 2.5 })
      expect(first.keys.length).toBe(2)
      expect(Option.isSome(first.cursor)).toBe(true)
    }).pipe(Effect.provide(Testing.layer)))
})

describe("records that are never cleaned up", () => {
  it.scoped("a tag's members whose records are gone leave its set, and a key joins it again with its next value", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(1)
      const producer = yield* Testing.producer((run) => Effect.succeed(run))
      const items = Memo.loader({
        key: (id: number) => `item:${id}`,
        window: W,
        schema: Schema.Number,
        lookup: () => producer.effect,
        retain: W,
        tags: ["items"]
      })
      // a key kept for ever keeps the tag's set alive
      const index = Memo.loader({ key: "index", window: W, schema: Schema.Number, lookup: () => producer.effect, tags: ["items"] })
      const pod = fleet.pods[0]!
      yield* pod.run(index.get())
      for (let id = 0; id < 5; id++) yield* pod.run(items.get(id))
      expect(yield* fleet.store.tagged("items")).toHaveLength(6)
      // unread for longer than retain: the items' records go, their places in the set stay
      yield* TestClock.adjust(2 * W)
      expect(yield* pod.run(Memo.invalidateTag("items"))).toBe(6)
      expect(yield* fleet.store.tagged("items")).toEqual(["index"])
      // read again: the key is a member again, and the tag reaches it
      yield* pod.run(items.get(3))
      expect([...(yield* fleet.store.tagged("items"))].sort()).toEqual(["index", "item:3"])
      expect(yield* pod.run(Memo.invalidateTag("items"))).toBe(2)
    }))
})
