/** Every page of the explorer, in navigation order. */
import type { PageName } from "../Config.js"
import * as Chestshop from "./chestshop.js"
import * as Dashboard from "./dashboard.js"
import * as Health from "./health.js"
import * as Market from "./market.js"
import type { Page } from "./Page.js"

export const byName: { readonly [K in PageName]: Page<any> } = {
  dashboard: Dashboard.page,
  market: Market.page,
  chestshop: Chestshop.page,
  health: Health.page
}

export const all: ReadonlyArray<Page<any>> = [Dashboard.page, Market.page, Chestshop.page, Health.page]
