import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Schema, TestClock } from "effect"
import { Memo } from "lockstep"
import * as Testing from "lockstep/testing"

// The page loader under test: the dashboard's aggregate, computed at most once a minute.
class Ledger extends Context.Tag("Ledger")<Ledger, { readonly volume: Effect.Effect<number> }>() {}

const Dashboard = Schema.Struct({ volume: Schema.Number })

const dashboard = Memo.memoWithInfo(
  { key: "dashboard", window: "1 minute", schema: Dashboard },
  Effect.map(Effect.flatMap(Ledger, (ledger) => ledger.volume), (volume) => ({ volume }))
)

describe("dashboard loader", () => {
  it.effect("serves the last value across a window boundary, then the fresh one", () =>
    Effect.gen(function*() {
      // A query that takes 2 (virtual) seconds and returns 100 on its first run, 200 on its second.
      const query = yield* Testing.producer((run) => Effect.succeed(run * 100), { duration: "2 seconds" })
      const page = Effect.provideService(dashboard, Ledger, { volume: query.effect })

      // Cold start: the first request waits for the query.
      const first = yield* Effect.fork(page)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(first)).toMatchObject({ value: { volume: 100 }, cache: "miss", stale: false })

      // Next window: the last value is served at once while the query reruns in the background.
      yield* TestClock.adjust("1 minute")
      expect(yield* page).toMatchObject({ value: { volume: 100 }, cache: "stale", stale: true })
      yield* TestClock.adjust("2 seconds")
      expect(yield* page).toMatchObject({ value: { volume: 200 }, cache: "hit", stale: false })

      // Two windows, two runs, however many requests.
      expect(yield* query.runs).toBe(2)
    }).pipe(Effect.provide(Testing.layer)))
})
