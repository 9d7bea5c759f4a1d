import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApp, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Layer, Schema } from "effect"
import { Memo, Redis } from "lockstep"

const Dashboard = Schema.Struct({ volume: Schema.Number, activeAccounts: Schema.Number })

// Stands in for the expensive aggregate (a 30-day GROUP BY over the ledger).
const aggregate = Effect.succeed({ volume: 1_250_000, activeAccounts: 4_210 }).pipe(Effect.delay("200 millis"))

// The loader, defined once at module level.
const dashboard = Memo.memoWithInfo({ key: "dashboard", window: "1 minute", schema: Dashboard }, aggregate)

export class Api extends HttpApi.make("explorer").add(
  HttpApiGroup.make("pages").add(HttpApiEndpoint.get("dashboard", "/api/dashboard").addSuccess(Dashboard))
) {}

const PagesLive = HttpApiBuilder.group(Api, "pages", (handlers) =>
  handlers.handle("dashboard", () =>
    Effect.gen(function*() {
      const info = yield* dashboard
      const now = yield* Clock.currentTimeMillis
      // The cache's view of the value: HTTP caches keep it until the next window boundary.
      const age = Math.max(0, Math.floor((now - info.computedAt) / 1000))
      const maxAge = info.stale ? 0 : age + Math.max(0, Math.floor((info.nextBoundary - now) / 1000))
      yield* HttpApp.appendPreResponseHandler((_request, response) =>
        Effect.succeed(HttpServerResponse.setHeaders(response, {
          "x-cache": info.cache,
          "age": String(age),
          "cache-control": `public, max-age=${maxAge}`
        }))
      )
      return info.value
    }).pipe(
      // Bad options are a bug, not a response. This producer cannot fail; map a real one's
      // errors to the endpoint's (e.g. HttpApiError.ServiceUnavailable for a cold key).
      Effect.orDie
    ))
)

// The cache is built once, with the API: every request shares its L1 and its Redis connection.
export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide(PagesLive),
  Layer.provide(Memo.layer.pipe(Layer.provide(Redis.layerFromEnv)))
)

// Serve it (from @effect/platform-node: NodeHttpServer, NodeRuntime; createServer from node:http):
// HttpApiBuilder.serve().pipe(
//   Layer.provide(ApiLive),
//   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })),
//   Layer.launch,
//   NodeRuntime.runMain
// )
