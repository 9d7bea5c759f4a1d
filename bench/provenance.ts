/**
 * What a result was measured on: the commit, and a hash of the sources that make the figures
 * (src/ and bench/, its results aside). The hash is computed from git blob ids, so the same
 * function gives it for the working tree and for any commit (`git ls-tree`): a test can tell
 * whether a results file was measured on the commit it names.
 */
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

export const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

const measured = ["src", "bench"] as const
const excluded = (path: string) => path.startsWith("bench/results/")

export const git = (args: ReadonlyArray<string>): string | undefined => {
  try {
    return execFileSync("git", ["-C", root, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 64 * 1024 * 1024 }).trim()
  } catch {
    return undefined
  }
}

/** The hash of `path blob` lines, sorted by path. */
const hashOf = (entries: ReadonlyArray<readonly [string, string]>): string => {
  const lines = entries.filter(([path]) => !excluded(path)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, b]) => `${p} ${b}\n`)
  return `sha256:${createHash("sha256").update(lines.join("")).digest("hex").slice(0, 16)}`
}

/** git's blob id of a file's content. */
const blobId = (content: Buffer): string =>
  createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex")

const walk = (dir: string): Array<string> =>
  Fs.readdirSync(Path.join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(`${dir}/${e.name}`) : e.isFile() ? [`${dir}/${e.name}`] : []
  )

/** The hash of the sources as they are on disk (the files git would track, or all of them outside a repository). */
export const workingSources = (): string => {
  const listed = git(["ls-files", "--cached", "--others", "--exclude-standard", "--", ...measured])
  const files = listed === undefined ? measured.flatMap(walk) : listed.split("\n").filter(Boolean)
  return hashOf(files.filter((f) => Fs.existsSync(Path.join(root, f))).map((f) => [f, blobId(Fs.readFileSync(Path.join(root, f)))] as const))
}

/** The hash of the sources at `commit`; `undefined` when git cannot show it. */
export const committedSources = (commit: string): string | undefined => {
  const tree = git(["ls-tree", "-r", commit, "--", ...measured])
  if (tree === undefined) return undefined
  return hashOf(tree.split("\n").filter(Boolean).map((line) => {
    const [meta, path] = line.split("\t") as [string, string]
    return [path, meta.split(" ")[2]!] as const
  }))
}

/** The commit checked out, and whether the measured sources differ from it. */
export const current = (): { readonly commit: string; readonly sources: string; readonly dirty: boolean } => {
  const commit = git(["rev-parse", "HEAD"]) ?? "0".repeat(40)
  const sources = workingSources()
  return { commit, sources, dirty: committedSources(commit) !== sources }
}
