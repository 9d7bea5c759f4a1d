/**
 * The documents' examples are files of the project, quoted verbatim: `examples/*.ts` (run here as
 * written, or type-checked where they need a server) and `test/readme-*.test.ts` (run as part of
 * the suite). This holds for README.md, CONTRIBUTING.md and every docs/*.md; their shell blocks
 * name only scripts and files that exist.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, Layer, Option, Schema, TestClock } from "effect"
import * as Testing from "lockstep/testing"
import { Memo, Redis } from "lockstep"
import * as Fs from "node:fs"
import * as Path from "node:path"
import ts from "typescript"
import * as Batch from "../examples/batch.js"
import * as HttpApi from "../examples/http-api.js"
import * as Invalidation from "../examples/invalidation.js"
import * as ItemPage from "../examples/item-page.js"
import * as ManagedRuntimeExample from "../examples/managed-runtime.js"
import * as MetricsExample from "../examples/metrics.js"
import { CacheLive, program } from "../examples/page-loader.js"
import { freePort } from "./support/services.js"

const root = new URL("../", import.meta.url)

const documents = [
  "README.md",
  "CONTRIBUTING.md",
  ...Fs.readdirSync(new URL("docs/", root)).filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`)
]

/** The fenced blocks of a Markdown text, with their language. */
const blocks = (markdown: string) =>
  Array.from(markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm), (match) => ({ lang: match[1]!, body: match[2]! }))

/** The files of examples/ and test/ whose whole text a TypeScript block is. */
const quotedFile = (body: string) =>
  ["examples", "test"].flatMap((dir) =>
    Fs.readdirSync(new URL(`${dir}/`, root)).filter((name) => name.endsWith(".ts")).map((name) => `${dir}/${name}`)
  ).find((file) => Fs.readFileSync(new URL(file, root), "utf8") === body)

describe("documents", () => {
  const pkg = JSON.parse(Fs.readFileSync(new URL("package.json", root), "utf8")) as { scripts: Record<string, string> }

  it.each(documents)("%s: every TypeScript block is a file of examples/ or test/, quoted whole", (document) => {
    const markdown = Fs.readFileSync(new URL(document, root), "utf8")
    for (const block of blocks(markdown)) {
      if (block.lang !== "ts" && block.lang !== "typescript") continue
      expect(quotedFile(block.body), `a block of ${document} that no file holds:\n${block.body.slice(0, 200)}`).toBeDefined()
    }
  })

  it.each(documents)("%s: every shell line names a script or a file that exists", (document) => {
    const markdown = Fs.readFileSync(new URL(document, root), "utf8")
    for (const block of blocks(markdown)) {
      if (block.lang !== "sh" && block.lang !== "bash") continue
      for (const line of block.body.split("\n")) {
        for (const match of line.matchAll(/npm run (\S+)/g)) expect(Object.keys(pkg.scripts), line).toContain(match[1])
        for (const match of line.matchAll(/npx (?:tsx|vitest run) (\S+\.ts)/g)) {
          expect(Fs.existsSync(new URL(match[1]!, root)), line).toBe(true)
        }
      }
    }
  })

  it.each(documents)("%s: every relative link reaches a file", (document) => {
    const markdown = Fs.readFileSync(new URL(document, root), "utf8")
    for (const match of markdown.matchAll(/\]\(([^)#:\s]+)(?:#[^)]*)?\)/g)) {
      expect(Fs.existsSync(new URL(match[1]!, new URL(document, root))), `${document}: ${match[0]}`).toBe(true)
    }
  })

  it("every quoted file type-checks", () => {
    const quoted = new Set(
      documents.flatMap((document) =>
        blocks(Fs.readFileSync(new URL(document, root), "utf8")).flatMap((block) => quotedFile(block.body) ?? [])
      )
    )
    expect(quoted.size).toBeGreaterThan(0)
    const rootPath = Path.resolve(new URL(".", root).pathname)
    const config = ts.getParsedCommandLineOfConfigFile(Path.join(rootPath, "tsconfig.json"), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: () => {}
    })!
    const program = ts.createProgram([...quoted].map((file) => Path.join(rootPath, file)), config.options)
    const diagnostics = ts.getPreEmitDiagnostics(program).map((diagnostic) =>
      ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n") +
      (diagnostic.file ? ` (${Path.relative(rootPath, diagnostic.file.fileName)})` : "")
    )
    expect(diagnostics).toEqual([])
  }, 120_000)
})

describe("README", () => {
  // the guide's examples, each quoted whole by the README or by the docs page its details moved to
  const quoted = [
    ["README.md", "examples/page-loader.ts"],
    ["README.md", "examples/item-page.ts"],
    ["README.md", "examples/invalidation.ts"],
    ["docs/batch.md", "examples/batch.ts"],
    ["README.md", "examples/http-api.ts"],
    ["README.md", "examples/managed-runtime.ts"],
    ["docs/configuration.md", "examples/from-client.ts"],
    ["README.md", "examples/metrics.ts"],
    ["README.md", "test/readme-example.test.ts"],
    ["docs/testing.md", "test/readme-fleet.test.ts"]
  ]

  it.each(quoted)("%s quotes %s verbatim", (document, file) => {
    const markdown = Fs.readFileSync(new URL(document, root), "utf8")
    expect(markdown.includes("```ts\n" + Fs.readFileSync(new URL(file, root), "utf8") + "```")).toBe(true)
  })

  it.effect("runs the page loader: a cold miss, then hits within the window", () =>
    Effect.gen(function*() {
      const first = yield* Effect.fork(program)
      yield* TestClock.adjust("200 millis")
      const info = yield* Fiber.join(first)
      expect(info).toMatchObject({ value: { volume: 1_250_000, activeAccounts: 4_210 }, cache: "miss", stale: false })
      expect(info.nextBoundary).toBe(60_000)
      expect(yield* program).toMatchObject({ cache: "hit", computedAt: 200 })
    }).pipe(Effect.provide(CacheLive)))

  it.effect("the page loader's closing comment: one layer for three requests is miss, hit, hit; a layer per request misses every time", () =>
    Effect.gen(function*() {
      const shared = yield* Effect.fork(Effect.provide(Effect.replicateEffect(program, 3), CacheLive))
      yield* TestClock.adjust("200 millis")
      expect((yield* Fiber.join(shared)).map((info) => info.cache)).toEqual(["miss", "hit", "hit"])

      const perRequest = yield* Effect.fork(Effect.replicateEffect(Effect.provide(program, CacheLive), 3))
      for (let i = 0; i < 3; i++) yield* TestClock.adjust("200 millis")
      expect((yield* Fiber.join(perRequest)).map((info) => info.cache)).toEqual(["miss", "miss", "miss"])
    }))

  it.effect("runs the keyed item page: cold miss, hits with their headers, peek, keepWarm, a tag invalidation", () =>
    Effect.gen(function*() {
      const item7 = { id: 7, trades: 21, volume: 700 }
      // nothing held: peek answers None and runs no lookup
      expect(yield* ItemPage.lastKnown(7)).toEqual(Option.none())

      // cold: the request waits for the lookup (100 ms); keepWarm computes item 1 meanwhile
      const first = yield* Effect.fork(ItemPage.handle(7))
      yield* TestClock.adjust("100 millis")
      const cold = yield* Fiber.join(first)
      expect(cold.body).toEqual(item7)
      expect(cold.headers).toEqual({
        "cache-control": "public, max-age=59, stale-while-revalidate=60",
        "age": "0",
        "x-cache": "miss",
        "x-server-now": "100",
        "x-next-boundary": "60000",
        "x-computed-at": "100",
        "x-next-value-at": "60100" // not kept warm: the boundary plus its run time
      })
      expect((yield* Testing.instantly(ItemPage.handle(7))).headers["x-cache"]).toBe("hit")
      expect(yield* Testing.instantly(ItemPage.itemPage.get(7))).toEqual(item7)
      expect(yield* ItemPage.lastKnown(7)).toEqual(Option.some(item7))
      expect((yield* Testing.instantly(ItemPage.handle(1))).headers["x-cache"]).toBe("hit")

      // next window: item 1 was computed before the boundary (its lead: a 100 ms run plus 250 ms),
      // item 7 is stale until its refresh
      yield* TestClock.adjust("60100 millis") // now 60 200
      const warm = yield* Testing.instantly(ItemPage.handle(1))
      expect(warm.headers).toMatchObject({ "x-cache": "hit", "x-computed-at": "59750", "x-next-value-at": "120000" })
      const stale = yield* Testing.instantly(ItemPage.handle(7))
      expect(stale.headers).toMatchObject({ "x-cache": "stale", "cache-control": "public, max-age=0, stale-while-revalidate=60" })
      yield* TestClock.adjust("100 millis")
      expect((yield* Testing.instantly(ItemPage.handle(7))).headers["x-cache"]).toBe("hit")

      // a tag reaches every key it was given to; the last value stays, marked stale
      expect(yield* Memo.invalidateTag("items")).toBe(2)
      expect((yield* Testing.instantly(ItemPage.handle(7))).headers["x-cache"]).toBe("stale")
      expect(Option.map(yield* ItemPage.itemPage.peek(1), (info) => info.stale)).toEqual(Option.some(true))
      yield* TestClock.adjust("100 millis")
      expect((yield* Testing.instantly(ItemPage.handle(7))).headers["x-cache"]).toBe("hit")
    }).pipe(Effect.provide(ItemPage.AppLive)))

  it.effect("runs the invalidation example: a fixed key's invalidate, set, refresh and tag, seen by Memo.memo too", () =>
    Effect.gen(function*() {
      const Dashboard = Schema.Struct({ volume: Schema.Number })
      // the same key, window, schema and producer as the example's loader
      const aggregate = Effect.succeed({ volume: 1_250_000 }).pipe(Effect.delay("200 millis"))
      const memo = Memo.memoWithInfo({ key: "dashboard", window: "1 minute", schema: Dashboard }, aggregate)
      const first = yield* Effect.fork(Invalidation.dashboard.get())
      yield* TestClock.adjust("200 millis")
      expect(yield* Fiber.join(first)).toEqual({ volume: 1_250_000 })
      expect(yield* Testing.instantly(memo)).toMatchObject({ value: { volume: 1_250_000 }, cache: "hit" })

      // invalidated: the last value at once, stale, then one recompute
      yield* Invalidation.afterWrite
      expect(yield* Testing.instantly(memo)).toMatchObject({ value: { volume: 1_250_000 }, cache: "stale", stale: true })
      yield* TestClock.adjust("200 millis")
      expect(yield* Testing.instantly(memo)).toMatchObject({ value: { volume: 1_250_000 }, cache: "hit", computedAt: 400 })

      // set: this window's value at once, everywhere
      expect(yield* Invalidation.publish(7)).toMatchObject({ value: { volume: 7 }, cache: "hit", stale: false })
      expect(yield* Testing.instantly(memo)).toMatchObject({ value: { volume: 7 }, cache: "hit" })

      // refresh: recomputed now, the new value answered
      const refreshed = yield* Effect.fork(Invalidation.refreshNow)
      yield* TestClock.adjust("200 millis")
      expect(yield* Fiber.join(refreshed)).toMatchObject({ value: { volume: 1_250_000 }, stale: false, computedAt: 600 })

      // the tag reaches the key
      expect(yield* Invalidation.afterDeploy).toBe(1)
      expect(yield* Testing.instantly(memo)).toMatchObject({ cache: "stale" })
    }).pipe(Effect.provide(Memo.layer.pipe(Layer.provide(Redis.layerMemory)))))

  it.effect("runs the batch example: one lookupMany for a cold list page, unchanged once nothing changed, purge", () =>
    Effect.gen(function*() {
      const rows = yield* Batch.marketPage
      expect(rows).toHaveLength(200)
      expect(rows[41]).toEqual({ id: 42, trades: 420 })
      expect(Batch.queries).toEqual({ one: 0, many: 2 }) // two batches of 100
      expect((yield* Testing.instantly(Batch.items.getManyWithInfo([1, 2]))).map((i) => i.cache)).toEqual(["hit", "hit"])
      // next window: computedAt 0 is not after the last trade (0), so it runs; the one after, unchanged
      yield* TestClock.adjust("1 minute")
      yield* Batch.items.get(1)
      yield* TestClock.adjust("1 millis")
      expect(Batch.queries.one).toBe(1)
      yield* TestClock.adjust("1 minute")
      yield* Batch.items.get(1)
      yield* TestClock.adjust("1 millis")
      expect(Batch.queries.one).toBe(1)
      expect(yield* Testing.instantly(Batch.items.getWithInfo(1))).toMatchObject({ value: { id: 1, trades: 10 }, cache: "hit", bucket: 2 })
      // purge: gone, the next request cold
      yield* Batch.afterDelete(1)
      expect(yield* Batch.items.peek(1)).toEqual(Option.none())
      expect(yield* Batch.afterReset).toBe(200)
      expect(yield* Batch.items.peek(2)).toEqual(Option.none())
    }).pipe(Effect.provide(Memo.layer.pipe(Layer.provide(Redis.layerMemory)))))

  it.live("runs the HttpApi example: the first request computes, the next one is a hit, with the cache's headers", () =>
    Effect.gen(function*() {
      const first = yield* HttpClient.get("/api/dashboard")
      expect(first.status).toBe(200)
      expect(yield* first.json).toEqual({ volume: 1_250_000, activeAccounts: 4_210 })
      expect(first.headers["x-cache"]).toBe("miss")
      const second = yield* HttpClient.get("/api/dashboard")
      expect(second.headers["x-cache"]).toBe("hit")
      expect(second.headers["cache-control"]).toMatch(/^public, max-age=\d+, stale-while-revalidate=60$/)
      expect(second.headers["age"]).toMatch(/^\d+$/)
      expect(second.headers["x-next-boundary"]).toMatch(/^\d+$/)
    }).pipe(
      Effect.provide(
        HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApi.ApiLive),
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provide(HttpApi.CacheLive)
        )
      )
    ))

  it.scopedLive("the HttpApi example's server listens only once its cache is built (Redis down: after connectTimeout)", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const redisPort = yield* Effect.promise(freePort) // nothing listens: the cache waits connectTimeout
      const env = ConfigProvider.fromMap(new Map([["REDIS_HOST", "127.0.0.1"], ["REDIS_PORT", String(redisPort)]]))
      const started = performance.now()
      yield* Effect.forkScoped(Layer.launch(HttpApi.ServerLive(port)).pipe(Effect.withConfigProvider(env)))
      // while the cache is being built, the port refuses connections rather than hold them
      const refused: Array<string> = []
      let status = 0
      while (status === 0 && performance.now() - started < 10_000) {
        const r = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${port}/api/dashboard`, { signal: AbortSignal.timeout(5_000) }).then(
            (res) => ({ status: res.status, error: "" }),
            (e: unknown) => ({ status: 0, error: String((e as { cause?: { code?: string } }).cause?.code ?? e) })
          )
        )
        if (r.status === 0) refused.push(r.error)
        status = r.status
        if (status === 0) yield* Effect.sleep("100 millis")
      }
      expect(status).toBe(200)
      expect(refused.length).toBeGreaterThan(0)
      expect(new Set(refused)).toEqual(new Set(["ECONNREFUSED"]))
    }), 20_000)

  it.effect("runs the metrics example: /metrics has lockstep's metrics in the Prometheus format", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(program)
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(fiber)
      const response = yield* MetricsExample.metricsResponse
      expect(response.headers["content-type"]).toMatch(/^text\/plain/)
      const body = response.body._tag === "Uint8Array" ? new TextDecoder().decode(response.body.body) : ""
      expect(body).toMatch(/^lockstep_requests_total\{result="cold"\} \d+$/m)
      expect(body).toContain("# TYPE lockstep_producer_duration_seconds histogram")
    }).pipe(Effect.provide(CacheLive)))

  it.live("runs the ManagedRuntime example: three loader calls on one runtime are miss, hit, hit", () =>
    Effect.promise(async () => {
      try {
        const caches: Array<string | null> = []
        for (let i = 0; i < 3; i++) {
          const response = await ManagedRuntimeExample.loader()
          expect(await response.json()).toEqual({ volume: 1_250_000, activeAccounts: 4_210 })
          caches.push(response.headers.get("x-cache"))
        }
        expect(caches).toEqual(["miss", "hit", "hit"])
      } finally {
        await ManagedRuntimeExample.runtime.dispose()
      }
    }))
})
