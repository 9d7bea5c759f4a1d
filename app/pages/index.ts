/** Every page of the explorer, in navigation order, and the drill-down pages. */
import type { DrillName, PageName } from "../Config.js"
import * as Account from "./account.js"
import * as Chestshop from "./chestshop.js"
import * as Dashboard from "./dashboard.js"
import type { Drill } from "./Drill.js"
import * as Health from "./health.js"
import * as Item from "./item.js"
import * as Market from "./market.js"
import type { Page } from "./Page.js"
import * as Shop from "./shop.js"

export const byName: { readonly [K in PageName]: Page<any> } = {
  dashboard: Dashboard.page,
  market: Market.page,
  chestshop: Chestshop.page,
  health: Health.page
}

export const all: ReadonlyArray<Page<any>> = [Dashboard.page, Market.page, Chestshop.page, Health.page]

export const drills: { readonly [K in DrillName]: Drill<any> } = {
  item: Item.drill,
  shop: Shop.drill,
  account: Account.drill
}

export const allDrills: ReadonlyArray<Drill<any>> = [Item.drill, Shop.drill, Account.drill]
