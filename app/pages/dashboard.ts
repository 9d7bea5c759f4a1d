/**
 * Dashboard: 30-day volume and transaction count, the daily series, active accounts, and how
 * unequal balances are (Gini, top-1% and top-10% share). The balances never leave the producer:
 * the cached value is a few numbers and 30 points.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { Ledger } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { loaders, type Page, periodOf } from "./Page.js"

export const Span = Schema.NullOr(Schema.Struct({ from: Schema.String, to: Schema.String }))

export const Day = Schema.Struct({ day: Schema.String, volume: Schema.Number, transactions: Schema.Number })

export const Dashboard = Schema.Struct({
  span: Span,
  volume: Schema.Number,
  transactions: Schema.Number,
  activeAccounts: Schema.Number,
  accounts: Schema.Number,
  gini: Schema.Number,
  top1Share: Schema.Number,
  top10Share: Schema.Number,
  daily: Schema.Array(Day)
})
export type Dashboard = typeof Dashboard.Type

export const key = "explorer:dashboard:v2"

/** The balances reduced to four numbers, so they never reach the cache. */
const inequality = (balances: ReadonlyArray<number>) => ({
  accounts: balances.length,
  gini: Stats.gini(balances),
  top1Share: Stats.topShare(balances, 0.01),
  top10Share: Stats.topShare(balances, 0.1)
})

export const produce = Effect.gen(function*() {
  const ledger = yield* Ledger
  const span = yield* ledger.span
  if (Option.isNone(span)) {
    const balances = yield* ledger.balances
    return { span: null, volume: 0, transactions: 0, activeAccounts: 0, daily: [], ...inequality(balances) } satisfies Dashboard
  }
  const { from, to } = span.value
  const [balances, totals, daily, activeAccounts] = yield* Effect.all(
    [ledger.balances, ledger.totals(span.value), ledger.daily(span.value), ledger.activeAccounts(span.value)],
    { concurrency: "unbounded" }
  )
  return {
    span: { from, to },
    volume: Stats.units(totals.volume),
    transactions: totals.transactions,
    activeAccounts,
    ...inequality(balances),
    daily: Stats.fillDays(from, to, daily, (day) => ({ day, transactions: 0, volume: 0 })).map((d) => ({
      day: d.day,
      volume: Stats.units(d.volume),
      transactions: d.transactions
    }))
  } satisfies Dashboard
}).pipe(Effect.withSpan("explorer.dashboard"))

export const { loader } = loaders(key, "dashboard", Dashboard, produce)

export const render = (d: Dashboard): Html.Html => {
  if (d.span === null) return Html.emptyLedger
  const points = d.daily.map((p) => ({
    label: p.day.slice(5),
    value: p.volume,
    title: `${p.day}: ${Html.money(p.volume)} in ${Html.count(p.transactions)} transactions`
  }))
  return Html.html`<div class="cards">
  ${Html.card("30-day volume", Html.moneyShort(d.volume))}
  ${Html.card("Transactions", Html.count(d.transactions), `${Html.count(d.transactions / Math.max(1, d.daily.length))} a day`)}
  ${Html.card("Active accounts", Html.count(d.activeAccounts), `of ${Html.count(d.accounts)} accounts`)}
  ${Html.card("Gini of balances", d.gini.toFixed(3), "0 = equal, 1 = one holds all")}
  ${Html.card("Top 1% hold", Html.percent(d.top1Share))}
  ${Html.card("Top 10% hold", Html.percent(d.top10Share))}
</div>
<h2>Daily volume</h2>
${Html.barChart(points, { title: "Volume per day (UTC)", axis: Html.compact })}
<h2>Days</h2>
${
    Html.table<Dashboard["daily"][number]>([
      { label: "Day", cell: (r) => r.day },
      { label: "Transactions", cell: (r) => Html.count(r.transactions), numeric: true },
      { label: "Volume", cell: (r) => Html.money(r.volume), numeric: true }
    ], [...d.daily].reverse())
  }`
}

export const page: Page<Dashboard> = {
  name: "dashboard",
  title: "Dashboard",
  path: "/",
  api: "/api/dashboard",
  key,
  loader,
  toJson: Schema.encodeSync(Dashboard),
  render,
  period: periodOf
}
