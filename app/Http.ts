/**
 * The explorer's HTTP server: the pages and their JSON twins, the drill-down pages, the cache
 * inspector and its admin actions, `/healthz`, `/metrics`, the keep-warm fibers, the security
 * headers, and the layers that wire them to Node, Redis and the ledger.
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
import * as Option from "effect/Option"
import { createServer } from "node:http"
import { Memo, Redis } from "../src/index.js"
import * as Admin from "./Admin.js"
import * as Assets from "./Assets.js"
import { describeFailure } from "./Failure.js"
import { app as appConfig, AppConfig, type AppSettings, memo as memoConfig } from "./Config.js"
import * as Html from "./Html.js"
import * as Inspector from "./Inspector.js"
import * as Ledger from "./Ledger.js"
import * as LedgerEnv from "./Ledger/Env.js"
import * as Loaders from "./Loaders.js"
import * as Metrics from "./Metrics.js"
import type { Drill, DrillLoader } from "./pages/Drill.js"
import * as List from "./pages/List.js"
import { parseId } from "./pages/Drill.js"
import * as Pages from "./pages/index.js"
import type { Page, Timed } from "./pages/Page.js"
import * as Security from "./Security.js"
import * as Tracing from "./Tracing.js"

type PageFailure = Loaders.RefreshFailure | Memo.LookupManyMismatch

/** Label arrays fixed once per route and status: Effect caches a metric's hook per array. */
const responseLabels = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

/** Counts one response of `route` with `status`; made once per route for its 200s. */
const counter = (route: string, status: number) => {
  const id = `${status} ${route}`
  let labels = responseLabels.get(id)
  if (labels === undefined) {
    labels = [MetricLabel.make("route", route), MetricLabel.make("status", String(status))]
    responseLabels.set(id, labels)
  }
  const fixed = labels
  return () => Metrics.httpResponses.unsafeUpdate(1, fixed)
}

export const count = (route: string, status: number) => Effect.sync(counter(route, status))

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

/** What `respond` needs to show a value: a fixed page or a drill-down page. */
export interface View<A> {
  /** `meta.page` and the JSON twin's `page`. */
  readonly name: string
  readonly active: Html.Section
  readonly title: (value: A) => string
  readonly render: (value: A) => Html.Html
  readonly toJson: (value: A) => unknown
  readonly period: (value: A) => string | undefined
}

const pageView = <A>(page: Page<A, any>): View<A> => ({ ...page, active: page.name, title: () => page.title })

const drillView = <A>(drill: Drill<A>): View<A> => ({ ...drill, active: drill.section })

/**
 * When the page's next value will be there: the boundary for a page computed ahead of it; for
 * the others, the boundary plus the page's run time, which the value itself measured (this
 * process may not have run it), or the cache's estimate when that is longer.
 */
const nextValueAt = <A>(info: Memo.Info<Timed<A>>, page: string, config: AppSettings): number =>
  info.stale || (info.nextValueAt === info.nextBoundary && (config.keepWarm as ReadonlyArray<string>).includes(page) && config.keepWarmLead !== false)
    ? info.nextValueAt
    : Math.max(info.nextValueAt, info.nextBoundary + Math.ceil(info.value.computeMs))

const encoder = new TextEncoder()

/** A JSON twin's bytes up to its `meta`: made once per value, since only `meta` changes per request. */
const jsonHead = (page: string, data: unknown): Uint8Array =>
  encoder.encode(`{"page":${JSON.stringify(page)},"data":${JSON.stringify(data)},"meta":`)

/** `{"page":…,"data":…,"meta":<meta>}`: the value's bytes copied, only `meta` encoded. */
const jsonBody = (head: Uint8Array, meta: Html.RefreshMeta): Uint8Array => {
  const tail = `${JSON.stringify(meta)}}`
  const bytes = Buffer.allocUnsafe(head.length + Buffer.byteLength(tail))
  bytes.set(head)
  bytes.write(tail, head.length)
  return bytes
}

/**
 * A page's response with all its headers made in one object, in the order they are written: the
 * body's, the cache's (`Memo.cacheHeaders`), then the security headers, which
 * `Security.middleware` then finds in place instead of copying the response again.
 */
const pageResponse = (contentType: string, bytes: Uint8Array, info: Memo.Info<unknown>) =>
  HttpServerResponse.uint8Array(bytes, {
    contentType,
    headers: { "content-type": contentType, "content-length": String(bytes.length), ...Memo.cacheHeaders(info), ...Security.headers }
  })

/**
 * One value as HTML (`format: "html"`) or as its JSON twin. `load` is the loader's
 * `getWithInfo`; the renderers are made once per route, not per request.
 */
export const respond = <A, R>(
  view: View<A>,
  route: string,
  load: Effect.Effect<Memo.Info<Timed<A>>, PageFailure, R>,
  format: "html" | "json"
) => {
  const body = renderedOnce((value: Timed<A>) => view.render(value.value))
  const titled = renderedOnce((value: Timed<A>) => ({ title: view.title(value.value), period: view.period(value.value) }))
  const head = renderedOnce((value: Timed<A>) => jsonHead(view.name, view.toJson(value.value)))
  const ok = counter(route, 200)
  return Effect.flatMap(AppConfig, (config) =>
    Effect.map(load, (info) => {
      const meta: Html.RefreshMeta = {
        page: view.name,
        bucket: info.bucket,
        computedAt: info.computedAt,
        nextBoundary: info.nextBoundary,
        nextValueAt: nextValueAt(info, view.name, config),
        serverNow: info.serverNow,
        stale: info.stale,
        cache: info.cache,
        windowMs: info.windowMs,
        lagMs: Duration.toMillis(config.refreshLag),
        retryMs: Duration.toMillis(config.refreshRetry),
        computeMs: info.value.computeMs
      }
      let response: HttpServerResponse.HttpServerResponse
      if (format === "html") {
        const { period, title } = titled(info.value)
        const page = Html.page({ title, active: view.active, period, meta, body: body(info.value) }).value
        response = pageResponse("text/html; charset=utf-8", encoder.encode(page), info)
      } else {
        response = pageResponse("application/json", jsonBody(head(info.value), meta), info)
      }
      // counted in this step rather than one of its own: a warm request is a handful of steps
      ok()
      return response
    })
  ).pipe(
    Effect.catchAll((error: PageFailure) =>
      Effect.gen(function*() {
        const failure = describeFailure(error)
        if (failure.status >= 500) yield* Effect.logWarning(`explorer: ${route} answered ${failure.status}: ${error.message}`)
        yield* count(route, failure.status)
        return failureResponse(failure, error._tag, view.active, format)
      })
    ),
    Effect.catchAllDefect((defect) =>
      Effect.gen(function*() {
        yield* Effect.logError(`explorer: ${route} failed unexpectedly`, defect)
        yield* count(route, 500)
        return internalError
      })
    )
  )
}

const internalError = HttpServerResponse.text("Internal error: the explorer hit a bug; see the server log.", {
  status: 500,
  headers: { "cache-control": "no-store" }
})

/** A page that could not be answered: a 404, or a 503 that the browser retries. */
export const failureResponse = (
  failure: ReturnType<typeof describeFailure>,
  code: string,
  active: Html.Section | undefined,
  format: "html" | "json"
) => {
  const retry = failure.status >= 500
  const headers: Record<string, string> = retry ? { "cache-control": "no-store", "retry-after": String(retryAfterS) } : { "cache-control": "no-store" }
  const response = format === "html"
    ? HttpServerResponse.text(
      Html.errorPage({
        title: failure.heading,
        active,
        heading: failure.heading,
        message: failure.message,
        retryAfterS: retry ? retryAfterS : undefined
      }).value,
      { contentType: "text/html; charset=utf-8", status: failure.status }
    )
    : HttpServerResponse.unsafeJson({ error: { code, message: failure.message } }, { status: failure.status })
  return HttpServerResponse.setHeaders(response, headers)
}

/**
 * A drill-down page's value: the id is parsed strictly and looked up in the directory first,
 * so a malformed or unknown id answers 404 without a lookup and without a record in the store.
 */
const drillLoad = <A>(drill: Drill<A>, loader: DrillLoader<A>, loaders: Loaders.Service) =>
  Effect.gen(function*() {
    const { params } = yield* HttpLayerRouter.RouteContext
    const id = parseId(params.id ?? "")
    if (Option.isNone(id)) return yield* new Loaders.NotFound({ message: `That is not a valid ${drill.kind} id` })
    if (!(yield* loaders.exists(drill.kind, id.value))) {
      return yield* new Loaders.NotFound({ message: `There is no ${drill.kind} ${id.value}` })
    }
    return yield* loader.getWithInfo(id.value)
  })

/** A list page's answer: its own value, then its rows through the drill-down family's `getManyWithInfo`. */
const listLoad = <I, A, E, R>(list: List.ListOf<I, any, A>, own: Effect.Effect<Memo.Info<Timed<I>>, E, R>, loaders: Loaders.Service) =>
  List.load(list, own, (ids) => loaders.drills[list.drill].getManyWithInfo(ids), loaders.exists)

const healthz = HttpServerResponse.unsafeJson({ status: "ok" }, { headers: { "cache-control": "no-store" } })

const metrics = Effect.map(Metrics.render(), (text) =>
  HttpServerResponse.text(text, { contentType: Metrics.contentType, headers: { "cache-control": "no-store" } }))

const notFound = Effect.succeed(
  HttpServerResponse.text(
    Html.errorPage({ title: "Not found", active: undefined, heading: "Not found", message: "There is no page at this address." }).value,
    { status: 404, contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } }
  )
)

/**
 * The routes: four pages, three drill-down pages, their JSON twins, the cache inspector and its
 * admin actions, `/healthz`, `/metrics`, and a 404 page for anything else.
 */
export const Routes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const loaders = yield* Loaders.Loaders
    for (const page of Pages.all) {
      const own = loaders.pages[page.name].getWithInfo()
      const load = page.list === undefined ? own : listLoad(page.list, own, loaders)
      const view = pageView(page)
      yield* router.add("GET", page.path, respond(view, page.path, load, "html"))
      yield* router.add("GET", page.api, respond(view, page.api, load, "json"))
    }
    for (const drill of Pages.allDrills) {
      const own = drillLoad(drill, loaders.drills[drill.name], loaders)
      const load = drill.list === undefined ? own : listLoad(drill.list, own, loaders)
      const view = drillView(drill)
      yield* router.add("GET", drill.path, respond(view, drill.path, load, "html"))
      yield* router.add("GET", drill.api, respond(view, drill.api, load, "json"))
    }
    yield* Inspector.routes(router, loaders)
    yield* Admin.routes(router, loaders)
    // neither the database nor Redis: a liveness probe that stays green while they are down
    yield* router.add("GET", "/healthz", Effect.succeed(healthz))
    yield* router.add("GET", "/metrics", metrics)
    yield* router.add("GET", "/favicon.ico", Effect.succeed(HttpServerResponse.empty({ status: 204 })))
    // the style sheet and scripts, under their content hashes; any other /assets/ path is a 404
    for (const asset of Assets.all) yield* router.add("GET", asset.path, Effect.succeed(Assets.response(asset)))
    // the router answers HEAD with the GET route when no HEAD route matches first
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const) yield* router.add(method, "*", notFound)
  })
)

/**
 * Keeps the `KEEP_WARM` pages warm for as long as the server runs: each window's value is
 * computed before its boundary (`KEEP_WARM_LEAD`), so a browser refreshing just after it lands
 * on the new value.
 */
export const KeepWarm = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const loaders = yield* Loaders.Loaders
    for (const name of config.keepWarm) {
      yield* Memo.keepWarm(loaders.pages[name], undefined, { lag: config.keepWarmLag, lead: config.keepWarmLead })
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

/** Everything the server serves, over `AppConfig`, `Memo` and `Ledger`; the loaders are built once, here. */
export const App = Layer.mergeAll(Routes, KeepWarm, Banner).pipe(Layer.provide(Loaders.layer))

/**
 * Serves `App` on whichever `HttpServer` is provided (Node's below, or `NodeHttpServer.layerTest`),
 * with the security headers on every response.
 */
export const serve = HttpLayerRouter.serve(App, { disableLogger: true, disableListenLog: true, middleware: Security.middleware })

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
  Memo.layerConfig(memoConfig).pipe(Layer.provide(Redis.layerFromEnv)),
  LedgerEnv.layerFromEnv
)
