// The same consumer as a CommonJS module (typed.ts is ESM): lockstep's `require` declarations.
// The `@ts-expect-error` lines prove the types are real, not `any`.
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Memo, Redis } from "lockstep"
import * as Testing from "lockstep/testing"

const Dashboard = Schema.Struct({ volume: Schema.Number })

const dashboard = Memo.memoWithInfo(
  { key: "dashboard", window: "1 minute", schema: Dashboard },
  Effect.succeed({ volume: 1_250_000 })
)

export const CacheLive = Memo.layer.pipe(Layer.provide(Redis.layerMemory))

export const program = Effect.gen(function*() {
  const info = yield* dashboard
  const volume: number = info.value.volume
  const cache: "hit" | "stale" | "miss" = info.cache
  // @ts-expect-error the value is typed by its schema: volume is a number
  const wrong: string = info.value.volume
  const plain = yield* Memo.memo({ key: "plain", window: "1 minute", schema: Schema.String }, Effect.succeed("text"))
  return { volume, cache, wrong, plain: plain.toUpperCase(), nextBoundary: info.nextBoundary + 0 }
})

// @ts-expect-error the cache is a requirement: the program cannot run without Memo.layer
Effect.runPromise(program)

export const runtime = ManagedRuntime.make(CacheLive)
export const run = () => runtime.runPromise(program)

export const counted = Effect.gen(function*() {
  const query = yield* Testing.producer((run) => Effect.succeed(run * 100), { duration: "2 seconds" })
  return yield* query.runs
}).pipe(Effect.provide(Testing.layer))
