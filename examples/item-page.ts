import { Context, Effect, Layer, Option, Schema } from "effect"
import { Memo, Redis } from "lockstep"

const ItemStats = Schema.Struct({ id: Schema.Number, trades: Schema.Number, volume: Schema.Number })

// A service the lookup reads: the lookup gets the services of the request that starts its run.
export class Ledger extends Context.Tag("Ledger")<Ledger, {
  readonly itemStats: (id: number) => Effect.Effect<typeof ItemStats.Type>
}>() {}

// Stands in for one item's aggregate (an indexed range scan of the ledger).
export const LedgerLive = Layer.succeed(Ledger, {
  itemStats: (id) => Effect.succeed({ id, trades: 3 * id, volume: 100 * id }).pipe(Effect.delay("100 millis"))
})

// Defined once, at module level: one definition serves every item, one key per id.
export const itemPage = Memo.loader({
  key: (id: number) => `market:item:${id}`,
  window: "1 minute",
  schema: ItemStats,
  lookup: (id: number) => Effect.flatMap(Ledger, (ledger) => ledger.itemStats(id)),
  timeout: "2 seconds", // a cold request waits at most this long, then fails with WaitTimeout
  retain: "7 days", // the records of an item nobody reads for a week leave the store
  tags: (id) => ["items", `item:${id}`] // for Memo.invalidateTag
})

// A route handler: the value and the headers that go with it.
export const handle = (id: number) =>
  Effect.map(itemPage.getWithInfo(id), (info) => ({ body: info.value, headers: Memo.cacheHeaders(info) }))

// What is held (L1 or the store), never running the lookup: None for an item nobody asked for.
export const lastKnown = (id: number) => Effect.map(itemPage.peek(id), Option.map((info) => info.value))

// The busiest item is computed before every window boundary: its first request is a hit.
const KeepWarmLive = Layer.scopedDiscard(Memo.keepWarm(itemPage, 1, { lag: "100 millis" }))

// Built once, where the application starts.
export const AppLive = KeepWarmLive.pipe(
  Layer.provideMerge(Memo.layer.pipe(Layer.provide(Redis.layerFromEnv))),
  Layer.provideMerge(LedgerLive)
)
