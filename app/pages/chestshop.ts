/**
 * Chestshops: the shops with the highest revenue over the last 30 days, their buy and sell
 * counts, and each one's best-selling items.
 *
 * A list page: its loader holds the span and the top shops' ids (`ChestshopList`, the ranking
 * query); each row is the shop page's own value, read with the shop loader's `getMany` (a cold
 * list is one ledger statement), so a row shows exactly what the shop's page shows.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Html from "../Html.js"
import { Ledger } from "../Ledger.js"
import { Span } from "./dashboard.js"
import { accountHref, itemHref, shopHref } from "./Drill.js"
import type { ListOf } from "./List.js"
import { loaders, type Page, periodOf } from "./Page.js"
import type { ShopPage } from "./shop.js"

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

/** What the chestshops page's loader holds: the span, and the top shops' ids by revenue. */
export const ChestshopList = Schema.Struct({ span: Span, ids: Schema.Array(Schema.Number) })
export type ChestshopList = typeof ChestshopList.Type

export const key = "explorer:chestshop:v4"
export const shopCount = 10
export const itemsPerShop = 3

export const produce = Effect.gen(function*() {
  const ledger = yield* Ledger
  const span = yield* ledger.span
  if (Option.isNone(span)) return { span: null, ids: [] } satisfies ChestshopList
  const shops = yield* ledger.topShops(span.value, shopCount)
  return { span: span.value, ids: shops.map((s) => s.shopId) } satisfies ChestshopList
}).pipe(Effect.withSpan("explorer.chestshop"))

export const { loader } = loaders(key, "chestshop", ChestshopList, produce)

/** The page from its list and the shops' pages, in the list's order (a shop no longer listed is left out). */
export const compose = (list: ChestshopList, pages: ReadonlyArray<ShopPage>): Chestshop => {
  if (list.span === null) return { span: null, shops: [] }
  const byId = new Map(pages.map((p) => [p.shop.id, p]))
  return {
    span: list.span,
    shops: list.ids.flatMap((id) => {
      const p = byId.get(id)
      return p === undefined ? [] : [{
        id: p.shop.id,
        shop: p.shop.name,
        ownerId: p.owner.id,
        owner: p.owner.name,
        revenue: p.revenue,
        spent: p.spent,
        net: p.net,
        buys: p.buys,
        sells: p.sells,
        topItems: p.topItems.slice(0, itemsPerShop)
      }]
    })
  }
}

export const list: ListOf<ChestshopList, ShopPage, Chestshop> = { drill: "shop", kind: "shop", ids: (l) => l.ids, compose }

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

export const page: Page<Chestshop, ChestshopList> = {
  name: "chestshop",
  title: "Chestshops",
  path: "/chestshop",
  api: "/api/chestshop",
  key,
  loader,
  list,
  toJson: Schema.encodeSync(Chestshop),
  render,
  period: periodOf
}
