/**
 * A `Memo` runtime built over and over (a layer provided per request), or closed while its
 * refreshes run, is noticed: one warning per process that says what to do.
 */
import { describe, expect, inject, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Lifecycle from "../src/internal/memo/lifecycle.js"

const capture = (lines: Array<string>) =>
  Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => lines.push(`${logLevel.label} ${String(message)}`)))

const page = Memo.memoWithInfo(
  { key: "page", window: "10 seconds", schema: Schema.Number },
  Effect.succeed(1).pipe(Effect.delay("100 millis"))
)

const hanging = Memo.memo({ key: "hanging", window: "10 seconds", schema: Schema.Number }, Effect.never)

describe("a Memo runtime built over and over", () => {
  it.scopedLive("a layer provided per request: one warning that says to provide it once", () =>
    Effect.gen(function*() {
      Lifecycle.reset()
      const lines: Array<string> = []
      // the mistake: the cache layer provided to each request
      const CacheLive = Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: "127.0.0.1", port: inject("redisPort") }, tenant: "lifecycle" })))
      const request = page.pipe(Effect.provide(CacheLive), Effect.provide(capture(lines)))
      for (let i = 0; i < 5; i++) yield* request
      const warnings = lines.filter((l) => l.startsWith("WARN"))
      expect(warnings).toHaveLength(1)
      // whichever it noticed first: the third build, or a runtime closed under its own refresh
      expect(warnings[0]).toMatch(/a Memo runtime was (built 3 times within a minute|closed \d+ ms after it was built, with 1 refresh\(es\) still running)/)
      expect(warnings[0]).toContain("provide Memo.layer")
      expect(warnings[0]).toContain("never per request")
    }), 30_000)

  it.scoped("in memory (a test suite's runtime per test): no warning", () =>
    Effect.gen(function*() {
      Lifecycle.reset()
      const lines: Array<string> = []
      for (let i = 0; i < 5; i++) yield* Effect.scoped(Layer.build(Memo.layer.pipe(Layer.provide(Redis.layerMemory), Layer.provide(capture(lines)))))
      expect(lines.filter((l) => l.startsWith("WARN"))).toEqual([])
    }))

  it.scoped("built once: no warning, however long it runs", () =>
    Effect.gen(function*() {
      Lifecycle.reset()
      const lines: Array<string> = []
      const memo = yield* Layer.build(
        Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: "127.0.0.1", port: inject("redisPort") }, tenant: "lifecycle-once" })), Layer.provide(capture(lines)))
      )
      for (let i = 0; i < 10; i++) {
        const f = yield* Effect.fork(Effect.provide(page, memo))
        yield* TestClock.adjust(100)
        yield* Fiber.join(f)
        yield* TestClock.adjust(10_000)
      }
      expect(lines.filter((l) => l.startsWith("WARN"))).toEqual([])
    }))

  it.scopedLive("closed while its refresh runs: the warning says so", () =>
    Effect.gen(function*() {
      Lifecycle.reset()
      const lines: Array<string> = []
      const run = Effect.scoped(Effect.gen(function*() {
        const memo = yield* Layer.build(
          Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: "127.0.0.1", port: inject("redisPort") }, tenant: `lifecycle-${Date.now()}` })))
        )
        // a cold request, whose lookup the closing scope then cuts short
        return yield* Effect.provide(hanging, memo)
      })).pipe(Effect.provide(capture(lines)))
      const f = yield* Effect.fork(run)
      yield* Effect.sleep("500 millis")
      yield* Fiber.interrupt(f)
      const warnings = lines.filter((l) => l.startsWith("WARN"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/a Memo runtime was closed \d+ ms after it was built, with 1 refresh\(es\) still running/)
    }), 30_000)
})
