/**
 * The ledger: the aggregate queries behind the explorer's pages, as a service. Its backends
 * live beside it, as `@effect/experimental` keeps `Persistence` and `Persistence/Redis`:
 *
 * - `Ledger/Mysql.ts`: MariaDB through `@effect/sql-mysql2`. Aggregation happens in SQL; rows
 *   are decoded with `Schema`; every statement runs under a `max_statement_time`, the stricter of
 *   `LEDGER_STATEMENT_TIMEOUT` and the server's own, so the database itself stops a runaway query.
 * - `Ledger/Memory.ts`: the same queries over the deterministic synthetic ledger of `Synthetic.ts`.
 * - `Ledger/Env.ts`: MariaDB when `MYSQL_HOST` is set, memory otherwise.
 *
 * "The last 30 days" are the 30 UTC days ending with the day of the ledger's latest row, so a
 * ledger seeded last week (or the synthetic one, which ends at the start of today) always shows
 * a full window. Money is in integer cents.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Synthetic from "./Synthetic.js"


// ---------------------------------------------------------------------------------------------
// errors

/**
 * The database stopped a statement at its `max_statement_time` (`seconds`: the limit it ran
 * under). Only that: a statement the database ended for another reason is a `LedgerError`.
 */
export class LedgerTimeout extends Data.TaggedError("LedgerTimeout")<{
  readonly query: string
  readonly seconds: number
  /** What the database said, with its error code. */
  readonly databaseMessage?: string
}> {
  override get message() {
    const said = this.databaseMessage === undefined ? "" : `: ${this.databaseMessage}`
    return `the ledger query "${this.query}" was stopped by the database after ${this.seconds} s (max_statement_time)${said}`
  }
}

/** The database is unreachable, rejected a statement, or returned rows of an unexpected shape. */
export class LedgerError extends Data.TaggedError("LedgerError")<{
  readonly query: string
  readonly reason: "Unavailable" | "Query" | "Decode"
  readonly cause?: unknown
  /** What the database said, with its error code (a lock wait timeout, a deadlock, …). */
  readonly databaseMessage?: string
}> {
  override get message() {
    const detail = this.databaseMessage !== undefined
      ? `: ${this.databaseMessage}`
      : this.cause instanceof Error
      ? `: ${this.cause.message}`
      : ""
    switch (this.reason) {
      case "Unavailable":
        return `the ledger database is unavailable (${this.query})${detail}`
      case "Query":
        return `the ledger query "${this.query}" failed${detail}`
      case "Decode":
        return `the ledger query "${this.query}" returned rows of an unexpected shape`
    }
  }
}

export type LedgerFailure = LedgerTimeout | LedgerError

// ---------------------------------------------------------------------------------------------
// models

/** How many days "the last 30 days" are. */
export const spanDays = 30

/** Inclusive range of UTC days, `YYYY-MM-DD`. */
export interface Span {
  readonly from: string
  readonly to: string
}

export interface Totals {
  readonly transactions: number
  readonly volume: number
}

export interface DailyRow {
  readonly day: string
  readonly transactions: number
  readonly volume: number
}

export interface MarketRow {
  readonly itemId: number
  readonly item: string
  readonly trades: number
  readonly quantity: number
  readonly volume: number
  /** Sum of the trades' unit prices (the mean is `priceSum / trades`). */
  readonly priceSum: number
  /** Median unit price (the mean of the two middle ones for an even count), may be a half cent. */
  readonly medianPrice: number
}

export interface ShopRow {
  readonly shopId: number
  readonly shop: string
  readonly ownerId: number
  readonly owner: string
  /** What customers paid the shop (`chestshop_buy`). */
  readonly revenue: number
  /** What the shop paid customers for their goods (`chestshop_sell`). */
  readonly spent: number
  readonly buys: number
  readonly sells: number
}

export interface ShopItemRow {
  readonly shopId: number
  readonly itemId: number
  readonly item: string
  readonly quantity: number
  readonly revenue: number
}

export interface FlowRow {
  readonly kind: string
  readonly transactions: number
  readonly volume: number
  /** Money created (rows without a payer). */
  readonly minted: number
  /** Money destroyed (rows without a payee). */
  readonly burned: number
}

export interface DailyFlowRow {
  readonly day: string
  readonly minted: number
  readonly burned: number
  /** Money moved between accounts. */
  readonly circulating: number
}

/** The entities that have a page of their own. */
export type EntityKind = "item" | "shop" | "account"

/** Ids as inclusive ranges `[lo, hi]`, ascending and disjoint: a directory of 50 000 accounts is one pair. */
export type IdRanges = ReadonlyArray<readonly [number, number]>

export interface ItemInfo {
  readonly id: number
  readonly name: string
}

/** One day of an item's market trades. */
export interface ItemDayRow {
  readonly day: string
  readonly trades: number
  readonly quantity: number
  readonly volume: number
  readonly priceSum: number
  /** Median unit price of the day's trades (may be a half cent). */
  readonly medianPrice: number
}

/** What the item page's cheap check reads: its newest trade, and how many trades the span holds. */
export interface ItemLastTrade {
  readonly last: Option.Option<number>
  readonly trades: number
}

export interface ItemTrades {
  /** Days with at least one trade, in order. */
  readonly daily: ReadonlyArray<ItemDayRow>
  /** Median unit price over all the span's trades; 0 without trades. */
  readonly medianPrice: number
}

export interface ShopInfo {
  readonly id: number
  readonly name: string
  readonly ownerId: number
  readonly owner: string
}

/** One day of a shop's trades: `revenue` from `chestshop_buy`, `spent` on `chestshop_sell`. */
export interface ShopDayRow {
  readonly day: string
  readonly revenue: number
  readonly spent: number
  readonly buys: number
  readonly sells: number
}

export interface AccountInfo {
  readonly id: number
  readonly name: string
  readonly openingBalance: number
}

/** What one account received and paid on one day, for one kind of transaction. */
export interface AccountFlowRow {
  readonly day: string
  readonly kind: string
  readonly received: number
  readonly paid: number
  readonly transactions: number
}

/** What one account received and paid before the span began. */
export interface AccountBefore {
  readonly received: number
  readonly paid: number
}

export interface CounterpartyRow {
  readonly accountId: number
  readonly name: string
  /** Paid by the account to this counterparty. */
  readonly sent: number
  /** Paid by this counterparty to the account. */
  readonly received: number
  readonly transactions: number
}

/** One item's drill-down rows, as a batch read answers them. */
export interface ItemRows {
  readonly info: ItemInfo
  readonly trades: ItemTrades
}

/** One shop's drill-down rows: its `perShop` best sellers by revenue (then item id). */
export interface ShopRows {
  readonly info: ShopInfo
  readonly daily: ReadonlyArray<ShopDayRow>
  readonly items: ReadonlyArray<ShopItemRow>
}

/** One account's drill-down rows: its `limit` top counterparties. */
export interface AccountRows {
  readonly info: AccountInfo
  readonly flows: ReadonlyArray<AccountFlowRow>
  readonly before: AccountBefore
  readonly counterparties: ReadonlyArray<CounterpartyRow>
}

/**
 * What a batch read answers, in one statement: the last 30 days (read in the same statement, so
 * every row of the batch covers the same span) and the rows of each asked id that exists; an id
 * with no entity is absent from `rows`.
 */
export interface Batch<A> {
  readonly span: Option.Option<Span>
  readonly rows: ReadonlyMap<number, A>
}

/** The queries. Each `Span`-taking query covers the span's days; the others the whole ledger. */
export interface Service {
  readonly backend: "mysql" | "memory"
  /** The last 30 days of the ledger; `None` when the ledger is empty. */
  readonly span: Effect.Effect<Option.Option<Span>, LedgerFailure>
  readonly totals: (span: Span) => Effect.Effect<Totals, LedgerFailure>
  /** Days with at least one row, in order. */
  readonly daily: (span: Span) => Effect.Effect<ReadonlyArray<DailyRow>, LedgerFailure>
  /** Accounts that paid or were paid. */
  readonly activeAccounts: (span: Span) => Effect.Effect<number, LedgerFailure>
  /** Every account's balance at the end of the ledger, ascending. */
  readonly balances: Effect.Effect<ReadonlyArray<number>, LedgerFailure>
  /** Market trades per item, by volume (descending), then item id. */
  readonly market: (span: Span) => Effect.Effect<ReadonlyArray<MarketRow>, LedgerFailure>
  /** The `limit` shops with the highest revenue (then shop id). */
  readonly topShops: (span: Span, limit: number) => Effect.Effect<ReadonlyArray<ShopRow>, LedgerFailure>
  /** The `perShop` best-selling items of each shop, by shop id then rank. */
  readonly shopItems: (
    span: Span,
    shopIds: ReadonlyArray<number>,
    perShop: number
  ) => Effect.Effect<ReadonlyArray<ShopItemRow>, LedgerFailure>
  /** Volume, sources and sinks per transaction kind, by kind name. */
  readonly flows: (span: Span) => Effect.Effect<ReadonlyArray<FlowRow>, LedgerFailure>
  readonly dailyFlows: (span: Span) => Effect.Effect<ReadonlyArray<DailyFlowRow>, LedgerFailure>
  /** All money in accounts at the end of the ledger. */
  readonly moneySupply: Effect.Effect<number, LedgerFailure>

  // one entity (the drill-down pages): each reads only that entity's rows, through an index
  /** Every id of a kind, as ranges. */
  readonly ids: (kind: EntityKind) => Effect.Effect<IdRanges, LedgerFailure>
  readonly itemInfo: (id: number) => Effect.Effect<Option.Option<ItemInfo>, LedgerFailure>
  /**
   * When the item's latest market trade happened (epoch ms, `None` without any) and how many of
   * its market trades the span holds: one index range (`ledger_item_kind_ts`), cheap enough to
   * ask before the full aggregate. The count catches a trade recorded late, under an earlier time.
   */
  readonly itemLastTrade: (id: number, span: Span) => Effect.Effect<ItemLastTrade, LedgerFailure>
  /** The item's market trades per day, and their median unit price. */
  readonly itemTrades: (id: number, span: Span) => Effect.Effect<ItemTrades, LedgerFailure>
  /** The shop and its owner; `None` when either is missing. */
  readonly shopInfo: (id: number) => Effect.Effect<Option.Option<ShopInfo>, LedgerFailure>
  readonly shopDaily: (id: number, span: Span) => Effect.Effect<ReadonlyArray<ShopDayRow>, LedgerFailure>
  readonly accountInfo: (id: number) => Effect.Effect<Option.Option<AccountInfo>, LedgerFailure>
  /** By day, then kind name. */
  readonly accountFlows: (id: number, span: Span) => Effect.Effect<ReadonlyArray<AccountFlowRow>, LedgerFailure>
  readonly accountBefore: (id: number, span: Span) => Effect.Effect<AccountBefore, LedgerFailure>
  /** The `limit` accounts with the most money moved to and from this one (then account id). */
  readonly counterparties: (id: number, span: Span, limit: number) => Effect.Effect<ReadonlyArray<CounterpartyRow>, LedgerFailure>

  // many entities (the list pages, through the drill-down loaders' `lookupMany`): one statement each
  /** What `itemInfo`, `span` and `itemTrades` answer, for every id at once. */
  readonly itemsMany: (ids: ReadonlyArray<number>) => Effect.Effect<Batch<ItemRows>, LedgerFailure>
  /** What `shopInfo`, `span`, `shopDaily` and `shopItems` answer, for every id at once. */
  readonly shopsMany: (ids: ReadonlyArray<number>, perShop: number) => Effect.Effect<Batch<ShopRows>, LedgerFailure>
  /** What `accountInfo`, `span`, `accountFlows`, `accountBefore` and `counterparties` answer, for every id at once. */
  readonly accountsMany: (ids: ReadonlyArray<number>, limit: number) => Effect.Effect<Batch<AccountRows>, LedgerFailure>
}

export class Ledger extends Context.Tag("explorer/Ledger")<Ledger, Service>() {}

// ---------------------------------------------------------------------------------------------
// shared by the backends

/** The 30 days that end with `lastDay`. */
export const spanOf = (lastDay: string): Span => {
  const to = Date.parse(`${lastDay}T00:00:00Z`)
  return { from: new Date(to - (spanDays - 1) * Synthetic.dayMs).toISOString().slice(0, 10), to: lastDay }
}

/** Rows in the order both backends answer them. */
export const byKind = (a: { readonly kind: string }, b: { readonly kind: string }) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)

/** Account flows by day, then kind. */
export const byDayThenKind = (a: AccountFlowRow, b: AccountFlowRow) => (a.day < b.day ? -1 : a.day > b.day ? 1 : byKind(a, b))

/** Counterparties by money moved, then id. */
export const byMoneyMoved = (a: CounterpartyRow, b: CounterpartyRow) =>
  b.sent + b.received - (a.sent + a.received) || a.accountId - b.accountId

/** A shop's best sellers: by revenue, then item id. */
export const byRevenue = (a: ShopItemRow, b: ShopItemRow) => b.revenue - a.revenue || a.itemId - b.itemId

/** Sorted distinct ids as inclusive ranges. */
export const toRanges = (ids: Iterable<number>): IdRanges => {
  const sorted = [...new Set(ids)].sort((a, b) => a - b)
  const ranges: Array<readonly [number, number]> = []
  for (const id of sorted) {
    const last = ranges[ranges.length - 1]
    if (last !== undefined && last[1] === id - 1) ranges[ranges.length - 1] = [last[0], id]
    else ranges.push([id, id])
  }
  return ranges
}

