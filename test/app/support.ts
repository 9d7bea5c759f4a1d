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

/**
 * A ledger over `records` (the fixture by default) that fails every query while `state.failing`
 * says so, counts the queries it runs (in all and by name), and can be pointed at other records
 * (`state.use`), as if the database had changed.
 */
export const switchable = (records: Parameters<typeof Synthetic.fromRecords>[0] = Fixture.data) => {
  let base = Ledger.makeMemory(Synthetic.fromRecords(records))
  const state = {
    failing: false as false | "unavailable" | "timeout",
    queries: 0,
    byName: new Map<string, number>(),
    use: (next: Parameters<typeof Synthetic.fromRecords>[0]) => {
      base = Ledger.makeMemory(Synthetic.fromRecords(next))
    }
  }
  const guard = <A>(name: string, effect: () => Effect.Effect<A, Ledger.LedgerFailure>): Effect.Effect<A, Ledger.LedgerFailure> =>
    Effect.suspend(() => {
      state.queries++
      state.byName.set(name, (state.byName.get(name) ?? 0) + 1)
      switch (state.failing) {
        case "unavailable":
          return Effect.fail(new Ledger.LedgerError({ query: "test", reason: "Unavailable", cause: new Error("connect ECONNREFUSED") }))
        case "timeout":
          return Effect.fail(new Ledger.LedgerTimeout({ query: "test", seconds: 10 }))
        default:
          return effect()
      }
    })
  // every member of the service, guarded: an effect stays an effect, a function a function
  const ledger = Object.fromEntries(
    Object.keys(base).map((name) => {
      const member = (base as unknown as Record<string, unknown>)[name]
      return [
        name,
        name === "backend"
          ? member
          : Effect.isEffect(member)
          ? guard(name, () => (base as unknown as Record<string, Effect.Effect<unknown, Ledger.LedgerFailure>>)[name]!)
          : (...args: ReadonlyArray<unknown>) =>
            guard(name, () => (base as unknown as Record<string, (...a: ReadonlyArray<unknown>) => Effect.Effect<unknown, Ledger.LedgerFailure>>)[name]!(...args))
      ]
    })
  ) as unknown as Ledger.Service
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
