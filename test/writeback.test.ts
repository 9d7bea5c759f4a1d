/**
 * The degraded write-back on a real redis-server: a process cut off from Redis (a black hole
 * between them: no answer, no reset) runs the lookup on its own once `degradedAfter` has passed
 * the boundary, and once Redis answers again the value it made is offered back and lands (newer
 * window wins), with no second run.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, Option, Schema } from "effect"
import { inject } from "vitest"
import { Memo, Redis } from "../src/index.js"
import { startProxy } from "./support/proxy.js"
import { freshTenant } from "./support/stores.js"

const W = 4_000

describe("degraded write-back on a real redis-server", () => {
  it.scopedLive("a value made while Redis was unreachable is written back once it answers, and is what the store holds", () =>
    Effect.gen(function*() {
      const redisPort = inject("redisPort")
      const proxy = yield* Effect.acquireRelease(Effect.promise(() => startProxy({ targetPort: redisPort })), (p) => Effect.promise(() => p.close()))
      const tenant = freshTenant("writeback")
      const through = Redis.layer({ tenant, redis: { host: "127.0.0.1", port: proxy.port }, commandTimeout: "300 millis", breakerCooldown: "500 millis" })
      const runtime = yield* Layer.build(
        Memo.layerWith({ degradedAfter: "100 millis", redisRetry: "100 millis" }).pipe(Layer.provide(through))
      )
      // the store as it is, on a connection of its own
      const direct = yield* Layer.build(Redis.layer({ tenant, redis: { host: "127.0.0.1", port: redisPort } }))
      const stored = Effect.map(Effect.provide(Effect.flatMap(Redis.Redis, (s) => s.get("page")), direct), (r) => r.stored)
      let runs = 0
      const page = Memo.loader({
        key: "page",
        window: W,
        schema: Schema.Struct({ run: Schema.Number }),
        lookup: () => Effect.sync(() => ({ run: ++runs }))
      })
      const get = Effect.provide(page.getWithInfo(), runtime)

      // a value of the window before, committed under the lock
      yield* Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(W - (now % W) + 50))
      expect(yield* get).toMatchObject({ value: { run: 1 }, cache: "miss" })
      // (the miss is answered before its commit's round trip)
      let committed = Option.none<Redis.Stored>()
      for (let i = 0; i < 40 && Option.isNone(committed); i++) {
        committed = yield* stored
        if (Option.isNone(committed)) yield* Effect.sleep(25)
      }
      const before = Option.getOrThrow(committed)
      expect(before.fence).toBeGreaterThan(0)

      // the next window opens with Redis out of reach: the process serves its value, stale, and
      // past degradedAfter runs the lookup on its own
      yield* Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(W - (now % W) + 50))
      proxy.blackHole()
      const bucket = Math.floor((yield* Clock.currentTimeMillis) / W)
      expect(yield* get).toMatchObject({ value: { run: 1 }, cache: "stale" })
      yield* Effect.sleep(1_000)
      for (let i = 0; i < 20 && runs < 2; i++) {
        yield* get
        yield* Effect.sleep(100)
      }
      expect(runs, "a run of its own while Redis was out of reach").toBe(2)
      // nothing reached the store meanwhile
      expect(Option.getOrThrow(yield* stored).fence).toBe(before.fence)

      // Redis answers again, well inside the window: the value is offered back and lands
      proxy.normal()
      let landed = Option.none<Redis.Stored>()
      for (let i = 0; i < 40; i++) {
        landed = Option.filter(yield* stored, (s) => s.bucket === bucket)
        if (Option.isSome(landed)) break
        yield* Effect.sleep(50)
      }
      expect(Math.floor((yield* Clock.currentTimeMillis) / W), "still the window the value was made in").toBe(bucket)
      const back = Option.getOrThrow(landed)
      // the written-back value itself: made without the lock (fence 0), of that window, run 2's
      expect({ bucket: back.bucket, fence: back.fence, data: JSON.parse(back.data) }).toEqual({ bucket, fence: 0, data: { run: 2 } })
      expect(runs, "no second run for the window").toBe(2)
    }), 30_000)
})
