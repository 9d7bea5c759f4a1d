/**
 * The Next.js fixture (`test/next/`) builds with `next build`, `lockstep/next` as its cache
 * handler. The build takes CPU but no timing, so it runs among the shared files, before
 * `test/next-fleet.test.ts` (a real-time file, run later) starts its `next start` processes on the build it
 * leaves in `.next/` (that file builds the fixture itself when run alone).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { buildFixture, bundleHandler, fixture, isBuilt } from "./support/next.js"

describe("the Next.js fixture", () => {
  it("builds with next build, lockstep/next bundled as its cache handler", () => {
    const handler = bundleHandler()
    expect(Fs.statSync(handler).size).toBeGreaterThan(0)
    const built = buildFixture(handler)
    console.log(`next fixture: ${built === 0 ? "build cached" : `built in ${built.toFixed(1)} s`}`)
    expect(isBuilt(), "the build stamp matches the fixture's inputs").toBe(true)
    expect(Fs.existsSync(Path.join(fixture, ".next/BUILD_ID")), "next build left a BUILD_ID").toBe(true)
  }, 300_000)
})
