import { Effect, Option, Schema } from "effect"
import { Memo } from "lockstep"

const ItemStats = Schema.Struct({ id: Schema.Number, trades: Schema.Number })

// Stand in for the database: one item's aggregate, many items' in one query, and the cheap
// indexed question "when did this item last trade?".
export const queries = { one: 0, many: 0 }
const itemStats = (id: number) => Effect.sync(() => (queries.one++, { id, trades: 10 * id }))
const itemStatsMany = (ids: ReadonlyArray<number>) => Effect.sync(() => (queries.many++, ids.map((id) => ({ id, trades: 10 * id }))))
const lastTrade = (_id: number) => Effect.succeed(0)

export const items = Memo.loader({
  key: (id: number) => `market:item:${id}`,
  window: "1 minute",
  schema: ItemStats,
  name: "item", // the metrics' `loader` label, the spans' `lockstep.loader`
  tags: ["items"],
  // `previous`: the value this run replaces (from L1, or decoded from the store); `None` when cold
  lookup: (id: number, previous) =>
    Effect.gen(function*() {
      // nothing changed since the previous value: it stands for this window, without its payload
      // being encoded or sent again
      if (Option.isSome(previous) && (yield* lastTrade(id)) < previous.value.computedAt) return Memo.unchanged
      return yield* itemStats(id)
    }),
  // getMany's misses: one query per batch of (at most batchSize) keys, values in the order of ids
  lookupMany: itemStatsMany,
  batchSize: 100
})

// A list page: 200 rows, L1's inline, every other one read from the store in one round trip, the
// keys with no value anywhere looked up together (each under its own fleet lock).
export const marketPage = items.getMany(Array.from({ length: 200 }, (_, i) => i + 1))

// Deleted for good: every process forgets it, and the next request is cold.
export const afterDelete = (id: number) => items.purge(id)

// Every key given the tag, on every process; answers how many keys it reached.
export const afterReset = Memo.purgeTag("items")
