/**
 * A lookup that fails: while its key backs off, requests fail at once with that failure (or get
 * the stale copy), and a key recovers within one window of its lookup succeeding again.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Data, Effect, Fiber, Layer, Schema, TestClock } from "effect"
import * as AppConfig from "../app/Config.js"
import { Memo, Redis } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as SpyStore from "./support/spy.js"

class NotFound extends Data.TaggedError("NotFound")<{ readonly id: number }> {}

const pod = (server: Redis.MemoryServer, settings: Partial<Memo.Settings> = {}) =>
  Effect.gen(function*() {
    const { layer } = yield* SpyStore.layer(server, "default")
    const runtime = yield* Effect.provide(Memo.make(settings), layer)
    return <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Memo.Memo, runtime)
  })

describe("a failing lookup", () => {
  it.scoped("while the key backs off, cold requests fail at once with the lookup's failure, on every process", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const settings = { failureBackoff: "1 second", maxFailureBackoff: "30 seconds" } as const
      const a = yield* pod(server, settings)
      const b = yield* pod(server, settings)
      let runs = 0
      const byId = Memo.loader({
        key: (id: number) => `user:${id}`,
        window: "10 seconds",
        schema: Schema.String,
        lookup: (id: number) => Effect.suspend(() => (runs++, Effect.fail(new NotFound({ id })))).pipe(Effect.delay(50))
      })
      // the first request runs the lookup and gets its failure
      const first = yield* Effect.fork(Effect.flip(a(byId.get(7))))
      yield* TestClock.adjust(50)
      expect(yield* Fiber.join(first)).toEqual(new NotFound({ id: 7 }))
      expect(runs).toBe(1)
      // requests 2 to 6, 150 ms apart, within the back-off: each fails at once, no run
      for (let i = 0; i < 5; i++) {
        expect(yield* Testing.instantly(Effect.flip(a(byId.get(7))))).toEqual(new NotFound({ id: 7 }))
        yield* TestClock.adjust(150)
      }
      expect(runs).toBe(1)
      // another process holds no failure of its own: it runs the lookup once, without waiting
      // out the fleet's back-off, and from then on fails at once too
      const other = yield* Effect.fork(Effect.flip(b(byId.get(7))))
      yield* TestClock.adjust(50)
      expect(yield* Fiber.join(other)).toEqual(new NotFound({ id: 7 }))
      expect(runs).toBe(2)
      expect(yield* Testing.instantly(Effect.flip(b(byId.get(7))))).toEqual(new NotFound({ id: 7 }))
      expect(runs).toBe(2)
      // the back-off over, the lookup runs again
      yield* TestClock.adjust(1_000)
      const again = yield* Effect.fork(Effect.flip(a(byId.get(7))))
      yield* TestClock.adjust(50)
      expect(yield* Fiber.join(again)).toEqual(new NotFound({ id: 7 }))
      expect(runs).toBe(3)
    }))

  it.scoped("a key recovers within one window of its lookup succeeding again, whatever the back-off reached", () =>
    Effect.gen(function*() {
      const WINDOW = 10_000
      const run = yield* pod(Redis.makeMemoryServer(), { failureBackoff: "1 second", maxFailureBackoff: "30 seconds" })
      const producer = yield* Testing.producer((n) => Effect.succeed(n), { duration: 50 })
      const page = Memo.memoWithInfo({ key: "page", window: WINDOW, schema: Schema.Number }, producer.effect)
      const first = yield* Effect.fork(run(page))
      yield* TestClock.adjust(50)
      yield* Fiber.join(first)
      // the database goes away for a minute: the back-off grows past the window
      yield* producer.setFailing(true)
      for (let t = 0; t < 60_000; t += 100) {
        expect((yield* Testing.instantly(run(page))).value).toBe(1)
        yield* TestClock.adjust(100)
      }
      yield* producer.setFailing(false)
      let waited = 0
      while ((yield* Testing.instantly(run(page))).stale) {
        yield* TestClock.adjust(100)
        waited += 100
        if (waited > 3 * WINDOW) break
      }
      expect(waited).toBeLessThanOrEqual(WINDOW)
    }))

  it.scoped("the explorer's back-off comes from FAILURE_BACKOFF and MAX_FAILURE_BACKOFF", () =>
    Effect.gen(function*() {
      const env = new Map([["FAILURE_BACKOFF", "200 millis"], ["MAX_FAILURE_BACKOFF", "400 millis"]])
      const runtime = yield* Layer.build(Memo.layerConfig(AppConfig.memo).pipe(Layer.provide(Redis.layerMemory))).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(env))
      )
      const memo = Layer.succeedContext(runtime)
      let runs = 0
      const failing = Memo.memo({ key: "k", window: "10 seconds", schema: Schema.Number }, Effect.suspend(() => (runs++, Effect.fail("down"))))
      const attempt = () => Effect.flip(Effect.provide(failing, memo))
      const times: Array<number> = []
      for (let t = 0; t < 1_000; t += 50) {
        const before = runs
        yield* Testing.instantly(attempt())
        if (runs > before) times.push(t)
        yield* TestClock.adjust(50)
      }
      // attempts at 0, 200 ms later, then 400 ms later (doubled, at the cap)
      expect(times).toEqual([0, 200, 600])
    }))
})
