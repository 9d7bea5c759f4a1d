/**
 * `npm run screenshots`: the README's pictures, taken by headless Chromium (Debian's
 * `chromium`, or `CHROMIUM=/path`) from an explorer served in this process on the embedded
 * defaults: the in-memory store and the synthetic ledger (seed 42, 890 000 rows, ending
 * 2025-01-31, so every run shows the same numbers). Writes `docs/screenshots/dashboard.png`,
 * `item.png` and `inspector.png`.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import { createServer } from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { chromium } from "playwright-core"
import * as Http from "./Http.js"

const outDir = new URL("../docs/screenshots/", import.meta.url)

const settings = new Map([
  ["LEDGER_SEED", "42"],
  ["LEDGER_ROWS", "890000"],
  ["LEDGER_END", "2025-01-31"],
  ["WINDOW", "30 seconds"],
  ["KEEP_WARM", "dashboard,market"],
  // a token, so that the inspector shows its admin buttons; it is used for nothing else
  ["ADMIN_TOKEN", "screenshots-only-token-0000"]
])

const chromiumPath = (): string => {
  const given = process.env.CHROMIUM
  if (given !== undefined && given !== "") return given
  try {
    return execFileSync("which", ["chromium"], { encoding: "utf8" }).trim()
  } catch {
    throw new Error("chromium is not installed (Debian: apt-get install chromium), or set CHROMIUM=/path/to/chromium")
  }
}

const shots: ReadonlyArray<{ readonly file: string; readonly path: string; readonly height: number }> = [
  { file: "dashboard.png", path: "/", height: 980 },
  { file: "item.png", path: "/market/items/1", height: 1_060 },
  { file: "inspector.png", path: "/cache", height: 760 }
]

const take = (base: string) =>
  Effect.promise(async () => {
    const executablePath = chromiumPath()
    const userDataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "lockstep-screenshots-"))
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      viewport: { width: 1_280, height: 900 },
      deviceScaleFactor: 1,
      colorScheme: "light",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
    })
    try {
      const page = context.pages()[0] ?? (await context.newPage())
      // a few pages first, so that the inspector has keys of every kind to show
      for (const path of ["/market", "/chestshop", "/market/items/1", "/market/items/5", "/chestshop/shops/1", "/accounts/1", "/accounts/2"]) {
        const response = await page.goto(`${base}${path}`)
        if (response?.status() !== 200) throw new Error(`${path} answered ${response?.status()}`)
      }
      Fs.mkdirSync(outDir, { recursive: true })
      const written: Array<string> = []
      for (const shot of shots) {
        await page.setViewportSize({ width: 1_280, height: shot.height })
        await page.goto(`${base}${shot.path}`)
        const file = new URL(shot.file, outDir)
        await page.screenshot({ path: file.pathname, fullPage: false })
        written.push(`${Path.relative(process.cwd(), file.pathname)} (${Fs.statSync(file).size} bytes)`)
      }
      return written
    } finally {
      await context.close().catch(() => undefined)
      Fs.rmSync(userDataDir, { recursive: true, force: true })
    }
  })

const program = Effect.gen(function*() {
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  const written = yield* take(`http://127.0.0.1:${address.port}`)
  for (const line of written) yield* Effect.log(`wrote ${line}`)
})

const server = Http.serve.pipe(
  Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
  Layer.provide(Http.Services)
)

program.pipe(
  Effect.provide(server),
  Effect.withConfigProvider(ConfigProvider.fromMap(settings)),
  NodeRuntime.runMain
)
