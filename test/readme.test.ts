/**
 * The README's examples are files of the project, quoted verbatim: `examples/page-loader.ts`
 * (run here as written) and `test/readme-example.test.ts` (run as part of the suite).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import * as Fs from "node:fs"
import { CacheLive, program } from "../examples/page-loader.js"

const root = new URL("../", import.meta.url)

describe("README", () => {
  const readme = Fs.readFileSync(new URL("README.md", root), "utf8")
  const quotes = (file: string) => readme.includes("```ts\n" + Fs.readFileSync(new URL(file, root), "utf8") + "```")

  it("quotes examples/page-loader.ts verbatim", () => {
    expect(quotes("examples/page-loader.ts")).toBe(true)
  })

  it("quotes the testing example, test/readme-example.test.ts, verbatim", () => {
    expect(quotes("test/readme-example.test.ts")).toBe(true)
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
