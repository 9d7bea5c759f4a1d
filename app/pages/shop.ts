/**
 * One chestshop (`/chestshop/shops/:id`): its revenue and what it paid out per day over the
 * last 30 days, its best sellers and its owner. Reads the shop's rows only (`ledger_shop_ts`).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { Ledger, type ShopDayRow, type ShopInfo, type ShopItemRow, type Span as LedgerSpan } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { Span } from "./dashboard.js"
import { accountHref, type Drill, drillLoader, found, fromBatch, itemHref, shopHref } from "./Drill.js"
import { periodOf, Timed } from "./Page.js"

export const Day = Schema.Struct({
  day: Schema.String,
  revenue: Schema.Number,
  spent: Schema.Number,
  buys: Schema.Number,
  sells: Schema.Number
})

export const TopItem = Schema.Struct({ id: Schema.Number, item: Schema.String, quantity: Schema.Number, revenue: Schema.Number })

export const ShopPage = Schema.Struct({
  span: Span,
  shop: Schema.Struct({ id: Schema.Number, name: Schema.String }),
  owner: Schema.Struct({ id: Schema.Number, name: Schema.String }),
  /** What customers paid the shop. */
  revenue: Schema.Number,
  /** What the shop paid customers who sold to it. */
  spent: Schema.Number,
  net: Schema.Number,
  buys: Schema.Number,
  sells: Schema.Number,
  /** Every day of the span. */
  daily: Schema.Array(Day),
  /** By revenue, highest first. */
  topItems: Schema.Array(TopItem)
})
export type ShopPage = typeof ShopPage.Type

export const keyPrefix = "explorer:shop:v1:"
export const tag = "shops"
export const topItemCount = 5

/** The page from the shop's rows: the same function for one shop (`produce`) and for a batch (`produceMany`). */
export const build = (shop: ShopInfo, span: Option.Option<LedgerSpan>, daily: ReadonlyArray<ShopDayRow>, items: ReadonlyArray<ShopItemRow>): ShopPage => {
  const identity = { shop: { id: shop.id, name: shop.name }, owner: { id: shop.ownerId, name: shop.owner } }
  if (Option.isNone(span)) {
    return { span: null, ...identity, revenue: 0, spent: 0, net: 0, buys: 0, sells: 0, daily: [], topItems: [] }
  }
  const { from, to } = span.value
  const revenue = daily.reduce((n, d) => n + d.revenue, 0)
  const spent = daily.reduce((n, d) => n + d.spent, 0)
  return {
    span: span.value,
    ...identity,
    revenue: Stats.units(revenue),
    spent: Stats.units(spent),
    net: Stats.units(revenue - spent),
    buys: daily.reduce((n, d) => n + d.buys, 0),
    sells: daily.reduce((n, d) => n + d.sells, 0),
    daily: Stats.fillDays(from, to, daily, (day) => ({ day, revenue: 0, spent: 0, buys: 0, sells: 0 })).map((d) => ({
      day: d.day,
      revenue: Stats.units(d.revenue),
      spent: Stats.units(d.spent),
      buys: d.buys,
      sells: d.sells
    })),
    topItems: items.map((i) => ({ id: i.itemId, item: i.item, quantity: i.quantity, revenue: Stats.units(i.revenue) }))
  }
}

export const produce = (id: number) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const [shop, span] = yield* Effect.all([found("shop", id, ledger.shopInfo(id)), ledger.span], { concurrency: "unbounded" })
    if (Option.isNone(span)) return build(shop, span, [], [])
    const [daily, items] = yield* Effect.all([ledger.shopDaily(id, span.value), ledger.shopItems(span.value, [id], topItemCount)], {
      concurrency: "unbounded"
    })
    return build(shop, span, daily, items)
  }).pipe(Effect.withSpan("explorer.shop", { attributes: { "explorer.id": id } }))

/** Many shops' pages from one ledger statement, in the order of `ids`. */
export const produceMany = (ids: ReadonlyArray<number>) =>
  Effect.flatMap(Ledger, (ledger) => ledger.shopsMany(ids, topItemCount)).pipe(
    Effect.flatMap((batch) => fromBatch("shop", ids, batch, (rows, span) => build(rows.info, span, rows.daily, rows.items))),
    Effect.withSpan("explorer.shops", { attributes: { "explorer.count": ids.length } })
  )

const stored = Timed(ShopPage)

export const loader = drillLoader({ keyPrefix, tag, stored, produce, produceMany })

export const render = (p: ShopPage): Html.Html => {
  const back = Html.html`<p class="crumbs">${Html.link("/chestshop", "Chestshops")} › shop ${p.shop.id} · owner ${
    Html.link(accountHref(p.owner.id), p.owner.name)
  }</p>`
  if (p.span === null) return Html.html`${back}${Html.emptyLedger}`
  const active = p.daily.filter((d) => d.buys + d.sells > 0)
  return Html.html`${back}
<div class="cards">
  ${Html.card("Revenue", Html.moneyShort(p.revenue), `${Html.count(p.buys)} customer purchases`)}
  ${Html.card("Paid out", Html.moneyShort(p.spent), `${Html.count(p.sells)} sales to the shop`)}
  ${Html.card("Net", Html.moneyShort(p.net))}
  ${Html.card("Days with trades", Html.count(active.length), `of ${Html.count(p.daily.length)}`)}
</div>
<h2>Revenue per day</h2>
${
    Html.barChart(p.daily.map((d) => ({
      label: d.day.slice(5),
      value: d.revenue,
      title: `${d.day}: ${Html.money(d.revenue)} in, ${Html.money(d.spent)} out`
    })), { title: "Revenue per day (UTC)", axis: Html.compact })
  }
<h2>Best sellers</h2>
${
    Html.table<ShopPage["topItems"][number]>([
      { label: "Item", cell: (r) => Html.link(itemHref(r.id), r.item) },
      { label: "Quantity", cell: (r) => Html.count(r.quantity), numeric: true },
      { label: "Revenue", cell: (r) => Html.money(r.revenue), numeric: true }
    ], p.topItems, "No customer purchases in this period.")
  }
<h2>Days with trades</h2>
${
    Html.table<ShopPage["daily"][number]>([
      { label: "Day", cell: (r) => r.day },
      { label: "Revenue", cell: (r) => Html.money(r.revenue), numeric: true },
      { label: "Paid out", cell: (r) => Html.money(r.spent), numeric: true },
      { label: "Buys", cell: (r) => Html.count(r.buys), numeric: true },
      { label: "Sells", cell: (r) => Html.count(r.sells), numeric: true }
    ], [...active].reverse(), "No trades at this shop in this period.")
  }`
}

export const drill: Drill<ShopPage> = {
  name: "shop",
  kind: "shop",
  section: "chestshop",
  path: "/chestshop/shops/:id",
  api: "/api/chestshop/shops/:id",
  href: shopHref,
  keyPrefix,
  tag,
  loader,
  title: (p) => p.shop.name,
  toJson: Schema.encodeSync(ShopPage),
  render,
  period: periodOf
}
