import { Effect, Schema } from "effect"
import { Memo } from "lockstep"

const Dashboard = Schema.Struct({ volume: Schema.Number })

// Stands in for the expensive aggregate.
const aggregate = Effect.succeed({ volume: 1_250_000 }).pipe(Effect.delay("200 millis"))

// A fixed key: the same values as Memo.memo({ key: "dashboard", window: "1 minute", ... }), with
// the operations on them.
export const dashboard = Memo.loader({
  key: "dashboard",
  window: "1 minute",
  schema: Dashboard,
  lookup: () => aggregate,
  tags: ["pages"]
})

// After a write the page depends on: every pod serves the last value at once, marked stale, and
// one recompute runs for the fleet.
export const afterWrite = dashboard.invalidate()

// Every key given the tag "pages", on every pod; answers how many keys it reached.
export const afterDeploy = Memo.invalidateTag("pages")

// Recompute now (one run fleet-wide) and answer the new value: an admin's "refresh" button.
export const refreshNow = dashboard.refresh()

// A value computed elsewhere becomes this window's, fenced like a commit.
export const publish = (volume: number) => dashboard.set(undefined, { volume })
