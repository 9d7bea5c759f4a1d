/**
 * One item (`/market/items/:id`): its market trades over the last 30 days, with quantity,
 * volume, and the median and mean unit price per day. Reads the item's rows only
 * (`ledger_item_kind_ts`).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { type ItemInfo, type ItemTrades, Ledger, type Span as LedgerSpan } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { Span } from "./dashboard.js"
import { type Drill, drillLoader, found, fromBatch, itemHref } from "./Drill.js"
import { periodOf, Timed } from "./Page.js"

export const Day = Schema.Struct({
  day: Schema.String,
  trades: Schema.Number,
  quantity: Schema.Number,
  volume: Schema.Number,
  /** `null` on a day without trades. */
  medianUnitPrice: Schema.NullOr(Schema.Number),
  meanUnitPrice: Schema.NullOr(Schema.Number)
})

export const ItemPage = Schema.Struct({
  span: Span,
  item: Schema.Struct({ id: Schema.Number, name: Schema.String }),
  trades: Schema.Number,
  quantity: Schema.Number,
  volume: Schema.Number,
  /** Over all the span's trades; 0 without trades. */
  medianUnitPrice: Schema.Number,
  meanUnitPrice: Schema.Number,
  /** Every day of the span. */
  daily: Schema.Array(Day)
})
export type ItemPage = typeof ItemPage.Type

export const keyPrefix = "explorer:item:v1:"
export const tag = "items"

/** The page from the item's rows: the same function for one item (`produce`) and for a batch (`produceMany`). */
export const build = (item: ItemInfo, span: Option.Option<LedgerSpan>, t: ItemTrades): ItemPage => {
  if (Option.isNone(span)) {
    return { span: null, item, trades: 0, quantity: 0, volume: 0, medianUnitPrice: 0, meanUnitPrice: 0, daily: [] }
  }
  const { from, to } = span.value
  const trades = t.daily.reduce((n, d) => n + d.trades, 0)
  const priceSum = t.daily.reduce((n, d) => n + d.priceSum, 0)
  return {
    span: span.value,
    item: { id: item.id, name: item.name },
    trades,
    quantity: t.daily.reduce((n, d) => n + d.quantity, 0),
    volume: Stats.units(t.daily.reduce((n, d) => n + d.volume, 0)),
    medianUnitPrice: Stats.units(t.medianPrice),
    meanUnitPrice: trades === 0 ? 0 : Stats.units(priceSum / trades),
    daily: Stats.fillDays(from, to, t.daily, (day) => ({ day, trades: 0, quantity: 0, volume: 0, priceSum: 0, medianPrice: 0 })).map((d) => ({
      day: d.day,
      trades: d.trades,
      quantity: d.quantity,
      volume: Stats.units(d.volume),
      medianUnitPrice: d.trades === 0 ? null : Stats.units(d.medianPrice),
      meanUnitPrice: d.trades === 0 ? null : Stats.units(d.priceSum / d.trades)
    }))
  }
}

const noTrades: ItemTrades = { daily: [], medianPrice: 0 }

export const produce = (id: number) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const [item, span] = yield* Effect.all([found("item", id, ledger.itemInfo(id)), ledger.span], { concurrency: "unbounded" })
    const trades = Option.isNone(span) ? noTrades : yield* ledger.itemTrades(id, span.value)
    return build(item, span, trades)
  }).pipe(Effect.withSpan("explorer.item", { attributes: { "explorer.id": id } }))

/** Many items' pages from one ledger statement, in the order of `ids`. */
export const produceMany = (ids: ReadonlyArray<number>) =>
  Effect.flatMap(Ledger, (ledger) => ledger.itemsMany(ids)).pipe(
    Effect.flatMap((batch) => fromBatch("item", ids, batch, (rows, span) => build(rows.info, span, rows.trades))),
    Effect.withSpan("explorer.items", { attributes: { "explorer.count": ids.length } })
  )

const stored = Timed(ItemPage)

/**
 * The page stands while the ledger's span is the same, the item has no trade newer than the page,
 * and the span holds as many of its trades as the page counted (a trade recorded late, under an
 * earlier time, changes the count): one index range instead of the aggregate.
 */
export const stillCurrent = (id: number, previous: ItemPage, computedAt: number) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const span = yield* ledger.span
    if (Option.isNone(span)) return previous.span === null
    if (previous.span === null || span.value.from !== previous.span.from || span.value.to !== previous.span.to) return false
    const { last, trades } = yield* ledger.itemLastTrade(id, span.value)
    return trades === previous.trades && Option.match(last, { onNone: () => true, onSome: (at) => at < computedAt })
  }).pipe(Effect.withSpan("explorer.item.stillCurrent", { attributes: { "explorer.id": id } }))

export const loader = drillLoader({ keyPrefix, tag, stored, produce, produceMany, stillCurrent })

type Row = ItemPage["daily"][number]

export const render = (p: ItemPage): Html.Html => {
  const back = Html.html`<p class="crumbs">${Html.link("/market", "Market")} › item ${p.item.id}</p>`
  if (p.span === null) return Html.html`${back}${Html.emptyLedger}`
  const traded = p.daily.filter((d) => d.trades > 0)
  return Html.html`${back}
<div class="cards">
  ${Html.card("Trades", Html.count(p.trades), `${Html.count(traded.length)} of ${Html.count(p.daily.length)} days`)}
  ${Html.card("Quantity", Html.count(p.quantity))}
  ${Html.card("Volume", Html.moneyShort(p.volume))}
  ${Html.card("Median unit price", Html.money(p.medianUnitPrice))}
  ${Html.card("Mean unit price", Html.money(p.meanUnitPrice))}
</div>
<h2>Volume per day</h2>
${
    Html.barChart(p.daily.map((d) => ({
      label: d.day.slice(5),
      value: d.volume,
      title: `${d.day}: ${Html.money(d.volume)} in ${Html.count(d.trades)} trades`
    })), { title: "Market volume per day (UTC)", axis: Html.compact })
  }
<h2>Median unit price per day</h2>
${
    traded.length === 0
      ? Html.html`<p class="empty">No market trades of this item in this period.</p>`
      : Html.lineChart(traded.map((d) => ({
        label: d.day.slice(5),
        value: d.medianUnitPrice ?? 0,
        title: `${d.day}: median ${Html.money(d.medianUnitPrice ?? 0)}, mean ${Html.money(d.meanUnitPrice ?? 0)}`
      })), { title: "Median unit price on days with trades (UTC)", axis: Html.compact })
  }
<h2>Days with trades</h2>
${
    Html.table<Row>([
      { label: "Day", cell: (r) => r.day },
      { label: "Trades", cell: (r) => Html.count(r.trades), numeric: true },
      { label: "Quantity", cell: (r) => Html.count(r.quantity), numeric: true },
      { label: "Volume", cell: (r) => Html.money(r.volume), numeric: true },
      { label: "Median unit price", cell: (r) => Html.money(r.medianUnitPrice ?? 0), numeric: true },
      { label: "Mean unit price", cell: (r) => Html.money(r.meanUnitPrice ?? 0), numeric: true }
    ], [...traded].reverse(), "No market trades of this item in this period.")
  }`
}

export const drill: Drill<ItemPage> = {
  name: "item",
  kind: "item",
  section: "market",
  path: "/market/items/:id",
  api: "/api/market/items/:id",
  href: itemHref,
  keyPrefix,
  tag,
  loader,
  title: (p) => p.item.name,
  toJson: Schema.encodeSync(ItemPage),
  render,
  period: periodOf
}
