/**
 * Redis down at start-up: the layer goes on degraded after `connectTimeout`, a first request
 * for a cold key is answered within `connectTimeout` + 1 s, and nothing lockstep does holds a
 * request or the shutdown without a bound: with nothing listening, and with a black hole that
 * accepts connections and never answers.
 */
import { describe, expect, inject, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schema, Scope } from "effect"
import { Memo, Redis } from "../src/index.js"
import { startProxy } from "./support/proxy.js"
import { freePort } from "./support/services.js"

const CONNECT_TIMEOUT = 1_000

const page = Memo.loader({ key: "cold", window: "10 seconds", schema: Schema.Number, lookup: () => Effect.succeed(42) })

/** From building the layers to the first answer, then the shutdown, in real milliseconds. */
const measure = (port: number) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const started = performance.now()
    const memo = yield* Layer.buildWithScope(
      Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: "127.0.0.1", port }, connectTimeout: CONNECT_TIMEOUT }))),
      scope
    )
    const builtMs = performance.now() - started
    const value = yield* Effect.provide(page.get(), memo)
    const answeredMs = performance.now() - started
    const closing = performance.now()
    yield* Scope.close(scope, Exit.void)
    return { value, builtMs, answeredMs, shutdownMs: performance.now() - closing }
  })

describe("Redis down at start-up", () => {
  it.live("nothing listens: the first request is answered within connectTimeout + 1 s, the shutdown is bounded", () =>
    Effect.gen(function*() {
      const m = yield* measure(yield* Effect.promise(freePort))
      console.log("redis-down-at-start (closed port)", m)
      expect(m.value).toBe(42)
      expect(m.answeredMs).toBeLessThan(CONNECT_TIMEOUT + 1_000)
      expect(m.shutdownMs).toBeLessThan(2_000)
    }), 20_000)

  it.scopedLive("a black hole: the first request is answered within connectTimeout + 1 s, the shutdown is bounded", () =>
    Effect.gen(function*() {
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => startProxy({ targetPort: inject("redisPort") })),
        (p) => Effect.promise(() => p.close())
      )
      proxy.blackHole()
      const m = yield* measure(proxy.port)
      console.log("redis-down-at-start (black hole)", m)
      expect(m.value).toBe(42)
      expect(m.answeredMs).toBeLessThan(CONNECT_TIMEOUT + 1_000)
      expect(m.shutdownMs).toBeLessThan(2_000)
    }), 20_000)
})
