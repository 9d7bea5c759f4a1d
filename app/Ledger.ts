/**
 * The ledger: the aggregate queries behind the explorer's pages.
 *
 * - `layerMysql`: MariaDB through `@effect/sql-mysql2`. Aggregation happens in SQL; rows are
 *   decoded with `Schema`; every statement runs under `SET STATEMENT max_statement_time=N FOR`
 *   so the database itself stops a runaway query, reported as `LedgerTimeout`.
 * - `layerMemory`: the same queries over the deterministic synthetic ledger of `Synthetic.ts`.
 * - `layerFromEnv`: MariaDB when `MYSQL_HOST` is set, memory otherwise.
 *
 * "The last 30 days" are the 30 UTC days ending with the day of the ledger's latest row, so a
 * ledger seeded last week (or the synthetic one, which ends at the start of today) always shows
 * a full window. Money is in integer cents.
 */
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import * as Synthetic from "./Synthetic.js"

// ---------------------------------------------------------------------------------------------
// errors

/** The database stopped a statement at its `max_statement_time`. */
export class LedgerTimeout extends Data.TaggedError("LedgerTimeout")<{
  readonly query: string
  readonly seconds: number
}> {
  override get message() {
    return `the ledger query "${this.query}" was stopped by the database after ${this.seconds} s (max_statement_time)`
  }
}

/** The database is unreachable, rejected a statement, or returned rows of an unexpected shape. */
export class LedgerError extends Data.TaggedError("LedgerError")<{
  readonly query: string
  readonly reason: "Unavailable" | "Query" | "Decode"
  readonly cause?: unknown
}> {
  override get message() {
    const detail = this.cause instanceof Error ? `: ${this.cause.message}` : ""
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
}

export class Ledger extends Context.Tag("explorer/Ledger")<Ledger, Service>() {}

const spanOf = (lastDay: string): Span => {
  const to = Date.parse(`${lastDay}T00:00:00Z`)
  return { from: new Date(to - (spanDays - 1) * Synthetic.dayMs).toISOString().slice(0, 10), to: lastDay }
}

const byKind = (a: { readonly kind: string }, b: { readonly kind: string }) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)

const byDayThenKind = (a: AccountFlowRow, b: AccountFlowRow) => (a.day < b.day ? -1 : a.day > b.day ? 1 : byKind(a, b))

const byMoneyMoved = (a: CounterpartyRow, b: CounterpartyRow) =>
  b.sent + b.received - (a.sent + a.received) || a.accountId - b.accountId

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

// ---------------------------------------------------------------------------------------------
// configuration

/** Connection settings for `layerMysql` (`MYSQL_HOST` is required there). */
export const mysqlConfig = Config.all({
  host: Config.string("MYSQL_HOST"),
  port: Config.port("MYSQL_PORT").pipe(Config.withDefault(3306)),
  username: Config.string("MYSQL_USER").pipe(Config.withDefault("root")),
  password: Config.option(Config.redacted("MYSQL_PASSWORD")),
  database: Config.string("MYSQL_DATABASE").pipe(Config.withDefault("lockstep"))
})

export type MysqlSettings = Config.Config.Success<typeof mysqlConfig>

/** The per-statement limit, `LEDGER_STATEMENT_TIMEOUT` (default 10 seconds). */
export const statementTimeout = Config.duration("LEDGER_STATEMENT_TIMEOUT").pipe(
  Config.withDefault(Duration.seconds(10)),
  Config.validate({
    message: "LEDGER_STATEMENT_TIMEOUT must be between 1 ms and 1 hour",
    validation: (d) => Duration.toMillis(d) >= 1 && Duration.toMillis(d) <= 3_600_000
  })
)

/** The synthetic ledger: `LEDGER_SEED`, `LEDGER_ROWS`, `LEDGER_DAYS`, `LEDGER_END`. */
export const syntheticConfig = Config.all({
  seed: Config.integer("LEDGER_SEED").pipe(Config.withDefault(42)),
  rows: Config.integer("LEDGER_ROWS").pipe(
    Config.withDefault(890_000),
    Config.validate({ message: "LEDGER_ROWS must be between 0 and 50 000 000", validation: (n) => n >= 0 && n <= 50_000_000 })
  ),
  days: Config.integer("LEDGER_DAYS").pipe(
    Config.withDefault(30),
    Config.validate({ message: "LEDGER_DAYS must be between 1 and 3650", validation: (n) => n >= 1 && n <= 3650 })
  ),
  /** The ledger ends at the UTC midnight of this date (default: the start of today). */
  end: Config.option(Config.date("LEDGER_END"))
})

/** Generator options from the environment; the end defaults to today's UTC midnight (by `Clock`). */
export const syntheticOptions: Effect.Effect<Synthetic.Options, ConfigError.ConfigError> = Effect.gen(function*() {
  const c = yield* syntheticConfig
  const end = Option.isSome(c.end) ? c.end.value.getTime() : yield* Clock.currentTimeMillis
  return { seed: c.seed, rows: c.rows, days: c.days, end: Synthetic.utcMidnight(end) }
})

/** `MysqlClient` options from the settings, with short connect timeouts so a dead host fails fast. */
export const clientOptions = (c: MysqlSettings): MysqlClient.MysqlClientConfig => ({
  host: c.host,
  port: c.port,
  username: c.username,
  database: c.database,
  maxConnections: 8,
  poolConfig: { connectTimeout: 3_000, dateStrings: true },
  ...(Option.isSome(c.password) ? { password: c.password.value } : {})
})

// ---------------------------------------------------------------------------------------------
// MariaDB

/** A decimal amount from the driver (a string for `DECIMAL`) as exact integer cents. */
export const Cents = Schema.transformOrFail(Schema.Union(Schema.String, Schema.Number), Schema.Number, {
  strict: true,
  decode: (value, _, ast) => {
    // a number (a DOUBLE column) goes through its shortest decimal form, not `* 100`
    const cents = Synthetic.parseCents(typeof value === "number" ? String(value) : value)
    return Number.isFinite(cents) ? ParseResult.succeed(cents) : ParseResult.fail(new ParseResult.Type(ast, value, "not a decimal amount"))
  },
  encode: (cents) => ParseResult.succeed(Synthetic.formatCents(cents))
})

/** A count: `COUNT(*)` is a number, `SUM` of integers a decimal string. */
export const Count = Schema.Union(Schema.Number, Schema.NumberFromString)

/** The row shapes of the MariaDB queries. */
export const rowSchemas = {
  span: Schema.Struct({ last_day: Schema.NullOr(Schema.String) }),
  totals: Schema.Struct({ transactions: Count, volume: Cents }),
  daily: Schema.Struct({ day: Schema.String, transactions: Count, volume: Cents }),
  active: Schema.Struct({ active: Count }),
  balance: Schema.Struct({ balance: Cents }),
  market: Schema.Struct({
    item_id: Count,
    item: Schema.String,
    trades: Count,
    quantity: Count,
    volume: Cents,
    price_sum: Cents,
    median_price: Cents
  }),
  shop: Schema.Struct({
    shop_id: Count,
    shop: Schema.String,
    owner_id: Count,
    owner: Schema.String,
    revenue: Cents,
    spent: Cents,
    buys: Count,
    sells: Count
  }),
  shopItem: Schema.Struct({ shop_id: Count, item_id: Count, item: Schema.String, quantity: Count, revenue: Cents }),
  flow: Schema.Struct({ kind: Schema.String, transactions: Count, volume: Cents, minted: Cents, burned: Cents }),
  dailyFlow: Schema.Struct({ day: Schema.String, minted: Cents, burned: Cents, circulating: Cents }),
  supply: Schema.Struct({ supply: Cents }),
  range: Schema.Struct({ lo: Count, hi: Count }),
  itemInfo: Schema.Struct({ id: Count, name: Schema.String }),
  itemDay: Schema.Struct({
    day: Schema.String,
    trades: Count,
    quantity: Count,
    volume: Cents,
    price_sum: Cents,
    median_price: Cents,
    all_median: Cents
  }),
  shopInfo: Schema.Struct({ id: Count, name: Schema.String, owner_id: Count, owner: Schema.String }),
  shopDay: Schema.Struct({ day: Schema.String, revenue: Cents, spent: Cents, buys: Count, sells: Count }),
  accountInfo: Schema.Struct({ id: Count, name: Schema.String, opening_balance: Cents }),
  accountFlow: Schema.Struct({ day: Schema.String, kind: Schema.String, received: Cents, paid: Cents, transactions: Count }),
  accountBefore: Schema.Struct({ received: Cents, paid: Cents }),
  counterparty: Schema.Struct({ account_id: Count, name: Schema.String, sent: Cents, received: Cents, transactions: Count })
}

const tables: Record<EntityKind, string> = { item: "items", shop: "shops", account: "accounts" }

/**
 * The drill-down statements, one entity each. Every one filters the ledger on an indexed column
 * first (`schema.sql`: `ledger_item_kind_ts`, `ledger_shop_ts`, `ledger_to_ts`,
 * `ledger_from_ts`), so it reads that entity's rows and never scans the ledger; the ledger test
 * checks the plans with `EXPLAIN`.
 */
export const entityQueries = {
  ids: (sql: SqlClient.SqlClient, kind: EntityKind) =>
    sql`SELECT MIN(id) AS lo, MAX(id) AS hi
        FROM (SELECT id, CAST(id AS SIGNED) - ROW_NUMBER() OVER (ORDER BY id) AS run FROM ${sql(tables[kind])}) AS t
        GROUP BY run ORDER BY lo`,
  itemInfo: (sql: SqlClient.SqlClient, id: number) => sql`SELECT id, name FROM items WHERE id = ${id}`,
  itemTrades: (sql: SqlClient.SqlClient, id: number, since: string) =>
    sql`SELECT day, COUNT(*) AS trades, SUM(quantity) AS quantity, SUM(amount) AS volume, SUM(unit_price) AS price_sum,
               MAX(day_median) AS median_price, MAX(all_median) AS all_median
        FROM (
          SELECT DATE_FORMAT(ts, '%Y-%m-%d') AS day, quantity, amount, unit_price,
                 PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY unit_price) OVER (PARTITION BY DATE(ts)) AS day_median,
                 PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY unit_price) OVER () AS all_median
          FROM ledger WHERE item_id = ${id} AND kind = 'market_trade' AND ts >= ${since}
        ) AS x
        GROUP BY day ORDER BY day`,
  shopInfo: (sql: SqlClient.SqlClient, id: number) =>
    sql`SELECT s.id, s.name, s.owner_id, a.name AS owner FROM shops s JOIN accounts a ON a.id = s.owner_id WHERE s.id = ${id}`,
  shopDaily: (sql: SqlClient.SqlClient, id: number, since: string) =>
    sql`SELECT DATE_FORMAT(ts, '%Y-%m-%d') AS day,
               COALESCE(SUM(CASE WHEN kind = 'chestshop_buy' THEN amount END), 0) AS revenue,
               COALESCE(SUM(CASE WHEN kind = 'chestshop_sell' THEN amount END), 0) AS spent,
               COUNT(CASE WHEN kind = 'chestshop_buy' THEN 1 END) AS buys,
               COUNT(CASE WHEN kind = 'chestshop_sell' THEN 1 END) AS sells
        FROM ledger WHERE shop_id = ${id} AND ts >= ${since} AND kind IN ('chestshop_buy', 'chestshop_sell')
        GROUP BY 1 ORDER BY 1`,
  accountInfo: (sql: SqlClient.SqlClient, id: number) => sql`SELECT id, name, opening_balance FROM accounts WHERE id = ${id}`,
  accountFlows: (sql: SqlClient.SqlClient, id: number, since: string) =>
    sql`SELECT day, kind, SUM(received) AS received, SUM(paid) AS paid, SUM(n) AS transactions FROM (
          SELECT DATE_FORMAT(ts, '%Y-%m-%d') AS day, CAST(kind AS CHAR) AS kind, SUM(amount) AS received,
                 CAST(0 AS DECIMAL(14,2)) AS paid, COUNT(*) AS n
          FROM ledger WHERE to_account = ${id} AND ts >= ${since} GROUP BY 1, 2
          UNION ALL
          SELECT DATE_FORMAT(ts, '%Y-%m-%d'), CAST(kind AS CHAR), CAST(0 AS DECIMAL(14,2)), SUM(amount), COUNT(*)
          FROM ledger WHERE from_account = ${id} AND ts >= ${since} GROUP BY 1, 2
        ) AS f
        GROUP BY day, kind`,
  accountBefore: (sql: SqlClient.SqlClient, id: number, since: string) =>
    sql`SELECT (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE to_account = ${id} AND ts < ${since}) AS received,
               (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE from_account = ${id} AND ts < ${since}) AS paid`,
  counterparties: (sql: SqlClient.SqlClient, id: number, since: string, limit: number) =>
    sql`SELECT c.account_id, a.name, SUM(c.sent) AS sent, SUM(c.received) AS received, SUM(c.n) AS transactions FROM (
          SELECT to_account AS account_id, SUM(amount) AS sent, CAST(0 AS DECIMAL(14,2)) AS received, COUNT(*) AS n
          FROM ledger WHERE from_account = ${id} AND ts >= ${since} AND to_account IS NOT NULL GROUP BY to_account
          UNION ALL
          SELECT from_account, CAST(0 AS DECIMAL(14,2)), SUM(amount), COUNT(*)
          FROM ledger WHERE to_account = ${id} AND ts >= ${since} AND from_account IS NOT NULL GROUP BY from_account
        ) AS c
        JOIN accounts a ON a.id = c.account_id
        GROUP BY c.account_id, a.name
        ORDER BY SUM(c.sent) + SUM(c.received) DESC, c.account_id
        LIMIT ${Math.max(0, Math.floor(limit))}`
}

const connectionCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "EAI_AGAIN",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
  "ER_CON_COUNT_ERROR",
  "ER_ACCESS_DENIED_ERROR",
  "ER_BAD_DB_ERROR"
])

/** MariaDB's `ER_STATEMENT_TIMEOUT`; MySQL's `ER_QUERY_TIMEOUT` for good measure. */
const timeoutErrnos = new Set([1969, 3024])

/** Maps a driver failure to the ledger's typed errors. */
export const classify = (query: string, seconds: number) => (error: SqlError | LedgerError): LedgerFailure => {
  if (error._tag === "LedgerError") return error
  const cause = error.cause as { readonly errno?: unknown; readonly code?: unknown; readonly fatal?: unknown } | undefined
  if (cause !== undefined && timeoutErrnos.has(cause.errno as number)) return new LedgerTimeout({ query, seconds })
  const unavailable = cause !== undefined && (cause.fatal === true || connectionCodes.has(cause.code as string))
  return new LedgerError({ query, reason: unavailable ? "Unavailable" : "Query", cause: error.cause ?? error })
}

/**
 * A `SqlClient` that connects on first use and again after a failed attempt, so the server
 * starts (and `/healthz` answers) while the database is down. Its pool lives in `scope`.
 */
const lazyClient = (options: MysqlClient.MysqlClientConfig, scope: Scope.Scope) =>
  Effect.gen(function*() {
    const ref = yield* SynchronizedRef.make(Option.none<SqlClient.SqlClient>())
    const connect = Effect.gen(function*() {
      const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
      return yield* Layer.buildWithScope(MysqlClient.layer(options), child).pipe(
        Effect.map(Context.get(SqlClient.SqlClient)),
        Effect.tapError(() => Scope.close(child, Exit.void))
      )
    })
    return SynchronizedRef.modifyEffect(ref, (current) =>
      Option.isSome(current)
        ? Effect.succeed([current.value, current] as const)
        : Effect.map(connect, (client) => [client, Option.some(client)] as const)).pipe(
        Effect.mapError((cause) => new LedgerError({ query: "connect", reason: "Unavailable", cause }))
      )
  })

/**
 * Runs one bounded statement: `SET STATEMENT max_statement_time=<limit> FOR <query>`, sent
 * unprepared because MariaDB does not take a placeholder there; every value, the limit included,
 * is still a bound parameter escaped by the driver, never text built by us.
 */
export const bounded = <A, I>(
  sql: SqlClient.SqlClient,
  seconds: number,
  name: string,
  schema: Schema.Schema<A, I>,
  query: (sql: SqlClient.SqlClient) => Statement.Fragment
): Effect.Effect<ReadonlyArray<A>, LedgerFailure> =>
  sql`SET STATEMENT max_statement_time=${seconds} FOR ${query(sql)}`.unprepared.pipe(
    Effect.mapError(classify(name, seconds)),
    Effect.flatMap((result) =>
      Schema.decodeUnknown(Schema.Array(schema))(result).pipe(
        Effect.mapError((cause) => new LedgerError({ query: name, reason: "Decode", cause }))
      )
    ),
    Effect.withSpan(`ledger.${name}`)
  )

const first = <A>(name: string, rows: ReadonlyArray<A>): Effect.Effect<A, LedgerError> =>
  rows[0] === undefined
    ? Effect.fail(new LedgerError({ query: name, reason: "Decode", cause: new Error("no row") }))
    : Effect.succeed(rows[0])

/** The MariaDB queries over a client (obtained per query, see `lazyClient`). */
export const makeSql = (
  client: Effect.Effect<SqlClient.SqlClient, LedgerError>,
  seconds: number
): Service => {
  const q = <A, I>(name: string, schema: Schema.Schema<A, I>, query: (sql: SqlClient.SqlClient) => Statement.Fragment) =>
    Effect.flatMap(client, (sql) => bounded(sql, seconds, name, schema, query))
  const since = (span: Span) => `${span.from} 00:00:00`

  return {
    backend: "mysql",
    span: q("span", rowSchemas.span, (sql) => sql`SELECT DATE_FORMAT(MAX(ts), '%Y-%m-%d') AS last_day FROM ledger`).pipe(
      Effect.flatMap((r) => first("span", r)),
      Effect.map((r) => Option.map(Option.fromNullable(r.last_day), spanOf))
    ),
    totals: (span) =>
      q("totals", rowSchemas.totals, (sql) =>
        sql`SELECT COUNT(*) AS transactions, COALESCE(SUM(amount), 0) AS volume
            FROM ledger WHERE ts >= ${since(span)}`).pipe(Effect.flatMap((r) => first("totals", r))),
    daily: (span) =>
      q("daily", rowSchemas.daily, (sql) =>
        sql`SELECT DATE_FORMAT(ts, '%Y-%m-%d') AS day, COUNT(*) AS transactions, SUM(amount) AS volume
            FROM ledger WHERE ts >= ${since(span)}
            GROUP BY day ORDER BY day`),
    activeAccounts: (span) =>
      q("active accounts", rowSchemas.active, (sql) =>
        sql`SELECT COUNT(*) AS active FROM (
              SELECT from_account AS account FROM ledger WHERE ts >= ${since(span)} AND from_account IS NOT NULL
              UNION
              SELECT to_account FROM ledger WHERE ts >= ${since(span)} AND to_account IS NOT NULL
            ) AS a`).pipe(
          Effect.flatMap((r) => first("active accounts", r)),
          Effect.map((r) => r.active)
        ),
    balances: q("balances", rowSchemas.balance, (sql) =>
      sql`SELECT a.opening_balance + COALESCE(i.total, 0) - COALESCE(o.total, 0) AS balance
          FROM accounts a
          LEFT JOIN (SELECT to_account AS account, SUM(amount) AS total FROM ledger
                     WHERE to_account IS NOT NULL GROUP BY to_account) AS i ON i.account = a.id
          LEFT JOIN (SELECT from_account AS account, SUM(amount) AS total FROM ledger
                     WHERE from_account IS NOT NULL GROUP BY from_account) AS o ON o.account = a.id
          ORDER BY balance, a.id`).pipe(Effect.map((r) => r.map((x) => x.balance))),
    market: (span) =>
      q("market", rowSchemas.market, (sql) =>
        sql`SELECT t.item_id, i.name AS item, t.trades, t.quantity, t.volume, t.price_sum, t.median_price
            FROM (
              SELECT item_id, COUNT(*) AS trades, SUM(quantity) AS quantity, SUM(amount) AS volume,
                     SUM(unit_price) AS price_sum, MAX(median_price) AS median_price
              FROM (
                SELECT item_id, quantity, amount, unit_price,
                       PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY unit_price) OVER (PARTITION BY item_id) AS median_price
                FROM ledger WHERE kind = 'market_trade' AND ts >= ${since(span)}
              ) AS x
              GROUP BY item_id
            ) AS t
            JOIN items i ON i.id = t.item_id
            ORDER BY t.volume DESC, t.item_id`).pipe(
          Effect.map((r) =>
            r.map((x): MarketRow => ({
              itemId: x.item_id,
              item: x.item,
              trades: x.trades,
              quantity: x.quantity,
              volume: x.volume,
              priceSum: x.price_sum,
              medianPrice: x.median_price
            }))
          )
        ),
    topShops: (span, limit) =>
      q("top shops", rowSchemas.shop, (sql) =>
        sql`SELECT s.id AS shop_id, s.name AS shop, s.owner_id, a.name AS owner, t.revenue, t.spent, t.buys, t.sells
            FROM (
              SELECT shop_id,
                     COALESCE(SUM(CASE WHEN kind = 'chestshop_buy' THEN amount END), 0) AS revenue,
                     COALESCE(SUM(CASE WHEN kind = 'chestshop_sell' THEN amount END), 0) AS spent,
                     COUNT(CASE WHEN kind = 'chestshop_buy' THEN 1 END) AS buys,
                     COUNT(CASE WHEN kind = 'chestshop_sell' THEN 1 END) AS sells
              FROM ledger
              WHERE kind IN ('chestshop_buy', 'chestshop_sell') AND ts >= ${since(span)}
              GROUP BY shop_id
            ) AS t
            JOIN shops s ON s.id = t.shop_id
            JOIN accounts a ON a.id = s.owner_id
            ORDER BY t.revenue DESC, s.id
            LIMIT ${Math.max(0, Math.floor(limit))}`).pipe(
          Effect.map((r) =>
            r.map((x): ShopRow => ({
              shopId: x.shop_id,
              shop: x.shop,
              ownerId: x.owner_id,
              owner: x.owner,
              revenue: x.revenue,
              spent: x.spent,
              buys: x.buys,
              sells: x.sells
            }))
          )
        ),
    shopItems: (span, shopIds, perShop) =>
      shopIds.length === 0 ? Effect.succeed([]) : q("shop items", rowSchemas.shopItem, (sql) =>
        sql`SELECT shop_id, item_id, item, quantity, revenue FROM (
              SELECT l.shop_id, l.item_id, i.name AS item, SUM(l.quantity) AS quantity, SUM(l.amount) AS revenue,
                     ROW_NUMBER() OVER (PARTITION BY l.shop_id ORDER BY SUM(l.amount) DESC, l.item_id) AS rn
              FROM ledger l JOIN items i ON i.id = l.item_id
              WHERE l.kind = 'chestshop_buy' AND l.ts >= ${since(span)} AND l.shop_id IN ${sql.in(shopIds)}
              GROUP BY l.shop_id, l.item_id, i.name
            ) AS r
            WHERE rn <= ${Math.max(0, Math.floor(perShop))}
            ORDER BY shop_id, rn`).pipe(
          Effect.map((r) =>
            r.map((x): ShopItemRow => ({ shopId: x.shop_id, itemId: x.item_id, item: x.item, quantity: x.quantity, revenue: x.revenue }))
          )
        ),
    flows: (span) =>
      q("flows", rowSchemas.flow, (sql) =>
        sql`SELECT CAST(kind AS CHAR) AS kind, COUNT(*) AS transactions, SUM(amount) AS volume,
                   COALESCE(SUM(CASE WHEN from_account IS NULL THEN amount END), 0) AS minted,
                   COALESCE(SUM(CASE WHEN to_account IS NULL THEN amount END), 0) AS burned
            FROM ledger WHERE ts >= ${since(span)}
            GROUP BY kind`).pipe(Effect.map((r) => [...r].sort(byKind))),
    dailyFlows: (span) =>
      q("daily flows", rowSchemas.dailyFlow, (sql) =>
        sql`SELECT DATE_FORMAT(ts, '%Y-%m-%d') AS day,
                   COALESCE(SUM(CASE WHEN from_account IS NULL THEN amount END), 0) AS minted,
                   COALESCE(SUM(CASE WHEN to_account IS NULL THEN amount END), 0) AS burned,
                   COALESCE(SUM(CASE WHEN from_account IS NOT NULL AND to_account IS NOT NULL THEN amount END), 0) AS circulating
            FROM ledger WHERE ts >= ${since(span)}
            GROUP BY day ORDER BY day`),
    moneySupply: q("money supply", rowSchemas.supply, (sql) =>
      sql`SELECT (SELECT COALESCE(SUM(opening_balance), 0) FROM accounts)
               + (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE from_account IS NULL)
               - (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE to_account IS NULL) AS supply`).pipe(
        Effect.flatMap((r) => first("money supply", r)),
        Effect.map((r) => r.supply)
      ),
    ids: (kind) =>
      q(`${kind} ids`, rowSchemas.range, (sql) => entityQueries.ids(sql, kind)).pipe(
        Effect.map((r) => r.map((x) => [x.lo, x.hi] as const))
      ),
    itemInfo: (id) =>
      q("item", rowSchemas.itemInfo, (sql) => entityQueries.itemInfo(sql, id)).pipe(
        Effect.map((r) => Option.map(Option.fromNullable(r[0]), (x): ItemInfo => ({ id: x.id, name: x.name })))
      ),
    itemTrades: (id, span) =>
      q("item trades", rowSchemas.itemDay, (sql) => entityQueries.itemTrades(sql, id, since(span))).pipe(
        Effect.map((r): ItemTrades => ({
          daily: r.map((x) => ({
            day: x.day,
            trades: x.trades,
            quantity: x.quantity,
            volume: x.volume,
            priceSum: x.price_sum,
            medianPrice: x.median_price
          })),
          medianPrice: r[0]?.all_median ?? 0
        }))
      ),
    shopInfo: (id) =>
      q("shop", rowSchemas.shopInfo, (sql) => entityQueries.shopInfo(sql, id)).pipe(
        Effect.map((r) => Option.map(Option.fromNullable(r[0]), (x): ShopInfo => ({ id: x.id, name: x.name, ownerId: x.owner_id, owner: x.owner })))
      ),
    shopDaily: (id, span) => q("shop daily", rowSchemas.shopDay, (sql) => entityQueries.shopDaily(sql, id, since(span))),
    accountInfo: (id) =>
      q("account", rowSchemas.accountInfo, (sql) => entityQueries.accountInfo(sql, id)).pipe(
        Effect.map((r) =>
          Option.map(Option.fromNullable(r[0]), (x): AccountInfo => ({ id: x.id, name: x.name, openingBalance: x.opening_balance }))
        )
      ),
    accountFlows: (id, span) =>
      q("account flows", rowSchemas.accountFlow, (sql) => entityQueries.accountFlows(sql, id, since(span))).pipe(
        Effect.map((r) => [...r].sort(byDayThenKind))
      ),
    accountBefore: (id, span) =>
      q("account before", rowSchemas.accountBefore, (sql) => entityQueries.accountBefore(sql, id, since(span))).pipe(
        Effect.flatMap((r) => first("account before", r))
      ),
    counterparties: (id, span, limit) =>
      q("counterparties", rowSchemas.counterparty, (sql) => entityQueries.counterparties(sql, id, since(span), limit)).pipe(
        Effect.map((r) =>
          r.map((x): CounterpartyRow => ({
            accountId: x.account_id,
            name: x.name,
            sent: x.sent,
            received: x.received,
            transactions: x.transactions
          }))
        )
      )
  }
}

/** MariaDB with explicit settings; connects lazily (see `lazyClient`). */
export const layerMysqlWith = (settings: MysqlSettings, timeout: Duration.DurationInput): Layer.Layer<Ledger> =>
  Layer.scoped(
    Ledger,
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const client = yield* lazyClient(clientOptions(settings), scope)
      const seconds = Duration.toMillis(timeout) / 1000
      yield* client.pipe(
        Effect.zipRight(Effect.logInfo(`explorer: ledger on MariaDB ${settings.host}:${settings.port}/${settings.database}`)),
        Effect.catchAll((e) => Effect.logWarning(`explorer: ${e.message}; will retry on demand`))
      )
      return makeSql(client, seconds)
    })
  )

/** MariaDB from `MYSQL_*` and `LEDGER_STATEMENT_TIMEOUT`. */
export const layerMysql: Layer.Layer<Ledger, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(Config.all([mysqlConfig, statementTimeout]), ([settings, timeout]) => layerMysqlWith(settings, timeout))
)

// ---------------------------------------------------------------------------------------------
// memory

/** A group of trades' totals, and its prices for medians. */
interface Trades {
  trades: number
  quantity: number
  volume: number
  priceSum: number
  readonly prices: Array<number>
}

/** The same queries over `LedgerData`, scanning typed arrays. */
export const makeMemory = (data: Synthetic.LedgerData): Service => {
  const r = data.rows
  const itemName = new Map(data.items.map((i) => [i.id, i.name]))
  const accountName = new Map(data.accounts.map((a) => [a.id, a.name]))
  const dayOf = (sec: number) => Synthetic.formatDay(Math.floor(sec / 86_400) * 86_400)
  const sinceSec = (span: Span) => Date.parse(`${span.from}T00:00:00Z`) / 1000
  /** Adds trade row `i` to the totals under `key`. */
  const addTrade = <K>(totals: Map<K, Trades>, key: K, i: number) => {
    let acc = totals.get(key)
    if (acc === undefined) totals.set(key, acc = { trades: 0, quantity: 0, volume: 0, priceSum: 0, prices: [] })
    acc.trades++
    acc.quantity += r.quantity[i]!
    acc.volume += r.amount[i]!
    acc.priceSum += r.unitPrice[i]!
    acc.prices.push(r.unitPrice[i]!)
  }
  /** Visits the rows of the span (rows are in time order). */
  const scan = (span: Span, f: (i: number) => void) => {
    const from = sinceSec(span)
    let lo = 0
    let hi = r.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (r.ts[mid]! < from) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < r.length; i++) f(i)
  }
  /** Groups the span's rows by UTC day (`day` indexes), in day order. */
  const byDay = <A>(span: Span, init: () => A, add: (acc: A, i: number) => void): Array<[string, A]> => {
    const days = new Map<number, A>()
    scan(span, (i) => {
      const d = Math.floor(r.ts[i]! / 86_400)
      let acc = days.get(d)
      if (acc === undefined) days.set(d, acc = init())
      add(acc, i)
    })
    return [...days.entries()].sort((a, b) => a[0] - b[0]).map(([d, acc]) => [dayOf(d * 86_400), acc])
  }
  const median = (sorted: ReadonlyArray<number>) => {
    const m = sorted.length >> 1
    return sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2
  }
  /**
   * The rows of each value of a column, in time order: the in-memory counterpart of an index on
   * `(column, ts)`, built on first use (4 bytes a row).
   */
  const indexOf = (column: Int32Array) => {
    let built: { readonly start: Int32Array; readonly rows: Int32Array } | undefined
    const build = () => {
      let max = -1
      for (let i = 0; i < r.length; i++) if (column[i]! > max) max = column[i]!
      const start = new Int32Array(max + 2)
      for (let i = 0; i < r.length; i++) if (column[i]! >= 0) start[column[i]! + 1]!++
      for (let v = 1; v < start.length; v++) start[v]! += start[v - 1]!
      const rows = new Int32Array(start[start.length - 1]!)
      const next = start.slice()
      for (let i = 0; i < r.length; i++) if (column[i]! >= 0) rows[next[column[i]!]!++] = i
      return { start, rows }
    }
    /** The rows whose column holds `value`, ascending (so in time order). */
    return (value: number): Int32Array => {
      built ??= build()
      return value >= 0 && value + 1 < built.start.length ? built.rows.subarray(built.start[value]!, built.start[value + 1]!) : new Int32Array(0)
    }
  }
  const rowsOfItem = indexOf(r.item)
  const rowsOfShop = indexOf(r.shop)
  const rowsFrom = indexOf(r.from)
  const rowsTo = indexOf(r.to)
  /** How many of `rows` (ascending, so in time order) are before the span. */
  const beforeSpan = (rows: Int32Array, span: Span) => {
    const from = sinceSec(span)
    let lo = 0
    let hi = rows.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (r.ts[rows[mid]!]! < from) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const inSpan = (rows: Int32Array, span: Span) => rows.subarray(beforeSpan(rows, span))
  const dayKey = (i: number) => dayOf(r.ts[i]!)
  const kindIndex = (k: Synthetic.Kind) => Synthetic.kinds.indexOf(k)
  const BUY = kindIndex("chestshop_buy")
  const SELL = kindIndex("chestshop_sell")
  const TRADE = kindIndex("market_trade")

  return {
    backend: "memory",
    span: Effect.sync(() => {
      let max = -Infinity
      for (let i = 0; i < r.length; i++) if (r.ts[i]! > max) max = r.ts[i]!
      return r.length === 0 ? Option.none() : Option.some(spanOf(dayOf(max)))
    }),
    totals: (span) =>
      Effect.sync(() => {
        let transactions = 0
        let volume = 0
        scan(span, (i) => {
          transactions++
          volume += r.amount[i]!
        })
        return { transactions, volume }
      }),
    daily: (span) =>
      Effect.sync(() =>
        byDay(span, () => ({ transactions: 0, volume: 0 }), (acc, i) => {
          acc.transactions++
          acc.volume += r.amount[i]!
        }).map(([day, acc]) => ({ day, ...acc }))
      ),
    activeAccounts: (span) =>
      Effect.sync(() => {
        const seen = new Set<number>()
        scan(span, (i) => {
          if (r.from[i]! >= 0) seen.add(r.from[i]!)
          if (r.to[i]! >= 0) seen.add(r.to[i]!)
        })
        return seen.size
      }),
    balances: Effect.sync(() => {
      const balance = new Map(data.accounts.map((a) => [a.id, a.openingCents]))
      for (let i = 0; i < r.length; i++) {
        const from = r.from[i]!
        const to = r.to[i]!
        if (from >= 0 && balance.has(from)) balance.set(from, balance.get(from)! - r.amount[i]!)
        if (to >= 0 && balance.has(to)) balance.set(to, balance.get(to)! + r.amount[i]!)
      }
      return [...balance.values()].sort((a, b) => a - b)
    }),
    market: (span) =>
      Effect.sync(() => {
        const byItem = new Map<number, Trades>()
        scan(span, (i) => {
          if (r.kind[i] !== TRADE) return
          const id = r.item[i]!
          addTrade(byItem, id, i)
        })
        return [...byItem.entries()]
          .filter(([id]) => itemName.has(id))
          .map(([itemId, acc]): MarketRow => ({
            itemId,
            item: itemName.get(itemId)!,
            trades: acc.trades,
            quantity: acc.quantity,
            volume: acc.volume,
            priceSum: acc.priceSum,
            medianPrice: median(acc.prices.sort((a, b) => a - b))
          }))
          .sort((a, b) => b.volume - a.volume || a.itemId - b.itemId)
      }),
    topShops: (span, limit) =>
      Effect.sync(() => {
        const byShop = new Map<number, { revenue: number; spent: number; buys: number; sells: number }>()
        scan(span, (i) => {
          const k = r.kind[i]
          if (k !== BUY && k !== SELL) return
          let acc = byShop.get(r.shop[i]!)
          if (acc === undefined) byShop.set(r.shop[i]!, acc = { revenue: 0, spent: 0, buys: 0, sells: 0 })
          if (k === BUY) {
            acc.revenue += r.amount[i]!
            acc.buys++
          } else {
            acc.spent += r.amount[i]!
            acc.sells++
          }
        })
        const shops = new Map(data.shops.map((s) => [s.id, s]))
        return [...byShop.entries()]
          .flatMap(([shopId, acc]): Array<ShopRow> => {
            const shop = shops.get(shopId)
            const owner = shop === undefined ? undefined : accountName.get(shop.ownerId)
            return shop === undefined || owner === undefined ? [] : [{ shopId, shop: shop.name, ownerId: shop.ownerId, owner, ...acc }]
          })
          .sort((a, b) => b.revenue - a.revenue || a.shopId - b.shopId)
          .slice(0, Math.max(0, Math.floor(limit)))
      }),
    shopItems: (span, shopIds, perShop) =>
      Effect.sync(() => {
        const wanted = new Set(shopIds)
        const groups = new Map<number, Map<number, { quantity: number; revenue: number }>>()
        scan(span, (i) => {
          if (r.kind[i] !== BUY || !wanted.has(r.shop[i]!) || !itemName.has(r.item[i]!)) return
          let shop = groups.get(r.shop[i]!)
          if (shop === undefined) groups.set(r.shop[i]!, shop = new Map())
          let acc = shop.get(r.item[i]!)
          if (acc === undefined) shop.set(r.item[i]!, acc = { quantity: 0, revenue: 0 })
          acc.quantity += r.quantity[i]!
          acc.revenue += r.amount[i]!
        })
        return [...groups.entries()].sort((a, b) => a[0] - b[0]).flatMap(([shopId, items]) =>
          [...items.entries()]
            .sort((a, b) => b[1].revenue - a[1].revenue || a[0] - b[0])
            .slice(0, Math.max(0, Math.floor(perShop)))
            .map(([itemId, acc]): ShopItemRow => ({ shopId, itemId, item: itemName.get(itemId)!, ...acc }))
        )
      }),
    flows: (span) =>
      Effect.sync(() => {
        const byKindIndex = new Map<number, { transactions: number; volume: number; minted: number; burned: number }>()
        scan(span, (i) => {
          let acc = byKindIndex.get(r.kind[i]!)
          if (acc === undefined) byKindIndex.set(r.kind[i]!, acc = { transactions: 0, volume: 0, minted: 0, burned: 0 })
          acc.transactions++
          acc.volume += r.amount[i]!
          if (r.from[i]! < 0) acc.minted += r.amount[i]!
          if (r.to[i]! < 0) acc.burned += r.amount[i]!
        })
        return [...byKindIndex.entries()].map(([k, acc]): FlowRow => ({ kind: Synthetic.kinds[k]!, ...acc })).sort(byKind)
      }),
    dailyFlows: (span) =>
      Effect.sync(() =>
        byDay(span, () => ({ minted: 0, burned: 0, circulating: 0 }), (acc, i) => {
          const from = r.from[i]!
          const to = r.to[i]!
          if (from < 0) acc.minted += r.amount[i]!
          if (to < 0) acc.burned += r.amount[i]!
          if (from >= 0 && to >= 0) acc.circulating += r.amount[i]!
        }).map(([day, acc]) => ({ day, ...acc }))
      ),
    moneySupply: Effect.sync(() => {
      let supply = data.accounts.reduce((sum, a) => sum + a.openingCents, 0)
      for (let i = 0; i < r.length; i++) {
        if (r.from[i]! < 0) supply += r.amount[i]!
        if (r.to[i]! < 0) supply -= r.amount[i]!
      }
      return supply
    }),
    ids: (kind) =>
      Effect.sync(() => toRanges((kind === "item" ? data.items : kind === "shop" ? data.shops : data.accounts).map((e) => e.id))),
    itemInfo: (id) =>
      Effect.sync(() => Option.map(Option.fromNullable(itemName.get(id)), (name): ItemInfo => ({ id, name }))),
    itemTrades: (id, span) =>
      Effect.sync(() => {
        const days = new Map<string, Trades>()
        const all: Array<number> = []
        for (const i of inSpan(rowsOfItem(id), span)) {
          if (r.kind[i] !== TRADE) continue
          const day = dayKey(i)
          addTrade(days, day, i)
          all.push(r.unitPrice[i]!)
        }
        return {
          daily: [...days.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([day, acc]): ItemDayRow => ({
            day,
            trades: acc.trades,
            quantity: acc.quantity,
            volume: acc.volume,
            priceSum: acc.priceSum,
            medianPrice: median(acc.prices.sort((a, b) => a - b))
          })),
          medianPrice: all.length === 0 ? 0 : median(all.sort((a, b) => a - b))
        }
      }),
    shopInfo: (id) =>
      Effect.sync(() => {
        const shop = data.shops.find((s) => s.id === id)
        const owner = shop === undefined ? undefined : accountName.get(shop.ownerId)
        return shop === undefined || owner === undefined
          ? Option.none()
          : Option.some<ShopInfo>({ id, name: shop.name, ownerId: shop.ownerId, owner })
      }),
    shopDaily: (id, span) =>
      Effect.sync(() => {
        const days = new Map<string, { revenue: number; spent: number; buys: number; sells: number }>()
        for (const i of inSpan(rowsOfShop(id), span)) {
          const k = r.kind[i]
          if (k !== BUY && k !== SELL) continue
          const day = dayKey(i)
          let acc = days.get(day)
          if (acc === undefined) days.set(day, acc = { revenue: 0, spent: 0, buys: 0, sells: 0 })
          if (k === BUY) {
            acc.revenue += r.amount[i]!
            acc.buys++
          } else {
            acc.spent += r.amount[i]!
            acc.sells++
          }
        }
        return [...days.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([day, acc]): ShopDayRow => ({ day, ...acc }))
      }),
    accountInfo: (id) =>
      Effect.sync(() => {
        const account = data.accounts.find((a) => a.id === id)
        return account === undefined
          ? Option.none()
          : Option.some<AccountInfo>({ id, name: account.name, openingBalance: account.openingCents })
      }),
    accountFlows: (id, span) =>
      Effect.sync(() => {
        const groups = new Map<string, { day: string; kind: string; received: number; paid: number; transactions: number }>()
        const add = (i: number, side: "received" | "paid") => {
          const day = dayKey(i)
          const kind = Synthetic.kinds[r.kind[i]!]!
          const group = `${day} ${kind}`
          let acc = groups.get(group)
          if (acc === undefined) groups.set(group, acc = { day, kind, received: 0, paid: 0, transactions: 0 })
          acc[side] += r.amount[i]!
          acc.transactions++
        }
        for (const i of inSpan(rowsTo(id), span)) add(i, "received")
        for (const i of inSpan(rowsFrom(id), span)) add(i, "paid")
        return [...groups.values()].sort(byDayThenKind)
      }),
    accountBefore: (id, span) =>
      Effect.sync(() => {
        const sum = (rows: Int32Array) => {
          let total = 0
          for (const i of rows.subarray(0, beforeSpan(rows, span))) total += r.amount[i]!
          return total
        }
        return { received: sum(rowsTo(id)), paid: sum(rowsFrom(id)) }
      }),
    counterparties: (id, span, limit) =>
      Effect.sync(() => {
        const by = new Map<number, { sent: number; received: number; transactions: number }>()
        const add = (other: number, side: "sent" | "received", amount: number) => {
          if (other < 0) return
          let acc = by.get(other)
          if (acc === undefined) by.set(other, acc = { sent: 0, received: 0, transactions: 0 })
          acc[side] += amount
          acc.transactions++
        }
        for (const i of inSpan(rowsFrom(id), span)) add(r.to[i]!, "sent", r.amount[i]!)
        for (const i of inSpan(rowsTo(id), span)) add(r.from[i]!, "received", r.amount[i]!)
        return [...by.entries()]
          .flatMap(([accountId, acc]): Array<CounterpartyRow> => {
            const name = accountName.get(accountId)
            return name === undefined ? [] : [{ accountId, name, ...acc }]
          })
          .sort(byMoneyMoved)
          .slice(0, Math.max(0, Math.floor(limit)))
      })
  }
}

/** The in-memory ledger over given data. */
export const layerMemoryFrom = (data: Synthetic.LedgerData): Layer.Layer<Ledger> => Layer.succeed(Ledger, makeMemory(data))

/** The in-memory ledger over the synthetic ledger described by `LEDGER_*`. */
export const layerMemory: Layer.Layer<Ledger, ConfigError.ConfigError> = Layer.effect(
  Ledger,
  Effect.gen(function*() {
    const options = yield* syntheticOptions
    const started = yield* Clock.currentTimeMillis
    const data = Synthetic.generate(options)
    const took = (yield* Clock.currentTimeMillis) - started
    yield* Effect.logInfo(
      `explorer: MYSQL_HOST is not set; using the in-memory synthetic ledger (${options.rows} rows, seed ${options.seed}, generated in ${took} ms)`
    )
    return makeMemory(data)
  })
)

/** MariaDB when `MYSQL_HOST` is set, otherwise the in-memory synthetic ledger. */
export const layerFromEnv: Layer.Layer<Ledger, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(Config.option(Config.string("MYSQL_HOST")), (host) => Option.isSome(host) ? layerMysql : layerMemory)
)
