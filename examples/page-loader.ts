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

// Provide CacheLive once, where the application starts, so that every request shares one cache:
// Effect.runPromise(Effect.provide(Effect.replicateEffect(program, 3), CacheLive)) logs miss, hit, hit.
// Effect.provide(CacheLive) on each request instead builds a new, empty cache every time: miss,
// miss, miss. For a Promise-based framework, see examples/managed-runtime.ts.
