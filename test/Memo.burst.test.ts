/**
 * A burst on a key this process does not hold: the first request reads the store, the others
 * join it, and the claim goes out behind the read as soon as the burst forms. The store's reads
 * take virtual time here, as a round trip does.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as SpyStore from "./support/spy.js"

const WINDOW = 10_000
const READ_MS = 10
const options = { key: "dashboard", window: WINDOW, schema: Schema.Number }

/** One process over `server`, whose reads of the store take `READ_MS`. */
const pod = (server: Redis.MemoryServer) =>
  Effect.gen(function*() {
    const { spy, store } = SpyStore.wrap(yield* Redis.makeMemory({ server }))
    const slow: Redis.Store = { ...store, read: (key) => Effect.zipLeft(store.read(key), Effect.sleep(READ_MS)) }
    const runtime = yield* Effect.provide(Memo.make({}), Layer.succeed(Redis.Redis, slow))
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Memo.Memo, runtime)
    return { spy, run }
  })

const burst = <A, E, R>(n: number, effect: Effect.Effect<A, E, R>) =>
  Effect.fork(Effect.all(Array.from({ length: n }, () => effect), { concurrency: "unbounded" }))

describe("Memo: a burst on a key not held here", () => {
  it.scoped("on a cold key, the lookup starts before the read answers, once for the burst", () =>
    Effect.gen(function*() {
      const p = yield* Testing.producer((run) => Effect.succeed(run), { duration: 100 })
      const { run, spy } = yield* pod(Redis.makeMemoryServer())
      const callers = yield* burst(50, run(Memo.memo(options, p.effect)))
      yield* TestClock.adjust(0)
      // the read is still on its way; the claim went out behind it and took the lock
      expect(spy.calls.read).toBe(1)
      expect(spy.calls.claim).toBe(1)
      expect(yield* p.runs).toBe(1)
      yield* TestClock.adjust(100)
      expect(yield* Fiber.join(callers)).toEqual(Array.from({ length: 50 }, () => 1))
      expect(yield* p.runs).toBe(1)
      expect(spy.calls.read).toBe(1)
      expect(spy.calls.claim).toBe(1)
    }))

  it.scoped("on a key the store holds fresh, the burst is answered from the store: no lookup, no lock", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = yield* Testing.producer((run) => Effect.succeed(run), { duration: 100 })
      const page = Memo.loader({ ...options, lookup: () => p.effect })
      const a = yield* pod(server)
      const first = yield* Effect.fork(a.run(page.get()))
      yield* TestClock.adjust(READ_MS + 100)
      expect(yield* Fiber.join(first)).toBe(1)
      const b = yield* pod(server)
      const callers = yield* burst(50, b.run(page.getWithInfo()))
      yield* TestClock.adjust(READ_MS)
      const infos = yield* Fiber.join(callers)
      expect(infos.every((i) => i.value === 1 && i.cache === "hit")).toBe(true)
      expect(yield* p.runs).toBe(1)
      expect(b.spy.calls.claim).toBe(1)
      // the claim sent for the burst found the value fresh and took no lock: once the value is
      // invalidated, another process takes the lock and recomputes at once
      yield* a.run(page.invalidate())
      const c = yield* pod(server)
      const stale = yield* Effect.fork(c.run(page.get()))
      yield* TestClock.adjust(READ_MS)
      expect(yield* Fiber.join(stale)).toBe(1)
      expect(yield* p.runs).toBe(2)
    }))
})
