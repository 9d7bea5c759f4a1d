/**
 * End to end in headless Chromium, in real time with a 2 s window: the dashboard refreshes
 * itself just after each window boundary (boundary + REFRESH_LAG on the server's clock), gets
 * the new window's value as a cache hit (the server kept it warm), swaps it in place and keeps
 * the scroll position.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { chromium } from "playwright-core"
import * as Ledger from "../../app/Ledger.js"
import { ensureBinary } from "../support/services.js"
import { fixtureLedger, server } from "./support.js"

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
      expect(history[i]).toMatchObject({ cache: "hit", bucket: initial.bucket + 1 + i, status: 200 })
      expect(responses[i]!.headers["x-cache"]).toBe("hit")
      expect(Number(responses[i]!.headers["x-next-boundary"])).toBe(boundary + windowMs)
      // it fired just after the boundary: at boundary + lag, on the server's clock
      const servedAt = Number(responses[i]!.headers["x-server-now"])
      expect(servedAt - boundary).toBeGreaterThanOrEqual(lagMs - 20)
      expect(servedAt - boundary).toBeLessThan(lagMs + 1_000)
      expect(history[i]!.computedAt).toBeGreaterThanOrEqual(boundary)
    }
    // swapped in place: the new value is on screen and the reader did not lose their place
    expect(Number(result.bucketShown)).toBeGreaterThanOrEqual(initial.bucket + 2)
    expect(result.scrollY).toBe(300)
  }).pipe(
    // the browser goes first, so no connection holds the server open when it closes
    Effect.scoped,
    Effect.provide(
      server(Layer.sync(Ledger.Ledger, fixtureLedger), {
        WINDOW: `${windowMs} millis`,
        KEEP_WARM: "dashboard",
        KEEP_WARM_LAG: "0 millis",
        REFRESH_LAG: `${lagMs} millis`,
        REFRESH_RETRY: "500 millis"
      })
    )
  ), 30_000)
