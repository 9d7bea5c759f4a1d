/**
 * `npm run build`: compiles src/ into dist/.
 *
 * - dist/esm: ES modules and their declarations, from `tsc -p tsconfig.build.json` (which also
 *   type-checks, and strips members tagged `@internal` from the declarations);
 * - dist/cjs: the same modules as CommonJS (transpiled file by file, as `isolatedModules`
 *   allows), with a copy of the declarations and a package.json that marks the folder
 *   `"type": "commonjs"`.
 *
 * dist/ is deleted first, so a module removed from src/ never ships.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const src = Path.join(root, "src")
const dist = Path.join(root, "dist")
const esm = Path.join(dist, "esm")
const cjs = Path.join(dist, "cjs")

const sources = (dir) =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = Path.join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : []
  })

const filesUnder = (dir) =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(Path.join(dir, entry.name)) : [Path.join(dir, entry.name)]
  )

Fs.rmSync(dist, { recursive: true, force: true })

const tsc = spawnSync(process.execPath, [Path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit"
})
if (tsc.status !== 0) {
  console.error("build: tsc -p tsconfig.build.json failed")
  process.exit(tsc.status ?? 1)
}

const { config } = ts.readConfigFile(Path.join(root, "tsconfig.build.json"), ts.sys.readFile)
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root)
const cjsOptions = {
  ...options,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  declaration: false,
  noEmit: false
}
for (const file of sources(src)) {
  const out = Path.join(cjs, Path.relative(src, file)).replace(/\.ts$/, ".js")
  const { outputText } = ts.transpileModule(Fs.readFileSync(file, "utf8"), { compilerOptions: cjsOptions, fileName: file })
  Fs.mkdirSync(Path.dirname(out), { recursive: true })
  Fs.writeFileSync(out, outputText)
}
for (const file of filesUnder(esm).filter((f) => f.endsWith(".d.ts"))) {
  const out = Path.join(cjs, Path.relative(esm, file))
  Fs.mkdirSync(Path.dirname(out), { recursive: true })
  Fs.copyFileSync(file, out)
}
Fs.writeFileSync(Path.join(cjs, "package.json"), JSON.stringify({ type: "commonjs" }, null, 2) + "\n")

// The entry points check the installed effect before anything imports it: an ES module's imports
// are all resolved before any of its code runs, so the ESM entry checks, then imports the
// modules (top-level await); a CommonJS entry requires in order, so the check goes first.
const entries = ["index", "Testing", "Promise"]
for (const entry of entries) {
  const file = Path.join(esm, `${entry}.js`)
  const { pathToFileURL } = await import("node:url")
  const names = Object.keys(await import(pathToFileURL(file).href))
  Fs.renameSync(file, Path.join(esm, `${entry}.impl.js`))
  Fs.writeFileSync(
    file,
    [
      `import { createRequire } from "node:module"`,
      `import { assert } from "./internal/effectVersion.js"`,
      `assert(createRequire(import.meta.url))`,
      `const m = await import("./${entry}.impl.js")`,
      ...names.map((name) => `export const ${name} = m.${name}`),
      ""
    ].join("\n")
  )
  const cjsFile = Path.join(cjs, `${entry}.js`)
  Fs.writeFileSync(
    cjsFile,
    `"use strict";\nrequire("./internal/effectVersion.js").assert(require);\n` + Fs.readFileSync(cjsFile, "utf8").replace(/^"use strict";\n/, "")
  )
}

console.log(`build: ${Path.relative(root, esm)} and ${Path.relative(root, cjs)}, ${filesUnder(dist).length} files`)
