/** The machine, runtime and package versions a result was taken on. */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

const packages = [
  "effect",
  "ioredis",
  "bentocache",
  "cache-manager",
  "keyv",
  "@keyv/redis",
  "lru-cache",
  "async-cache-dedupe",
  "autocannon",
  "tsx"
] as const

const version = (name: string): string => {
  try {
    return JSON.parse(Fs.readFileSync(Path.join(root, "node_modules", name, "package.json"), "utf8")).version
  } catch {
    return "not installed"
  }
}

const run = (bin: string, args: ReadonlyArray<string>): string => {
  try {
    return execFileSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5_000 }).trim()
  } catch {
    return "unknown"
  }
}

export interface Machine {
  readonly cpus: string
  readonly memory: string
  readonly os: string
  readonly node: string
  readonly redis: string
  readonly mariadb: string | undefined
  readonly packages: Record<string, string>
  readonly load: string
  readonly commit: string
  /** The working tree differs from the commit in `src/` or `app/` (what is measured). */
  readonly dirty: boolean
}

export const machine = async (o: { readonly redisPort?: number | undefined; readonly mysqlPort?: number | undefined }): Promise<Machine> => {
  const cpus = Os.cpus()
  const redisVersion = run("redis-server", ["--version"]).match(/v=([\d.]+)/)?.[1] ?? "unknown"
  return {
    cpus: `${cpus.length} × ${cpus[0]?.model.trim() ?? "unknown"}`,
    memory: `${(Os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${Os.type()} ${Os.release()} ${Os.arch()}`,
    node: process.version,
    redis: `redis-server ${redisVersion}`,
    mariadb: o.mysqlPort === undefined ? undefined : run("mariadbd", ["--version"]).replace(/^.*Ver\s+/, "").split(/\s/)[0],
    packages: Object.fromEntries(packages.map((p) => [p, version(p)])),
    load: Os.loadavg().map((x) => x.toFixed(2)).join(" / "),
    commit: run("git", ["-C", root, "rev-parse", "--short", "HEAD"]),
    dirty: run("git", ["-C", root, "status", "--porcelain", "--", "src", "app"]) !== ""
  }
}

export const renderHeader = (
  m: Machine,
  started: Date,
  o: { readonly smoke: boolean; readonly rounds: number; readonly only: ReadonlyArray<string>; readonly cpuProfDir?: string | undefined },
  sectionCount: number
): string =>
  [
    `# lockstep benchmarks, ${started.toISOString().slice(0, 16).replace("T", " ")} UTC${o.smoke ? " (smoke run: figures mean nothing)" : ""}`,
    "",
    (() => {
      const flags = `${o.smoke ? " --smoke" : ""}${o.only.length < sectionCount ? ` --only=${o.only.join(",")}` : ""}${o.cpuProfDir !== undefined ? " --cpu-prof" : ""}`
      return `Command: \`npx tsx bench/main.ts${flags}\`${flags === "" ? " (`npm run bench`)" : ""}, commit ${m.commit}${m.dirty ? " plus uncommitted changes" : ""}, ${o.rounds} rounds per figure unless a section says otherwise.`
    })(),
    "",
    `Machine: ${m.cpus}, ${m.memory}, ${m.os}; load average at the end ${m.load}. Node ${m.node}, ${m.redis}${m.mariadb ? `, MariaDB ${m.mariadb}` : ""}.`,
    "",
    `Packages: ${Object.entries(m.packages).map(([k, v]) => `${k} ${v}`).join(", ")}.`,
    "",
    "Implementations run in interleaved rounds on a small shared machine: read ratios measured in the same run, not absolute figures.",
    "",
    ...(o.cpuProfDir === undefined ? [] : [
      "With `--cpu-prof`: every section ran under V8's sampling profiler (200 µs interval in the benchmark process, Node's default in child processes), which costs every implementation alike a few percent; each section's top frames follow its tables.",
      ""
    ])
  ].join("\n")
