/**
 * The ledger on MariaDB, through `@effect/sql-mysql2`. Aggregation happens in SQL; rows are
 * decoded with `Schema`; every statement runs under `SET STATEMENT max_statement_time=N FOR`,
 * N the stricter of `LEDGER_STATEMENT_TIMEOUT` and the server's global limit, so the database
 * itself stops a runaway query, reported as `LedgerTimeout`.
 */
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
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
import * as Synthetic from "../Synthetic.js"
import {
  type AccountFlowRow,
  type AccountInfo,
  type AccountRows,
  type Batch,
  byDayThenKind,
  byKind,
  byMoneyMoved,
  byRevenue,
  type CounterpartyRow,
  type EntityKind,
  type ItemDayRow,
  type ItemInfo,
  type ItemRows,
  type ItemTrades,
  Ledger,
  LedgerError,
  type LedgerFailure,
  LedgerTimeout,
  type MarketRow,
  type Service,
  type ShopDayRow,
  type ShopInfo,
  type ShopItemRow,
  type ShopRow,
  type ShopRows,
  type Span,
  spanDays,
  spanOf
} from "../Ledger.js"

// ---------------------------------------------------------------------------------------------
// configuration

/** Connection settings for `layer` (`MYSQL_HOST` is required there). */
export const config = Config.all({
  host: Config.string("MYSQL_HOST"),
  port: Config.port("MYSQL_PORT").pipe(Config.withDefault(3306)),
  username: Config.string("MYSQL_USER").pipe(Config.withDefault("root")),
  password: Config.option(Config.redacted("MYSQL_PASSWORD")),
  database: Config.string("MYSQL_DATABASE").pipe(Config.withDefault("lockstep"))
})

export type Settings = Config.Config.Success<typeof config>

/** The per-statement limit, `LEDGER_STATEMENT_TIMEOUT` (default 10 seconds); a stricter global `max_statement_time` of the server wins. */
export const statementTimeout = Config.duration("LEDGER_STATEMENT_TIMEOUT").pipe(
  Config.withDefault(Duration.seconds(10)),
  Config.validate({
    message: "LEDGER_STATEMENT_TIMEOUT must be between 1 ms and 1 hour",
    validation: (d) => Duration.toMillis(d) >= 1 && Duration.toMillis(d) <= 3_600_000
  })
)

/** `MysqlClient` options from the settings, with short connect timeouts so a dead host fails fast. */
export const clientOptions = (c: Settings): MysqlClient.MysqlClientConfig => ({
  host: c.host,
  port: c.port,
  username: c.username,
  database: c.database,
  maxConnections: 8,
  // `@effect/sql-mysql2` keeps no idle connection unless told (`maxIdle` 0): every aggregate run
  // would open a connection and the pool's reaper would drop it a second later, which MariaDB
  // logs as an aborted connection. Keep a few open between runs, for `connectionTTL` of idleness,
  // and close them with COM_QUIT.
  connectionTTL: Duration.minutes(2),
  poolConfig: { connectTimeout: 3_000, dateStrings: true, maxIdle: 2, gracefulEnd: true },
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
  itemLastTrade: Schema.Struct({ last: Schema.NullOr(Count), trades: Count }),
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
  counterparty: Schema.Struct({ account_id: Count, name: Schema.String, sent: Cents, received: Cents, transactions: Count }),
  // the batch reads: one row per part of an entity's page, `last_day` the span's on every row
  itemMany: Schema.Struct({
    item_id: Count,
    name: Schema.String,
    last_day: Schema.NullOr(Schema.String),
    day: Schema.NullOr(Schema.String),
    trades: Schema.NullOr(Count),
    quantity: Schema.NullOr(Count),
    volume: Schema.NullOr(Cents),
    price_sum: Schema.NullOr(Cents),
    median_price: Schema.NullOr(Cents),
    all_median: Schema.NullOr(Cents)
  }),
  shopMany: Schema.Struct({
    part: Schema.Literal("shop", "day", "item"),
    shop_id: Count,
    last_day: Schema.NullOr(Schema.String),
    name: Schema.NullOr(Schema.String),
    other_id: Schema.NullOr(Count),
    other: Schema.NullOr(Schema.String),
    day: Schema.NullOr(Schema.String),
    a: Schema.NullOr(Cents),
    b: Schema.NullOr(Cents),
    m: Schema.NullOr(Count),
    n: Schema.NullOr(Count)
  }),
  accountMany: Schema.Struct({
    part: Schema.Literal("account", "flow", "in", "out", "counterparty"),
    account_id: Count,
    last_day: Schema.NullOr(Schema.String),
    name: Schema.NullOr(Schema.String),
    other_id: Schema.NullOr(Count),
    day: Schema.NullOr(Schema.String),
    kind: Schema.NullOr(Schema.String),
    a: Schema.NullOr(Cents),
    b: Schema.NullOr(Cents),
    n: Schema.NullOr(Count)
  })
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
  itemLastTrade: (sql: SqlClient.SqlClient, id: number, since: string) =>
    sql`SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', MAX(ts)) AS last, COALESCE(SUM(ts >= ${since}), 0) AS trades
        FROM ledger WHERE item_id = ${id} AND kind = 'market_trade'`,
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

/** The span's last day, as a derived table `s` (`s.last_day` a DATE, NULL for an empty ledger). */
const lastDay = (sql: SqlClient.SqlClient) => sql`(SELECT DATE(MAX(ts)) AS last_day FROM ledger) AS s`

/** The span's first instant, from `s.last_day`: the same 30 days as `spanOf`. */
const spanStart = (sql: SqlClient.SqlClient) => sql`s.last_day - INTERVAL ${spanDays - 1} DAY`

/**
 * The batch statements behind the drill-down loaders' `lookupMany`: one statement per batch,
 * answering every asked entity's page rows and the span they cover (read in the same statement,
 * so a batch never straddles two spans). Each part filters the ledger on the same indexed
 * columns as the single-entity statements, with `IN` over the batch's ids.
 */
export const batchQueries = {
  items: (sql: SqlClient.SqlClient, ids: ReadonlyArray<number>) =>
    sql`SELECT i.id AS item_id, i.name, DATE_FORMAT(s.last_day, '%Y-%m-%d') AS last_day,
               d.day, d.trades, d.quantity, d.volume, d.price_sum, d.median_price, d.all_median
        FROM items i
        CROSS JOIN ${lastDay(sql)}
        LEFT JOIN (
          SELECT item_id, day, COUNT(*) AS trades, SUM(quantity) AS quantity, SUM(amount) AS volume, SUM(unit_price) AS price_sum,
                 MAX(day_median) AS median_price, MAX(all_median) AS all_median
          FROM (
            SELECT l.item_id, DATE_FORMAT(l.ts, '%Y-%m-%d') AS day, l.quantity, l.amount, l.unit_price,
                   PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY l.unit_price) OVER (PARTITION BY l.item_id, DATE(l.ts)) AS day_median,
                   PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY l.unit_price) OVER (PARTITION BY l.item_id) AS all_median
            FROM ledger l CROSS JOIN ${lastDay(sql)}
            WHERE l.item_id IN ${sql.in(ids)} AND l.kind = 'market_trade' AND l.ts >= ${spanStart(sql)}
          ) AS x
          GROUP BY item_id, day
        ) AS d ON d.item_id = i.id
        WHERE i.id IN ${sql.in(ids)}
        ORDER BY i.id, d.day`,
  shops: (sql: SqlClient.SqlClient, ids: ReadonlyArray<number>, perShop: number) =>
    sql`SELECT 'shop' AS part, sh.id AS shop_id, DATE_FORMAT(s.last_day, '%Y-%m-%d') AS last_day, sh.name,
               sh.owner_id AS other_id, a.name AS other, NULL AS day, NULL AS a, NULL AS b, NULL AS m, NULL AS n
        FROM shops sh JOIN accounts a ON a.id = sh.owner_id CROSS JOIN ${lastDay(sql)}
        WHERE sh.id IN ${sql.in(ids)}
        UNION ALL
        SELECT 'day', l.shop_id, NULL, NULL, NULL, NULL, DATE_FORMAT(l.ts, '%Y-%m-%d'),
               COALESCE(SUM(CASE WHEN l.kind = 'chestshop_buy' THEN l.amount END), 0),
               COALESCE(SUM(CASE WHEN l.kind = 'chestshop_sell' THEN l.amount END), 0),
               COUNT(CASE WHEN l.kind = 'chestshop_buy' THEN 1 END),
               COUNT(CASE WHEN l.kind = 'chestshop_sell' THEN 1 END)
        FROM ledger l CROSS JOIN ${lastDay(sql)}
        WHERE l.shop_id IN ${sql.in(ids)} AND l.ts >= ${spanStart(sql)} AND l.kind IN ('chestshop_buy', 'chestshop_sell')
        GROUP BY l.shop_id, DATE_FORMAT(l.ts, '%Y-%m-%d')
        UNION ALL
        SELECT 'item', shop_id, NULL, NULL, item_id, item, NULL, revenue, NULL, quantity, rn FROM (
          SELECT l.shop_id, l.item_id, i.name AS item, SUM(l.quantity) AS quantity, SUM(l.amount) AS revenue,
                 ROW_NUMBER() OVER (PARTITION BY l.shop_id ORDER BY SUM(l.amount) DESC, l.item_id) AS rn
          FROM ledger l JOIN items i ON i.id = l.item_id CROSS JOIN ${lastDay(sql)}
          WHERE l.kind = 'chestshop_buy' AND l.ts >= ${spanStart(sql)} AND l.shop_id IN ${sql.in(ids)}
          GROUP BY l.shop_id, l.item_id, i.name
        ) AS r
        WHERE rn <= ${Math.max(0, Math.floor(perShop))}`,
  accounts: (sql: SqlClient.SqlClient, ids: ReadonlyArray<number>, limit: number) =>
    sql`SELECT 'account' AS part, ac.id AS account_id, DATE_FORMAT(s.last_day, '%Y-%m-%d') AS last_day, ac.name,
               NULL AS other_id, NULL AS day, NULL AS kind, ac.opening_balance AS a, NULL AS b, NULL AS n
        FROM accounts ac CROSS JOIN ${lastDay(sql)}
        WHERE ac.id IN ${sql.in(ids)}
        UNION ALL
        SELECT 'flow', account_id, NULL, NULL, NULL, day, kind, SUM(received), SUM(paid), SUM(n) FROM (
          SELECT l.to_account AS account_id, DATE_FORMAT(l.ts, '%Y-%m-%d') AS day, CAST(l.kind AS CHAR) AS kind,
                 SUM(l.amount) AS received, CAST(0 AS DECIMAL(14,2)) AS paid, COUNT(*) AS n
          FROM ledger l CROSS JOIN ${lastDay(sql)}
          WHERE l.to_account IN ${sql.in(ids)} AND l.ts >= ${spanStart(sql)} GROUP BY 1, 2, 3
          UNION ALL
          SELECT l.from_account, DATE_FORMAT(l.ts, '%Y-%m-%d'), CAST(l.kind AS CHAR), CAST(0 AS DECIMAL(14,2)), SUM(l.amount), COUNT(*)
          FROM ledger l CROSS JOIN ${lastDay(sql)}
          WHERE l.from_account IN ${sql.in(ids)} AND l.ts >= ${spanStart(sql)} GROUP BY 1, 2, 3
        ) AS f
        GROUP BY account_id, day, kind
        UNION ALL
        SELECT 'in', l.to_account, NULL, NULL, NULL, NULL, NULL, SUM(l.amount), NULL, NULL
        FROM ledger l CROSS JOIN ${lastDay(sql)}
        WHERE l.to_account IN ${sql.in(ids)} AND l.ts < ${spanStart(sql)} GROUP BY l.to_account
        UNION ALL
        SELECT 'out', l.from_account, NULL, NULL, NULL, NULL, NULL, SUM(l.amount), NULL, NULL
        FROM ledger l CROSS JOIN ${lastDay(sql)}
        WHERE l.from_account IN ${sql.in(ids)} AND l.ts < ${spanStart(sql)} GROUP BY l.from_account
        UNION ALL
        SELECT 'counterparty', account_id, NULL, name, other_id, NULL, NULL, sent, received, n FROM (
          SELECT c.account_id, c.other_id, ac.name, SUM(c.sent) AS sent, SUM(c.received) AS received, SUM(c.n) AS n,
                 ROW_NUMBER() OVER (PARTITION BY c.account_id ORDER BY SUM(c.sent) + SUM(c.received) DESC, c.other_id) AS rn
          FROM (
            SELECT l.from_account AS account_id, l.to_account AS other_id, SUM(l.amount) AS sent,
                   CAST(0 AS DECIMAL(14,2)) AS received, COUNT(*) AS n
            FROM ledger l CROSS JOIN ${lastDay(sql)}
            WHERE l.from_account IN ${sql.in(ids)} AND l.ts >= ${spanStart(sql)} AND l.to_account IS NOT NULL GROUP BY 1, 2
            UNION ALL
            SELECT l.to_account, l.from_account, CAST(0 AS DECIMAL(14,2)), SUM(l.amount), COUNT(*)
            FROM ledger l CROSS JOIN ${lastDay(sql)}
            WHERE l.to_account IN ${sql.in(ids)} AND l.ts >= ${spanStart(sql)} AND l.from_account IS NOT NULL GROUP BY 1, 2
          ) AS c
          JOIN accounts ac ON ac.id = c.other_id
          GROUP BY c.account_id, c.other_id, ac.name
        ) AS r
        WHERE rn <= ${Math.max(0, Math.floor(limit))}`
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

/** The driver's error fields, when the failure came from the server or the socket. */
interface DriverError {
  readonly errno?: unknown
  readonly code?: unknown
  readonly fatal?: unknown
  readonly sqlMessage?: unknown
  readonly message?: unknown
}

/** What the database said, with its code: `Lock wait timeout exceeded; … (ER_LOCK_WAIT_TIMEOUT, errno 1205)`. */
const databaseMessage = (cause: DriverError | undefined): string | undefined => {
  if (cause === undefined) return undefined
  const text = typeof cause.sqlMessage === "string" ? cause.sqlMessage : typeof cause.message === "string" ? cause.message : undefined
  if (text === undefined) return undefined
  const code = [typeof cause.code === "string" ? cause.code : undefined, typeof cause.errno === "number" ? `errno ${cause.errno}` : undefined]
    .filter((part) => part !== undefined)
  return code.length === 0 ? text : `${text} (${code.join(", ")})`
}

/**
 * Maps a driver failure to the ledger's typed errors: `LedgerTimeout` only when the database
 * says the statement hit its `max_statement_time`; anything else keeps the database's own words.
 */
export const classify = (query: string, seconds: number) => (error: SqlError | LedgerError): LedgerFailure => {
  if (error._tag === "LedgerError") return error
  const cause = error.cause as DriverError | undefined
  const said = databaseMessage(cause)
  if (cause !== undefined && timeoutErrnos.has(cause.errno as number)) {
    return new LedgerTimeout({ query, seconds, ...(said === undefined ? {} : { databaseMessage: said }) })
  }
  const unavailable = cause !== undefined && (cause.fatal === true || connectionCodes.has(cause.code as string))
  return new LedgerError({
    query,
    reason: unavailable ? "Unavailable" : "Query",
    cause: error.cause ?? error,
    ...(said === undefined ? {} : { databaseMessage: said })
  })
}

/**
 * The limit a statement runs under: the stricter of the configured one and the server's global
 * `max_statement_time` (0 there means none). `SET STATEMENT max_statement_time=N FOR` replaces
 * the server's limit for that statement, so sending the configured one alone would loosen a
 * stricter guard a DBA set.
 */
export const stricterLimit = (configured: number, server: number): number =>
  server > 0 ? Math.min(configured, server) : configured

/** A connected client and the limit its statements run under. */
interface Connected {
  readonly sql: SqlClient.SqlClient
  readonly seconds: number
}

/** The server's global `max_statement_time` in seconds, read once per connected pool (0: none). */
const serverLimit = (sql: SqlClient.SqlClient) =>
  sql<{ readonly server_limit: number | string | null }>`SELECT @@GLOBAL.max_statement_time AS server_limit`.pipe(
    Effect.map((rows) => Number(rows[0]?.server_limit ?? 0) || 0)
  )

/**
 * A `SqlClient` that connects on first use and again after a failed attempt, so the server
 * starts (and `/healthz` answers) while the database is down. Its pool lives in `scope`. On
 * connecting it reads the server's statement limit once, and keeps the stricter one.
 */
const lazyClient = (options: MysqlClient.MysqlClientConfig, scope: Scope.Scope, configured: number) =>
  Effect.gen(function*() {
    const ref = yield* SynchronizedRef.make(Option.none<Connected>())
    const connect = Effect.gen(function*() {
      const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
      const sql = yield* Layer.buildWithScope(MysqlClient.layer(options), child).pipe(
        Effect.map(Context.get(SqlClient.SqlClient)),
        Effect.tapError(() => Scope.close(child, Exit.void))
      )
      const server = yield* serverLimit(sql).pipe(
        Effect.tapError((e) => Scope.close(child, Exit.fail(e)))
      )
      const seconds = stricterLimit(configured, server)
      if (seconds < configured) {
        yield* Effect.logInfo(
          `explorer: the server's max_statement_time (${server} s) is stricter than LEDGER_STATEMENT_TIMEOUT (${configured} s); ledger statements run under ${seconds} s`
        )
      }
      return { sql, seconds } satisfies Connected
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

/** The MariaDB queries over a client and its statement limit (obtained per query, see `lazyClient`). */
export const make = (client: Effect.Effect<Connected, LedgerError>): Service => {
  const q = <A, I>(name: string, schema: Schema.Schema<A, I>, query: (sql: SqlClient.SqlClient) => Statement.Fragment) =>
    Effect.flatMap(client, ({ seconds, sql }) => bounded(sql, seconds, name, schema, query))
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
    itemLastTrade: (id, span) =>
      q("item last trade", rowSchemas.itemLastTrade, (sql) => entityQueries.itemLastTrade(sql, id, since(span))).pipe(
        Effect.map((r) => ({
          last: Option.map(Option.fromNullable(r[0]?.last), (seconds) => seconds * 1000),
          trades: r[0]?.trades ?? 0
        }))
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
      ),
    itemsMany: (ids) =>
      ids.length === 0 ? Effect.succeed(emptyBatch<ItemRows>()) : q("items many", rowSchemas.itemMany, (sql) => batchQueries.items(sql, ids)).pipe(
        Effect.map((rows): Batch<ItemRows> => {
          const byId = new Map<number, { info: ItemInfo; daily: Array<ItemDayRow>; medianPrice: number }>()
          for (const x of rows) {
            let item = byId.get(x.item_id)
            if (item === undefined) byId.set(x.item_id, item = { info: { id: x.item_id, name: x.name }, daily: [], medianPrice: 0 })
            if (x.day === null) continue
            item.daily.push({
              day: x.day,
              trades: x.trades ?? 0,
              quantity: x.quantity ?? 0,
              volume: x.volume ?? 0,
              priceSum: x.price_sum ?? 0,
              medianPrice: x.median_price ?? 0
            })
            item.medianPrice = x.all_median ?? 0
          }
          return {
            span: spanOfRows(rows),
            rows: new Map([...byId].map(([id, x]) => [id, { info: x.info, trades: { daily: x.daily, medianPrice: x.medianPrice } }]))
          }
        })
      ),
    shopsMany: (ids, perShop) =>
      ids.length === 0 ? Effect.succeed(emptyBatch<ShopRows>()) : q("shops many", rowSchemas.shopMany, (sql) => batchQueries.shops(sql, ids, perShop)).pipe(
        Effect.map((rows): Batch<ShopRows> => {
          const daily = groupBy<ShopDayRow>()
          const items = groupBy<ShopItemRow>()
          const found = new Map<number, ShopInfo>()
          for (const x of rows) {
            if (x.part === "shop") found.set(x.shop_id, { id: x.shop_id, name: x.name ?? "", ownerId: x.other_id ?? 0, owner: x.other ?? "" })
            else if (x.part === "day") {
              daily.add(x.shop_id, { day: x.day ?? "", revenue: x.a ?? 0, spent: x.b ?? 0, buys: x.m ?? 0, sells: x.n ?? 0 })
            } else items.add(x.shop_id, { shopId: x.shop_id, itemId: x.other_id ?? 0, item: x.other ?? "", quantity: x.m ?? 0, revenue: x.a ?? 0 })
          }
          return {
            span: spanOfRows(rows.filter((x) => x.part === "shop")),
            rows: new Map([...found].map(([id, info]) => [id, {
              info,
              daily: daily.of(id).sort((a, b) => (a.day < b.day ? -1 : 1)),
              items: items.of(id).sort(byRevenue)
            }]))
          }
        })
      ),
    accountsMany: (ids, limit) =>
      ids.length === 0 ? Effect.succeed(emptyBatch<AccountRows>()) : q("accounts many", rowSchemas.accountMany, (sql) => batchQueries.accounts(sql, ids, limit)).pipe(
        Effect.map((rows): Batch<AccountRows> => {
          const flows = groupBy<AccountFlowRow>()
          const counterparties = groupBy<CounterpartyRow>()
          const received = new Map<number, number>()
          const paid = new Map<number, number>()
          const found = new Map<number, AccountInfo>()
          for (const x of rows) {
            switch (x.part) {
              case "account":
                found.set(x.account_id, { id: x.account_id, name: x.name ?? "", openingBalance: x.a ?? 0 })
                break
              case "flow":
                flows.add(x.account_id, { day: x.day ?? "", kind: x.kind ?? "", received: x.a ?? 0, paid: x.b ?? 0, transactions: x.n ?? 0 })
                break
              case "in":
                received.set(x.account_id, x.a ?? 0)
                break
              case "out":
                paid.set(x.account_id, x.a ?? 0)
                break
              case "counterparty":
                counterparties.add(x.account_id, { accountId: x.other_id ?? 0, name: x.name ?? "", sent: x.a ?? 0, received: x.b ?? 0, transactions: x.n ?? 0 })
            }
          }
          return {
            span: spanOfRows(rows.filter((x) => x.part === "account")),
            rows: new Map([...found].map(([id, info]) => [id, {
              info,
              flows: flows.of(id).sort(byDayThenKind),
              before: { received: received.get(id) ?? 0, paid: paid.get(id) ?? 0 },
              counterparties: counterparties.of(id).sort(byMoneyMoved)
            }]))
          }
        })
      )
  }
}

const emptyBatch = <A>(): Batch<A> => ({ span: Option.none(), rows: new Map() })

/** The span of a batch's rows (every row of an entity carries it; none when no entity was found or the ledger is empty). */
const spanOfRows = (rows: ReadonlyArray<{ readonly last_day: string | null }>): Option.Option<Span> =>
  Option.map(Option.fromNullable(rows[0]?.last_day), spanOf)

/** Rows grouped by entity id. */
const groupBy = <A>() => {
  const groups = new Map<number, Array<A>>()
  return {
    add: (id: number, row: A) => {
      const group = groups.get(id)
      if (group === undefined) groups.set(id, [row])
      else group.push(row)
    },
    of: (id: number): Array<A> => groups.get(id) ?? []
  }
}

/** MariaDB with explicit settings; connects lazily (see `lazyClient`). */
export const layerWith = (settings: Settings, timeout: Duration.DurationInput): Layer.Layer<Ledger> =>
  Layer.scoped(
    Ledger,
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const client = yield* lazyClient(clientOptions(settings), scope, Duration.toMillis(timeout) / 1000)
      yield* client.pipe(
        Effect.zipRight(Effect.logInfo(`explorer: ledger on MariaDB ${settings.host}:${settings.port}/${settings.database}`)),
        Effect.catchAll((e) => Effect.logWarning(`explorer: ${e.message}; will retry on demand`))
      )
      return make(client)
    })
  )

/** MariaDB from `MYSQL_*` and `LEDGER_STATEMENT_TIMEOUT`. */
export const layer: Layer.Layer<Ledger, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(Config.all([config, statementTimeout]), ([settings, timeout]) => layerWith(settings, timeout))
)

// ---------------------------------------------------------------------------------------------
