/**
 * Helpers for the explorer's HTTP tests: the real server layer on a random port with a chosen
 * ledger and settings, a ledger that can be told to fail, and a real-time pause for background
 * work that runs under `TestClock`.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import * as Config from "../../app/Config.js"
import * as Http from "../../app/Http.js"
import * as Ledger from "../../app/Ledger.js"
import * as Synthetic from "../../app/Synthetic.js"
import { Memo, Redis } from "../../src/index.js"
import * as Fixture from "./fixture.js"

/** Settings as the app reads them, from `env` over the defaults. */
export const settings = (env: Record<string, string>): Config.AppSettings =>
  Effect.runSync(Effect.withConfigProvider(Config.app, ConfigProvider.fromMap(new Map(Object.entries(env)))))

/** The server layer (routes, keep-warm, banner) on `NodeHttpServer.layerTest`, exposing its `HttpClient`. */
export const server = (ledger: Layer.Layer<Ledger.Ledger>, env: Record<string, string> = {}) =>
  Http.serve.pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(
      Layer.mergeAll(
        Layer.succeed(Config.AppConfig, settings({ WINDOW: "10 seconds", KEEP_WARM: "", ...env })),
        Memo.layer.pipe(Layer.provide(Redis.layerMemory)),
        ledger
      )
    ),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
  )

export const fixtureLedger = () => Ledger.makeMemory(Synthetic.fromRecords(Fixture.data))

/** A ledger over the fixture that fails every query while `state.failing` says so. */
export const switchable = () => {
  const base = fixtureLedger()
  const state: { failing: false | "unavailable" | "timeout"; queries: number } = { failing: false, queries: 0 }
  const guard = <A>(effect: Effect.Effect<A, Ledger.LedgerFailure>): Effect.Effect<A, Ledger.LedgerFailure> =>
    Effect.suspend(() => {
      state.queries++
      switch (state.failing) {
        case "unavailable":
          return Effect.fail(new Ledger.LedgerError({ query: "test", reason: "Unavailable", cause: new Error("connect ECONNREFUSED") }))
        case "timeout":
          return Effect.fail(new Ledger.LedgerTimeout({ query: "test", seconds: 10 }))
        default:
          return effect
      }
    })
  const ledger: Ledger.Service = {
    backend: "memory",
    span: guard(base.span),
    totals: (s) => guard(base.totals(s)),
    daily: (s) => guard(base.daily(s)),
    activeAccounts: (s) => guard(base.activeAccounts(s)),
    balances: guard(base.balances),
    market: (s) => guard(base.market(s)),
    topShops: (s, n) => guard(base.topShops(s, n)),
    shopItems: (s, ids, n) => guard(base.shopItems(s, ids, n)),
    flows: (s) => guard(base.flows(s)),
    dailyFlows: (s) => guard(base.dailyFlows(s)),
    moneySupply: guard(base.moneySupply)
  }
  return { state, layer: Layer.succeed(Ledger.Ledger, ledger) }
}

/** Real time passing, for background fibers to finish their (instant) work under `TestClock`. */
export const settle = (ms = 30) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** GET with the response's status, headers and body text. */
export const get = (path: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(path)
    const body = yield* response.text
    return { status: response.status, headers: response.headers, body }
  })

/** GET and parse the body as JSON. */
export const getJson = (path: string) =>
  Effect.map(get(path), (r) => ({ ...r, json: JSON.parse(r.body) as any }))
