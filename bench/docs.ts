/**
 * `npm run bench:docs`: copies the summary of the latest whole run (bench/results/latest.md)
 * into docs/benchmarks.md, between its markers. `npm run bench` does the same when it ends;
 * this is for a page that was edited or merged since.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { begin, blockOf, end } from "./targets.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
export const resultsFile = Path.join(root, "bench/results/latest.md")
export const pageFile = Path.join(root, "docs/benchmarks.md")

/** The page with `block` in place of the one between its markers. */
export const withBlock = (page: string, block: string): string => {
  const i = page.indexOf(begin)
  const j = page.indexOf(end)
  if (i < 0 || j < i) throw new Error(`docs/benchmarks.md has no summary markers (${begin} … ${end})`)
  return page.slice(0, i) + block + page.slice(j + end.length)
}

/** Writes the results file's summary into the page; answers whether the page changed. */
export const updatePage = (results: string = Fs.readFileSync(resultsFile, "utf8")): boolean => {
  const block = blockOf(results)
  if (block === undefined) throw new Error("bench/results/latest.md has no summary block: run `npm run bench`")
  const page = Fs.readFileSync(pageFile, "utf8")
  const next = withBlock(page, block)
  if (next !== page) Fs.writeFileSync(pageFile, next)
  return next !== page
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const changed = updatePage()
  process.stdout.write(changed ? "docs/benchmarks.md: summary updated from bench/results/latest.md\n" : "docs/benchmarks.md already quotes bench/results/latest.md\n")
}
