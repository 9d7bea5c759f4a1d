/**
 * `--cpu-prof`: V8 CPU profiles of the benchmark's sections, and a summary of their top frames.
 *
 * - In-process work is profiled with `node:inspector`'s `Profiler` domain (`profileInProcess`).
 * - The fleet's pods profile themselves the same way when `BENCH_CPU_PROF_DIR` is set, and
 *   write their profile when told to exit; other child processes (the explorer, the bare
 *   server) get Node's own `--cpu-prof` flags (`childExecArgv`), which write one at exit.
 * - `summarize` turns one or several `.cpuprofile` files into markdown: the sampled time, self
 *   time by area (lockstep's `src/`, effect, ioredis, Node, GC, …), and the top frames by self
 *   and by inclusive time, as function + file:line.
 */
import * as Fs from "node:fs"
import { Session } from "node:inspector/promises"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping"
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
  readonly scriptId?: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
  /** Set when the position was mapped to the original source. */
  readonly mapped?: boolean
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

/**
 * Starts V8's sampling profiler in this process. `stop` writes the profile to `file`, its call
 * frames mapped through the scripts' source maps (tsx compiles TypeScript to one line per file,
 * so unmapped positions say little), so that DevTools and `summarize` show the sources' lines.
 */
export const startProfiler = async (intervalUs = 200): Promise<{ readonly stop: (file: string) => Promise<void> }> => {
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: intervalUs })
  await session.post("Profiler.start")
  return {
    stop: async (file) => {
      try {
        const { profile } = await session.post("Profiler.stop")
        const maps = new Map<string, string>()
        session.on("Debugger.scriptParsed", (m) => {
          if (m.params.sourceMapURL) maps.set(m.params.scriptId, m.params.sourceMapURL)
        })
        await session.post("Debugger.enable")
        await session.post("Debugger.disable")
        Fs.mkdirSync(Path.dirname(file), { recursive: true })
        Fs.writeFileSync(file, JSON.stringify(mapFrames(profile as unknown as CpuProfile, maps)))
      } finally {
        await session.post("Profiler.disable").catch(() => {})
        session.disconnect()
      }
    }
  }
}

/** Rewrites call frames of scripts with an inline source map to their original file and line. */
const mapFrames = (profile: CpuProfile, sourceMaps: ReadonlyMap<string, string>): CpuProfile => {
  const traces = new Map<string, TraceMap | undefined>()
  const traceOf = (scriptId: string, url: string): TraceMap | undefined => {
    if (traces.has(scriptId)) return traces.get(scriptId)
    let t: TraceMap | undefined
    const ref = sourceMaps.get(scriptId)
    try {
      const m = ref?.match(/^data:application\/json[^,]*?(;base64)?,(.*)$/)
      if (m) t = new TraceMap(m[1] ? Buffer.from(m[2]!, "base64").toString("utf8") : decodeURIComponent(m[2]!), url)
    } catch {
      t = undefined
    }
    traces.set(scriptId, t)
    return t
  }
  return {
    ...profile,
    nodes: profile.nodes.map((n) => {
      const f = n.callFrame
      if (f.url === "" || f.scriptId === undefined || f.lineNumber < 0) return n
      const t = traceOf(f.scriptId, f.url)
      if (t === undefined) return n
      let o: ReturnType<typeof originalPositionFor>
      try {
        o = originalPositionFor(t, { line: f.lineNumber + 1, column: Math.max(0, f.columnNumber) })
      } catch {
        return n
      }
      if (o.source === null || o.line === null) return n
      return {
        ...n,
        callFrame: { ...f, url: o.source, lineNumber: o.line - 1, columnNumber: o.column ?? 0, mapped: true }
      }
    })
  }
}

/** Runs `f` under the in-process sampling profiler; writes `<name>.cpuprofile` into `dir`. */
export const profileInProcess = async <A>(dir: string, name: string, f: () => Promise<A>): Promise<{ result: A; file: string }> => {
  const file = Path.join(dir, `${name}.cpuprofile`)
  const profiler = await startProfiler()
  let result: A
  try {
    result = await f()
  } finally {
    await profiler.stop(file)
  }
  return { result, file }
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
  if (url === "") return `${fn} (native)`
  // a TypeScript file compiled on the fly without a usable source map: only the column tells
  return f.mapped !== true && /\.tsx?$/.test(url) ? `${fn} ${url}:${f.lineNumber + 1}:${f.columnNumber + 1} (compiled)` : `${fn} ${url}:${f.lineNumber + 1}`
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
