/**
 * A window boundary on a process whose clock is a little ahead of the store's (within the skew
 * it does not correct): between its own boundary and the store's, what it holds is still the
 * window's value, and asking the store again for every request there would only say so.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as SpyStore from "./support/spy.js"

const WINDOW = 10_000
const AHEAD_MS = 5

/** `base` plus `ms`; sleeps as long as `base` does. */
const ahead = (base: Clock.Clock, ms: number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() + ms,
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() + BigInt(ms * 1_000_000),
  currentTimeMillis: Effect.sync(() => base.unsafeCurrentTimeMillis() + ms),
  currentTimeNanos: Effect.sync(() => base.unsafeCurrentTimeNanos() + BigInt(ms * 1_000_000)),
  sleep: (duration) => base.sleep(duration)
})

describe("Memo: a process whose clock is a little ahead of the store's", () => {
  it.scoped("sends nothing to the store between its boundary and the store's, and recomputes once at the store's, no request needed", () =>
    Effect.gen(function*() {
      const base = yield* Effect.clock
      const { spy, store } = SpyStore.wrap(yield* Redis.makeMemory({ server: Redis.makeMemoryServer() }))
      // the store keeps its own time
      const onBase = Object.fromEntries(
        Object.entries(store).map(([k, v]) =>
          [k, typeof v === "function" && k !== "subscribe" ? (...args: Array<unknown>) => Effect.withClock(v(...args), base) : v]
        )
      ) as unknown as Redis.Store
      const runtime = yield* Effect.provide(Memo.make({}), Layer.succeed(Redis.Redis, onBase))
      const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.withClock(Effect.provideService(effect, Memo.Memo, runtime), ahead(base, AHEAD_MS))
      const p = yield* Testing.producer((n) => Effect.succeed(n))
      const page = Memo.loader({ key: "dashboard", window: WINDOW, schema: Schema.Number, lookup: () => p.effect })
      expect(yield* run(page.get())).toBe(1)
      // past this process's boundary, before the store's
      yield* TestClock.adjust(WINDOW - AHEAD_MS + 1)
      spy.reset()
      for (let i = 0; i < 5; i++) {
        expect(yield* run(page.get())).toBe(1)
        yield* TestClock.adjust(0)
      }
      expect(spy.total()).toBe(0)
      // past the store's boundary: the key's one worker, waiting for it, runs the window's
      // lookup once, with no request after the boundary to start it
      yield* TestClock.adjust(AHEAD_MS)
      yield* TestClock.adjust(0)
      expect(yield* p.runs).toBe(2)
      expect(spy.calls.claim).toBe(1)
      expect(yield* run(page.get())).toBe(2)
      expect(yield* p.runs).toBe(2)
      expect(spy.calls.claim).toBe(1)
    }))
})
