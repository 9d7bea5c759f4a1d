/**
 * The drill-down pages over HTTP (`NodeHttpServer.layerTest`, in-memory store, the fixture's
 * drill-down ledger, `TestClock`): each page and its JSON twin with numbers known by
 * construction, links from the list pages, escaping, strict ids, unknown ids answered 404
 * without a lookup and without a record, the directory's window, and `retain`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, TestClock } from "effect"
import * as Account from "../../app/pages/account.js"
import * as Item from "../../app/pages/item.js"
import * as Shop from "../../app/pages/shop.js"
import * as Fixture from "./fixture.js"
import { get, getJson, post, server, settle, switchable } from "./support.js"

const twin = <A, I>(name: string, data: Schema.Schema<A, I>) =>
  Schema.Struct({ page: Schema.Literal(name), data, meta: Schema.Struct({ page: Schema.Literal(name), bucket: Schema.Number }) })

const decode = <A, I>(schema: Schema.Schema<A, I>, json: unknown): A => Schema.decodeUnknownSync(schema)(json)

/** The keys the store holds, from the inspector's JSON (one page is enough for these tests). */
const storedKeys = Effect.map(getJson("/api/cache?count=200"), (r) => (r.json.keys as Array<{ key: string }>).map((k) => k.key).sort())

const drillQueries = ["itemInfo", "itemTrades", "shopInfo", "shopDaily", "shopItems", "accountInfo", "accountFlows", "accountBefore", "counterparties"]

describe("explorer drill-down pages", () => {
  it.scoped("an item page and its JSON twin: trades, volume, and the median and mean price per day", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      const page = yield* get("/market/items/1")
      expect(page.status).toBe(200)
      expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
      expect(page.headers["x-cache"]).toBe("miss")
      expect(page.body).toContain("<title>Diamond · lockstep explorer</title>")
      expect(page.body).toContain(`<a href="/market" class="active" aria-current="page">Market</a>`)
      expect(page.body).toContain(`<svg viewBox`)
      expect(page.body).toMatch(/<script src="\/assets\/refresh\.[0-9a-f]{16}\.js"/)

      const api = yield* getJson("/api/market/items/1")
      expect(api.headers["x-cache"]).toBe("hit")
      const p = decode(twin("item", Item.ItemPage), api.json).data
      expect(p.item).toEqual({ id: 1, name: "Diamond" })
      expect(p).toMatchObject({ trades: 5, quantity: 8, volume: 230, medianUnitPrice: 30, meanUnitPrice: 30 })
      expect(p.daily).toHaveLength(30)
      expect(p.daily.filter((d) => d.trades > 0)).toEqual([
        { day: "2024-03-10", trades: 3, quantity: 6, volume: 140, medianUnitPrice: 20, meanUnitPrice: 20 },
        { day: "2024-03-11", trades: 2, quantity: 2, volume: 90, medianUnitPrice: 45, meanUnitPrice: 45 }
      ])
      expect(p.daily[0]).toEqual({ day: "2024-03-01", trades: 0, quantity: 0, volume: 0, medianUnitPrice: null, meanUnitPrice: null })
      // Bread's half-cent median, and its chestshop rows left out
      const bread = decode(twin("item", Item.ItemPage), (yield* getJson("/api/market/items/3")).json).data
      expect(bread).toMatchObject({ trades: 2, medianUnitPrice: 1.015, meanUnitPrice: 1.015 })
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("an item page whose item had no trade since it was computed stands for the next window without the aggregate (Memo.unchanged)", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      // the store's clock after the fixture's trades, so that "newer than the page" means something
      yield* TestClock.setTime(Date.parse("2024-04-01T00:00:00Z"))
      const first = yield* getJson("/api/market/items/1")
      expect(first.json.data.trades).toBe(5)
      expect(ledger.state.byName.get("itemTrades")).toBe(1)
      yield* TestClock.adjust("10 seconds")
      yield* getJson("/api/market/items/1") // stale, and the next window's run starts
      yield* settle()
      const again = yield* getJson("/api/market/items/1")
      expect(again.headers["x-cache"]).toBe("hit")
      expect(again.json.meta.bucket).toBe(first.json.meta.bucket + 1)
      expect(again.json.data).toEqual(first.json.data)
      // one cheap lookup, no aggregate
      expect(ledger.state.byName.get("itemLastTrade")).toBe(1)
      expect(ledger.state.byName.get("itemTrades")).toBe(1)
      // a new trade of the item (later than the page): the next window recomputes it
      ledger.state.use({
        ...Fixture.drillData,
        rows: [...Fixture.drillData.rows, { ts: "2024-04-01T00:00:05", kind: "market_trade", from: 4, to: 5, item: 1, quantity: 1, unitPriceCents: 6_000, amountCents: 6_000 }]
      })
      yield* TestClock.adjust("10 seconds")
      yield* getJson("/api/market/items/1")
      yield* settle()
      expect((yield* getJson("/api/market/items/1")).json.data.trades).toBe(6)
      expect(ledger.state.byName.get("itemTrades")).toBe(2)
      // a trade recorded late, under a time earlier than the page and inside its span: the count
      // the page holds no longer matches, so the next window recomputes it too
      ledger.state.use({
        ...Fixture.drillData,
        rows: [
          ...Fixture.drillData.rows,
          { ts: "2024-04-01T00:00:05", kind: "market_trade", from: 4, to: 5, item: 1, quantity: 1, unitPriceCents: 6_000, amountCents: 6_000 },
          { ts: "2024-03-12T10:00:00", kind: "market_trade", from: 4, to: 5, item: 1, quantity: 1, unitPriceCents: 6_000, amountCents: 6_000 }
        ]
      })
      yield* TestClock.adjust("10 seconds")
      yield* getJson("/api/market/items/1")
      yield* settle()
      expect((yield* getJson("/api/market/items/1")).json.data.trades).toBe(7)
      expect(ledger.state.byName.get("itemTrades")).toBe(3)
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("a shop page and an account page, with their JSON twins", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      const shopPage = yield* get("/chestshop/shops/1")
      expect(shopPage.status).toBe(200)
      expect(shopPage.body).toContain("<title>Alice&#39;s Shop · lockstep explorer</title>")
      expect(shopPage.body).toContain(`<a href="/accounts/1">Alice</a>`)
      expect(shopPage.body).toContain(`<a href="/market/items/1">Diamond</a>`)
      const shop = decode(twin("shop", Shop.ShopPage), (yield* getJson("/api/chestshop/shops/1")).json).data
      expect(shop).toMatchObject({
        shop: { id: 1, name: "Alice's Shop" },
        owner: { id: 1, name: "Alice" },
        revenue: 35,
        spent: 1,
        net: 34,
        buys: 2,
        sells: 1
      })
      expect(shop.topItems).toEqual([{ id: 1, item: "Diamond", quantity: 2, revenue: 30 }, { id: 3, item: "Bread", quantity: 10, revenue: 5 }])
      expect(shop.daily.filter((d) => d.buys + d.sells > 0).map((d) => [d.day, d.revenue, d.spent])).toEqual([
        ["2024-03-05", 30, 0],
        ["2024-03-06", 5, 0],
        ["2024-03-07", 0, 1]
      ])

      const accountPage = yield* get("/accounts/1")
      expect(accountPage.status).toBe(200)
      expect(accountPage.body).toContain("<title>Alice · lockstep explorer</title>")
      const a = decode(twin("account", Account.AccountPage), (yield* getJson("/api/accounts/1")).json).data
      const d = Fixture.drill.alice
      expect(a).toMatchObject({ account: { id: 1, name: "Alice" }, openingBalance: 1000, startBalance: 1050, endBalance: 968.97 })
      expect(a.received).toBe(d.received / 100)
      expect(a.paid).toBe(d.paid / 100)
      expect(a.daily).toHaveLength(30)
      expect(a.daily[0]).toEqual({ day: "2024-03-01", received: 0, paid: 5, balance: 1045 })
      expect(a.daily.at(-1)!.balance).toBe(968.97)
      expect(a.byKind).toEqual([
        { kind: "chestshop_buy", received: 35, paid: 100, transactions: 3 },
        { kind: "chestshop_sell", received: 0, paid: 1, transactions: 1 },
        { kind: "market_trade", received: 140, paid: 2.03, transactions: 5 },
        { kind: "tax", received: 0, paid: 3, transactions: 1 },
        { kind: "transfer", received: 0, paid: 150, transactions: 30 }
      ])
      // each counterparty's balance is what its own page shows, read through the account loader's getMany
      const balances = { 2: 0, 3: 0 }
      for (const id of [2, 3] as const) balances[id] = decode(twin("account", Account.AccountPage), (yield* getJson(`/api/accounts/${id}`)).json).data.endBalance
      expect(a.counterparties).toEqual([
        { id: 2, name: Fixture.hostile.account, sent: 250, received: 145, transactions: 35, balance: balances[2] },
        { id: 3, name: "Bob & Co", sent: 3.03, received: 30, transactions: 4, balance: balances[3] }
      ])
      expect(balances).toEqual({ 2: 598, 3: 262.03 }) // the fixture's, by construction
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("list pages link to the drill-down pages, and their JSON rows carry each entity's id", () =>
    Effect.gen(function*() {
      const market = yield* getJson("/api/market")
      expect(market.json.data.items.map((i: { id: number; item: string }) => [i.id, i.item])).toEqual([
        [1, "Diamond"],
        [2, Fixture.hostile.item],
        [3, "Bread"]
      ])
      const marketPage = (yield* get("/market")).body
      for (const id of [1, 2, 3]) expect(marketPage).toContain(`href="/market/items/${id}"`)

      const chestshop = yield* getJson("/api/chestshop")
      expect(chestshop.json.data.shops.map((s: { id: number; ownerId: number }) => [s.id, s.ownerId])).toEqual([[2, 2], [1, 1]])
      expect(chestshop.json.data.shops[1].topItems.map((i: { id: number }) => i.id)).toEqual([1, 3])
      const chestshopPage = (yield* get("/chestshop")).body
      for (const href of ["/chestshop/shops/1", "/chestshop/shops/2", "/accounts/1", "/accounts/2", "/market/items/2"]) {
        expect(chestshopPage).toContain(`href="${href}"`)
      }
      // every link on these pages leads to a page that answers
      const links = [...new Set([...`${marketPage}${chestshopPage}`.matchAll(/href="(\/(?:market\/items|chestshop\/shops|accounts)\/\d+)"/g)].map((m) => m[1]!))]
      expect(links.length).toBe(7)
      for (const link of links) expect((yield* get(link)).status, link).toBe(200)
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer))))

  it.scoped("a cold list page reads its rows in one batch statement, and each row is what the row's own page shows", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      const market = (yield* getJson("/api/market")).json.data
      // the list (span and ids), then one batch for every row: no query per item
      expect(Object.fromEntries(ledger.state.byName)).toEqual({ span: 1, ids: 2, itemsMany: 1 })
      const chestshop = (yield* getJson("/api/chestshop")).json.data
      expect(ledger.state.byName.get("shopsMany")).toBe(1)
      const account = (yield* getJson("/api/accounts/1")).json.data
      // Alice's own page, then her two counterparties' pages in one batch
      expect(ledger.state.byName.get("accountsMany")).toBe(1)
      // Alice's own page ran the single-account queries once; no item or shop page ran its own
      const own = ["accountInfo", "accountFlows", "accountBefore", "counterparties"]
      for (const query of drillQueries) expect(ledger.state.byName.get(query), query).toBe(own.includes(query) ? 1 : undefined)

      for (const row of market.items) {
        const item = decode(twin("item", Item.ItemPage), (yield* getJson(`/api/market/items/${row.id}`)).json).data
        expect(row).toEqual({
          id: item.item.id,
          item: item.item.name,
          trades: item.trades,
          quantity: item.quantity,
          volume: item.volume,
          medianUnitPrice: item.medianUnitPrice,
          meanUnitPrice: item.meanUnitPrice,
          share: row.share
        })
      }
      expect(market.items.reduce((sum: number, r: { share: number }) => sum + r.share, 0)).toBeCloseTo(1, 12)
      for (const row of chestshop.shops) {
        const shop = decode(twin("shop", Shop.ShopPage), (yield* getJson(`/api/chestshop/shops/${row.id}`)).json).data
        expect(row).toEqual({
          id: shop.shop.id,
          shop: shop.shop.name,
          ownerId: shop.owner.id,
          owner: shop.owner.name,
          revenue: shop.revenue,
          spent: shop.spent,
          net: shop.net,
          buys: shop.buys,
          sells: shop.sells,
          topItems: shop.topItems.slice(0, 3)
        })
      }
      for (const row of account.counterparties) {
        const other = decode(twin("account", Account.AccountPage), (yield* getJson(`/api/accounts/${row.id}`)).json).data
        expect(row.balance).toBe(other.endBalance)
      }
      // the drill-down pages were all answered from the batches: no single-entity query ran
      expect(ledger.state.byName.get("itemTrades")).toBeUndefined()
      expect(ledger.state.byName.get("shopDaily")).toBeUndefined()
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("a row whose entity is gone answers a clear 404 naming it, not a crash", () => {
    const ledger = switchable(Fixture.drillData)
    const authorization = "Bearer drilldown-test-token-8d2f"
    return Effect.gen(function*() {
      // the market's list alone (item ids 1 to 3), and the directory, before item 2 goes
      expect((yield* post("/api/cache/refresh", { key: "explorer:market:v4" }, { authorization })).status).toBe(200)
      expect((yield* get("/api/market/items/1")).status).toBe(200)
      ledger.state.use({ ...Fixture.drillData, items: Fixture.drillData.items.filter((i) => i.id !== 2) })
      // items 2 and 3 are cold: their batch answers item 3 only
      const market = yield* getJson("/api/market")
      expect(market.status).toBe(404)
      expect(market.json.error).toEqual({ code: "EntityMissing", message: "There is no item 2." })
      const html = yield* get("/market")
      expect(html.status).toBe(404)
      expect(html.body).toContain("There is no item 2.")
    }).pipe(Effect.provide(server(ledger.layer, { ADMIN_TOKEN: authorization.slice("Bearer ".length) })))
  })

  it.scoped("escapes hostile names on the drill-down pages", () =>
    Effect.gen(function*() {
      const bodies = [(yield* get("/market/items/2")).body, (yield* get("/chestshop/shops/2")).body, (yield* get("/accounts/2")).body, (yield* get("/accounts/1")).body]
      const html = bodies.join("\n")
      expect(html).not.toContain(Fixture.hostile.item)
      expect(html).not.toContain(Fixture.hostile.shop)
      expect(html).not.toContain(Fixture.hostile.account)
      expect(bodies[0]).toContain("<title>&lt;img src=x onerror=alert(1)&gt; · lockstep explorer</title>")
      expect(bodies[1]).toContain("&quot;&gt;&lt;svg onload=alert(2)&gt;")
      expect(bodies[3]).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
      for (const body of bodies) {
        expect(body.match(/<script>/g)).toBeNull()
        expect(body.match(/<script src=/g)).toHaveLength(1)
      }
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer))))

  it.scoped("malformed and unknown ids answer 404 without a lookup and without a record in the store", () => {
    const ledger = switchable(Fixture.drillData)
    // not ids at all: one entity has one address, so no sign, exponent, leading zero or padding;
    // then well-formed ids that are not in the directory (items 1-3, shops 1-2, accounts 1-5)
    const malformed = ["0", "007", "01", "1e3", "-1", "+1", "1.0", "0x1", "%27%3B--", "%20%31", "1%20", "abc", "%00", "4294967296", "99999999999999999999"]
    const unknown = { "/market/items": ["4", "99", "4294967295"], "/chestshop/shops": ["3", "1000000"], "/accounts": ["6", "999999"] }
    return Effect.gen(function*() {
      for (const [base, missing] of Object.entries(unknown)) {
        for (const id of [...malformed, ...missing]) {
          for (const path of [`${base}/${id}`, `/api${base}/${id}`]) {
            const r = yield* get(path)
            expect(r.status, path).toBe(404)
            expect(r.headers["cache-control"], path).toBe("no-store")
            if (path.startsWith("/api")) {
              expect(JSON.parse(r.body).error.code, path).toBe("NotFound")
            } else {
              expect(r.body, path).toContain("<h1>Not found</h1>")
              expect(r.body, path).not.toContain("';--")
            }
          }
        }
      }
      // the directory was read once per kind; no drill-down lookup ran
      expect(ledger.state.byName.get("ids")).toBe(3)
      for (const name of drillQueries) expect(ledger.state.byName.get(name) ?? 0, name).toBe(0)
      expect(yield* storedKeys).toEqual(["explorer:directory:account:v1", "explorer:directory:item:v1", "explorer:directory:shop:v1"])

      // a valid id creates its one record
      expect((yield* get("/api/market/items/3")).status).toBe(200)
      expect(yield* storedKeys).toContain("explorer:item:v1:3")
      expect((yield* storedKeys).filter((k) => !k.startsWith("explorer:directory:"))).toEqual(["explorer:item:v1:3"])
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("the directory is cached per window: a new item has a page once the directory has been recomputed", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      expect((yield* get("/api/market/items/4")).status).toBe(404)
      ledger.state.use({ ...Fixture.drillData, items: [...Fixture.drillData.items, { id: 4, name: "Emerald" }] })
      // same window: the cached directory does not know item 4 yet
      yield* TestClock.adjust("5 seconds")
      expect((yield* get("/api/market/items/4")).status).toBe(404)
      // next window: the first request gets the stale directory and starts its refresh
      yield* TestClock.adjust("5 seconds")
      expect((yield* get("/api/market/items/4")).status).toBe(404)
      yield* settle()
      const found = yield* getJson("/api/market/items/4")
      expect(found.status).toBe(200)
      expect(found.json.data.item).toEqual({ id: 4, name: "Emerald" })
      expect(found.json.data.trades).toBe(0)
      expect(ledger.state.byName.get("ids")).toBe(2)
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("a drill-down value is computed once per window, and a failing ledger leaves the last one served", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      for (let i = 0; i < 5; i++) expect((yield* get("/api/accounts/5")).status).toBe(200)
      expect(ledger.state.byName.get("accountFlows")).toBe(1)
      const first = yield* getJson("/api/accounts/5")
      expect(first.json.data.endBalance).toBe(343)
      ledger.state.failing = "unavailable"
      yield* TestClock.adjust("10 seconds")
      const stale = yield* getJson("/api/accounts/5")
      expect(stale.status).toBe(200)
      expect(stale.headers["x-cache"]).toBe("stale")
      expect(stale.json.data).toEqual(first.json.data)
      // a cold id with the database down: 503, with a retry
      const cold = yield* getJson("/api/accounts/4")
      expect(cold.status).toBe(503)
      expect(cold.headers["retry-after"]).toBe("5")
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("retain drops a drill-down record nobody reads, and keeps one that is read", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      yield* get("/api/market/items/1")
      yield* get("/api/chestshop/shops/1")
      const drillKeys = Effect.map(storedKeys, (keys) => keys.filter((k) => !k.startsWith("explorer:directory:")))
      expect(yield* drillKeys).toEqual(["explorer:item:v1:1", "explorer:shop:v1:1"])
      // the shop is read again later: its refresh renews its records' lifetime
      yield* TestClock.adjust("20 seconds")
      yield* get("/api/chestshop/shops/1")
      yield* settle()
      yield* TestClock.adjust("15 seconds") // 35 s: the item was last computed 35 s ago, the shop 15 s ago
      expect(yield* drillKeys).toEqual(["explorer:shop:v1:1"])
      yield* TestClock.adjust("20 seconds") // 55 s
      expect(yield* drillKeys).toEqual([])
      // the directory is kept forever: it is one key per kind, not one per id
      expect(yield* storedKeys).toEqual(["explorer:directory:item:v1", "explorer:directory:shop:v1"])
      // and a page whose record expired is computed again when someone reads it
      const again = yield* getJson("/api/market/items/1")
      expect(again.status).toBe(200)
      expect(again.json.data.trades).toBe(5)
    }).pipe(Effect.provide(server(ledger.layer, { DRILL_RETAIN: "30 seconds" })))
  })
})
