/**
 * The explorer's HTTP server: the pages and their JSON twins, `/healthz`, `/metrics`, the
 * keep-warm fibers, and the layers that wire them to Node, Redis and the ledger.
 *
 * Every page response carries the cache's view of the value:
 * - `X-Cache: hit | stale | miss` (from `Memo.memoWithInfo`);
 * - `Age`: seconds since the value was computed;
 * - `Cache-Control: public, max-age=<Age + seconds to the next boundary>,
 *   stale-while-revalidate=<window seconds>`: caches subtract `Age` from `max-age`, so a value
 *   stays fresh exactly until the next window boundary; a stale value gets `max-age=0`;
 * - `X-Server-Now` and `X-Next-Boundary` (epoch ms, on the fleet's clock) for the browser's
 *   refresh timer.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as MetricLabel from "effect/MetricLabel"
import { createServer } from "node:http"
import { Memo, Redis } from "../src/index.js"
import { app as appConfig, AppConfig } from "./Config.js"
import * as Html from "./Html.js"
import * as Ledger from "./Ledger.js"
import * as Metrics from "./Metrics.js"
import * as Pages from "./pages/index.js"
import * as Tracing from "./Tracing.js"
import type { Page, Timed } from "./pages/Page.js"

type PageFailure = Ledger.LedgerFailure | Memo.WaitTimeout

/** Label arrays fixed once per route and status: Effect caches a metric's hook per array. */
const responseLabels = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

const count = (route: string, status: number) =>
  Effect.sync(() => {
    const id = `${status} ${route}`
    let labels = responseLabels.get(id)
    if (labels === undefined) {
      labels = [MetricLabel.make("route", route), MetricLabel.make("status", String(status))]
      responseLabels.set(id, labels)
    }
    Metrics.httpResponses.unsafeUpdate(1, labels)
  })

const describeFailure = (error: PageFailure): { readonly status: number; readonly heading: string; readonly message: string } => {
  switch (error._tag) {
    case "LedgerTimeout":
      return {
        status: 503,
        heading: "The ledger is too slow right now",
        message: `The database stopped the query "${error.query}" after ${error.seconds} s (its statement time limit), and no earlier value of this page is cached yet.`
      }
    case "LedgerError":
      return {
        status: 503,
        heading: error.reason === "Unavailable" ? "The ledger database is unavailable" : "The ledger query failed",
        message: `${error.message}. No earlier value of this page is cached yet.`
      }
    case "WaitTimeout":
      return {
        status: 503,
        heading: "Still computing",
        message: `This page is still being computed after ${Duration.format(error.timeout)}; try again in a moment.`
      }
  }
}

const retryAfterS = 5

/**
 * A page's body rendered once per cached value: every L1 hit returns the same value object, so
 * a warm page costs a `WeakMap` lookup instead of a render (or a `JSON.stringify`) per request.
 */
const renderedOnce = <K extends object, V>(render: (key: K) => V) => {
  const cache = new WeakMap<K, V>()
  return (key: K): V => {
    let found = cache.get(key)
    if (found === undefined) {
      found = render(key)
      cache.set(key, found)
    }
    return found
  }
}

/** One page as HTML (`format: "html"`) or as its JSON twin, answered by the page's `loader`. */
export const respond = <A>(
  page: Page<A>,
  loader: ReturnType<Page<A>["load"]>,
  format: "html" | "json"
) => {
  const route = format === "html" ? page.path : page.api
  const body = renderedOnce((value: Timed<A>) => page.render(value.value))
  const period = renderedOnce((value: Timed<A>) => ({ text: page.period(value.value) }))
  const data = renderedOnce((value: Timed<A>) => JSON.stringify(page.toJson(value.value)))
  return Effect.gen(function*() {
    const config = yield* AppConfig
    const info = yield* loader
    const meta: Html.RefreshMeta = {
      page: page.name,
      bucket: info.bucket,
      computedAt: info.computedAt,
      nextBoundary: info.nextBoundary,
      serverNow: info.serverNow,
      stale: info.stale,
      cache: info.cache,
      windowMs: info.windowMs,
      lagMs: Duration.toMillis(config.refreshLag),
      retryMs: Duration.toMillis(config.refreshRetry),
      computeMs: info.value.computeMs
    }
    const headers = Memo.cacheHeaders(info)
    const response = format === "html"
      ? HttpServerResponse.text(
        Html.page({ title: page.title, active: page.name, period: period(info.value).text, meta, body: body(info.value) }).value,
        { contentType: "text/html; charset=utf-8" }
      )
      : HttpServerResponse.text(
        `{"page":${JSON.stringify(page.name)},"data":${data(info.value)},"meta":${JSON.stringify(meta)}}`,
        { contentType: "application/json" }
      )
    yield* count(route, 200)
    return HttpServerResponse.setHeaders(response, headers)
  }).pipe(
    Effect.catchAll((error: PageFailure) =>
      Effect.gen(function*() {
        const failure = describeFailure(error)
        yield* Effect.logWarning(`explorer: ${route} answered ${failure.status}: ${error.message}`)
        yield* count(route, failure.status)
        const headers = { "cache-control": "no-store", "retry-after": String(retryAfterS) }
        const response = format === "html"
          ? HttpServerResponse.text(
            Html.errorPage({
              title: page.title,
              active: page.name,
              heading: failure.heading,
              message: failure.message,
              retryAfterS
            }).value,
            { contentType: "text/html; charset=utf-8", status: failure.status }
          )
          : HttpServerResponse.unsafeJson({ error: { code: error._tag, message: failure.message } }, { status: failure.status })
        return HttpServerResponse.setHeaders(response, headers)
      })
    ),
    Effect.catchAllDefect((defect) =>
      Effect.gen(function*() {
        yield* Effect.logError(`explorer: ${route} failed unexpectedly`, defect)
        yield* count(route, 500)
        return HttpServerResponse.text("Internal error: the explorer hit a bug; see the server log.", {
          status: 500,
          headers: { "cache-control": "no-store" }
        })
      })
    )
  )
}

const healthz = HttpServerResponse.unsafeJson({ status: "ok" }, { headers: { "cache-control": "no-store" } })

const metrics = Effect.map(Metrics.render(), (text) =>
  HttpServerResponse.text(text, { contentType: Metrics.contentType, headers: { "cache-control": "no-store" } }))

const notFound = Effect.succeed(
  HttpServerResponse.text(
    Html.errorPage({ title: "Not found", active: undefined, heading: "Not found", message: "There is no page at this address." }).value,
    { status: 404, contentType: "text/html; charset=utf-8" }
  )
)

/** The routes: four pages, their JSON twins, `/healthz`, `/metrics`, and a 404 page. */
export const Routes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    for (const page of Pages.all) {
      const loader = page.load(config.windows[page.name], config.requestTimeout)
      yield* router.add("GET", page.path, respond(page, loader, "html"))
      yield* router.add("GET", page.api, respond(page, loader, "json"))
    }
    // neither the database nor Redis: a liveness probe that stays green while they are down
    yield* router.add("GET", "/healthz", Effect.succeed(healthz))
    yield* router.add("GET", "/metrics", metrics)
    yield* router.add("GET", "/favicon.ico", Effect.succeed(HttpServerResponse.empty({ status: 204 })))
    // GET only: the router answers HEAD with the GET route when no HEAD route matches first
    yield* router.add("GET", "*", notFound)
  })
)

/** Recomputes the `KEEP_WARM` pages right after every boundary, for as long as the server runs. */
export const KeepWarm = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* AppConfig
    for (const name of config.keepWarm) {
      yield* Pages.byName[name].keepWarm(config.windows[name], config.keepWarmLag)
    }
  })
)

/** Prints where the explorer listens and what it runs on. */
export const Banner = Layer.effectDiscard(
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const ledger = yield* Ledger.Ledger
    const runtime = yield* Memo.Memo
    const address = server.address
    const url = address._tag === "TcpAddress"
      ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}/`
      : `unix:${address.path}`
    yield* Effect.log(`lockstep explorer on ${url} (ledger: ${ledger.backend}, cache store: ${runtime.store.kind})`)
  })
)

/** Everything the server serves, over `AppConfig`, `Memo` and `Ledger`. */
export const App = Layer.mergeAll(Routes, KeepWarm, Banner)

/** Serves `App` on whichever `HttpServer` is provided (Node's below, or `NodeHttpServer.layerTest`). */
export const serve = HttpLayerRouter.serve(App, { disableLogger: true, disableListenLog: true })

/**
 * Node's HTTP server on `HOST:PORT`. On shutdown, Node's `server.close()` waits for every open
 * connection, and a browser that refreshes every window keeps its keep-alive connection busy
 * forever; so, once the router has stopped serving (its layer closes first), the remaining
 * connections are closed and `close()` returns at once.
 */
export const ServerLive = Layer.unwrapEffect(
  Effect.map(appConfig, (c) => {
    const server = createServer()
    const dropConnections = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(() => server.closeAllConnections())))
    return dropConnections.pipe(Layer.provideMerge(NodeHttpServer.layer(() => server, { port: c.port, host: c.host })))
  })
)

export const HttpLive = serve.pipe(Layer.provide(ServerLive))

/**
 * Spans over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, `Layer.empty` otherwise.
 * Provided above everything else (`main.ts`), so the server's request spans and the cache's
 * refresh and producer spans under them share its tracer, and its flush runs last on shutdown.
 */
export const TracingLive = Tracing.layerConfig

/** Configuration, the cache over Redis (or its in-memory store), and the ledger, from the environment. */
export const Services = Layer.mergeAll(
  AppConfig.layer,
  Memo.layer.pipe(Layer.provide(Redis.layerFromEnv)),
  Ledger.layerFromEnv
)
