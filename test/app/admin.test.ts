/**
 * The inspector's admin actions over HTTP, under `TestClock`: 403 without `ADMIN_TOKEN`, 401
 * for a missing or wrong bearer token (and for credentials a browser would send on its own),
 * POST only, then what each action does to the cache, and the log line each one leaves.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted, TestClock } from "effect"
import * as Admin from "../../app/Admin.js"
import * as Config from "../../app/Config.js"
import type * as Inspector from "../../app/Inspector.js"
import * as Fixture from "./fixture.js"
import { get, getJson, post, server, settings, settle, switchable } from "./support.js"

const token = "admin-test-token-3f6c1b9e2a"
const bearer = { authorization: `Bearer ${token}` }
const actions = ["invalidate", "refresh", "invalidate-tag"] as const
const bodyOf = (action: (typeof actions)[number]) => (action === "invalidate-tag" ? { tag: "items" } : { key: "explorer:item:v1:1" })

const rowOf = (key: string) =>
  Effect.map(getJson("/api/cache?count=200"), (r) => (r.json as Inspector.InspectorPage).keys.find((k) => k.key === key))

describe("admin actions", () => {
  it.scoped("answer 403 on every route while ADMIN_TOKEN is unset, whatever the request sends", () =>
    Effect.gen(function*() {
      yield* get("/api/market/items/1")
      for (const action of actions) {
        for (const headers of [{}, bearer, { authorization: "Bearer " }]) {
          const r = yield* post(`/api/cache/${action}`, bodyOf(action), headers)
          expect(r.status, action).toBe(403)
          expect(r.json.error.code).toBe("AdminDisabled")
          expect(r.headers["cache-control"]).toBe("no-store")
        }
      }
      // nothing happened: the value is still a fresh hit
      expect((yield* get("/api/market/items/1")).headers["x-cache"]).toBe("hit")
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer))))

  it.scoped("answer 401 to a missing or wrong token, to other schemes, and to cookies or query parameters", () => {
    const ledger = switchable(Fixture.drillData)
    const logs: Array<string> = []
    return Effect.gen(function*() {
      yield* get("/api/market/items/1")
      const attempts: ReadonlyArray<Record<string, string>> = [
        {},
        { authorization: "Bearer" },
        { authorization: "Bearer " },
        { authorization: "Bearer wrong-token-of-some-length" },
        { authorization: `Bearer ${token}x` },
        { authorization: `Bearer ${token.slice(0, -1)}` },
        { authorization: `Bearer ${token.toUpperCase()}` },
        { authorization: `Basic ${Buffer.from(`admin:${token}`).toString("base64")}` },
        { authorization: token },
        { cookie: `token=${token}; admin=${token}` },
        { "x-admin-token": token }
      ]
      for (const action of actions) {
        for (const headers of attempts) {
          const r = yield* post(`/api/cache/${action}`, bodyOf(action), headers)
          expect(r.status, `${action} ${JSON.stringify(headers)}`).toBe(401)
          expect(r.json.error.code).toBe("Unauthorized")
          expect(r.headers["www-authenticate"]).toBe(`Bearer realm="lockstep explorer"`)
        }
        const inQuery = yield* post(`/api/cache/${action}?token=${token}&access_token=${token}`, bodyOf(action))
        expect(inQuery.status).toBe(401)
      }
      // nothing was invalidated or recomputed
      expect((yield* get("/api/market/items/1")).headers["x-cache"]).toBe("hit")
      expect(ledger.state.byName.get("itemTrades")).toBe(1)
      // each refusal is logged, never with the token
      expect(logs.filter((l) => /^WARN explorer admin: refused (invalidate|refresh|invalidate-tag) from .*: 401 /.test(l))).toHaveLength(actions.length * (attempts.length + 1))
      expect(logs.join("\n")).not.toContain(token)
    }).pipe(Effect.provide(server(ledger.layer, { ADMIN_TOKEN: token }, { logs })))
  })

  it.scoped("are POST only: GET answers 405 with Allow: POST", () =>
    Effect.gen(function*() {
      for (const action of actions) {
        const r = yield* getJson(`/api/cache/${action}`, bearer)
        expect(r.status).toBe(405)
        expect(r.headers["allow"]).toBe("POST")
      }
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer, { ADMIN_TOKEN: token }))))

  it.scoped("invalidate: the value stays as last-known-good, served stale, and is recomputed once", () => {
    const ledger = switchable(Fixture.drillData)
    const logs: Array<string> = []
    return Effect.gen(function*() {
      const first = yield* getJson("/api/market/items/1")
      expect(first.json.data.trades).toBe(5)
      // the database changes: a sixth Diamond trade
      ledger.state.use({
        ...Fixture.drillData,
        rows: [...Fixture.drillData.rows, { ts: "2024-03-12T10:00:00", kind: "market_trade", from: 4, to: 5, item: 1, quantity: 1, unitPriceCents: 6_000, amountCents: 6_000 }]
      })
      yield* TestClock.adjust("2 seconds")
      expect((yield* getJson("/api/market/items/1")).json.data.trades).toBe(5) // a hit: the window is not over
      const done = yield* post("/api/cache/invalidate", { key: "explorer:item:v1:1" }, bearer)
      expect(done.status).toBe(200)
      expect(done.json).toMatchObject({ ok: true, action: "invalidate", key: "explorer:item:v1:1", loader: "item" })
      expect((yield* rowOf("explorer:item:v1:1"))!.state).toBe("invalidated")
      // still the same window: readers get the old value at once while one recompute runs (held
      // on the ledger here, so that they all arrive during it)
      let release!: () => void
      ledger.state.blocked = new Promise<void>((resolve) => (release = resolve))
      const answers = yield* Effect.all([1, 2, 3].map(() => getJson("/api/market/items/1")))
      for (const a of answers) {
        expect(a.headers["x-cache"]).toBe("stale")
        expect(a.json.data.trades).toBe(5)
      }
      ledger.state.blocked = undefined
      release()
      yield* settle()
      const fresh = yield* getJson("/api/market/items/1")
      expect(fresh.headers["x-cache"]).toBe("hit")
      expect(fresh.json.data.trades).toBe(6)
      expect(fresh.json.meta.bucket).toBe(0)
      expect(ledger.state.byName.get("itemTrades")).toBe(2)
      expect(logs).toContain(`INFO explorer admin: invalidated key "explorer:item:v1:1" (item)`)
    }).pipe(Effect.provide(server(ledger.layer, { ADMIN_TOKEN: token }, { logs })))
  })

  it.scoped("refresh: recomputes now and answers the new value's window; a fixed page's key works too", () => {
    const ledger = switchable(Fixture.drillData)
    const logs: Array<string> = []
    return Effect.gen(function*() {
      yield* get("/api/accounts/3")
      yield* get("/api/dashboard")
      yield* TestClock.adjust("4 seconds")
      const done = yield* post("/api/cache/refresh", { key: "explorer:account:v1:3" }, bearer)
      expect(done.status).toBe(200)
      expect(done.json).toMatchObject({ ok: true, action: "refresh", loader: "account", bucket: 0, computedAt: 4_000 })
      expect(ledger.state.byName.get("accountFlows")).toBe(2)
      const next = yield* getJson("/api/accounts/3")
      expect(next.headers["x-cache"]).toBe("hit")
      expect(next.json.meta.computedAt).toBe(4_000)

      const page = yield* post("/api/cache/refresh", { key: "explorer:dashboard:v2" }, bearer)
      expect(page.status).toBe(200)
      expect(page.json).toMatchObject({ loader: "dashboard", computedAt: 4_000 })
      expect(logs).toContain(`INFO explorer admin: refreshing key "explorer:account:v1:3" (account)`)
      expect(logs).toContain(`INFO explorer admin: refreshed key "explorer:account:v1:3": bucket 0, computed at 4000`)
    }).pipe(Effect.provide(server(ledger.layer, { ADMIN_TOKEN: token }, { logs })))
  })

  it.scoped("invalidate-tag: reaches every key with the tag and no other", () => {
    const logs: Array<string> = []
    return Effect.gen(function*() {
      for (const id of [1, 2, 3]) yield* get(`/api/market/items/${id}`)
      yield* get("/api/chestshop/shops/1")
      yield* get("/api/market")
      const done = yield* post("/api/cache/invalidate-tag", { tag: "items" }, bearer)
      expect(done.status).toBe(200)
      expect(done.json).toMatchObject({ ok: true, action: "invalidate-tag", tag: "items", keys: 3 })
      const rows = (yield* getJson("/api/cache?count=200")).json.keys as ReadonlyArray<Inspector.KeyRow>
      const states = Object.fromEntries(rows.map((r) => [r.key, r.state]))
      expect(states).toMatchObject({
        "explorer:item:v1:1": "invalidated",
        "explorer:item:v1:2": "invalidated",
        "explorer:item:v1:3": "invalidated",
        "explorer:shop:v1:1": "fresh",
        "explorer:market:v4": "fresh"
      })
      const pages = yield* post("/api/cache/invalidate-tag", { tag: "pages" }, bearer)
      expect(pages.json.keys).toBe(1)
      expect((yield* post("/api/cache/invalidate-tag", { tag: "no such tag" }, bearer)).json.keys).toBe(0)
      expect(logs).toContain(`INFO explorer admin: invalidated tag "items" (3 keys)`)
      expect(logs).toContain(`INFO explorer admin: invalidated tag "no such tag" (0 keys)`)
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer, { ADMIN_TOKEN: token }, { logs })))
  })

  it.scoped("refuse keys no loader owns, ids not in the directory, and malformed bodies, without touching the store", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      yield* get("/api/market/items/1")
      for (const key of ["explorer:item:v1:007", "explorer:item:v1:1x", "explorer:market:v2", "something else", "explorer:item:v1:"]) {
        for (const action of ["invalidate", "refresh"] as const) {
          const r = yield* post(`/api/cache/${action}`, { key }, bearer)
          expect(r.status, `${action} ${key}`).toBe(404)
          expect(r.json.error.code).toBe("UnknownKey")
        }
      }
      // a well-formed key of an item that does not exist: no lookup, no record
      const missing = yield* post("/api/cache/refresh", { key: "explorer:item:v1:99" }, bearer)
      expect(missing.status).toBe(404)
      expect(missing.json.error.code).toBe("NotFound")
      expect(ledger.state.byName.get("itemInfo") ?? 0).toBe(1)
      expect((yield* getJson("/api/cache?count=200")).json.keys.map((k: { key: string }) => k.key)).not.toContain("explorer:item:v1:99")

      const bad: ReadonlyArray<unknown> = ["not json", "{}", JSON.stringify({ key: 5 }), JSON.stringify({ key: "" }), JSON.stringify({ key: "x".repeat(20_000) })]
      for (const body of bad) {
        const r = yield* post("/api/cache/invalidate", body, bearer)
        expect(r.status, String(body).slice(0, 40)).toBe(400)
        expect(r.json.error.code).toBe("BadRequest")
      }
      expect((yield* post("/api/cache/invalidate-tag", { key: "items" }, bearer)).status).toBe(400)
      // past the body limit the server stops reading: a refusal or a closed connection, never an action
      const huge = yield* Effect.either(post("/api/cache/invalidate", JSON.stringify({ key: "y".repeat(200_000) }), bearer))
      if (huge._tag === "Right") expect(huge.right.status).toBeGreaterThanOrEqual(400)
    }).pipe(Effect.provide(server(ledger.layer, { ADMIN_TOKEN: token })))
  })

  it("compares tokens by digest, so a token of another length is refused in the same way", () => {
    const secret = Redacted.make(token)
    expect(Admin.tokenMatches(token, secret)).toBe(true)
    for (const given of ["", token.slice(1), `${token}${token}`, token.replace(/.$/, "x"), "x".repeat(10_000)]) {
      expect(Admin.tokenMatches(given, secret)).toBe(false)
    }
  })

  it("ADMIN_TOKEN is at least 16 characters; empty is the same as unset", () => {
    const short = Either.try(() => settings({ ADMIN_TOKEN: "too-short" }))
    expect(Either.isLeft(short)).toBe(true)
    expect(String(Either.isLeft(short) ? short.left : "")).toContain(`ADMIN_TOKEN must be at least ${Config.minTokenLength} characters`)
    expect(settings({ ADMIN_TOKEN: "" }).adminToken._tag).toBe("None")
    expect(settings({}).adminToken._tag).toBe("None")
    expect(settings({ ADMIN_TOKEN: token }).adminToken._tag).toBe("Some")
    // the token is redacted wherever the settings are printed
    expect(JSON.stringify(settings({ ADMIN_TOKEN: token }))).not.toContain(token)
    // a token with whitespace could never match `Bearer (\S+)`: refused at start-up, not 401 for ever
    for (const spaced of [`${token} `, ` ${token}`, `${token}\n`, token.replace("-", " ")]) {
      expect(() => settings({ ADMIN_TOKEN: spaced })).toThrow(/ADMIN_TOKEN must not contain whitespace/)
    }
    // and DRILL_RETAIN cannot be shorter than a drill-down window (10 s in these tests)
    expect(() => settings({ DRILL_RETAIN: "1 second" })).toThrow(/DRILL_RETAIN must be at least/)
  })
})
