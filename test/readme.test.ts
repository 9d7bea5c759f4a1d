/**
 * The README's page-loader example is `examples/page-loader.ts`, quoted verbatim: this test
 * keeps the quote in sync and runs the example as written.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import * as Fs from "node:fs"
import { CacheLive, program } from "../examples/page-loader.js"

const root = new URL("../", import.meta.url)

describe("README", () => {
  it("quotes examples/page-loader.ts verbatim", () => {
    const readme = Fs.readFileSync(new URL("README.md", root), "utf8")
    const example = Fs.readFileSync(new URL("examples/page-loader.ts", root), "utf8")
    expect(readme).toContain("```ts\n" + example + "```")
  })

  it.effect("runs the example: a cold miss, then hits within the window", () =>
    Effect.gen(function*() {
      const first = yield* Effect.fork(program)
      yield* TestClock.adjust("200 millis")
      const info = yield* Fiber.join(first)
      expect(info).toMatchObject({ value: { volume: 1_250_000, activeAccounts: 4_210 }, cache: "miss", stale: false })
      expect(info.nextBoundary).toBe(60_000)
      expect(yield* program).toMatchObject({ cache: "hit", computedAt: 200 })
    }).pipe(Effect.provide(CacheLive)))
})
