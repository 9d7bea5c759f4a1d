// @effect/docgen 0.5 starts each module page with a blank line before its front matter, so
// prettier reads the opening `---` as a thematic break and writes `***`: the site generator
// (Jekyll, just-the-docs) then sees no front matter, and the page has no title or place in the
// navigation. This puts the front matter back at the top of every page of docs/api/modules/.
import * as Fs from "node:fs"

const dir = new URL("../docs/api/modules/", import.meta.url)
let fixed = 0
for (const name of Fs.readdirSync(dir).filter((name) => name.endsWith(".md"))) {
  const file = new URL(name, dir)
  const text = Fs.readFileSync(file, "utf8")
  const broken = /^\*\*\*\n\n(title: .*\nnav_order: \d+\nparent: .*\n)---\n/.exec(text)
  if (broken === null) continue
  Fs.writeFileSync(file, `---\n${broken[1]}---\n` + text.slice(broken[0].length))
  fixed++
}
console.log(`docs: front matter put back on ${fixed} page(s)`)
