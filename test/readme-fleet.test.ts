import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schema, TestClock } from "effect"
import { Memo } from "lockstep"
import * as Testing from "lockstep/testing"

describe("a fleet of four pods", () => {
  it.scoped("runs the producer once for all of them", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(4)
      const load = yield* Testing.producer(Effect.succeed(42), { duration: "1 second" })
      const page = Memo.memo({ key: "page", window: "1 minute", schema: Schema.Number }, load.effect)

      const requests = yield* Effect.forEach(fleet.pods, (pod) => Effect.fork(pod.run(page)))
      // One pod takes the lock and runs the producer for 1 (virtual) second. The other three
      // poll the store every `pollInterval` (50 ms), so time must move past the run's end for
      // them to see the value: adjusting by exactly "1 second" would leave them waiting.
      yield* TestClock.adjust("2 seconds")

      expect(yield* Effect.forEach(requests, Fiber.join)).toEqual([42, 42, 42, 42])
      expect(yield* load.runs).toBe(1)
    }))
})
