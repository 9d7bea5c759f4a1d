/**
 * Chestshops: the shops with the highest revenue over the last 30 days, their buy and sell
 * counts, and each one's best-selling items.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { Ledger } from "../Ledger.js"
import * as Stats from "../Stats.js"
import { Span } from "./dashboard.js"
import { accountHref, itemHref, shopHref } from "./Drill.js"
import { loaders, type Page, periodOf } from "./Page.js"

export const TopItem = Schema.Struct({ id: Schema.Number, item: Schema.String, quantity: Schema.Number, revenue: Schema.Number })

export const Shop = Schema.Struct({
  /** The shop's id: its page is `/chestshop/shops/<id>`. */
  id: Schema.Number,
  shop: Schema.String,
  /** The owner's account id: its page is `/accounts/<ownerId>`. */
  ownerId: Schema.Number,
  owner: Schema.String,
  /** What customers paid the shop. */
  revenue: Schema.Number,
  /** What the shop paid customers who sold to it. */
  spent: Schema.Number,
  net: Schema.Number,
  buys: Schema.Number,
  sells: Schema.Number,
  topItems: Schema.Array(TopItem)
})

export const Chestshop = Schema.Struct({ span: Span, shops: Schema.Array(Shop) })
export type Chestshop = typeof Chestshop.Type

export const key = "explorer:chestshop:v3"
export const shopCount = 10
export const itemsPerShop = 3

export const produce = Effect.gen(function*() {
  const ledger = yield* Ledger
  const span = yield* ledger.span
  if (Option.isNone(span)) return { span: null, shops: [] } satisfies Chestshop
  const shops = yield* ledger.topShops(span.value, shopCount)
  const items = yield* ledger.shopItems(span.value, shops.map((s) => s.shopId), itemsPerShop)
  return {
    span: span.value,
    shops: shops.map((s) => ({
      id: s.shopId,
      shop: s.shop,
      ownerId: s.ownerId,
      owner: s.owner,
      revenue: Stats.units(s.revenue),
      spent: Stats.units(s.spent),
      net: Stats.units(s.revenue - s.spent),
      buys: s.buys,
      sells: s.sells,
      topItems: items.filter((i) => i.shopId === s.shopId).map((i) => ({
        id: i.itemId,
        item: i.item,
        quantity: i.quantity,
        revenue: Stats.units(i.revenue)
      }))
    }))
  } satisfies Chestshop
}).pipe(Effect.withSpan("explorer.chestshop"))

export const { loader } = loaders(key, "chestshop", Chestshop, produce)

type Row = Chestshop["shops"][number]

export const render = (c: Chestshop): Html.Html => {
  if (c.span === null) return Html.emptyLedger
  const revenue = c.shops.reduce((sum, s) => sum + s.revenue, 0)
  return Html.html`<div class="cards">
  ${Html.card(`Top ${shopCount} revenue`, Html.moneyShort(revenue))}
  ${Html.card("Customer purchases", Html.count(c.shops.reduce((sum, s) => sum + s.buys, 0)), `at the top ${shopCount} shops`)}
  ${Html.card("Sales to shops", Html.count(c.shops.reduce((sum, s) => sum + s.sells, 0)), `at the top ${shopCount} shops`)}
</div>
<h2>Top shops by revenue</h2>
${
    Html.table<Row>([
      { label: "#", cell: (r) => c.shops.indexOf(r) + 1, numeric: true },
      {
        label: "Shop",
        cell: (r) => Html.html`${Html.link(shopHref(r.id), r.shop)}<div class="muted">owner ${Html.link(accountHref(r.ownerId), r.owner)}</div>`
      },
      { label: "Revenue", cell: (r) => Html.money(r.revenue), numeric: true },
      { label: "Paid out", cell: (r) => Html.money(r.spent), numeric: true },
      { label: "Net", cell: (r) => Html.money(r.net), numeric: true },
      { label: "Buys", cell: (r) => Html.count(r.buys), numeric: true },
      { label: "Sells", cell: (r) => Html.count(r.sells), numeric: true },
      {
        label: "Best sellers",
        cell: (r) =>
          r.topItems.length === 0
            ? Html.html`<span class="muted">none</span>`
            : Html.html`<ul class="items">${
              r.topItems.map((i) =>
                Html.html`<li>${Html.link(itemHref(i.id), i.item)}: ${Html.count(i.quantity)} for ${Html.money(i.revenue)}</li>`
              )
            }</ul>`
      }
    ], c.shops, "No chestshop trades in this period.")
  }`
}

export const page: Page<Chestshop> = {
  name: "chestshop",
  title: "Chestshops",
  path: "/chestshop",
  api: "/api/chestshop",
  key,
  loader,
  toJson: Schema.encodeSync(Chestshop),
  render,
  period: periodOf
}
