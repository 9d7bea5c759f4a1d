/**
 * End to end in headless Chromium, in real time:
 * - with a 2 s window and a slow ledger (a dashboard run takes 600 ms), the dashboard refreshes
 *   itself just after each window boundary (boundary + REFRESH_LAG on the server's clock), gets
 *   the new window's value as a cache hit (the server computed it before the boundary), with no
 *   retry, swaps it in place and keeps the scroll position;
 * - an item page, its key invalidated from the cache inspector's admin button: the page shows
 *   the new value at its next automatic refresh, without a reload;
 * - no page reports a Content-Security-Policy violation, and an injected inline script is
 *   blocked (so the listener would have seen one).
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { chromium } from "playwright-core"
import { ensureBinary } from "../support/services.js"
import * as Fixture from "./fixture.js"
import { fixtureLedger, server, slowed, switchable } from "./support.js"

const windowMs = 2_000
const lagMs = 250

interface Refresh {
  readonly cache: string | null
  readonly bucket: number
  readonly computedAt: number
  readonly requestedAt: number
  readonly status: number
}

const browser = Effect.acquireRelease(
  Effect.promise(async () => {
    const executablePath = ensureBinary("chromium", "chromium")
    const userDataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "lockstep-chromium-"))
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      viewport: { width: 1000, height: 500 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
    return { context, userDataDir }
  }),
  ({ context, userDataDir }) =>
    Effect.promise(async () => {
      await context.close().catch(() => undefined)
      Fs.rmSync(userDataDir, { recursive: true, force: true })
    })
)

it.live("the page refreshes just after each window boundary and receives the new window as a hit", () =>
  Effect.gen(function*() {
    const address = (yield* HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    const base = `http://127.0.0.1:${address.port}`
    const { context } = yield* browser

    const result = yield* Effect.promise(async () => {
      const page = context.pages()[0] ?? (await context.newPage())
      const refreshes: Array<Promise<{ status: number; headers: Record<string, string> }>> = []
      page.on("response", (response) => {
        if (response.request().headers()["x-lockstep-refresh"] === "1") {
          refreshes.push(response.allHeaders().then((headers) => ({ status: response.status(), headers })))
        }
      })
      // past start-up: keep-warm has measured a run and computes each window ahead from now on
      await new Promise((resolve) => setTimeout(resolve, windowMs + 100))
      await page.goto(`${base}/`)
      const initial = JSON.parse((await page.textContent("#lockstep-meta"))!) as { bucket: number; nextBoundary: number }
      await page.evaluate(() => (globalThis as any).scrollTo(0, 300))
      await page.waitForFunction(() => ((globalThis as any).__lockstep?.refreshes ?? 0) >= 2, undefined, { timeout: 4 * windowMs + 2_000 })
      const history = (await page.evaluate(() => (globalThis as any).__lockstep.history)) as Array<Refresh>
      const scrollY = (await page.evaluate(() => (globalThis as any).scrollY)) as number
      const bucketShown = await page.getAttribute("main", "data-bucket")
      const responses = await Promise.all(refreshes)
      return { initial, history, scrollY, bucketShown, responses }
    })

    const { initial, history, responses } = result
    expect(history.length).toBeGreaterThanOrEqual(2)
    expect(responses.length).toBeGreaterThanOrEqual(2)
    for (let i = 0; i < 2; i++) {
      const boundary = initial.nextBoundary + i * windowMs
      // the new window's value, already computed by keep-warm: a hit, not a stale value or a miss
      expect(history[i]).toMatchObject({ cache: "hit", bucket: boundary / windowMs, status: 200 })
      expect(responses[i]!.headers["x-cache"]).toBe("hit")
      expect(Number(responses[i]!.headers["x-next-boundary"])).toBe(boundary + windowMs)
      // it fired just after the boundary: at boundary + lag, on the server's clock
      const servedAt = Number(responses[i]!.headers["x-server-now"])
      expect(servedAt - boundary).toBeGreaterThanOrEqual(lagMs - 20)
      expect(servedAt - boundary).toBeLessThan(lagMs + 1_000)
      // computed before its window opened (a run takes 600 ms): ready when the refresh came
      expect(history[i]!.computedAt).toBeLessThan(boundary)
      expect(Number(responses[i]!.headers["x-next-value-at"])).toBe(boundary + windowMs)
    }
    // no refresh landed on a stale value, so none was retried: one refresh per window
    expect(history.every((h) => h.cache === "hit")).toBe(true)
    expect(history.map((h) => h.bucket)).toEqual(history.map((_, i) => initial.nextBoundary / windowMs + i))
    // swapped in place: the new value is on screen and the reader did not lose their place
    expect(Number(result.bucketShown)).toBeGreaterThanOrEqual(initial.nextBoundary / windowMs + 1)
    expect(result.scrollY).toBe(300)
  }).pipe(
    // the browser goes first, so no connection holds the server open when it closes
    Effect.scoped,
    Effect.provide(
      // a slow database: 300 ms a query, 600 ms a dashboard run
      server(slowed(fixtureLedger(), 300, "span").layer, {
        WINDOW: `${windowMs} millis`,
        KEEP_WARM: "dashboard",
        KEEP_WARM_LAG: "0 millis",
        REFRESH_LAG: `${lagMs} millis`,
        REFRESH_RETRY: "500 millis"
      })
    )
  ), 30_000)

const adminToken = "browser-test-admin-token-e41d"

/** Records CSP violations (and CSP console errors) of every page of the context, before any page script runs. */
const watchCsp = `
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    window.__csp.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample });
  });
`

/** The value of the card labelled `label`, in the page. */
const cardValue = (label: string) =>
  [...(globalThis as any).document.querySelectorAll(".card")].find((c: any) => c.querySelector(".label")?.textContent === label)
    ?.querySelector(".value")?.textContent as string | undefined

it.live("an item page shows the new value at its next refresh after its key is invalidated from the inspector", () => {
  const itemWindowMs = 4_000
  const ledger = switchable(Fixture.drillData)
  return Effect.gen(function*() {
    const address = (yield* HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    const base = `http://127.0.0.1:${address.port}`
    const { context } = yield* browser

    const result = yield* Effect.promise(async () => {
      await context.addInitScript(watchCsp)
      const consoleCsp: Array<string> = []
      const listen = (page: import("playwright-core").Page) =>
        page.on("console", (m) => {
          if (/Content.Security.Policy/i.test(m.text())) consoleCsp.push(m.text())
        })
      const reader = context.pages()[0] ?? (await context.newPage())
      listen(reader)
      await reader.goto(`${base}/market/items/1`)
      const before = await reader.evaluate(cardValue, "Trades")
      await reader.evaluate(() => ((globalThis as any).__marker = "no reload"))

      // the admin's tab: the inspector, with the token typed in
      const admin = await context.newPage()
      listen(admin)
      await admin.goto(`${base}/cache`)
      await admin.fill("#admin-token", adminToken)

      // once the reader's page has refreshed itself to a fresh value (a hit), most of a window is left
      await reader.waitForFunction(
        () => ((globalThis as any).__lockstep?.history ?? []).some((h: Refresh) => h.cache === "hit"),
        undefined,
        { timeout: 3 * itemWindowMs }
      )
      const aligned = (await reader.evaluate(() => (globalThis as any).__lockstep.history.find((h: Refresh) => h.cache === "hit"))) as Refresh
      const refreshesBefore = (await reader.evaluate(() => (globalThis as any).__lockstep.refreshes)) as number
      // the database changes (a sixth Diamond trade), then the admin invalidates the key
      ledger.state.use({
        ...Fixture.drillData,
        rows: [...Fixture.drillData.rows, { ts: "2024-03-12T10:00:00", kind: "market_trade", from: 4, to: 5, item: 1, quantity: 1, unitPriceCents: 6_000, amountCents: 6_000 }]
      })
      await admin.click(`button[data-action="invalidate"][data-key="explorer:item:v1:1"]`)
      await admin.waitForFunction(() => (globalThis as any).__lockstepAdmin?.actions === 1, undefined, { timeout: 5_000 })
      const adminMessage = await admin.textContent("#admin-result")
      await admin.waitForFunction(() =>
        [...(globalThis as any).document.querySelectorAll("#inspector-table tr")].some((tr: any) =>
          tr.textContent.includes("explorer:item:v1:1") && tr.querySelector(".state-invalidated") !== null
        ), undefined, { timeout: 5_000 })
      // another reader arrives: served the last value at once, which starts the one recompute
      const other = await fetch(`${base}/api/market/items/1`)
      const otherJson = (await other.json()) as { data: { trades: number }; meta: { serverNow: number } }

      // the reader's page, untouched: at its next refresh it shows six trades
      await reader.waitForFunction((label: string) => {
        const card = [...(globalThis as any).document.querySelectorAll(".card")].find((c: any) => c.querySelector(".label")?.textContent === label)
        return card?.querySelector(".value")?.textContent === "6"
      }, "Trades", { timeout: 2 * itemWindowMs, polling: 50 })
      const state = (await reader.evaluate(() => {
        const s = (globalThis as any).__lockstep
        return {
          refreshes: s.refreshes,
          history: s.history,
          marker: (globalThis as any).__marker,
          navigations: (globalThis as any).performance.getEntriesByType("navigation").length
        }
      })) as { refreshes: number; history: Array<Refresh>; marker: string; navigations: number }

      const violations = { reader: await reader.evaluate(() => (globalThis as any).__csp), admin: await admin.evaluate(() => (globalThis as any).__csp) }
      const pageConsole = [...consoleCsp]
      // the control: an inline script injected into a page is blocked and reported
      const control = await context.newPage()
      await control.goto(`${base}/market`)
      await control.evaluate(() => {
        const s = (globalThis as any).document.createElement("script")
        s.textContent = "window.__injected = true"
        ;(globalThis as any).document.body.appendChild(s)
      })
      await control.waitForFunction(() => (globalThis as any).__csp.length > 0, undefined, { timeout: 5_000 })
      const controlResult = await control.evaluate(() => ({ injected: (globalThis as any).__injected === true, csp: (globalThis as any).__csp }))
      return {
        before,
        aligned,
        refreshesBefore,
        adminMessage,
        other: { cache: other.headers.get("x-cache"), trades: otherJson.data.trades, at: otherJson.meta.serverNow },
        state,
        violations,
        pageConsole,
        controlResult
      }
    })

    expect(result.before).toBe("5")
    expect(result.adminMessage).toBe("invalidated explorer:item:v1:1")
    // the last-known-good value, at once
    expect(result.other).toMatchObject({ cache: "stale", trades: 5 })
    // six trades on screen after exactly one more refresh, with no reload
    expect(result.state.refreshes).toBe(result.refreshesBefore + 1)
    expect(result.state.marker).toBe("no reload")
    expect(result.state.navigations).toBe(1)
    // the value shown is the recompute the invalidation led to, in the window of the invalidation,
    // fetched at the page's own refresh time in the next window
    const shown = result.state.history[result.refreshesBefore]!
    expect(shown.status).toBe(200)
    expect(shown.computedAt).toBeGreaterThanOrEqual(result.other.at)
    expect(shown.bucket).toBe(result.aligned.bucket)
    expect(shown.requestedAt).toBeGreaterThanOrEqual((result.aligned.bucket + 1) * itemWindowMs)
    // no CSP violation on the item page or the inspector, and none in their consoles
    expect(result.violations).toEqual({ reader: [], admin: [] })
    expect(result.pageConsole).toEqual([])
    // while an injected inline script is refused and reported
    expect(result.controlResult.injected).toBe(false)
    expect(result.controlResult.csp[0]).toMatchObject({ directive: "script-src-elem", blocked: "inline" })
  }).pipe(
    Effect.scoped,
    Effect.provide(
      server(ledger.layer, {
        WINDOW: "30 seconds",
        WINDOW_ITEM: `${itemWindowMs} millis`,
        KEEP_WARM: "",
        REFRESH_LAG: "250 millis",
        REFRESH_RETRY: "500 millis",
        ADMIN_TOKEN: adminToken
      })
    )
  )
}, 40_000)
