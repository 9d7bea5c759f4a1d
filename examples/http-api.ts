import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApp, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { Memo, Redis } from "lockstep"
import { createServer } from "node:http"

const Dashboard = Schema.Struct({ volume: Schema.Number, activeAccounts: Schema.Number })

// Stands in for the expensive aggregate (a 30-day GROUP BY over the ledger).
const aggregate = Effect.succeed({ volume: 1_250_000, activeAccounts: 4_210 }).pipe(Effect.delay("200 millis"))

// The loader, defined once at module level.
const dashboard = Memo.memoWithInfo({ key: "dashboard", window: "1 minute", schema: Dashboard }, aggregate)

export class Api extends HttpApi.make("explorer").add(
  HttpApiGroup.make("pages").add(HttpApiEndpoint.get("dashboard", "/api/dashboard").addSuccess(Dashboard))
) {}

// Answers the value, with its Cache-Control, Age and X-Cache headers (Memo.cacheHeaders) on the
// response: HTTP caches keep it until the next window boundary. One line in every handler.
export const withCacheHeaders = <A>(info: Memo.Info<A>) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(HttpServerResponse.setHeaders(response, Memo.cacheHeaders(info)))
  ).pipe(Effect.as(info.value))

const PagesLive = HttpApiBuilder.group(Api, "pages", (handlers) =>
  handlers.handle("dashboard", () =>
    dashboard.pipe(
      Effect.flatMap(withCacheHeaders),
      // Bad options are a bug, not a response. This producer cannot fail; map a real one's
      // errors to the endpoint's (e.g. HttpApiError.ServiceUnavailable for a cold key).
      Effect.orDie
    )))

export const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide(PagesLive))

// The cache, built once: every request shares its L1 and its Redis connection.
export const CacheLive = Memo.layer.pipe(Layer.provide(Redis.layerFromEnv))

// The cache goes last, so it is built first and the port opens only once the cache is up. With
// Redis down, building it takes connectTimeout; a server that listened meanwhile would accept
// requests it cannot answer yet, and those connections would hold up its shutdown.
export const ServerLive = (port: number) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(ApiLive),
    Layer.provide(NodeHttpServer.layer(createServer, { port })),
    Layer.provide(CacheLive)
  )

// main.ts: ServerLive(3000).pipe(Layer.launch, NodeRuntime.runMain)
