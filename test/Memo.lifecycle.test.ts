/**
 * A `Memo` runtime built over and over (a layer provided per request), or closed while its
 * refreshes run, is noticed: one warning per process that says what to do.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Lifecycle from "../src/internal/memo/lifecycle.js"

const capture = (lines: Array<string>) =>
  Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => lines.push(`${logLevel.label} ${String(message)}`)))

const page = Memo.memoWithInfo(
  { key: "page", window: "10 seconds", schema: Schema.Number },
  Effect.succeed(1).pipe(Effect.delay("100 millis"))
)

describe("a Memo runtime built over and over", () => {
  it.scoped("a layer provided per request: one warning that says to provide it once", () =>
    Effect.gen(function*() {
      Lifecycle.reset()
      const lines: Array<string> = []
      const server = Redis.makeMemoryServer()
      // the mistake: the cache layer provided to each request
      const CacheLive = Memo.layer.pipe(Layer.provide(Layer.effect(Redis.Redis, Effect.orDie(Redis.makeMemory({ server })))))
      const request = page.pipe(Effect.provide(CacheLive), Effect.provide(capture(lines)))
      for (let i = 0; i < 10; i++) {
        const f = yield* Effect.fork(request)
        yield* TestClock.adjust(100)
        yield* Fiber.join(f)
        yield* TestClock.adjust(1_000)
      }
      const warnings = lines.filter((l) => l.startsWith("WARN"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("a Memo runtime was built 3 times within a minute")
      expect(warnings[0]).toContain("provide Memo.layer")
      expect(warnings[0]).toContain("never per request")
    }))

  it.scoped("built once: no warning, however long it runs", () =>
    Effect.gen(function*() {
      Lifecycle.reset()
      const lines: Array<string> = []
      const memo = yield* Layer.build(Memo.layer.pipe(Layer.provide(Redis.layerMemory), Layer.provide(capture(lines))))
      for (let i = 0; i < 10; i++) {
        const f = yield* Effect.fork(Effect.provide(page, memo))
        yield* TestClock.adjust(100)
        yield* Fiber.join(f)
        yield* TestClock.adjust(10_000)
      }
      expect(lines.filter((l) => l.startsWith("WARN"))).toEqual([])
    }))

  it.scoped("closed while its refresh runs: the warning says so", () =>
    Effect.gen(function*() {
      Lifecycle.reset()
      const lines: Array<string> = []
      const run = Effect.scoped(Effect.gen(function*() {
        const memo = yield* Layer.build(Memo.layer.pipe(Layer.provide(Redis.layerMemory)))
        // a stale answer, whose refresh the closing scope then cuts short
        return yield* Effect.provide(page, memo)
      })).pipe(Effect.provide(capture(lines)))
      const f = yield* Effect.fork(run)
      yield* TestClock.adjust(50)
      yield* Fiber.interrupt(f)
      const warnings = lines.filter((l) => l.startsWith("WARN"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/a Memo runtime was closed \d+ ms after it was built, with 1 refresh\(es\) still running/)
    }))
})
