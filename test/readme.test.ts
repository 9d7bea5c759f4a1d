/**
 * The README's examples are files of the project, quoted verbatim: `examples/*.ts` (run here as
 * written) and `test/readme-*.test.ts` (run as part of the suite).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, TestClock } from "effect"
import * as Fs from "node:fs"
import * as HttpApi from "../examples/http-api.js"
import * as ManagedRuntimeExample from "../examples/managed-runtime.js"
import { CacheLive, program } from "../examples/page-loader.js"

const root = new URL("../", import.meta.url)

describe("README", () => {
  const readme = Fs.readFileSync(new URL("README.md", root), "utf8")
  const quoted = [
    "examples/page-loader.ts",
    "examples/http-api.ts",
    "examples/managed-runtime.ts",
    "test/readme-example.test.ts",
    "test/readme-fleet.test.ts"
  ]

  it.each(quoted)("quotes %s verbatim", (file) => {
    expect(readme.includes("```ts\n" + Fs.readFileSync(new URL(file, root), "utf8") + "```")).toBe(true)
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

  it.live("runs the HttpApi example: the first request computes, the next one is a hit, with the cache's headers", () =>
    Effect.gen(function*() {
      const first = yield* HttpClient.get("/api/dashboard")
      expect(first.status).toBe(200)
      expect(yield* first.json).toEqual({ volume: 1_250_000, activeAccounts: 4_210 })
      expect(first.headers["x-cache"]).toBe("miss")
      const second = yield* HttpClient.get("/api/dashboard")
      expect(second.headers["x-cache"]).toBe("hit")
      expect(second.headers["cache-control"]).toMatch(/^public, max-age=\d+$/)
      expect(second.headers["age"]).toMatch(/^\d+$/)
    }).pipe(
      Effect.provide(
        HttpApiBuilder.serve().pipe(Layer.provide(HttpApi.ApiLive), Layer.provideMerge(NodeHttpServer.layerTest))
      )
    ))

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
