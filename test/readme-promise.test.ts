/**
 * README's "Without Effect" example (`examples/promise.ts`), quoted verbatim and run: a cold miss,
 * hits with their headers, a tag invalidation answered stale at once, then one recompute.
 */
import * as Fs from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { afterStockChange, cache, handle } from "../examples/promise.js"

describe("README: Without Effect", () => {
  afterAll(() => cache.close())

  it("quotes examples/promise.ts verbatim", () => {
    const readme = Fs.readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const example = Fs.readFileSync(new URL("../examples/promise.ts", import.meta.url), "utf8")
    expect(readme.includes("```ts\n" + example + "```")).toBe(true)
  })

  it("runs the example: miss, hit, stale after the tag's invalidation, then hit again", async () => {
    const cold = await handle(7)
    expect(await cold.json()).toEqual({ id: 7, name: "item 7", stock: 21 })
    expect(cold.headers.get("x-cache")).toBe("miss")
    const warm = await handle(7)
    expect(warm.headers.get("x-cache")).toBe("hit")
    expect(warm.headers.get("cache-control")).toMatch(/^public, max-age=\d+, stale-while-revalidate=60$/)
    expect(await afterStockChange()).toBe(1)
    const stale = await handle(7)
    expect(stale.headers.get("x-cache")).toBe("stale")
    expect(stale.headers.get("cache-control")).toBe("public, max-age=0, stale-while-revalidate=60")
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await handle(7)).headers.get("x-cache")).toBe("hit")
  })
})
