/**
 * The API reference (`npm run docs`, @effect/docgen, configured in docgen.json): every export of
 * src/ (src/internal/ aside) carries a `@since` tag, and every `@example` in a doc comment
 * type-checks against the package name (`lockstep`, `lockstep/testing`) and runs. The Markdown
 * goes to docs/api/.
 */
import { describe, expect, it } from "vitest"
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))

describe("API reference", () => {
  it("npm run docs: @since on every export, every example compiles and runs", async () => {
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [Path.join(root, "node_modules/@effect/docgen/bin.cjs")],
        {
          cwd: root,
          // docgen starts `tsc` and `tsx` by name
          env: { ...process.env, NO_COLOR: "1", PATH: `${Path.join(root, "node_modules/.bin")}${Path.delimiter}${process.env.PATH ?? ""}` },
          timeout: 180_000,
          maxBuffer: 16 * 1024 * 1024
        },
        (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: stdout + stderr })
      )
    })
    expect(result.code, result.output).toBe(0)
    expect(result.output).toMatch(/Docs generation succeeded/)
  }, 180_000)
})
