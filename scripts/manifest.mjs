/**
 * `npm pack` and `npm publish` ship package.json as it is in the folder. `prepack` (after the
 * build) runs `node scripts/manifest.mjs strip`: package.json loses the scripts and the dev
 * fields, which name files that are not shipped (app/, bench/, scripts/), and the original is
 * kept in package.json.orig; `postpack` runs `restore`. Nothing in the published package.json is
 * an install script.
 */
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"

const path = fileURLToPath(new URL("../package.json", import.meta.url))
const orig = `${path}.orig`

if (process.argv[2] === "strip") {
  const text = Fs.readFileSync(path, "utf8")
  if (!Fs.existsSync(orig)) Fs.writeFileSync(orig, text)
  const { scripts: _scripts, devDependencies: _dev, overrides: _overrides, ...published } = JSON.parse(text)
  Fs.writeFileSync(path, JSON.stringify(published, null, 2) + "\n")
} else if (process.argv[2] === "restore") {
  if (Fs.existsSync(orig)) {
    Fs.copyFileSync(orig, path)
    Fs.rmSync(orig)
  }
} else {
  console.error("usage: node scripts/manifest.mjs strip|restore")
  process.exit(1)
}
