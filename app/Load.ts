/**
 * Writes `LedgerData` into MariaDB: drops and recreates the explorer's tables from
 * `schema.sql`, then loads them with multi-row `INSERT`s (values are bound parameters) on a few
 * connections at once. Used by `seed.ts` and by the tests.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Synthetic from "./Synthetic.js"

export const schemaFile = new URL("./schema.sql", import.meta.url)

/** Drops the four tables and recreates them (destructive). */
export const reset = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const schema = yield* Effect.sync(() => Fs.readFileSync(schemaFile, "utf8"))
    yield* sql`DROP TABLE IF EXISTS ledger, shops, items, accounts`.unprepared
    // our own schema file, run as one multi-statement batch
    yield* sql.unsafe(schema).unprepared
  })

const nullable = (n: number) => (n < 0 ? null : n)

const ledgerRecord = (r: Synthetic.Rows, i: number) => ({
  id: i + 1,
  ts: Synthetic.formatDateTime(r.ts[i]!),
  kind: Synthetic.kinds[r.kind[i]!]!,
  from_account: nullable(r.from[i]!),
  to_account: nullable(r.to[i]!),
  amount: Synthetic.formatCents(r.amount[i]!),
  shop_id: nullable(r.shop[i]!),
  item_id: nullable(r.item[i]!),
  quantity: nullable(r.quantity[i]!),
  unit_price: r.unitPrice[i]! < 0 ? null : Synthetic.formatCents(r.unitPrice[i]!)
})

export interface WriteOptions {
  /** Rows per `INSERT` (default 2 000). */
  readonly batch?: number
  /** Statements in flight at once (default 3). */
  readonly concurrency?: number
  /** Called after every batch of ledger rows with the rows written so far. */
  readonly onProgress?: (written: number, total: number) => Effect.Effect<void>
}

/** Writes accounts, items, shops and ledger rows into freshly reset tables. */
export const write = (sql: SqlClient.SqlClient, data: Synthetic.LedgerData, options: WriteOptions = {}) =>
  Effect.gen(function*() {
    const batch = Math.max(1, options.batch ?? 2_000)
    const chunks = <A>(items: ReadonlyArray<A>) =>
      Array.from({ length: Math.ceil(items.length / batch) }, (_, k) => items.slice(k * batch, (k + 1) * batch))
    for (const part of chunks(data.accounts)) {
      yield* sql`INSERT INTO accounts ${
        sql.insert(part.map((a) => ({ id: a.id, name: a.name, opening_balance: Synthetic.formatCents(a.openingCents) })))
      }`.unprepared
    }
    for (const part of chunks(data.items)) {
      yield* sql`INSERT INTO items ${sql.insert(part.map((i) => ({ id: i.id, name: i.name })))}`.unprepared
    }
    for (const part of chunks(data.shops)) {
      yield* sql`INSERT INTO shops ${sql.insert(part.map((s) => ({ id: s.id, owner_id: s.ownerId, name: s.name })))}`.unprepared
    }
    const total = data.rows.length
    let written = 0
    const starts = Array.from({ length: Math.ceil(total / batch) }, (_, k) => k * batch)
    yield* Effect.forEach(
      starts,
      (start) =>
        Effect.gen(function*() {
          const end = Math.min(total, start + batch)
          const records = Array.from({ length: end - start }, (_, k) => ledgerRecord(data.rows, start + k))
          yield* sql`INSERT INTO ledger ${sql.insert(records)}`.unprepared
          written += end - start
          if (options.onProgress) yield* options.onProgress(written, total)
        }),
      { concurrency: Math.max(1, options.concurrency ?? 3), discard: true }
    )
    yield* sql`ANALYZE TABLE accounts, items, shops, ledger`.unprepared
  })
