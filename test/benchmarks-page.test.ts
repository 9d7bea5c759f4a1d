/**
 * docs/benchmarks.md quotes the summary of the latest whole benchmark run
 * (bench/results/latest.md): the two agree, the results name a commit of this history, and
 * their sources hash is that commit's unless they say they measured uncommitted changes. The
 * page's figures live only in that block, and the block covers every target bench/targets.ts
 * sets, with the bound it sets. Sources that changed since the run do not fail this test (the
 * block names the commit it measured); a page edited by hand, a results file from another
 * history, or targets changed without a new run do.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { withBlock } from "../bench/docs.js"
import { committedSources, git } from "../bench/provenance.js"
import { begin, blockOf, boundOf, end, provenanceOf, targetIds } from "../bench/targets.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const page = Fs.readFileSync(Path.join(root, "docs/benchmarks.md"), "utf8")
const results = Fs.readFileSync(Path.join(root, "bench/results/latest.md"), "utf8")
const inGit = git(["rev-parse", "--is-inside-work-tree"]) === "true"
const shallow = git(["rev-parse", "--is-shallow-repository"]) === "true"

describe("docs/benchmarks.md", () => {
  const block = blockOf(page)

  it("holds one summary block, the one bench/results/latest.md holds", () => {
    expect(block, "the page's summary markers").toBeDefined()
    expect(blockOf(results), "bench/results/latest.md's summary").toBeDefined()
    expect(block).toBe(blockOf(results))
    // what `npm run bench:docs` would write is what is there
    expect(withBlock(page, blockOf(results)!)).toBe(page)
  })

  it("quotes a whole run: every target of bench/targets.ts, with its bound", () => {
    const rows = new Map(
      [...block!.matchAll(/^\| `([^`]+)` \| (.*) \| (.*) \| (.*) \| (.*) \|$/gm)].map((m) => [m[1]!, { target: m[3]!, verdict: m[5]! }])
    )
    expect([...rows.keys()]).toEqual(targetIds)
    for (const id of targetIds) {
      const cell = rows.get(id)!.target
      const bound = boundOf(id)
      // a bound that depends on the section's scale reads `≤ 6 (processes + 2)` once measured
      expect(cell === bound || (cell.startsWith(bound.slice(0, 2)) && cell.endsWith(`(${bound.slice(2)})`)), `${id}: ${cell}, not ${bound}`).toBe(true)
    }
    expect(block).toMatch(/^Run: `(npm run bench|npx tsx bench\/main.ts( --rounds=\d+)?)`/m)
  })

  it("has no figure outside the block", () => {
    const outside = page.replace(block!, "")
    expect(outside.match(/\d\.\d+ ?×|\d+(\.\d+)? ?(ms|µs)\b.*(median|p50|p99)|\d+(\.\d+)? ?[kM]\/s/g) ?? []).toEqual([])
    expect(outside).not.toContain(begin)
    expect(outside).not.toContain(end)
  })

  it.skipIf(!inGit || shallow)("names a commit of this history, and that commit's sources unless it says otherwise", () => {
    const p = provenanceOf(block!)
    expect(p, "commit and sources in the block").toBeDefined()
    expect(git(["cat-file", "-e", `${p!.commit}^{commit}`]), `commit ${p!.commit} exists`).toBeDefined()
    expect(git(["merge-base", "--is-ancestor", p!.commit, "HEAD"]), `commit ${p!.commit} is in HEAD's history`).toBeDefined()
    if (!p!.dirty) expect(committedSources(p!.commit)).toBe(p!.sources)
  })
})
