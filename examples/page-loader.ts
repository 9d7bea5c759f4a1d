import { Effect, Layer, Schema } from "effect"
import { Memo, Redis } from "lockstep"

// The value crosses Redis through its Schema: a stored blob that no longer decodes is recomputed.
const Dashboard = Schema.Struct({
  volume: Schema.Number,
  activeAccounts: Schema.Number
})

// Stands in for the expensive aggregate (a 30-day GROUP BY over the ledger).
const aggregate = Effect.succeed({ volume: 1_250_000, activeAccounts: 4_210 }).pipe(
  Effect.delay("200 millis")
)

// One run per minute for the whole fleet; every other request is served from cache, stale
// values at once while the next one is computed.
export const dashboard = Memo.memoWithInfo(
  { key: "dashboard", window: "1 minute", schema: Dashboard },
  aggregate
)

// Redis when REDIS_HOST is set, else an in-memory store for a single process.
export const CacheLive = Memo.layer.pipe(Layer.provide(Redis.layerFromEnv))

export const program = Effect.gen(function*() {
  const info = yield* dashboard
  yield* Effect.log(`volume ${info.value.volume}, ${info.cache}, next refresh at ${new Date(info.nextBoundary).toISOString()}`)
  return info
})

// Effect.runPromise(program.pipe(Effect.provide(CacheLive)))
