/**
 * README's "Next.js" section and docs/next.md quote `examples/next/` verbatim, and the example's
 * `next.config.mjs` resolves `lockstep/next` to the module the package exports. The handler
 * itself runs in `test/next-fleet.test.ts`.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../", import.meta.url))
const example = Path.join(root, "examples/next")
const read = (path: string) => Fs.readFileSync(path, "utf8")

/** The example's files, by path. */
const files = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(Path.join(dir, entry.name)) : [Path.join(dir, entry.name)]
  )

const jsBlocks = (markdown: string) =>
  Array.from(markdown.matchAll(/^```(?:js|jsx)\n([\s\S]*?)^```$/gm), (match) => match[1]!)

describe("README: Next.js", () => {
  it("quotes examples/next/next.config.mjs verbatim", () => {
    expect(read(Path.join(root, "README.md")).includes("```js\n" + read(Path.join(example, "next.config.mjs")) + "```")).toBe(true)
  })

  it("docs/next.md: every JavaScript block is a file of examples/next/, quoted whole", () => {
    const sources = files(example).map(read)
    const blocks = jsBlocks(read(Path.join(root, "docs/next.md")))
    expect(blocks.length).toBeGreaterThan(0)
    for (const block of blocks) expect(sources, block.slice(0, 200)).toContain(block)
  })

  it("the config points Next at the module the package exports as lockstep/next", () => {
    // an app with the package installed: its package.json, and the module its exports name
    const app = Fs.mkdtempSync(Path.join(Os.tmpdir(), "lockstep-next-config-"))
    try {
      const pkg = JSON.parse(read(Path.join(root, "package.json")))
      const installed = Path.join(app, "node_modules/lockstep")
      const handler = Path.join(installed, pkg.exports["./next"].import.default)
      Fs.mkdirSync(Path.dirname(handler), { recursive: true })
      Fs.writeFileSync(Path.join(installed, "package.json"), JSON.stringify(pkg))
      Fs.writeFileSync(handler, "export default {}\n")
      Fs.writeFileSync(Path.join(app, "package.json"), JSON.stringify({ type: "module" }))
      Fs.copyFileSync(Path.join(example, "next.config.mjs"), Path.join(app, "next.config.mjs"))
      const out = execFileSync(process.execPath, [
        "--input-type=module",
        "-e",
        "const c = await import(process.argv[1]); console.log(JSON.stringify(c.default))",
        pathToFileURL(Path.join(app, "next.config.mjs")).href
      ], { cwd: app, encoding: "utf8" })
      const config = JSON.parse(out)
      expect(config.cacheComponents).toBe(true)
      expect(config.cacheHandlers.remote).toBe(pathToFileURL(Fs.realpathSync(handler)).href)
      expect(pkg.peerDependenciesMeta.next.optional).toBe(true)
    } finally {
      Fs.rmSync(app, { recursive: true, force: true })
    }
  })
})
