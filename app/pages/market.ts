/**
 * Market: per-item trade volume, median and mean unit price, and the top items, over the last
 * 30 days of market trades.
 *
 * A list page: its loader holds only the span and the item ids (`MarketList`, two cheap
 * queries); each row is the item page's own value, read with the item loader's `getMany` (a cold
 * market is one ledger statement per 100 items), so the market shows exactly what each item's
 * page shows. Items without trades in the span are left out; the rest are by volume.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { Ledger } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { Span } from "./dashboard.js"
import { itemHref } from "./Drill.js"
import type { ItemPage } from "./item.js"
import type { ListOf } from "./List.js"
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

/** What the market's loader holds: the span, and every item id, whose rows the page reads through the item loader. */
export const MarketList = Schema.Struct({ span: Span, ids: Schema.Array(Schema.Number) })
export type MarketList = typeof MarketList.Type

export const key = "explorer:market:v4"

/** How many items the page calls "top items". */
export const topCount = 5

export const produce = Effect.gen(function*() {
  const ledger = yield* Ledger
  const [span, ranges] = yield* Effect.all([ledger.span, ledger.ids("item")], { concurrency: "unbounded" })
  const ids = ranges.flatMap(([lo, hi]) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i))
  return { span: Option.getOrNull(span), ids } satisfies MarketList
}).pipe(Effect.withSpan("explorer.market"))

export const { loader } = loaders(key, "market", MarketList, produce)

const cents = (units: number) => Math.round(units * 100)

/** The market from its list and the items' pages (matched by id; an item without trades is left out). */
export const compose = (list: MarketList, items: ReadonlyArray<ItemPage>): Market => {
  if (list.span === null) return { span: null, volume: 0, trades: 0, items: [] }
  const traded = items.filter((p) => p.trades > 0)
  const volume = traded.reduce((sum, p) => sum + cents(p.volume), 0)
  return {
    span: list.span,
    volume: Stats.units(volume),
    trades: traded.reduce((sum, p) => sum + p.trades, 0),
    items: traded
      .map((p) => ({
        id: p.item.id,
        item: p.item.name,
        trades: p.trades,
        quantity: p.quantity,
        volume: p.volume,
        medianUnitPrice: p.medianUnitPrice,
        meanUnitPrice: p.meanUnitPrice,
        share: volume === 0 ? 0 : cents(p.volume) / volume
      }))
      .sort((a, b) => b.volume - a.volume || a.id - b.id)
  }
}

export const list: ListOf<MarketList, ItemPage, Market> = { drill: "item", kind: "item", ids: (l) => l.ids, compose }

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

export const page: Page<Market, MarketList> = {
  name: "market",
  title: "Market",
  path: "/market",
  api: "/api/market",
  key,
  loader,
  list,
  toJson: Schema.encodeSync(Market),
  render,
  period: periodOf
}
