/**
 * The API reference (`npm run docs`: @effect/docgen, configured in docgen.json, then
 * `scripts/docs-front-matter.mjs`): every export of src/ (src/internal/ aside) carries a `@since`
 * tag no newer than the package, and every `@example` in a doc comment type-checks against the
 * package name (`lockstep`, `lockstep/testing`) and runs. The Markdown goes to docs/api/: each
 * page starts with the front matter its site (Jekyll, just-the-docs) reads, no module overview
 * points into src/internal/, and the main signatures read as types rather than aliases.
 */
import { describe, expect, it } from "vitest"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))
const version = (JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as { version: string }).version

const run = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      process.execPath,
      args,
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

/** `a.b.c` compared as numbers: negative when `a` is older. */
const compareVersions = (a: string, b: string) => {
  const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)]
  for (let i = 0; i < 3; i++) if (x[i]! !== y[i]!) return x[i]! - y[i]!
  return 0
}

const sources = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(Path.join(dir, entry.name)) : entry.name.endsWith(".ts") ? [Path.join(dir, entry.name)] : []
  )

describe("API reference", () => {
  it(`every @since in src/ names a released version: ${version} or older`, () => {
    const newer: Array<string> = []
    for (const file of sources(Path.join(root, "src"))) {
      for (const match of Fs.readFileSync(file, "utf8").matchAll(/@since (\S+)/g)) {
        if (!/^\d+\.\d+\.\d+$/.test(match[1]!) || compareVersions(match[1]!, version) > 0) newer.push(`${Path.relative(root, file)}: @since ${match[1]}`)
      }
    }
    expect(newer).toEqual([])
  })

  it("npm run docs: @since on every export, every example compiles and runs; pages a site can read", async () => {
    const docgen = await run([Path.join(root, "node_modules/@effect/docgen/bin.cjs")])
    expect(docgen.code, docgen.output).toBe(0)
    expect(docgen.output).toMatch(/Docs generation succeeded/)
    const fix = await run([Path.join(root, "scripts/docs-front-matter.mjs")])
    expect(fix.code, fix.output).toBe(0)

    const dir = Path.join(root, "docs/api/modules")
    const pages = Fs.readdirSync(dir).filter((name) => name.endsWith(".ts.md"))
    expect(pages.sort()).toEqual(["Memo.ts.md", "Metrics.ts.md", "Next.ts.md", "Promise.ts.md", "Redis.ts.md", "Testing.ts.md", "Window.ts.md", "index.ts.md"])
    const read = (name: string) => Fs.readFileSync(Path.join(dir, name), "utf8")
    for (const name of pages) {
      const page = read(name)
      // front matter first, as Jekyll reads it: no blank line, no `***` before it
      expect(page, name).toMatch(new RegExp(`^---\\ntitle: ${name.replace(/\.md$/, "").replace(".", "\\.")}\\nnav_order: \\d+\\nparent: Modules\\n---\\n`))
      const since = [...page.matchAll(/Added in v(\S+)/g)].map((m) => m[1])
      expect(since.length, name).toBeGreaterThan(0)
      expect(new Set(since), name).toEqual(new Set([version]))
      const overview = page.slice(page.indexOf(" overview"), page.indexOf("<h2 class=\"text-delta\">"))
      expect(overview, name).not.toMatch(/internal\//)
    }
    const memo = read("Memo.ts.md")
    for (const name of ["loader", "memo", "memoWithInfo", "keepWarm"]) {
      // the overloads themselves, not the name of an alias
      expect(memo, name).toMatch(new RegExp(`export declare const ${name}: \\{\\n  <`))
    }
    const redis = read("Redis.ts.md")
    expect(redis).toMatch(/export interface Options \{/)
    for (const field of ["redis", "password", "tenant", "commandTimeout", "connectTimeout", "breakerThreshold", "breakerCooldown", "cluster", "sentinel"]) {
      expect(redis, field).toMatch(new RegExp(`readonly ${field}\\?:`))
    }
  }, 180_000)
})
