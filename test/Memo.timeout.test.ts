/**
 * A loader's `timeout` over the request path below the hit: the request reads the store itself,
 * as without a timeout (no worker unless it must wait), and one budget covers the read and any
 * wait after it. The
 * store's reads take virtual time here, as a round trip does.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as SpyStore from "./support/spy.js"

const WINDOW = 10_000
const TIMEOUT = 50
const options = { key: "dashboard", window: WINDOW, schema: Schema.Number, timeout: `${TIMEOUT} millis` } as const

/** One process over `server`, whose reads of the store take `readMs`. */
const pod = (server: Redis.MemoryServer, readMs: number) =>
  Effect.gen(function*() {
    const { spy, store } = SpyStore.wrap(yield* Redis.makeMemory({ server }))
    const slow: Redis.Store = { ...store, read: (key) => Effect.zipLeft(store.read(key), Effect.sleep(readMs)) }
    const runtime = yield* Effect.provide(Memo.make({}), Layer.succeed(Redis.Redis, slow))
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Memo.Memo, runtime)
    return { spy, run }
  })

const isDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isSome)

describe("Memo: a loader with a timeout", () => {
  it.scoped("answers with this window's value from one read: no claim, no lookup", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = yield* Testing.producer((run) => Effect.succeed(run))
      const page = Memo.loader({ ...options, lookup: () => p.effect })
      const a = yield* pod(server, 10)
      const first = yield* Effect.fork(a.run(page.get()))
      yield* TestClock.adjust(10)
      expect(yield* Fiber.join(first)).toBe(1)
      const b = yield* pod(server, 10)
      const request = yield* Effect.fork(b.run(page.getWithInfo()))
      yield* TestClock.adjust(10)
      expect(yield* Fiber.join(request)).toMatchObject({ value: 1, cache: "hit" })
      expect(b.spy.calls.read).toBe(1)
      expect(b.spy.calls.claim).toBe(0)
      expect(yield* p.runs).toBe(1)
    }))

  it.scoped("one budget covers the read and the wait after it; the run goes on", () =>
    Effect.gen(function*() {
      const p = yield* Testing.producer((run) => Effect.succeed(run), { duration: 100 })
      const page = Memo.loader({ ...options, lookup: () => p.effect })
      const { run } = yield* pod(Redis.makeMemoryServer(), 20)
      const request = yield* Effect.fork(Effect.flip(run(page.get())))
      // the read took 20 ms of the 50: the wait has the 30 left, not 50 of its own
      yield* TestClock.adjust(TIMEOUT - 1)
      expect(yield* isDone(request)).toBe(false)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(request)).toMatchObject({ _tag: "WaitTimeout", key: "dashboard" })
      expect(yield* p.runs).toBe(1)
      yield* TestClock.adjust(100)
      expect(yield* Testing.instantly(run(page.get()))).toBe(1)
      expect(yield* p.runs).toBe(1)
    }))

  it.scoped("a read that outlasts the timeout fails the request at the timeout; a worker takes the run over", () =>
    Effect.gen(function*() {
      const p = yield* Testing.producer((run) => Effect.succeed(run), { duration: 100 })
      const page = Memo.loader({ ...options, lookup: () => p.effect })
      const { run, spy } = yield* pod(Redis.makeMemoryServer(), 2 * TIMEOUT)
      const request = yield* Effect.fork(Effect.flip(run(page.get())))
      yield* TestClock.adjust(TIMEOUT - 1)
      expect(yield* isDone(request)).toBe(false)
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(request)).toMatchObject({ _tag: "WaitTimeout", key: "dashboard" })
      // the worker reads again (100 ms), claims and runs the lookup (100 ms)
      yield* TestClock.adjust(2 * TIMEOUT + 100)
      expect(yield* Testing.instantly(run(page.get()))).toBe(1)
      expect(yield* p.runs).toBe(1)
      expect(spy.calls.claim).toBe(1)
    }))

  it.scoped("a stale value found by the read is served at once", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const p = yield* Testing.producer((run) => Effect.succeed(run), { duration: 100 })
      const page = Memo.loader({ ...options, lookup: () => p.effect })
      // the window's value, computed without a timeout
      const seed = Memo.loader({ key: options.key, window: WINDOW, schema: Schema.Number, lookup: () => p.effect })
      const a = yield* pod(server, 10)
      const first = yield* Effect.fork(a.run(seed.get()))
      yield* TestClock.adjust(110)
      expect(yield* Fiber.join(first)).toBe(1)
      yield* TestClock.adjust(WINDOW)
      const b = yield* pod(server, 10)
      const request = yield* Effect.fork(b.run(page.getWithInfo()))
      yield* TestClock.adjust(10)
      expect(yield* Fiber.join(request)).toMatchObject({ value: 1, cache: "stale" })
      yield* TestClock.adjust(100)
      expect(yield* Testing.instantly(b.run(page.get()))).toBe(2)
      expect(yield* p.runs).toBe(2)
    }))

  it.scoped("a cold burst times out together at the timeout, with one lookup", () =>
    Effect.gen(function*() {
      const p = yield* Testing.producer((run) => Effect.succeed(run), { duration: 100 })
      const page = Memo.loader({ ...options, lookup: () => p.effect })
      const { run, spy } = yield* pod(Redis.makeMemoryServer(), 10)
      const callers = yield* Effect.fork(
        Effect.all(Array.from({ length: 20 }, () => Effect.flip(run(page.get()))), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(TIMEOUT)
      const errors = yield* Fiber.join(callers)
      expect(errors.every((e) => e._tag === "WaitTimeout")).toBe(true)
      expect(spy.calls.read).toBe(1)
      yield* TestClock.adjust(100)
      expect(yield* Testing.instantly(run(page.get()))).toBe(1)
      expect(yield* p.runs).toBe(1)
    }))
})
