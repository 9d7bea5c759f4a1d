/**
 * Economy health: money supply now and 30 days ago, where money comes from (sources: rows
 * without a payer) and where it goes (sinks: rows without a payee) by kind, how fast it
 * circulates (velocity), and the daily trend.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { Ledger } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { Span } from "./dashboard.js"
import { loaders, type Page, periodOf } from "./Page.js"

export const Flow = Schema.Struct({ kind: Schema.String, amount: Schema.Number, transactions: Schema.Number })

export const Health = Schema.Struct({
  span: Span,
  /** Money in all accounts at the end of the ledger. */
  moneySupply: Schema.Number,
  /** Money in all accounts when the 30 days began. */
  supplyAtStart: Schema.Number,
  minted: Schema.Number,
  burned: Schema.Number,
  /** Money moved between accounts in the 30 days. */
  circulating: Schema.Number,
  /** `circulating / moneySupply`: how often the average coin changed hands in 30 days. */
  velocity: Schema.Number,
  changeRatio: Schema.Number,
  trend: Schema.Literal("growing", "shrinking", "stable"),
  sources: Schema.Array(Flow),
  sinks: Schema.Array(Flow),
  byKind: Schema.Array(Schema.Struct({ kind: Schema.String, transactions: Schema.Number, volume: Schema.Number })),
  daily: Schema.Array(Schema.Struct({
    day: Schema.String,
    minted: Schema.Number,
    burned: Schema.Number,
    circulating: Schema.Number,
    /** Money supply at the end of the day. */
    supply: Schema.Number
  }))
})
export type Health = typeof Health.Type

export const key = "explorer:health:v2"

/** Supply changes within ±1% over the span count as stable. */
export const stableBand = 0.01

export const produce = Effect.gen(function*() {
  const ledger = yield* Ledger
  const span = yield* ledger.span
  if (Option.isNone(span)) {
    const supply = yield* ledger.moneySupply
    return {
      span: null,
      moneySupply: Stats.units(supply),
      supplyAtStart: Stats.units(supply),
      minted: 0,
      burned: 0,
      circulating: 0,
      velocity: 0,
      changeRatio: 0,
      trend: "stable",
      sources: [],
      sinks: [],
      byKind: [],
      daily: []
    } satisfies Health
  }
  const { from, to } = span.value
  const [supply, flows, dailyFlows] = yield* Effect.all(
    [ledger.moneySupply, ledger.flows(span.value), ledger.dailyFlows(span.value)],
    { concurrency: "unbounded" }
  )
  const minted = flows.reduce((sum, f) => sum + f.minted, 0)
  const burned = flows.reduce((sum, f) => sum + f.burned, 0)
  const circulating = dailyFlows.reduce((sum, d) => sum + d.circulating, 0)
  const atStart = supply - minted + burned
  const changeRatio = atStart === 0 ? 0 : (supply - atStart) / atStart
  let running = atStart
  const daily = Stats.fillDays(from, to, dailyFlows, (day) => ({ day, minted: 0, burned: 0, circulating: 0 })).map((d) => {
    running += d.minted - d.burned
    return {
      day: d.day,
      minted: Stats.units(d.minted),
      burned: Stats.units(d.burned),
      circulating: Stats.units(d.circulating),
      supply: Stats.units(running)
    }
  })
  return {
    span: span.value,
    moneySupply: Stats.units(supply),
    supplyAtStart: Stats.units(atStart),
    minted: Stats.units(minted),
    burned: Stats.units(burned),
    circulating: Stats.units(circulating),
    velocity: supply <= 0 ? 0 : circulating / supply,
    changeRatio,
    trend: changeRatio > stableBand ? "growing" : changeRatio < -stableBand ? "shrinking" : "stable",
    sources: flows.filter((f) => f.minted > 0).map((f) => ({ kind: f.kind, amount: Stats.units(f.minted), transactions: f.transactions })),
    sinks: flows.filter((f) => f.burned > 0).map((f) => ({ kind: f.kind, amount: Stats.units(f.burned), transactions: f.transactions })),
    byKind: flows.map((f) => ({ kind: f.kind, transactions: f.transactions, volume: Stats.units(f.volume) })),
    daily
  } satisfies Health
}).pipe(Effect.withSpan("explorer.health"))

export const { loader } = loaders(key, "health", Health, produce)

const flowTable = (rows: ReadonlyArray<Health["sources"][number]>, empty: string) =>
  Html.table<Health["sources"][number]>([
    { label: "Kind", cell: (r) => r.kind },
    { label: "Transactions", cell: (r) => Html.count(r.transactions), numeric: true },
    { label: "Amount", cell: (r) => Html.money(r.amount), numeric: true }
  ], rows, empty)

export const render = (h: Health): Html.Html => {
  if (h.span === null) return Html.emptyLedger
  const sign = h.changeRatio >= 0 ? "+" : ""
  return Html.html`<div class="cards">
  ${Html.card("Money supply", Html.moneyShort(h.moneySupply), `${sign}${Html.percent(h.changeRatio)} in 30 days: ${h.trend}`)}
  ${Html.card("Created (sources)", Html.moneyShort(h.minted))}
  ${Html.card("Destroyed (sinks)", Html.moneyShort(h.burned))}
  ${Html.card("Net issuance", Html.moneyShort(h.minted - h.burned))}
  ${Html.card("Velocity", h.velocity.toFixed(2), "30-day circulation ÷ supply")}
  ${Html.card("Circulating volume", Html.moneyShort(h.circulating))}
</div>
<h2>Money supply at the end of each day</h2>
${
    Html.lineChart(h.daily.map((d) => ({ label: d.day.slice(5), value: d.supply, title: `${d.day}: ${Html.money(d.supply)}` })), {
      title: "Money supply (UTC days)",
      axis: Html.compact
    })
  }
<div class="grid2">
  <section><h2>Sources</h2>${flowTable(h.sources, "No money was created in this period.")}</section>
  <section><h2>Sinks</h2>${flowTable(h.sinks, "No money was destroyed in this period.")}</section>
</div>
<h2>Activity by kind</h2>
${
    Html.table<Health["byKind"][number]>([
      { label: "Kind", cell: (r) => r.kind },
      { label: "Transactions", cell: (r) => Html.count(r.transactions), numeric: true },
      { label: "Volume", cell: (r) => Html.money(r.volume), numeric: true }
    ], h.byKind)
  }`
}

export const page: Page<Health> = {
  name: "health",
  title: "Economy health",
  path: "/economy/health",
  api: "/api/economy/health",
  key,
  loader,
  toJson: Schema.encodeSync(Health),
  render,
  period: periodOf
}
