/**
 * The explorer's HTTP layer, served for real (`NodeHttpServer.layerTest`) with the in-memory
 * cache store and the fixture ledger, under `TestClock`: status codes, caching headers across
 * a window boundary, JSON shapes, escaping, failures mapped to 503, `/healthz` and `/metrics`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema, TestClock } from "effect"
import * as Ledger from "../../app/Ledger.js"
import * as LedgerMysql from "../../app/Ledger/Mysql.js"
import * as Chestshop from "../../app/pages/chestshop.js"
import * as Dashboard from "../../app/pages/dashboard.js"
import * as Health from "../../app/pages/health.js"
import * as Market from "../../app/pages/market.js"
import { freePort } from "../support/services.js"
import * as Fixture from "./fixture.js"
import { fixtureLedger, get, getJson, server, settle, switchable } from "./support.js"

const Meta = Schema.Struct({
  page: Schema.String,
  bucket: Schema.Number,
  computedAt: Schema.Number,
  nextBoundary: Schema.Number,
  serverNow: Schema.Number,
  stale: Schema.Boolean,
  cache: Schema.Literal("hit", "stale", "miss"),
  windowMs: Schema.Number,
  lagMs: Schema.Number,
  retryMs: Schema.Number,
  computeMs: Schema.Number
})

const twin = <A, I>(name: string, data: Schema.Schema<A, I>) =>
  Schema.Struct({ page: Schema.Literal(name), data, meta: Meta })

const fixture = Layer.sync(Ledger.Ledger, fixtureLedger)

const cacheControl = (value: string | undefined) => {
  const m = /^public, max-age=(\d+), stale-while-revalidate=(\d+)$/.exec(value ?? "")
  expect(m, `Cache-Control ${value}`).not.toBeNull()
  return { maxAge: Number(m![1]), swr: Number(m![2]) }
}

describe("explorer HTTP", () => {
  it.scoped("serves every page as HTML and as a JSON twin of the right shape", () =>
    Effect.gen(function*() {
      const pages = [
        { path: "/", api: "/api/dashboard", schema: twin("dashboard", Dashboard.Dashboard) },
        { path: "/market", api: "/api/market", schema: twin("market", Market.Market) },
        { path: "/chestshop", api: "/api/chestshop", schema: twin("chestshop", Chestshop.Chestshop) },
        { path: "/economy/health", api: "/api/economy/health", schema: twin("health", Health.Health) }
      ]
      for (const p of pages) {
        const page = yield* get(p.path)
        expect(page.status).toBe(200)
        expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
        expect(page.headers["x-cache"]).toBe("miss")
        expect(page.body).toContain(`<script type="application/json" id="lockstep-meta">`)
        expect(page.body).toMatch(/<script src="\/assets\/refresh\.[0-9a-f]{16}\.js"/)
        const api = yield* getJson(p.api)
        expect(api.status).toBe(200)
        expect(api.headers["content-type"]).toBe("application/json")
        expect(api.headers["x-cache"]).toBe("hit") // the HTML request computed it
        const decoded = Schema.decodeUnknownEither(p.schema as Schema.Schema<unknown, unknown>)(api.json)
        expect(decoded._tag, JSON.stringify(decoded)).toBe("Right")
      }
    }).pipe(Effect.provide(server(fixture))))

  it.scoped("JSON twins carry the fixture's numbers", () =>
    Effect.gen(function*() {
      const d = (yield* getJson("/api/dashboard")).json.data as Dashboard.Dashboard
      expect(d.span).toEqual({ from: "2024-03-01", to: "2024-03-30" })
      expect(d.transactions).toBe(74)
      expect(d.volume).toBe(751.03)
      expect(d.activeAccounts).toBe(5)
      expect(d.accounts).toBe(5)
      expect(d.daily).toHaveLength(30)
      expect(d.daily[0]).toEqual({ day: "2024-03-01", volume: 17, transactions: 3 })
      expect(d.gini).toBeCloseTo((2 * (25_300 + 2 * 26_203 + 3 * 59_800 + 4 * 96_100 + 5 * 96_897)) / (5 * 304_300) - 1.2, 12)
      expect(d.top1Share).toBeCloseTo(96_897 / 304_300, 12)

      const m = (yield* getJson("/api/market")).json.data as Market.Market
      expect(m.items.map((i) => i.item)).toEqual(["Diamond", Fixture.hostile.item, "Bread"])
      expect(m.items[0]).toMatchObject({ trades: 3, quantity: 6, volume: 140, medianUnitPrice: 20, meanUnitPrice: 20 })
      expect(m.items[2]).toMatchObject({ medianUnitPrice: 1.015, meanUnitPrice: 1.015 })
      expect(m.volume).toBe(153.03)

      const c = (yield* getJson("/api/chestshop")).json.data as Chestshop.Chestshop
      expect(c.shops.map((s) => [s.shop, s.revenue, s.spent, s.net, s.buys, s.sells])).toEqual([
        [Fixture.hostile.shop, 100, 0, 100, 1, 0],
        ["Alice's Shop", 35, 1, 34, 2, 1]
      ])
      expect(c.shops[1]!.topItems).toEqual([{ id: 1, item: "Diamond", quantity: 2, revenue: 30 }, { id: 3, item: "Bread", quantity: 10, revenue: 5 }])

      const h = (yield* getJson("/api/economy/health")).json.data as Health.Health
      expect(h.moneySupply).toBe(3043)
      expect(h.minted).toBe(302)
      expect(h.burned).toBe(10)
      expect(h.supplyAtStart).toBe(2751)
      expect(h.circulating).toBe(439.03) // transfers 150 + chestshops 136 + market 153.03
      expect(h.sources).toEqual([{ kind: "salary", amount: 302, transactions: 31 }])
      expect(h.sinks).toEqual([{ kind: "tax", amount: 10, transactions: 2 }])
      expect(h.trend).toBe("growing")
      expect(h.daily.at(-1)!.supply).toBe(3043)
    }).pipe(Effect.provide(server(fixture))))

  it.scoped("headers follow the window: miss, hit with Age, stale after the boundary, then the new window", () =>
    Effect.gen(function*() {
      const first = yield* getJson("/api/dashboard")
      expect(first.headers["x-cache"]).toBe("miss")
      expect(first.headers["age"]).toBe("0")
      expect(first.headers["x-server-now"]).toBe("0")
      expect(first.headers["x-next-boundary"]).toBe("10000")
      expect(cacheControl(first.headers["cache-control"])).toEqual({ maxAge: 10, swr: 10 })
      expect(first.json.meta).toMatchObject({ bucket: 0, computedAt: 0, nextBoundary: 10_000, stale: false, windowMs: 10_000, lagMs: 250, retryMs: 1000, computeMs: 0 })

      yield* TestClock.adjust("3 seconds")
      const later = yield* getJson("/api/dashboard")
      expect(later.headers["x-cache"]).toBe("hit")
      expect(later.headers["age"]).toBe("3")
      // caches subtract Age from max-age: fresh for the 7 s left until the boundary
      const cc = cacheControl(later.headers["cache-control"])
      expect(cc.maxAge - Number(later.headers["age"])).toBe(7)

      yield* TestClock.adjust("7500 millis") // 10.5 s: the next window
      const stale = yield* getJson("/api/dashboard")
      expect(stale.headers["x-cache"]).toBe("stale")
      expect(stale.json.meta).toMatchObject({ bucket: 0, stale: true, nextBoundary: 20_000 })
      expect(cacheControl(stale.headers["cache-control"])).toEqual({ maxAge: 0, swr: 10 })
      expect(stale.headers["age"]).toBe("10")

      yield* settle() // the refresh started by the stale hit
      const fresh = yield* getJson("/api/dashboard")
      expect(fresh.headers["x-cache"]).toBe("hit")
      expect(fresh.json.meta).toMatchObject({ bucket: 1, computedAt: 10_500, stale: false, nextBoundary: 20_000 })
      expect(fresh.headers["age"]).toBe("0")
      expect(cacheControl(fresh.headers["cache-control"]).maxAge).toBe(9)
    }).pipe(Effect.provide(server(fixture))))

  it.scoped("escapes hostile names in every HTML page", () =>
    Effect.gen(function*() {
      const bodies = [(yield* get("/market")).body, (yield* get("/chestshop")).body]
      const html = bodies.join("\n")
      expect(html).not.toContain(Fixture.hostile.item)
      expect(html).not.toContain(Fixture.hostile.shop)
      expect(html).not.toContain(Fixture.hostile.account)
      expect(html).not.toContain("<svg onload")
      expect(html).not.toContain("<img src=x")
      expect(bodies[0]).toContain("&lt;img src=x onerror=alert(1)&gt;")
      expect(bodies[1]).toContain("&quot;&gt;&lt;svg onload=alert(2)&gt;")
      expect(bodies[1]).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
      expect(bodies[1]).toContain("Alice&#39;s Shop")
      // exactly one executable script per page, the refresh script, from a file: nothing inline
      for (const body of bodies) {
        expect(body.match(/<script>/g)).toBeNull()
        expect(body.match(/<script src="\/assets\/refresh\.[0-9a-f]{16}\.js"/g)).toHaveLength(1)
      }
    }).pipe(Effect.provide(server(fixture))))

  it.scoped("with a dead database: /healthz is 200, a cold page is a 503 with a clear message", () =>
    Effect.gen(function*() {
      const health = yield* getJson("/healthz")
      expect(health.status).toBe(200)
      expect(health.json).toEqual({ status: "ok" })

      const api = yield* getJson("/api/dashboard")
      expect(api.status).toBe(503)
      expect(api.headers["cache-control"]).toBe("no-store")
      expect(api.headers["retry-after"]).toBe("5")
      expect(api.json.error.code).toBe("LedgerError")
      expect(api.json.error.message).toMatch(/ledger database is unavailable/)

      const page = yield* get("/market")
      expect(page.status).toBe(503)
      expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
      expect(page.body).toContain("The ledger database is unavailable")
      expect(page.body).toContain(`<meta http-equiv="refresh" content="5">`)

      expect((yield* getJson("/healthz")).status).toBe(200)
    }).pipe(
      Effect.provide(
        Layer.unwrapEffect(
          Effect.promise(() => freePort()).pipe(
            Effect.map((port) =>
              server(
                LedgerMysql.layerWith(
                  { host: "127.0.0.1", port, username: "root", password: Option.none(), database: "lockstep" },
                  "1 second"
                )
              )
            )
          )
        )
      )
    ))

  it.scoped("a statement timeout on a cold page is a 503 naming the time limit", () => {
    const ledger = switchable()
    ledger.state.failing = "timeout"
    return Effect.gen(function*() {
      const api = yield* getJson("/api/market")
      expect(api.status).toBe(503)
      expect(api.json.error.code).toBe("LedgerTimeout")
      expect(api.json.error.message).toMatch(/statement time limit/)
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("once a value exists, a failing database is invisible: the last value is served, stale", () => {
    const ledger = switchable()
    return Effect.gen(function*() {
      const first = yield* getJson("/api/economy/health")
      expect(first.status).toBe(200)
      ledger.state.failing = "unavailable"
      yield* TestClock.adjust("10 seconds")
      for (let i = 0; i < 3; i++) {
        const stale = yield* getJson("/api/economy/health")
        expect(stale.status).toBe(200)
        expect(stale.headers["x-cache"]).toBe("stale")
        expect(stale.json.data).toEqual(first.json.data)
        yield* settle()
      }
      const page = yield* get("/economy/health")
      expect(page.status).toBe(200)
      expect(page.body).toContain("stale: a newer value is being computed")

      ledger.state.failing = false
      yield* TestClock.adjust("5 seconds") // past the producer back-off
      yield* get("/api/economy/health")
      yield* settle()
      const recovered = yield* getJson("/api/economy/health")
      expect(recovered.headers["x-cache"]).toBe("hit")
      expect(recovered.json.meta.bucket).toBe(1)
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("keeps KEEP_WARM pages warm: the first request after a boundary is already a hit", () => {
    const ledger = switchable()
    return Effect.gen(function*() {
      yield* settle()
      const first = yield* getJson("/api/dashboard")
      expect(first.headers["x-cache"]).toBe("hit") // warmed at start-up
      const queries = ledger.state.queries
      yield* TestClock.adjust("10 seconds")
      yield* settle()
      expect(ledger.state.queries).toBeGreaterThan(queries) // recomputed at the boundary, unasked
      const next = yield* getJson("/api/dashboard")
      expect(next.headers["x-cache"]).toBe("hit")
      expect(next.json.meta.bucket).toBe(1)
      // a page that is not kept warm was never computed
      const market = yield* getJson("/api/market")
      expect(market.headers["x-cache"]).toBe("miss")
    }).pipe(Effect.provide(server(ledger.layer, { KEEP_WARM: "dashboard" })))
  })

  it.scoped("/metrics exposes the cache's and the server's metrics in Prometheus text", () =>
    Effect.gen(function*() {
      yield* get("/api/dashboard")
      yield* get("/api/dashboard")
      const metrics = yield* get("/metrics")
      expect(metrics.status).toBe(200)
      expect(metrics.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
      expect(metrics.body).toMatch(/^# TYPE lockstep_requests_total counter$/m)
      expect(metrics.body).toMatch(/^lockstep_requests_total\{result="l1"\} \d+$/m)
      expect(metrics.body).toMatch(/^lockstep_producer_duration_seconds_bucket\{le="\+Inf"\} \d+$/m)
      expect(metrics.body).toMatch(/^explorer_http_responses_total\{route="\/api\/dashboard",status="200"\} \d+$/m)
      expect(metrics.body).toMatch(/^explorer_process_resident_memory_bytes \d+/m)
    }).pipe(Effect.provide(server(fixture))))

  it.scoped("answers 404 for unknown paths", () =>
    Effect.gen(function*() {
      const missing = yield* get("/nope")
      expect(missing.status).toBe(404)
      expect(missing.body).toContain("Not found")
    }).pipe(Effect.provide(server(fixture))))
})
