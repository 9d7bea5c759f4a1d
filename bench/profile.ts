/**
 * `--cpu-prof`: V8 CPU profiles of the benchmark's sections, and a summary of their top frames.
 *
 * - In-process work is profiled with `node:inspector`'s `Profiler` domain (`profileInProcess`).
 * - Child processes (the fleet's pods) get Node's own `--cpu-prof` flags (`childExecArgv`),
 *   which write a profile when the child exits.
 * - `summarize` turns one or several `.cpuprofile` files into markdown: the sampled time, self
 *   time by area (lockstep's `src/`, effect, ioredis, Node, GC, …), and the top frames by self
 *   and by inclusive time, as function + file:line.
 */
import * as Fs from "node:fs"
import { Session } from "node:inspector/promises"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { renderTable } from "./stats.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
export const profilesDir = Path.join(root, "bench/results/profiles")

/** The flags that make a child process write its profile into `dir` (env `BENCH_CPU_PROF_DIR`). */
export const childExecArgv = (): Array<string> => {
  const dir = process.env.BENCH_CPU_PROF_DIR
  return dir === undefined || dir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`]
}

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

export interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples?: ReadonlyArray<number>
  readonly timeDeltas?: ReadonlyArray<number>
}

/** Runs `f` under the in-process sampling profiler; writes `<name>.cpuprofile` into `dir`. */
export const profileInProcess = async <A>(dir: string, name: string, f: () => Promise<A>): Promise<{ result: A; file: string }> => {
  const file = Path.join(dir, `${name}.cpuprofile`)
  const session = new Session()
  session.connect()
  try {
    await session.post("Profiler.enable")
    await session.post("Profiler.setSamplingInterval", { interval: 200 })
    await session.post("Profiler.start")
    let result: A
    try {
      result = await f()
    } finally {
      const { profile } = await session.post("Profiler.stop")
      Fs.mkdirSync(dir, { recursive: true })
      Fs.writeFileSync(file, JSON.stringify(profile))
    }
    return { result, file }
  } finally {
    await session.post("Profiler.disable").catch(() => {})
    session.disconnect()
  }
}

const shortUrl = (url: string): string => {
  let u = url.replace(/^file:\/\//, "")
  if (u.startsWith(root + "/")) u = u.slice(root.length + 1)
  const nm = u.lastIndexOf("node_modules/")
  if (nm >= 0) u = u.slice(nm)
  return u
}

const special = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"])

const frameName = (f: CallFrame): string => {
  if (special.has(f.functionName)) return f.functionName
  const fn = f.functionName === "" ? "(anonymous)" : f.functionName
  const url = shortUrl(f.url)
  return url === "" ? `${fn} (native)` : `${fn} ${url}:${f.lineNumber + 1}`
}

const area = (f: CallFrame): string => {
  if (f.functionName === "(garbage collector)") return "GC"
  if (f.functionName === "(idle)") return "idle"
  if (f.functionName === "(program)") return "V8/native (program)"
  const u = shortUrl(f.url)
  if (u.startsWith("src/")) return "lockstep src/"
  if (u.startsWith("bench/")) return "bench harness"
  if (u.startsWith("app/")) return "app/"
  const pkg = u.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1]
  if (pkg !== undefined) return pkg
  if (u.startsWith("node:") || u === "") return "Node internals / native"
  return "other"
}

interface Tally {
  readonly totalMs: number
  readonly idleMs: number
  readonly self: Map<string, number>
  readonly inclusive: Map<string, number>
  readonly areas: Map<string, number>
}

const tally = (profiles: ReadonlyArray<CpuProfile>): Tally => {
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const areas = new Map<string, number>()
  let totalMs = 0
  let idleMs = 0
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]))
    const parent = new Map<number, number>()
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
    const stacks = new Map<number, ReadonlyArray<string>>()
    const stackOf = (id: number): ReadonlyArray<string> => {
      const known = stacks.get(id)
      if (known !== undefined) return known
      const names = new Set<string>()
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)!.callFrame
        if (!special.has(f.functionName)) names.add(frameName(f))
      }
      const xs = [...names]
      stacks.set(id, xs)
      return xs
    }
    const samples = p.samples ?? []
    const deltas = p.timeDeltas ?? []
    for (let i = 0; i < samples.length; i++) {
      // a sample stands for the time until the next one
      const ms = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000
      const node = byId.get(samples[i]!)
      if (node === undefined) continue
      totalMs += ms
      const f = node.callFrame
      add(areas, area(f), ms)
      if (f.functionName === "(idle)") {
        idleMs += ms
        continue
      }
      add(self, frameName(f), ms)
      for (const name of stackOf(node.id)) add(inclusive, name, ms)
    }
  }
  return { totalMs, idleMs, self, inclusive, areas }
}

const top = (m: ReadonlyMap<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)

/** Markdown summary of the profiles (several files are added up, e.g. every pod of a fleet). */
export const summarize = (title: string, files: ReadonlyArray<string>, n = 15): string => {
  const profiles = files.map((f) => JSON.parse(Fs.readFileSync(f, "utf8")) as CpuProfile)
  const t = tally(profiles)
  const busy = t.totalMs - t.idleMs
  const pct = (ms: number) => `${((100 * ms) / Math.max(busy, 1e-9)).toFixed(1)} %`
  const fmt = (ms: number) => `${ms.toFixed(1)} ms`
  const where = files.map((f) => `\`${Path.relative(root, f)}\``)
  return [
    `**CPU profile: ${title}** (${where.length > 3 ? `${where.length} files in \`${Path.relative(root, Path.dirname(files[0]!))}\`` : where.join(", ")}):`,
    `${fmt(t.totalMs)} sampled, ${fmt(busy)} not idle. Percentages are of the time not idle.`,
    "",
    `Self time by area: ${top(t.areas, 12).filter(([k]) => k !== "idle").map(([k, v]) => `${k} ${pct(v)}`).join(", ")}.`,
    "",
    renderTable({
      caption: `Top ${n} frames by self time`,
      headers: ["function  file:line", "self", "share"],
      rows: top(t.self, n).map(([k, v]) => [`\`${k}\``, fmt(v), pct(v)])
    }),
    "",
    renderTable({
      caption: `Top ${n} frames by inclusive time (the frame and everything it called)`,
      headers: ["function  file:line", "inclusive", "share"],
      rows: top(t.inclusive, n).map(([k, v]) => [`\`${k}\``, fmt(v), pct(v)])
    }),
    ""
  ].join("\n")
}

/** The `.cpuprofile` files in `dir` (a child's profiles). */
export const filesIn = (dir: string): Array<string> =>
  Fs.existsSync(dir) ? Fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).sort().map((f) => Path.join(dir, f)) : []
