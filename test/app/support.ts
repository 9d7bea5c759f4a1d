/**
 * Helpers for the explorer's HTTP tests: the real server layer on a random port with a chosen
 * ledger and settings, a ledger that can be told to fail, and a real-time pause for background
 * work that runs under `TestClock`.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import * as Config from "../../app/Config.js"
import * as Http from "../../app/Http.js"
import * as Ledger from "../../app/Ledger.js"
import * as LedgerMemory from "../../app/Ledger/Memory.js"
import * as Synthetic from "../../app/Synthetic.js"
import { Memo, Redis } from "../../src/index.js"
import * as Fixture from "./fixture.js"

/** Settings as the app reads them, from `env` over the defaults. */
export const settings = (env: Record<string, string>): Config.AppSettings =>
  Effect.runSync(Effect.withConfigProvider(Config.app, ConfigProvider.fromMap(new Map(Object.entries(env)))))

export interface ServerOptions {
  /** The cache store (default: a new in-memory one). */
  readonly store?: Layer.Layer<Redis.Redis, unknown> | undefined
  /** Collects the server's log lines (`LEVEL message`) from Info up, instead of dropping them below Error. */
  readonly logs?: Array<string> | undefined
}

/** A logger that appends `LEVEL message` to `lines`. */
export const collectLogs = (lines: Array<string>) =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel.label} ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}`)
    })),
    Logger.minimumLogLevel(LogLevel.Info)
  )

/** The server layer (routes, keep-warm, banner) on `NodeHttpServer.layerTest`, exposing its `HttpClient`. */
export const server = (ledger: Layer.Layer<Ledger.Ledger>, env: Record<string, string> = {}, options: ServerOptions = {}) =>
  Http.serve.pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(
      Layer.mergeAll(
        Layer.succeed(Config.AppConfig, settings({ WINDOW: "10 seconds", KEEP_WARM: "", ...env })),
        Memo.layer.pipe(Layer.provide(options.store ?? Redis.layerMemory)),
        ledger
      )
    ),
    Layer.provide(options.logs === undefined ? Logger.minimumLogLevel(LogLevel.Error) : collectLogs(options.logs))
  )

export const fixtureLedger = () => LedgerMemory.make(Synthetic.fromRecords(Fixture.data))

/**
 * A ledger over `records` (the fixture by default) that fails every query while `state.failing`
 * says so, counts the queries it runs (in all and by name), and can be pointed at other records
 * (`state.use`), as if the database had changed.
 */
export const switchable = (records: Parameters<typeof Synthetic.fromRecords>[0] = Fixture.data) => {
  let base = LedgerMemory.make(Synthetic.fromRecords(records))
  const state = {
    failing: false as false | "unavailable" | "timeout" | "defect",
    /** While set, every query waits for it first (a slow database). */
    blocked: undefined as Promise<void> | undefined,
    queries: 0,
    byName: new Map<string, number>(),
    use: (next: Parameters<typeof Synthetic.fromRecords>[0]) => {
      base = LedgerMemory.make(Synthetic.fromRecords(next))
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
        case "defect":
          return Effect.die(new Error("a bug in the ledger"))
        default: {
          const blocked = state.blocked
          return blocked === undefined ? effect() : Effect.zipRight(Effect.promise(() => blocked), Effect.suspend(effect))
        }
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

/** `base` with every query counted by name, and the ids each batch query (`itemsMany`, …) was asked for. */
export const counting = (base: Ledger.Service) => {
  const byName = new Map<string, number>()
  const idsByName = new Map<string, number>()
  const count = (name: string) => byName.set(name, (byName.get(name) ?? 0) + 1)
  const wrapped = Object.fromEntries(
    Object.entries(base).map(([name, member]) => [
      name,
      typeof member === "function"
        ? (...args: ReadonlyArray<unknown>) => {
          count(name)
          if (Array.isArray(args[0])) idsByName.set(name, (idsByName.get(name) ?? 0) + args[0].length)
          return (member as (...a: ReadonlyArray<unknown>) => unknown)(...args)
        }
        : Effect.isEffect(member)
        ? Effect.suspend(() => {
          count(name)
          return member
        })
        : member
    ])
  ) as unknown as Ledger.Service
  return { byName, idsByName, layer: Layer.succeed(Ledger.Ledger, wrapped) }
}

/** Real time passing, for background fibers to finish their (instant) work under `TestClock`. */
export const settle = (ms = 30) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** POST a JSON body (or raw text) with extra headers; the response's status, headers, body, and the body as JSON if it is. */
export const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const request = HttpClientRequest.post(path).pipe(
      HttpClientRequest.setHeaders(headers),
      typeof body === "string" ? HttpClientRequest.bodyText(body, "application/json") : HttpClientRequest.bodyUnsafeJson(body)
    )
    const response = yield* client.execute(request)
    const text = yield* response.text
    const json = (() => {
      try {
        return JSON.parse(text) as any
      } catch {
        return undefined
      }
    })()
    return { status: response.status, headers: response.headers, body: text, json }
  })

/** GET with the response's status, headers and body text. */
export const get = (path: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(path, { headers })
    const body = yield* response.text
    return { status: response.status, headers: response.headers, body }
  })

/** GET and parse the body as JSON. */
export const getJson = (path: string, headers: Record<string, string> = {}) =>
  Effect.map(get(path, headers), (r) => ({ ...r, json: JSON.parse(r.body) as any }))

/**
 * `base` with every query taking `ms` longer (on the runtime's clock: `TestClock` in tests), as a
 * loaded database would; `starts` records when each query of `name` began.
 */
export const slowed = (base: Ledger.Service, ms: number, name: string) => {
  const starts: Array<number> = []
  const delayed = (member: Effect.Effect<unknown, unknown>, query: string) =>
    Effect.zipRight(
      Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (t) =>
        Effect.sync(() => {
          if (query === name) starts.push(t)
        })),
      Effect.zipRight(Effect.sleep(ms), member)
    )
  const wrapped = Object.fromEntries(
    Object.entries(base).map(([query, member]) => [
      query,
      typeof member === "function"
        ? (...args: ReadonlyArray<unknown>) => delayed((member as (...a: ReadonlyArray<unknown>) => Effect.Effect<unknown>)(...args), query)
        : Effect.isEffect(member)
        ? delayed(member as Effect.Effect<unknown>, query)
        : member
    ])
  ) as unknown as Ledger.Service
  return { starts, layer: Layer.succeed(Ledger.Ledger, wrapped) }
}
