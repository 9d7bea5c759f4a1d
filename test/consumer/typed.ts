// A TypeScript consumer, type-checked under several `moduleResolution`s against lockstep's
// declarations. The `@ts-expect-error` lines prove the types are real, not `any`.
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Memo, Redis } from "lockstep"
import { createCache } from "lockstep/promise"
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

// the Promise facade: the value typed by its schema, no Effect type in sight

const facade = createCache()
const counts = facade.loader({ key: (id: number) => `count:${id}`, window: "1 minute", schema: Schema.Number, lookup: async (id) => id })
export const count = async (): Promise<number> => counts.get(1)
// @ts-expect-error the key is a number
export const wrongKey = () => counts.get("one")

// the Next.js handler: Next's interface, no Next types needed
import * as Next from "lockstep/next"

export const nextHandler: Next.CacheHandler = Next.make()
// @ts-expect-error get takes the soft tags too
export const wrongGet = () => nextHandler.get("key")
