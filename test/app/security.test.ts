/**
 * The security headers on every kind of response the explorer writes (pages, JSON twins,
 * drill-down pages, 404s of both kinds, 400, 401, 403, 405, 503 and 500 answers, `/healthz`,
 * `/metrics`, `/favicon.ico`, the inspector), and a Content-Security-Policy that allows exactly
 * the inline blocks the pages have, by hash.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as Security from "../../app/Security.js"
import * as Fixture from "./fixture.js"
import { get, post, server, switchable } from "./support.js"

const token = "security-test-token-5d2f8a61"

const expectHeaders = (what: string, headers: Record<string, string | undefined>) => {
  const csp = headers["content-security-policy"] ?? ""
  expect(csp, what).toBe(Security.contentSecurityPolicy)
  expect(csp, what).toContain("frame-ancestors 'none'")
  expect(csp, what).toContain("default-src 'none'")
  expect(csp, what).not.toContain("unsafe-inline")
  expect(csp, what).not.toContain("unsafe-eval")
  expect(headers["x-content-type-options"], what).toBe("nosniff")
  expect(headers["referrer-policy"], what).toBe("no-referrer")
  expect(headers["x-frame-options"], what).toBe("DENY")
}

/** The `'sha256-…'` source of each inline `<script>` (not the JSON data blocks) and `<style>`. */
const inlineHashes = (body: string) => {
  const hash = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`
  return {
    scripts: [...body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => hash(m[1]!)),
    styles: [...body.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => hash(m[1]!)),
    inlineHandlers: [...body.matchAll(/\son[a-z]+\s*=/g)].length,
    styleAttributes: [...body.matchAll(/\sstyle\s*=/g)].length
  }
}

describe("security headers", () => {
  it.scoped("are on every response: pages, JSON, drill-down pages, errors and 404s, probes and the inspector", () => {
    const ledger = switchable(Fixture.drillData)
    return Effect.gen(function*() {
      const gets = [
        ["/", 200],
        ["/api/dashboard", 200],
        ["/market", 200],
        ["/market/items/1", 200],
        ["/api/market/items/1", 200],
        ["/chestshop/shops/2", 200],
        ["/api/accounts/1", 200],
        ["/market/items/007", 404],
        ["/api/accounts/99", 404],
        ["/no/such/page", 404],
        ["/healthz", 200],
        ["/metrics", 200],
        ["/favicon.ico", 204],
        ["/cache", 200],
        ["/api/cache", 200],
        ["/api/cache?count=0", 400],
        ["/api/cache/invalidate", 405]
      ] as const
      for (const [path, status] of gets) {
        const r = yield* get(path)
        expect(r.status, path).toBe(status)
        expectHeaders(path, r.headers)
      }
      const posts = [
        ["/api/cache/invalidate", {}, 401],
        ["/api/cache/refresh", { authorization: `Bearer ${token}` }, 400],
        ["/market", {}, 404],
        ["/nope", {}, 404]
      ] as const
      for (const [path, headers, status] of posts) {
        const r = yield* post(path, "{}", headers)
        expect(r.status, `POST ${path}`).toBe(status)
        expectHeaders(`POST ${path}`, r.headers)
      }
      // a cold page while the database is down (503) and a bug (500)
      ledger.state.failing = "unavailable"
      const down = yield* get("/api/accounts/4")
      expect(down.status).toBe(503)
      expectHeaders("503", down.headers)
      ledger.state.failing = "defect"
      const bug = yield* get("/chestshop/shops/1")
      expect(bug.status).toBe(500)
      expectHeaders("500", bug.headers)
    }).pipe(Effect.provide(server(ledger.layer, { ADMIN_TOKEN: token })))
  })

  it.scoped("403 answers carry them too", () =>
    Effect.gen(function*() {
      const r = yield* post("/api/cache/invalidate-tag", { tag: "x" })
      expect(r.status).toBe(403)
      expectHeaders("403", r.headers)
    }).pipe(Effect.provide(server(switchable().layer))))

  it.scoped("the policy allows exactly the pages' inline script and style blocks, by hash, and they have no inline handlers", () =>
    Effect.gen(function*() {
      const csp = Security.contentSecurityPolicy
      const used = new Set<string>()
      for (const path of ["/", "/market/items/1", "/accounts/1", "/cache", "/no/such/page"]) {
        const body = (yield* get(path)).body
        const found = inlineHashes(body)
        expect(found.styles, path).toHaveLength(1)
        for (const h of [...found.scripts, ...found.styles]) {
          expect(csp, `${path}: ${h}`).toContain(h)
          used.add(h)
        }
        expect(found.inlineHandlers, path).toBe(0)
        expect(found.styleAttributes, path).toBe(0)
      }
      // the refresh script (pages), the admin script (inspector) and the style sheet: all in use
      expect(used.size).toBe(3)
      expect([...csp.matchAll(/'sha256-/g)]).toHaveLength(3)
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer, { ADMIN_TOKEN: token }))))
})
