/**
 * The cache inspector over HTTP on the in-memory store, under `TestClock`: every key of the
 * tenant with its window, bucket, age, fence, `computedAt`, the lookup's duration, the lock
 * holder and lease while a lookup runs, the back-off after a failure, its tags and this
 * process's answers; bounded pages followed through their cursor; the HTML page read-only
 * without `ADMIN_TOKEN`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as Os from "node:os"
import type * as Inspector from "../../app/Inspector.js"
import * as Fixture from "./fixture.js"
import { get, getJson, server, settle, switchable } from "./support.js"

const token = "inspector-test-token-0123456789"

const rowOf = (key: string) =>
  Effect.map(getJson("/api/cache?count=200"), (r) => (r.json as Inspector.InspectorPage).keys.find((k) => k.key === key))

/** Every page the inspector lists, through `next`. */
const walk = (count: number) =>
  Effect.gen(function*() {
    const pages: Array<Inspector.InspectorPage> = []
    let next: string | null = null
    do {
      const r: { status: number; headers: Record<string, string>; json: any } = yield* getJson(
        `/api/cache?count=${count}${next === null ? "" : `&cursor=${encodeURIComponent(next)}`}`
      )
      expect(r.status).toBe(200)
      expect(r.headers["cache-control"]).toBe("no-store")
      pages.push(r.json)
      next = (r.json as Inspector.InspectorPage).next
    } while (next !== null && pages.length < 100)
    return pages
  })

/** Loads every page and every drill-down page of the fixture: 14 keys, and 3 for the directory. */
const loadEverything = Effect.gen(function*() {
  for (const path of ["/", "/market", "/chestshop", "/economy/health"]) yield* get(path)
  for (const id of [1, 2, 3]) yield* get(`/api/market/items/${id}`)
  for (const id of [1, 2]) yield* get(`/api/chestshop/shops/${id}`)
  for (const id of [1, 2, 3, 4, 5]) yield* get(`/api/accounts/${id}`)
})

describe("cache inspector", () => {
  it.scoped("lists each key with its window, bucket, age, fence, computedAt, tags and this process's answers", () =>
    Effect.gen(function*() {
      yield* get("/api/market/items/1") // miss
      yield* get("/market/items/1") // hit
      yield* get("/api/market/items/1") // hit
      yield* TestClock.adjust("3 seconds")
      const r = yield* getJson("/api/cache")
      const page = r.json as Inspector.InspectorPage
      expect(page).toMatchObject({ tenant: "default", store: "memory", now: 3_000, admin: false, next: null, count: 50 })
      expect(page.keys.map((k) => k.key).sort()).toEqual(["explorer:directory:item:v1", "explorer:item:v1:1"])
      expect(page.keys.find((k) => k.key === "explorer:item:v1:1")).toEqual({
        key: "explorer:item:v1:1",
        loader: "item",
        state: "fresh",
        windowMs: 10_000,
        bucket: 0,
        fence: 1,
        computedAt: 0,
        ageMs: 3_000,
        durationMs: 0,
        size: expect.any(Number),
        tags: ["drilldown", "items"],
        invalidatedThrough: null,
        lock: null,
        backoffLeftMs: null,
        served: { hit: 2, stale: 0, miss: 1 }
      } satisfies Inspector.KeyRow)
      // the next window: the value is stale until someone asks for it
      yield* TestClock.adjust("7 seconds")
      expect((yield* rowOf("explorer:item:v1:1"))!.state).toBe("stale")
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer))))

  it.scoped("shows the lock holder and its lease while a lookup runs, then the lookup's duration", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      yield* get("/api/accounts/1")
      yield* TestClock.adjust("10 seconds")
      let release!: () => void
      ledger.state.blocked = new Promise<void>((resolve) => (release = resolve))
      const stale = yield* get("/api/accounts/1") // served at once; the refresh waits on the ledger
      expect(stale.headers["x-cache"]).toBe("stale")
      yield* settle()
      const running = (yield* rowOf("explorer:account:v1:1"))!
      expect(running.lock).not.toBeNull()
      expect(running.lock!.holder.startsWith(`${Os.hostname()}:${process.pid}:`)).toBe(true)
      expect(running.lock!.leaseLeftMs).toBe(10_000) // the default lease; the test clock has not moved
      const html = (yield* get("/cache")).body
      expect(html).toContain(`<code>${running.lock!.holder}</code><div class="muted">lease 10.0 s left</div>`)
      yield* TestClock.adjust("2 seconds")
      expect((yield* rowOf("explorer:account:v1:1"))!.lock!.leaseLeftMs).toBe(8_000)
      ledger.state.blocked = undefined
      release()
      yield* settle()
      const done = (yield* rowOf("explorer:account:v1:1"))!
      // claimed at t = 10 s: a fence is at least the store's clock in microseconds
      expect(done).toMatchObject({ lock: null, state: "fresh", bucket: 1, fence: 10_000 * 1000, computedAt: 12_000, durationMs: 2_000 })
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("shows what is left of the back-off after a failed lookup", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      yield* get("/api/chestshop/shops/2")
      yield* TestClock.adjust("10 seconds")
      ledger.state.failing = "unavailable"
      expect((yield* get("/api/chestshop/shops/2")).headers["x-cache"]).toBe("stale")
      yield* settle()
      const failed = (yield* rowOf("explorer:shop:v1:2"))!
      expect(failed).toMatchObject({ state: "stale", lock: null, backoffLeftMs: 1_000, bucket: 0 })
      expect((yield* get("/cache")).body).toContain(`<span class="state-stale">back-off</span><div class="muted">1.0 s left</div>`)
      yield* TestClock.adjust("400 millis")
      expect((yield* rowOf("explorer:shop:v1:2"))!.backoffLeftMs).toBe(600)
    }).pipe(Effect.provide(server(ledger.layer)))
  })

  it.scoped("pages through every key with bounded pages and a cursor, in JSON and in HTML", () =>
    Effect.gen(function*() {
      yield* loadEverything
      const pages = yield* walk(4)
      const keys = pages.flatMap((p) => p.keys.map((k) => k.key))
      expect(pages.map((p) => p.keys.length)).toEqual([4, 4, 4, 4, 1])
      expect(new Set(keys).size).toBe(17)
      expect(keys.filter((k) => k.startsWith("explorer:account:v1:")).sort()).toEqual([1, 2, 3, 4, 5].map((id) => `explorer:account:v1:${id}`))
      // every key belongs to a loader of the explorer
      expect(pages.flatMap((p) => p.keys.filter((k) => k.loader === null))).toEqual([])

      // the HTML page links to the next one; following the links lists the same keys
      const seen: Array<string> = []
      let path: string | undefined = "/cache?count=4"
      for (let i = 0; path !== undefined && i < 10; i++) {
        const html: { status: number; body: string } = yield* get(path)
        expect(html.status).toBe(200)
        seen.push(...[...html.body.matchAll(/<td><code>(explorer:[^<]+)<\/code>/g)].map((m) => m[1]!))
        path = /<a href="([^"]+)">Next page<\/a>/.exec(html.body)?.[1]?.replaceAll("&amp;", "&")
      }
      expect(seen.sort()).toEqual([...keys].sort())
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer))))

  it.scoped("refuses a cursor or page size it did not hand out", () =>
    Effect.gen(function*() {
      for (const query of ["cursor=abc", "cursor=1%3Bx", "cursor=" + "9".repeat(30), "count=0", "count=201", "count=abc", "count=-1"]) {
        const api = yield* getJson(`/api/cache?${query}`)
        expect(api.status, query).toBe(400)
        expect(api.json.error.code, query).toBe("BadQuery")
        expect((yield* get(`/cache?${query}`)).status, query).toBe(400)
      }
      expect((yield* getJson("/api/cache?count=200")).status).toBe(200)
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer))))

  it.scoped("is read-only without ADMIN_TOKEN: no action buttons", () =>
    Effect.gen(function*() {
      yield* get("/api/market/items/1")
      const page = yield* get("/cache")
      expect(page.status).toBe(200)
      expect(page.body).toContain(`data-enabled="false"`)
      expect(page.body).toContain("Read-only")
      expect(page.body).not.toContain("<button")
      expect(page.body).not.toContain(`id="admin-token"`)
      expect(page.body).toContain("<code>explorer:item:v1:1</code>")
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer))))

  it.scoped("with ADMIN_TOKEN: a token field and invalidate, refresh and tag buttons for each key", () =>
    Effect.gen(function*() {
      yield* get("/api/market/items/1")
      const page = yield* get("/cache")
      expect(page.body).toContain(`data-enabled="true"`)
      expect(page.body).toContain(`<input type="password" id="admin-token"`)
      expect(page.body).toContain(`data-action="invalidate" data-key="explorer:item:v1:1"`)
      expect(page.body).toContain(`data-action="refresh" data-key="explorer:item:v1:1"`)
      expect(page.body).toContain(`data-action="invalidate-tag" data-tag="items"`)
      // the token itself is never in the page
      expect(page.body).not.toContain(token)
      expect((yield* getJson("/api/cache")).json.admin).toBe(true)
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer, { ADMIN_TOKEN: token }))))
})
