/**
 * `npm run seed`: drops and recreates the explorer's tables in MariaDB and loads the synthetic
 * ledger (default 890 000 rows over 30 days ending at the start of today, seed 42).
 *
 * Settings come from the environment (`MYSQL_*`, `LEDGER_*`, see the README); flags override:
 * `npm run seed -- --rows=100000 --seed=7 --days=30 --end=2025-01-31`. `MYSQL_HOST` defaults to
 * 127.0.0.1 here.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as LedgerMemory from "./Ledger/Memory.js"
import * as LedgerMysql from "./Ledger/Mysql.js"
import * as Load from "./Load.js"
import * as Synthetic from "./Synthetic.js"

const flags: Record<string, string> = { rows: "LEDGER_ROWS", seed: "LEDGER_SEED", days: "LEDGER_DAYS", end: "LEDGER_END" }

const fromArgs = (argv: ReadonlyArray<string>) => {
  const map = new Map<string, string>()
  for (const arg of argv) {
    const m = /^--(\w+)=(.*)$/.exec(arg)
    const name = m === null ? undefined : flags[m[1]!]
    if (m === null || name === undefined) throw new Error(`unknown argument ${arg}; use --rows=N --seed=N --days=N --end=YYYY-MM-DD`)
    map.set(name, m[2]!.replaceAll("_", ""))
  }
  return ConfigProvider.fromMap(map)
}

const provider = fromArgs(process.argv.slice(2)).pipe(
  ConfigProvider.orElse(() => ConfigProvider.fromEnv()),
  ConfigProvider.orElse(() => ConfigProvider.fromMap(new Map([["MYSQL_HOST", "127.0.0.1"]])))
)

const progress = (label: string) => {
  const tty = process.stdout.isTTY === true
  let lastDecile = -1
  return (startedAt: number) => (done: number, total: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        const pct = total === 0 ? 100 : Math.floor((done / total) * 100)
        const rate = Math.round(done / Math.max(0.001, (now - startedAt) / 1000))
        const line = `${label} ${done.toLocaleString("en-US")} / ${total.toLocaleString("en-US")} rows (${pct}%), ${
          rate.toLocaleString("en-US")
        } rows/s`
        if (tty) process.stdout.write(`\r${line}   ${done === total ? "\n" : ""}`)
        else if (Math.floor(pct / 10) > lastDecile || done === total) {
          lastDecile = Math.floor(pct / 10)
          process.stdout.write(`${line}\n`)
        }
      }))
}

const program = Effect.gen(function*() {
  const settings = yield* LedgerMysql.config
  const options = yield* LedgerMemory.syntheticOptions
  const t0 = yield* Clock.currentTimeMillis
  const data = Synthetic.generate(options)
  const t1 = yield* Clock.currentTimeMillis
  const first = Synthetic.formatDay(utcSeconds(options.end) - options.days * 86_400)
  const last = Synthetic.formatDay(utcSeconds(options.end) - 86_400)
  yield* Effect.log(
    `generated ${data.rows.length.toLocaleString("en-US")} rows, ${data.accounts.length} accounts, ${data.shops.length} shops, ` +
      `${data.items.length} items (${first} .. ${last}, seed ${options.seed}) in ${t1 - t0} ms`
  )
  const sql = yield* SqlClient.SqlClient
  yield* Effect.log(`seeding ${settings.username}@${settings.host}:${settings.port}/${settings.database}`)
  yield* Load.reset(sql)
  yield* Load.write(sql, data, { onProgress: progress("ledger")(t1) })
  const t2 = yield* Clock.currentTimeMillis
  yield* Effect.log(`seeded in ${((t2 - t0) / 1000).toFixed(1)} s (load ${((t2 - t1) / 1000).toFixed(1)} s)`)
})

const utcSeconds = (ms: number) => Math.floor(ms / 1000)

const Client = Layer.unwrapEffect(Effect.map(LedgerMysql.config, (settings) => MysqlClient.layer(LedgerMysql.clientOptions(settings))))

program.pipe(Effect.provide(Client), Effect.withConfigProvider(provider), NodeRuntime.runMain)
