import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Memo, Redis } from "lockstep"

const Dashboard = Schema.Struct({ volume: Schema.Number, activeAccounts: Schema.Number })

// Stands in for the expensive aggregate (a 30-day GROUP BY over the ledger).
const aggregate = Effect.succeed({ volume: 1_250_000, activeAccounts: 4_210 }).pipe(Effect.delay("200 millis"))

const dashboard = Memo.memoWithInfo({ key: "dashboard", window: "1 minute", schema: Dashboard }, aggregate)

// Build the runtime once, at module level: it holds the cache (L1, Redis connection, background
// refreshes). A runtime, or an Effect.provide(layer), per request would start from an empty
// cache every time: miss, miss, miss.
export const runtime = ManagedRuntime.make(Memo.layer.pipe(Layer.provide(Redis.layerFromEnv)))

// A Promise-based framework's loader or route handler (React Router, Next.js, SvelteKit, Express…).
export async function loader(): Promise<Response> {
  const info = await runtime.runPromise(dashboard)
  return Response.json(info.value, { headers: { "x-cache": info.cache } })
}

// When the server shuts down: await runtime.dispose()
