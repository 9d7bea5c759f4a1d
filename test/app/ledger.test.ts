/**
 * The ledger queries against the private MariaDB of the test run, on a small ledger whose
 * aggregates are known by construction, and the in-memory layer on the same data: both must give
 * exactly the same answers. Also: the seeding writer, the statement time limit as a typed error,
 * and a dead database as a typed error rather than a failed layer.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { ConfigProvider, Context, Effect, Either, Layer, Logger, LogLevel, Option, Schema } from "effect"
import { inject } from "vitest"
import * as Ledger from "../../app/Ledger.js"
import * as LedgerEnv from "../../app/Ledger/Env.js"
import * as LedgerMemory from "../../app/Ledger/Memory.js"
import * as LedgerMysql from "../../app/Ledger/Mysql.js"
import * as Load from "../../app/Load.js"
import * as Stats from "../../app/Stats.js"
import * as Synthetic from "../../app/Synthetic.js"
import { freePort } from "../support/services.js"
import { Memo, Redis } from "../../src/index.js"
import * as Account from "../../app/pages/account.js"
import * as Item from "../../app/pages/item.js"
import * as Shop from "../../app/pages/shop.js"
import * as Fixture from "./fixture.js"
import * as Support from "./support.js"

const port = inject("mariadbPort")
const database = "explorer_ledger_test"

const settings = (db: string, p = port): LedgerMysql.Settings => ({
  host: "127.0.0.1",
  port: p,
  username: "root",
  password: Option.none(),
  database: db
})

/** A client on the server's default database, used to create ours. */
const Admin = MysqlClient.layer(LedgerMysql.clientOptions(settings("lockstep")))

const Client = Layer.unwrapEffect(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE DATABASE IF NOT EXISTS ${sql(database)}`
    return MysqlClient.layer(LedgerMysql.clientOptions(settings(database)))
  }).pipe(Effect.provide(Admin))
)

/** Every query of a service, in one record, for comparing two services. */
const everything = (ledger: Ledger.Service) =>
  Effect.gen(function*() {
    const span = Option.getOrThrow(yield* ledger.span)
    const shops = yield* ledger.topShops(span, 10)
    return {
      span,
      totals: yield* ledger.totals(span),
      daily: yield* ledger.daily(span),
      activeAccounts: yield* ledger.activeAccounts(span),
      balances: yield* ledger.balances,
      market: yield* ledger.market(span),
      topShops: shops,
      shopItems: yield* ledger.shopItems(span, shops.map((s) => s.shopId), 3),
      flows: yield* ledger.flows(span),
      dailyFlows: yield* ledger.dailyFlows(span),
      moneySupply: yield* ledger.moneySupply
    }
  })

/** Every drill-down query of a service on the fixture's entities (and on ids that do not exist). */
const drillDown = (ledger: Ledger.Service) =>
  Effect.gen(function*() {
    const span = Option.getOrThrow(yield* ledger.span)
    return {
      ids: { item: yield* ledger.ids("item"), shop: yield* ledger.ids("shop"), account: yield* ledger.ids("account") },
      itemInfo: yield* ledger.itemInfo(1),
      noItem: yield* ledger.itemInfo(99),
      diamond: yield* ledger.itemTrades(1, span),
      bread: yield* ledger.itemTrades(3, span),
      noTrades: yield* ledger.itemTrades(99, span),
      shopInfo: yield* ledger.shopInfo(1),
      noShop: yield* ledger.shopInfo(99),
      shopDaily: yield* ledger.shopDaily(1, span),
      shopItems: yield* ledger.shopItems(span, [1], 5),
      alice: {
        info: yield* ledger.accountInfo(1),
        flows: yield* ledger.accountFlows(1, span),
        before: yield* ledger.accountBefore(1, span),
        counterparties: yield* ledger.counterparties(1, span, 10)
      },
      idle: {
        flows: yield* ledger.accountFlows(5, span),
        before: yield* ledger.accountBefore(5, span),
        counterparties: yield* ledger.counterparties(5, span, 10)
      },
      noAccount: yield* ledger.accountInfo(99)
    }
  })

/** The drill-down queries of many entities of a generated ledger, for comparing backends. */
const manyEntities = (ledger: Ledger.Service, ids: { items: ReadonlyArray<number>; shops: ReadonlyArray<number>; accounts: ReadonlyArray<number> }) =>
  Effect.gen(function*() {
    const span = Option.getOrThrow(yield* ledger.span)
    return {
      ids: [yield* ledger.ids("item"), yield* ledger.ids("shop"), yield* ledger.ids("account")],
      items: yield* Effect.forEach(ids.items, (id) => Effect.all([ledger.itemInfo(id), ledger.itemTrades(id, span)])),
      shops: yield* Effect.forEach(ids.shops, (id) => Effect.all([ledger.shopInfo(id), ledger.shopDaily(id, span), ledger.shopItems(span, [id], 5)])),
      accounts: yield* Effect.forEach(ids.accounts, (id) =>
        Effect.all([ledger.accountInfo(id), ledger.accountFlows(id, span), ledger.accountBefore(id, span), ledger.counterparties(id, span, 5)]))
    }
  })

/** The batch reads of a service, as maps from id to rows, with their span. */
const batched = (ledger: Ledger.Service, ids: { items: ReadonlyArray<number>; shops: ReadonlyArray<number>; accounts: ReadonlyArray<number> }) =>
  Effect.gen(function*() {
    const [items, shops, accounts] = [yield* ledger.itemsMany(ids.items), yield* ledger.shopsMany(ids.shops, 5), yield* ledger.accountsMany(ids.accounts, 5)]
    return { items, shops, accounts }
  })

/** What the batch reads must answer, from the single-entity queries: the entities that exist, each under its id. */
const singly = (ledger: Ledger.Service, ids: { items: ReadonlyArray<number>; shops: ReadonlyArray<number>; accounts: ReadonlyArray<number> }) =>
  Effect.gen(function*() {
    const span = yield* ledger.span
    const s = Option.getOrThrow(span)
    const existing = <A, B>(list: ReadonlyArray<number>, info: (id: number) => Effect.Effect<Option.Option<A>, Ledger.LedgerFailure>, rest: (id: number, info: A) => Effect.Effect<B, Ledger.LedgerFailure>) =>
      Effect.map(
        Effect.forEach(list, (id) => Effect.flatMap(info(id), Option.match({ onNone: () => Effect.succeed([]), onSome: (i) => Effect.map(rest(id, i), (b) => [[id, b] as const]) }))),
        (pairs) => ({ span, rows: new Map(pairs.flat()) })
      )
    return {
      items: yield* existing(ids.items, ledger.itemInfo, (id, info) => Effect.map(ledger.itemTrades(id, s), (trades) => ({ info, trades }))),
      shops: yield* existing(ids.shops, ledger.shopInfo, (id, info) =>
        Effect.map(Effect.all([ledger.shopDaily(id, s), ledger.shopItems(s, [id], 5)]), ([daily, items]) => ({ info, daily, items }))),
      accounts: yield* existing(ids.accounts, ledger.accountInfo, (id, info) =>
        Effect.map(
          Effect.all([ledger.accountFlows(id, s), ledger.accountBefore(id, s), ledger.counterparties(id, s, 5)]),
          ([flows, before, counterparties]) => ({ info, flows, before, counterparties })
        ))
    }
  })

describe("Synthetic", () => {
  it("generates the same ledger for the same seed, with the requested size, in time order, without debts", () => {
    const options = { seed: 7, rows: 5_000, days: 30, end: Date.parse("2024-04-01T00:00:00Z") }
    const a = Synthetic.generate(options)
    const b = Synthetic.generate(options)
    const c = Synthetic.generate({ ...options, seed: 8 })
    expect(a.rows.length).toBe(5_000)
    expect(Buffer.from(a.rows.amount.buffer).equals(Buffer.from(b.rows.amount.buffer))).toBe(true)
    expect(Buffer.from(a.rows.ts.buffer).equals(Buffer.from(b.rows.ts.buffer))).toBe(true)
    expect(Buffer.from(a.rows.amount.buffer).equals(Buffer.from(c.rows.amount.buffer))).toBe(false)
    for (let i = 1; i < a.rows.length; i++) expect(a.rows.ts[i]! >= a.rows.ts[i - 1]!).toBe(true)
    expect(Synthetic.formatDateTime(a.rows.ts[0]!) >= "2024-03-02 00:00:00").toBe(true)
    expect(Synthetic.formatDateTime(a.rows.ts[a.rows.length - 1]!) < "2024-04-01 00:00:00").toBe(true)
    // every payer could afford what it paid: replaying the ledger never goes below zero
    const balance = new Map(a.accounts.map((x) => [x.id, x.openingCents]))
    for (let i = 0; i < a.rows.length; i++) {
      const from = a.rows.from[i]!
      const to = a.rows.to[i]!
      if (from >= 0) balance.set(from, balance.get(from)! - a.rows.amount[i]!)
      if (to >= 0) balance.set(to, balance.get(to)! + a.rows.amount[i]!)
      if (from >= 0) expect(balance.get(from)!).toBeGreaterThanOrEqual(0)
    }
    // all six kinds occur
    expect(new Set(a.rows.kind).size).toBe(Synthetic.kinds.length)
  })

  it("parses decimal strings into exact cents", () => {
    expect(Synthetic.parseCents("123.45")).toBe(12_345)
    expect(Synthetic.parseCents("1.0150000000")).toBe(101.5)
    expect(Synthetic.parseCents("247.365")).toBe(24_736.5)
    expect(Synthetic.parseCents("12")).toBe(1_200)
    expect(Synthetic.parseCents("-0.50")).toBe(-50)
    expect(Synthetic.parseCents("0.00")).toBe(0)
    expect(Synthetic.parseCents("abc")).toBeNaN()
    expect(Synthetic.formatCents(12_345)).toBe("123.45")
    expect(Synthetic.formatCents(5)).toBe("0.05")
  })
})

describe("Stats", () => {
  it("computes Gini and top shares from sorted balances", () => {
    expect(Stats.gini([100, 100, 100, 100])).toBe(0)
    expect(Stats.gini([0, 0, 0, 100])).toBeCloseTo(0.75, 12)
    expect(Stats.gini([])).toBe(0)
    const b = Fixture.expected.balances
    expect(Stats.gini(b)).toBeCloseTo((2 * (25_300 + 2 * 26_203 + 3 * 59_800 + 4 * 96_100 + 5 * 96_897)) / (5 * 304_300) - 6 / 5, 12)
    expect(Stats.topShare(b, 0.01)).toBeCloseTo(96_897 / 304_300, 12)
    expect(Stats.topShare([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 0.1)).toBeCloseTo(0.1, 12)
    expect(Stats.fillDays("2024-02-28", "2024-03-01", [{ day: "2024-02-29", n: 1 }], (day) => ({ day, n: 0 })))
      .toEqual([{ day: "2024-02-28", n: 0 }, { day: "2024-02-29", n: 1 }, { day: "2024-03-01", n: 0 }])
  })
})

layer(Layer.merge(Client, Logger.minimumLogLevel(LogLevel.Error)), { timeout: 60_000, excludeTestServices: true })("Ledger on MariaDB", (it) => {
  const load = (data: Synthetic.LedgerData) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Load.reset(sql)
      // small batches so the test goes through several concurrent INSERTs
      yield* Load.write(sql, data, { batch: 7, concurrency: 3 })
    })

  const mysql = LedgerMysql.layerWith(settings(database), "5 seconds")

  it.effect("answers the fixture's known aggregates, and the memory layer answers the same", () =>
    Effect.gen(function*() {
      const data = Synthetic.fromRecords(Fixture.data)
      yield* load(data)
      const sql = yield* SqlClient.SqlClient
      const counted = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM ledger`
      expect(counted[0]?.n).toBe(Fixture.data.rows.length)

      const fromDb = yield* Effect.flatMap(Ledger.Ledger, everything).pipe(Effect.provide(mysql))
      const fromMemory = yield* everything(LedgerMemory.make(data))
      const e = Fixture.expected
      for (const result of [fromDb, fromMemory]) {
        expect(result.span).toEqual(e.span)
        expect(result.totals).toEqual(e.totals)
        expect(result.activeAccounts).toBe(e.activeAccounts)
        expect(result.balances).toEqual(e.balances)
        expect(result.moneySupply).toBe(e.moneySupply)
        expect(result.market).toEqual(e.market)
        expect(result.topShops).toEqual(e.topShops)
        expect(result.shopItems).toEqual(e.shopItems)
        expect(result.flows).toEqual(e.flows)
        expect(result.daily).toHaveLength(30)
        expect(result.daily[0]).toEqual(e.firstDay)
        expect(result.daily.find((d) => d.day === "2024-03-10")).toEqual(e.tenthDay)
        expect(result.dailyFlows[29]).toEqual({ day: "2024-03-30", minted: 1_000, burned: 300, circulating: 500 })
      }
      expect(fromMemory).toEqual(fromDb)
    }))

  it.effect("gives the same answers as the memory layer on a generated ledger", () =>
    Effect.gen(function*() {
      const data = Synthetic.generate({ seed: 11, rows: 3_000, days: 30, end: Date.parse("2024-06-01T00:00:00Z") })
      yield* load(data)
      const fromDb = yield* Effect.flatMap(Ledger.Ledger, everything).pipe(Effect.provide(mysql))
      const fromMemory = yield* everything(LedgerMemory.make(data))
      expect(fromDb.totals.transactions).toBe(3_000)
      expect(fromDb.market.length).toBeGreaterThan(10)
      expect(fromDb.topShops.length).toBeGreaterThan(0)
      expect(fromMemory).toEqual(fromDb)
    }))

  it.effect("answers the drill-down queries' known values on the fixture, and the memory layer answers the same", () =>
    Effect.gen(function*() {
      const data = Synthetic.fromRecords(Fixture.drillData)
      yield* load(data)
      const fromDb = yield* Effect.flatMap(Ledger.Ledger, drillDown).pipe(Effect.provide(mysql))
      const fromMemory = yield* drillDown(LedgerMemory.make(data))
      const d = Fixture.drill
      for (const r of [fromDb, fromMemory]) {
        expect(r.ids).toEqual(d.ids)
        expect(r.itemInfo).toEqual(Option.some({ id: 1, name: "Diamond" }))
        expect(r.noItem).toEqual(Option.none())
        expect(r.diamond).toEqual(d.diamond)
        expect(r.bread).toEqual(d.bread)
        expect(r.noTrades).toEqual({ daily: [], medianPrice: 0 })
        expect(r.shopInfo).toEqual(Option.some(d.aliceShop.info))
        expect(r.noShop).toEqual(Option.none())
        expect(r.shopDaily).toEqual(d.aliceShop.daily)
        expect(r.shopItems).toEqual(d.aliceShop.items)
        expect(r.alice.info).toEqual(Option.some(d.alice.info))
        expect(r.alice.before).toEqual(d.alice.before)
        expect(r.alice.flows).toHaveLength(d.alice.flowCount)
        for (const flow of d.alice.someFlows) expect(r.alice.flows).toContainEqual(flow)
        expect(r.alice.flows.reduce((sum, f) => sum + f.received, 0)).toBe(d.alice.received)
        expect(r.alice.flows.reduce((sum, f) => sum + f.paid, 0)).toBe(d.alice.paid)
        // the flows are ordered by day, then kind
        expect(r.alice.flows.slice(4, 6).map((f) => [f.day, f.kind])).toEqual([["2024-03-05", "chestshop_buy"], ["2024-03-05", "transfer"]])
        expect(r.alice.counterparties).toEqual(d.alice.counterparties)
        expect(r.idle).toEqual({ flows: d.idle.flows, before: d.idle.before, counterparties: d.idle.counterparties })
        expect(r.noAccount).toEqual(Option.none())
      }
      expect(fromMemory).toEqual(fromDb)
      // the opening balance, what came before and the span's flows give the balance at the end
      const balances = yield* Effect.flatMap(Ledger.Ledger, (l) => l.balances).pipe(Effect.provide(mysql))
      expect(balances).toContain(d.alice.info.openingBalance + d.alice.before.received - d.alice.before.paid + d.alice.received - d.alice.paid)
      expect(balances).toContain(d.idle.endBalance)

      // ids with gaps come back as ranges on both backends
      const sql = yield* SqlClient.SqlClient
      yield* sql`DELETE FROM items WHERE id = 2`
      const gappy = Synthetic.fromRecords({ ...Fixture.drillData, items: Fixture.drillData.items.filter((i) => i.id !== 2) })
      const dbIds = yield* Effect.flatMap(Ledger.Ledger, (l) => l.ids("item")).pipe(Effect.provide(mysql))
      expect(dbIds).toEqual([[1, 1], [3, 3]])
      expect(yield* LedgerMemory.make(gappy).ids("item")).toEqual(dbIds)
    }))

  it.effect("gives the same drill-down answers as the memory layer on a generated ledger", () =>
    Effect.gen(function*() {
      const data = Synthetic.generate({ seed: 13, rows: 3_000, days: 30, end: Date.parse("2024-06-01T00:00:00Z") })
      yield* load(data)
      // every item and shop, the twenty busiest accounts and a few quiet ones, and ids that do not exist
      const busiest = data.accounts.map((a) => a.id).slice(0, 20)
      const ids = {
        items: [...data.items.map((i) => i.id), 0, data.items.length + 1],
        shops: [...data.shops.map((s) => s.id), data.shops.length + 1],
        accounts: [...busiest, data.accounts.length - 1, data.accounts.length, data.accounts.length + 1]
      }
      const fromDb = yield* Effect.flatMap(Ledger.Ledger, (l) => manyEntities(l, ids)).pipe(Effect.provide(mysql))
      const fromMemory = yield* manyEntities(LedgerMemory.make(data), ids)
      expect(fromDb.ids).toEqual([[[1, data.items.length]], [[1, data.shops.length]], [[1, data.accounts.length]]])
      expect(fromDb.items.filter(([, t]) => t.daily.length > 0).length).toBeGreaterThan(10)
      expect(fromDb.accounts[0]![1].length).toBeGreaterThan(10)
      expect(fromMemory).toEqual(fromDb)
    }))

  it.effect("answers a batch of entities in one statement each, with the values the single-entity queries answer, on both backends", () =>
    Effect.gen(function*() {
      const data = Synthetic.generate({ seed: 13, rows: 3_000, days: 30, end: Date.parse("2024-06-01T00:00:00Z") })
      yield* load(data)
      // every item and shop, the twenty busiest accounts and a few quiet ones, ids that do not exist, and a duplicate
      const ids = {
        items: [...data.items.map((i) => i.id), 0, data.items.length + 1, 1],
        shops: [...data.shops.map((s) => s.id), data.shops.length + 1],
        accounts: [...data.accounts.map((a) => a.id).slice(0, 20), data.accounts.length, data.accounts.length + 1]
      }
      const db = Context.get(yield* Layer.build(mysql), Ledger.Ledger)
      const counted = Support.counting(db)
      const fromDb = yield* Effect.flatMap(Ledger.Ledger, (l) => batched(l, ids)).pipe(Effect.provide(counted.layer))
      // one statement per batch, whatever its size
      expect(Object.fromEntries(counted.byName)).toEqual({ itemsMany: 1, shopsMany: 1, accountsMany: 1 })
      const expected = yield* Effect.flatMap(Ledger.Ledger, (l) => singly(l, ids)).pipe(Effect.provide(mysql))
      expect(fromDb).toEqual(expected)
      expect(fromDb.items.rows.size).toBe(data.items.length)
      expect([...fromDb.items.rows.values()].filter((r) => r.trades.daily.length > 0).length).toBeGreaterThan(10)
      expect([...fromDb.accounts.rows.values()].filter((r) => r.counterparties.length > 0).length).toBeGreaterThan(10)
      expect(yield* batched(LedgerMemory.make(data), ids)).toEqual(fromDb)
      // a batch of ids that do not exist: nothing, not an error
      for (const ledger of [db, LedgerMemory.make(data)]) {
        expect((yield* ledger.itemsMany([999_999])).rows.size).toBe(0)
        expect((yield* ledger.shopsMany([], 5)).rows.size).toBe(0)
      }
    }).pipe(Effect.scoped))

  it.effect("the drill-down loaders' getMany answers what their get answers, in one statement per 100 ids", () =>
    Effect.gen(function*() {
      // 250 accounts: three batches of accounts; every item and shop in one batch each
      const data = Synthetic.generate({ seed: 17, rows: 37_500, days: 30, end: Date.parse("2024-06-01T00:00:00Z") })
      const sql = yield* SqlClient.SqlClient
      yield* Load.reset(sql)
      yield* Load.write(sql, data, { batch: 2_000, concurrency: 3 })
      const db = Context.get(yield* Layer.build(mysql), Ledger.Ledger)
      const ids = { item: data.items.map((i) => i.id), shop: data.shops.map((s) => s.id), account: data.accounts.map((a) => a.id) }
      expect(ids.account.length).toBe(250)
      const families = { item: Item.loader, shop: Shop.loader, account: Account.loader } as const
      const values = (timed: ReadonlyArray<{ readonly value: unknown }>) => timed.map((t) => t.value)
      const onFreshCache = <A, E>(effect: Effect.Effect<A, E, Memo.Memo | Ledger.Ledger>, ledger: Layer.Layer<Ledger.Ledger>) =>
        effect.pipe(Effect.provide(Layer.merge(Memo.layer.pipe(Layer.provide(Redis.layerMemory)), ledger)))
      const counted = Support.counting(db)
      const many = yield* onFreshCache(
        Effect.all({
          item: families.item("1 hour", "30 seconds", "1 hour").getMany(ids.item),
          shop: families.shop("1 hour", "30 seconds", "1 hour").getMany(ids.shop),
          account: families.account("1 hour", "30 seconds", "1 hour").getMany(ids.account)
        }),
        counted.layer
      )
      // a cold getMany: one statement per batch of 100 ids, never one per id
      expect(Object.fromEntries(counted.byName)).toEqual({
        itemsMany: Math.ceil(ids.item.length / 100),
        shopsMany: Math.ceil(ids.shop.length / 100),
        accountsMany: 3
      })
      // the values the drill-down pages show, one get per id on another cache
      const one = yield* onFreshCache(
        Effect.all({
          item: Effect.forEach(ids.item, (id) => families.item("1 hour", "30 seconds", "1 hour").get(id)),
          shop: Effect.forEach(ids.shop, (id) => families.shop("1 hour", "30 seconds", "1 hour").get(id)),
          account: Effect.forEach(ids.account, (id) => families.account("1 hour", "30 seconds", "1 hour").get(id), { concurrency: 4 })
        }),
        Layer.succeed(Ledger.Ledger, db)
      )
      expect(values(many.item)).toEqual(values(one.item))
      expect(values(many.shop)).toEqual(values(one.shop))
      expect(values(many.account)).toEqual(values(one.account))
      expect(values(many.account).filter((a: any) => a.counterparties.length > 0).length).toBeGreaterThan(100)
      // an id with no entity is a typed EntityMissing, not a defect
      const missing = yield* onFreshCache(families.item("1 hour", "30 seconds", "1 hour").getMany([1, 9_999]), Layer.succeed(Ledger.Ledger, db)).pipe(Effect.flip)
      expect(missing).toMatchObject({ _tag: "EntityMissing", kind: "item", id: 9_999 })
    }).pipe(Effect.scoped), { timeout: 120_000 })

  it.effect("a batch on an empty ledger answers each entity without a span, on both backends", () =>
    Effect.gen(function*() {
      const data = Synthetic.fromRecords({ ...Fixture.drillData, rows: [] })
      yield* load(data)
      const ids = { items: [1, 2], shops: [1], accounts: [1, 2] }
      const fromDb = yield* Effect.flatMap(Ledger.Ledger, (l) => batched(l, ids)).pipe(Effect.provide(mysql))
      expect(fromDb.items.span).toEqual(Option.none())
      expect(fromDb.items.rows.get(1)).toEqual({ info: { id: 1, name: "Diamond" }, trades: { daily: [], medianPrice: 0 } })
      expect(fromDb.accounts.rows.get(1)?.before).toEqual({ received: 0, paid: 0 })
      expect(yield* batched(LedgerMemory.make(data), ids)).toEqual(fromDb)
    }))

  it.effect("reads one entity's rows through an index, never by scanning the ledger (EXPLAIN)", () =>
    Effect.gen(function*() {
      const data = Synthetic.generate({ seed: 17, rows: 20_000, days: 90, end: Date.parse("2024-06-01T00:00:00Z") })
      yield* load(data)
      const sql = yield* SqlClient.SqlClient
      const since = `${Option.getOrThrow(yield* LedgerMemory.make(data).span).from} 00:00:00`
      const q = LedgerMysql.entityQueries
      // 90 days, so that "before the span" is most of the ledger, as it is in a ledger that grows;
      // the busiest entity of each kind: the one an optimizer is most tempted to scan for
      const busiest = (column: Int32Array) => {
        const counts = new Map<number, number>()
        for (const v of column) if (v >= 0) counts.set(v, (counts.get(v) ?? 0) + 1)
        return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0]
      }
      const item = busiest(data.rows.item)
      const shop = busiest(data.rows.shop)
      const account = busiest(data.rows.from)
      const plans = {
        itemTrades: [q.itemTrades(sql, item, since), ["ledger_item_kind_ts"]],
        shopDaily: [q.shopDaily(sql, shop, since), ["ledger_shop_ts"]],
        accountFlows: [q.accountFlows(sql, account, since), ["ledger_to_ts", "ledger_from_ts"]],
        accountBefore: [q.accountBefore(sql, account, since), ["ledger_to_ts", "ledger_from_ts"]],
        counterparties: [q.counterparties(sql, account, since, 10), ["ledger_from_ts", "ledger_to_ts"]]
      } as const
      const report: Record<string, unknown> = {}
      for (const [name, [fragment, keys]] of Object.entries(plans)) {
        const rows = yield* sql<{ table: string; type: string; key: string | null; rows: number }>`EXPLAIN ${fragment}`.unprepared
        const onLedger = rows.filter((r) => r.table === "ledger")
        report[name] = onLedger.map((r) => `${r.type} ${r.key} ~${r.rows} rows`)
        // each reading of the ledger uses the index meant for it, as a lookup or a range, and
        // reads a small part of the table
        expect(onLedger.map((r) => r.key).sort(), name).toEqual([...keys].sort())
        for (const r of onLedger) {
          expect(["ref", "range"], `${name}: ${JSON.stringify(r)}`).toContain(r.type)
          expect(Number(r.rows), name).toBeLessThan(data.rows.length / 4)
        }
      }
      console.log(`EXPLAIN on ${data.rows.length} rows:`, JSON.stringify(report, null, 1))
    }))

  it.effect("reports a statement stopped by max_statement_time as LedgerTimeout", () =>
    Effect.gen(function*() {
      yield* load(Synthetic.fromRecords(Fixture.data))
      const sql = yield* SqlClient.SqlClient
      // hold a write lock on the ledger from another connection: every read blocks on it
      const conn = yield* Effect.acquireRelease(
        Effect.tap(sql.reserve, (c) => c.executeRaw("LOCK TABLES ledger WRITE", [])),
        (c) => Effect.orDie(c.executeRaw("UNLOCK TABLES", []))
      )
      expect(conn).toBeDefined()
      const started = Date.now()
      const result = yield* Effect.flatMap(Ledger.Ledger, (l) => Effect.either(l.totals(Fixture.expected.span))).pipe(
        Effect.provide(LedgerMysql.layerWith(settings(database), "300 millis"))
      )
      const elapsed = Date.now() - started
      expect(Either.isLeft(result) && result.left._tag).toBe("LedgerTimeout")
      if (Either.isLeft(result) && result.left._tag === "LedgerTimeout") {
        expect(result.left.query).toBe("totals")
        expect(result.left.seconds).toBe(0.3)
      }
      expect(elapsed).toBeLessThan(3_000)
    }).pipe(Effect.scoped))

  /** Sets a global variable of the test's MariaDB for the scope, then puts the old value back. */
  const withGlobal = (name: "max_statement_time" | "lock_wait_timeout", value: number) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [before] = yield* sql.unsafe<{ readonly value: number | string }>(`SELECT @@GLOBAL.${name} AS value`)
      yield* Effect.acquireRelease(
        sql.unsafe(`SET GLOBAL ${name} = ${Number(value)}`),
        () => Effect.orDie(sql.unsafe(`SET GLOBAL ${name} = ${Number(before!.value)}`))
      )
    })

  /** Holds a write lock on the ledger from another connection for the scope: every read waits for it. */
  const lockLedger = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.acquireRelease(
      Effect.tap(sql.reserve, (c) => c.executeRaw("LOCK TABLES ledger WRITE", [])),
      (c) => Effect.orDie(c.executeRaw("UNLOCK TABLES", []))
    )
  })

  it.effect("never loosens a stricter global max_statement_time: the stricter limit stops the statement", () =>
    Effect.gen(function*() {
      yield* load(Synthetic.fromRecords(Fixture.data))
      yield* lockLedger
      // the server's own limit, 0.4 s, is stricter than the configured 10 s
      yield* withGlobal("max_statement_time", 0.4)
      const started = Date.now()
      const result = yield* Effect.flatMap(Ledger.Ledger, (l) => Effect.either(l.totals(Fixture.expected.span))).pipe(
        Effect.provide(LedgerMysql.layerWith(settings(database), "10 seconds"))
      )
      const elapsed = Date.now() - started
      expect(Either.isLeft(result) && result.left._tag).toBe("LedgerTimeout")
      if (Either.isLeft(result) && result.left._tag === "LedgerTimeout") expect(result.left.seconds).toBe(0.4)
      expect(elapsed).toBeLessThan(5_000)
    }).pipe(Effect.scoped))

  it.effect("the statement limit is the stricter of the configured one and the server's (0: none)", () =>
    Effect.sync(() => {
      expect(LedgerMysql.stricterLimit(10, 0)).toBe(10)
      expect(LedgerMysql.stricterLimit(10, 3.5)).toBe(3.5)
      expect(LedgerMysql.stricterLimit(0.3, 3.5)).toBe(0.3)
    }))

  it.effect("names the cause the database gave for a query that failed otherwise: a lock wait timeout", () =>
    Effect.gen(function*() {
      yield* load(Synthetic.fromRecords(Fixture.data))
      yield* lockLedger
      // the lock wait gives up (1 s) long before the statement limit (10 s)
      yield* withGlobal("lock_wait_timeout", 1)
      const result = yield* Effect.flatMap(Ledger.Ledger, (l) => Effect.either(l.totals(Fixture.expected.span))).pipe(
        Effect.provide(LedgerMysql.layerWith(settings(database), "10 seconds"))
      )
      expect(Either.isLeft(result) && result.left._tag).toBe("LedgerError")
      if (Either.isLeft(result)) {
        expect(result.left.message).toMatch(/Lock wait timeout exceeded/)
        expect(result.left.message).toMatch(/ER_LOCK_WAIT_TIMEOUT, errno 1205/)
        expect(result.left.message).not.toMatch(/stopped by the database/)
      }
    }).pipe(Effect.scoped))

  it.effect("keeps connections open between aggregate runs and closes them cleanly", () =>
    Effect.gen(function*() {
      yield* load(Synthetic.fromRecords(Fixture.data))
      const sql = yield* SqlClient.SqlClient
      const status = (name: string) =>
        Effect.map(sql.unsafe<{ readonly Value: string }>(`SHOW GLOBAL STATUS LIKE '${name}'`), (rows) => Number(rows[0]!.Value))
      const connections = yield* status("Connections")
      const aborted = yield* status("Aborted_clients")
      const runs = 4
      yield* Effect.gen(function*() {
        const ledger = yield* Ledger.Ledger
        for (let i = 0; i < runs; i++) {
          yield* ledger.totals(Fixture.expected.span)
          // the pool's reaper runs every second: an idle connection it closes is reopened next run
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1_200)))
        }
      }).pipe(Effect.provide(LedgerMysql.layerWith(settings(database), "5 seconds")), Effect.scoped)
      const opened = (yield* status("Connections")) - connections
      const abortedNow = (yield* status("Aborted_clients")) - aborted
      console.log(`[ledger] ${runs} aggregate runs 1.2 s apart: ${opened} connections opened, ${abortedNow} aborted`)
      // one connection serves every run (the status queries here use the test's own pool)
      expect(opened).toBeLessThanOrEqual(2)
      expect(opened).toBeLessThan(runs)
      // closed with COM_QUIT, not dropped: the server counts no aborted client
      expect(abortedNow).toBe(0)
    }), 30_000)

  it.effect("decodes DECIMAL strings and rejects rows of the wrong shape as LedgerError(Decode)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // DECIMAL arrives as a string: a schema that wants a number does not decode it
      const bad = yield* LedgerMysql.bounded(sql, 1, "probe", Schema.Struct({ x: Schema.Number }), (s) =>
        s`SELECT CAST(12.34 AS DECIMAL(10,2)) AS x`).pipe(Effect.either)
      expect(Either.isLeft(bad) && bad.left._tag === "LedgerError" && bad.left.reason).toBe("Decode")
      const rows = yield* LedgerMysql.bounded(
        sql,
        1,
        "probe",
        LedgerMysql.rowSchemas.totals,
        (s) => s`SELECT 3 AS transactions, CAST(12.34 AS DECIMAL(10,2)) AS volume`
      )
      expect(rows).toEqual([{ transactions: 3, volume: 1_234 }])
    }))

  it.effect("starts without a database and reports it as LedgerError(Unavailable)", () =>
    Effect.gen(function*() {
      const closed = yield* Effect.promise(() => freePort())
      const result = yield* Effect.flatMap(Ledger.Ledger, (l) => Effect.either(l.span)).pipe(
        Effect.provide(LedgerMysql.layerWith(settings(database, closed), "1 second"))
      )
      expect(Either.isLeft(result) && result.left._tag === "LedgerError" && result.left.reason).toBe("Unavailable")
      expect(Either.isLeft(result) && result.left.message).toMatch(/unavailable/)
    }))

  it.effect("chooses MariaDB when MYSQL_HOST is set and the synthetic ledger otherwise", () =>
    Effect.gen(function*() {
      const backend = (env: Record<string, string>) =>
        Effect.map(Ledger.Ledger, (l) => l.backend).pipe(
          Effect.provide(LedgerEnv.layerFromEnv),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
        )
      expect(yield* backend({ LEDGER_ROWS: "500", LEDGER_END: "2024-04-01" })).toBe("memory")
      expect(yield* backend({ MYSQL_HOST: "127.0.0.1", MYSQL_PORT: String(port), MYSQL_DATABASE: database })).toBe("mysql")
      const memory = yield* Effect.flatMap(Ledger.Ledger, (l) => l.span).pipe(
        Effect.provide(LedgerMemory.layer),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LEDGER_ROWS", "500"], ["LEDGER_END", "2024-04-01"]])))
      )
      expect(memory).toEqual(Option.some({ from: "2024-03-02", to: "2024-03-31" }))
    }))
})
