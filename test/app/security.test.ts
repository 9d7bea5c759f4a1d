/**
 * The security headers on every kind of response the explorer writes (pages, JSON twins,
 * drill-down pages, 404s of both kinds, 400, 401, 403, 405, 503 and 500 answers, `/healthz`,
 * `/metrics`, `/favicon.ico`, the inspector, the assets), and a Content-Security-Policy that
 * allows scripts and styles from this origin only: the pages have no inline script, style,
 * handler or style attribute, and their files are served under their content hashes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as Assets from "../../app/Assets.js"
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

/** What a page holds that a CSP must allow: inline blocks (JSON data blocks aside), handlers, style attributes, and the files it links. */
const scan = (body: string) => ({
  inlineScripts: [...body.matchAll(/<script>([\s\S]*?)<\/script>/g)].length,
  inlineStyles: [...body.matchAll(/<style[\s>]/g)].length,
  inlineHandlers: [...body.matchAll(/\son[a-z]+\s*=/g)].length,
  styleAttributes: [...body.matchAll(/\sstyle\s*=/g)].length,
  files: [...body.matchAll(/<(?:script src|link rel="stylesheet" href)="([^"]+)" integrity="([^"]+)"/g)].map((m) => ({ path: m[1]!, integrity: m[2]! }))
})

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
        [Assets.refreshScript.path, 200],
        ["/assets/refresh.0000000000000000.js", 404],
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

  it.scoped("the pages have nothing inline: their script and style sheet are files under their content hashes, cached for a year", () =>
    Effect.gen(function*() {
      const csp = Security.contentSecurityPolicy
      expect(csp).toContain("script-src 'self'")
      expect(csp).toContain("style-src 'self'")
      expect(csp).not.toContain("'sha256-")
      const used = new Set<string>()
      for (const path of ["/", "/market/items/1", "/accounts/1", "/cache", "/no/such/page"]) {
        const found = scan((yield* get(path)).body)
        expect(found, path).toMatchObject({ inlineScripts: 0, inlineStyles: 0, inlineHandlers: 0, styleAttributes: 0 })
        expect(found.files.filter((f) => f.path.endsWith(".css")), path).toHaveLength(1)
        for (const file of found.files) {
          used.add(file.path)
          const served = yield* get(file.path)
          expect(served.status, file.path).toBe(200)
          expect(served.headers["cache-control"], file.path).toBe("public, max-age=31536000, immutable")
          expect(served.headers["content-type"], file.path).toMatch(file.path.endsWith(".css") ? /^text\/css/ : /^text\/javascript/)
          expectHeaders(file.path, served.headers)
          // the URL names the content: its hash, and the tag's integrity, are the served body's
          const digest = createHash("sha256").update(served.body, "utf8").digest()
          expect(file.path, file.path).toContain(`.${digest.toString("hex").slice(0, 16)}.`)
          expect(file.integrity, file.path).toBe(`sha256-${digest.toString("base64")}`)
        }
      }
      // the refresh script (pages), the admin script (inspector) and the style sheet: all in use
      expect([...used].sort()).toEqual(Assets.all.map((a) => a.path).sort())
    }).pipe(Effect.provide(server(switchable(Fixture.drillData).layer, { ADMIN_TOKEN: token }))))
})
