/**
 * Market: per-item trade volume, median and mean unit price, and the top items, over the last
 * 30 days of market trades.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { Ledger } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { Span } from "./dashboard.js"
import { itemHref } from "./Drill.js"
import { loaders, type Page, periodOf } from "./Page.js"

export const Item = Schema.Struct({
  /** The item's id: its page is `/market/items/<id>`. */
  id: Schema.Number,
  item: Schema.String,
  trades: Schema.Number,
  quantity: Schema.Number,
  volume: Schema.Number,
  medianUnitPrice: Schema.Number,
  meanUnitPrice: Schema.Number,
  /** Share of all market volume. */
  share: Schema.Number
})

export const Market = Schema.Struct({
  span: Span,
  volume: Schema.Number,
  trades: Schema.Number,
  /** By volume, highest first. */
  items: Schema.Array(Item)
})
export type Market = typeof Market.Type

export const key = "explorer:market:v3"

/** How many items the page calls "top items". */
export const topCount = 5

export const produce = Effect.gen(function*() {
  const ledger = yield* Ledger
  const span = yield* ledger.span
  if (Option.isNone(span)) return { span: null, volume: 0, trades: 0, items: [] } satisfies Market
  const rows = yield* ledger.market(span.value)
  const volume = rows.reduce((sum, r) => sum + r.volume, 0)
  return {
    span: span.value,
    volume: Stats.units(volume),
    trades: rows.reduce((sum, r) => sum + r.trades, 0),
    items: rows.map((r) => ({
      id: r.itemId,
      item: r.item,
      trades: r.trades,
      quantity: r.quantity,
      volume: Stats.units(r.volume),
      medianUnitPrice: Stats.units(r.medianPrice),
      meanUnitPrice: Stats.units(r.priceSum / r.trades),
      share: volume === 0 ? 0 : r.volume / volume
    }))
  } satisfies Market
}).pipe(Effect.withSpan("explorer.market"))

export const { loader } = loaders(key, "market", Market, produce)

type Row = Market["items"][number]

export const render = (m: Market): Html.Html => {
  if (m.span === null) return Html.emptyLedger
  const top = m.items.slice(0, topCount)
  return Html.html`<div class="cards">
  ${Html.card("Market volume", Html.moneyShort(m.volume))}
  ${Html.card("Trades", Html.count(m.trades))}
  ${Html.card("Items traded", Html.count(m.items.length))}
</div>
<h2>Top ${topCount} items by volume</h2>
<div class="cards">${top.map((r) => Html.card(Html.link(itemHref(r.id), r.item), Html.moneyShort(r.volume), `${Html.percent(r.share)} of volume · median ${Html.money(r.medianUnitPrice)}`))}</div>
<h2>All items</h2>
${
    Html.table<Row>([
      { label: "Item", cell: (r) => Html.link(itemHref(r.id), r.item) },
      { label: "Trades", cell: (r) => Html.count(r.trades), numeric: true },
      { label: "Quantity", cell: (r) => Html.count(r.quantity), numeric: true },
      { label: "Volume", cell: (r) => Html.money(r.volume), numeric: true },
      { label: "Share", cell: (r) => Html.percent(r.share), numeric: true },
      { label: "Median unit price", cell: (r) => Html.money(r.medianUnitPrice), numeric: true },
      { label: "Mean unit price", cell: (r) => Html.money(r.meanUnitPrice), numeric: true }
    ], m.items, "No market trades in this period.")
  }`
}

export const page: Page<Market> = {
  name: "market",
  title: "Market",
  path: "/market",
  api: "/api/market",
  key,
  loader,
  toJson: Schema.encodeSync(Market),
  render,
  period: periodOf
}
