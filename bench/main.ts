/**
 * `npm run bench`: lockstep against its peers and the floors, side by side in one run.
 *
 *   npx tsx bench/main.ts                 the whole run (< 10 min): bench/results/<date>.md and latest.md,
 *                                          and its summary into docs/benchmarks.md
 *   npx tsx bench/main.ts --only=l1,stale  some sections (l1, keyed, l2, cold, stale, early, fleet, rollover,
 *                                          invalidate, commands, batch, http): bench/results/<date>-<sections>.md
 *   npx tsx bench/main.ts --smoke          a tiny run that checks the harness, not the figures
 *   --rounds=N (default 7, at least 5 outside smoke runs), --no-write (print only)
 *   --cpu-prof                             V8 CPU profiles per section in bench/results/profiles/,
 *                                          their top frames in the results
 *
 * It starts its own redis-server (and MariaDB for the HTTP section) on free loopback ports and
 * stops them, and every child process, at the end.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { startMariadb, startRedis } from "../test/support/services.js"
import { shutdown, track } from "./children.js"
import { type BenchContext, withDeadline } from "./context.js"
import { machine, renderHeader } from "./machine.js"
import { updatePage } from "./docs.js"
import * as Profile from "./profile.js"
import * as Provenance from "./provenance.js"
import { renderSection, type Section } from "./stats.js"
import { summary } from "./targets.js"

export const sectionIds = ["l1", "keyed", "l2", "cold", "stale", "early", "fleet", "rollover", "invalidate", "commands", "batch", "http"] as const
export type SectionId = (typeof sectionIds)[number]

interface SectionModule {
  readonly run: (ctx: BenchContext) => Promise<Section>
  /** With `--cpu-prof`: a workload of lockstep alone, profiled on its own after the section. */
  readonly profile?: (ctx: BenchContext) => Promise<void>
}

const load: Record<SectionId, () => Promise<SectionModule>> = {
  l1: () => import("./sections/l1.js"),
  keyed: () => import("./sections/keyed.js"),
  l2: () => import("./sections/l2.js"),
  cold: () => import("./sections/cold.js"),
  stale: () => import("./sections/stale.js"),
  early: () => import("./sections/early.js"),
  fleet: () => import("./sections/fleet.js"),
  rollover: () => import("./sections/fleet.js").then((m) => ({ run: m.runRollover })),
  invalidate: () => import("./sections/invalidate.js"),
  commands: () => import("./sections/commands.js"),
  batch: () => import("./sections/batch.js"),
  http: () => import("./sections/http.js")
}

/** Sections that start processes get longer than the default minute. */
const budgetMs: Partial<Record<SectionId, number>> = { l1: 120_000, keyed: 90_000, fleet: 150_000, http: 120_000, invalidate: 90_000, commands: 90_000 }

export interface RunOptions {
  readonly smoke: boolean
  readonly only: ReadonlyArray<SectionId>
  readonly rounds: number
  /** Servers to use instead of starting private ones (tests pass vitest's). */
  readonly redisPort?: number | undefined
  readonly mysqlPort?: number | undefined
  readonly log?: (message: string) => void
  /** Per-section budget. */
  readonly sectionTimeoutMs?: number | undefined
  /** Write CPU profiles into this folder and their summaries into the markdown. */
  readonly cpuProfDir?: string | undefined
}

export interface RunResult {
  readonly sections: ReadonlyArray<Section>
  readonly failures: ReadonlyArray<{ readonly id: SectionId; readonly error: string }>
  readonly markdown: string
  /** Every target's verdict, the block docs/benchmarks.md quotes. */
  readonly summary: string
}

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

/** Runs the selected sections; servers it starts are stopped before it returns. */
export const runBench = async (options: RunOptions): Promise<RunResult> => {
  const log = options.log ?? ((m: string) => process.stderr.write(`[bench] ${m}\n`))
  const started = new Date()
  const needsMysql = options.only.includes("http")
  let redisPort = options.redisPort
  let mysqlPort = options.mysqlPort
  const stops: Array<() => Promise<void>> = []
  try {
    if (redisPort === undefined) {
      log("starting redis-server")
      const redis = await startRedis()
      track(redis.process)
      stops.push(redis.stop)
      redisPort = redis.port
    }
    if (needsMysql && mysqlPort === undefined && Fs.existsSync(Path.join(root, "app/main.ts"))) {
      log("starting MariaDB")
      const mariadb = await startMariadb()
      track(mariadb.process)
      stops.push(mariadb.stop)
      mysqlPort = mariadb.port
    }
    const base: Omit<BenchContext, "signal"> = {
      smoke: options.smoke,
      rounds: options.rounds,
      redis: { host: "127.0.0.1", port: redisPort },
      mysql: mysqlPort === undefined ? undefined : { host: "127.0.0.1", port: mysqlPort },
      runId: `b${started.getTime().toString(36)}`,
      log
    }
    const sections: Array<Section> = []
    const profiles = new Map<string, string>()
    const failures: Array<{ id: SectionId; error: string }> = []
    for (const id of options.only) {
      log(`section ${id}`)
      const t0 = performance.now()
      try {
        const mod = await load[id]()
        // the sampling profiler slows the hot loops down: profiled sections get twice the time
        const budget = options.sectionTimeoutMs ?? (budgetMs[id] ?? 60_000) * (options.cpuProfDir === undefined ? 1 : 2)
        const runIt = (signal: AbortSignal) => mod.run({ ...base, signal })
        let section: Section
        const dir = options.cpuProfDir
        if (dir === undefined) {
          section = await withDeadline(`section ${id}`, budget, runIt)
        } else {
          const children = Path.join(dir, `${id}-children`)
          Fs.rmSync(children, { recursive: true, force: true })
          process.env.BENCH_CPU_PROF_DIR = children
          try {
            const { result, file } = await Profile.profileInProcess(dir, id, () => withDeadline(`section ${id}`, budget, runIt))
            section = result
            const parts = [Profile.summarize(`section ${id}, the benchmark process (every implementation)`, [file])]
            const childFiles = Profile.filesIn(children)
            if (childFiles.length > 0) parts.push(Profile.summarize(`section ${id}, its child processes added up`, childFiles))
            if (mod.profile !== undefined) {
              const own = await Profile.profileInProcess(dir, `${id}-lockstep`, () => withDeadline(`profile ${id}`, budget, (signal) => mod.profile!({ ...base, signal })))
              parts.push(Profile.summarize(`section ${id}, lockstep alone (the same workload, nothing else measured)`, [own.file]))
            }
            profiles.set(id, parts.join("\n"))
          } finally {
            delete process.env.BENCH_CPU_PROF_DIR
          }
        }
        sections.push(section)
        log(`section ${id} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      } catch (e) {
        const error = e instanceof Error ? (e.stack ?? e.message) : String(e)
        failures.push({ id, error })
        log(`section ${id} failed: ${error}`)
      }
    }
    const info = await machine({ redisPort, mysqlPort })
    const measured = Provenance.current()
    const flags = `${options.smoke ? " --smoke" : ""}${options.only.length < sectionIds.length ? ` --only=${options.only.join(",")}` : ""}${
      options.rounds === 7 ? "" : ` --rounds=${options.rounds}`
    }${options.cpuProfDir !== undefined ? " --cpu-prof" : ""}`
    const block = summary(
      {
        ...measured,
        started,
        command: flags === "" ? "npm run bench" : `npx tsx bench/main.ts${flags}`,
        machine: `${info.cpus}, Node ${info.node}, ${info.redis}; load average at the end ${info.load}.`
      },
      sections.map((s) => ({ section: s.id, targets: s.targets })),
      failures.map((f) => f.id)
    )
    const markdown = [
      renderHeader(info, started, options, sectionIds.length),
      "## Summary",
      "",
      block,
      "",
      ...sections.map((s) => {
        const p = profiles.get(s.id)
        return p === undefined ? renderSection(s) : `${renderSection(s)}\n${p}`
      }),
      ...failures.map((f) => `## ${f.id}: failed\n\n\`\`\`\n${f.error}\n\`\`\`\n`)
    ].join("\n")
    return { sections, failures, markdown, summary: block }
  } finally {
    await Promise.allSettled(stops.map((s) => s()))
  }
}

const parseArgs = (argv: ReadonlyArray<string>) => {
  const smoke = argv.includes("--smoke")
  const only = argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",").map((s) => s.trim()).filter(Boolean)
  for (const id of only ?? []) {
    if (!(sectionIds as ReadonlyArray<string>).includes(id)) throw new Error(`unknown section ${id}; known: ${sectionIds.join(", ")}`)
  }
  const roundsArg = argv.find((a) => a.startsWith("--rounds="))
  const rounds = roundsArg ? Number(roundsArg.slice("--rounds=".length)) : smoke ? 1 : 7
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be a positive integer")
  return {
    smoke,
    only: (only ?? sectionIds) as ReadonlyArray<SectionId>,
    rounds: smoke ? rounds : Math.max(5, rounds),
    write: !argv.includes("--no-write") && !smoke,
    whole: only === undefined && !smoke,
    cpuProf: argv.includes("--cpu-prof")
  }
}

const main = async () => {
  const args = parseArgs(process.argv.slice(2))
  const removeSignalHandlers = (() => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`[bench] ${signal}: stopping servers and children\n`)
      void shutdown().finally(() => process.exit(130))
    }
    process.once("SIGINT", onSignal)
    process.once("SIGTERM", onSignal)
    return () => {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
    }
  })()
  const t0 = performance.now()
  try {
    const result = await runBench({
      smoke: args.smoke,
      only: args.only,
      rounds: args.rounds,
      cpuProfDir: args.cpuProf ? Profile.profilesDir : undefined
    })
    process.stdout.write(result.markdown + "\n")
    if (args.write) {
      const dir = Path.join(root, "bench/results")
      Fs.mkdirSync(dir, { recursive: true })
      const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-") + (args.whole ? "" : `-${args.only.join("-")}`) +
        (args.cpuProf ? "-cpu-prof" : "")
      Fs.writeFileSync(Path.join(dir, `${stamp}.md`), result.markdown)
      process.stderr.write(`[bench] wrote bench/results/${stamp}.md\n`)
      // only a whole run stands for the commit: it becomes latest.md, which the page quotes
      if (args.whole && !args.cpuProf) {
        Fs.writeFileSync(Path.join(dir, "latest.md"), result.markdown)
        updatePage(result.markdown)
        process.stderr.write("[bench] wrote bench/results/latest.md and its summary into docs/benchmarks.md\n")
      }
    }
    process.stderr.write(`[bench] total ${((performance.now() - t0) / 1000).toFixed(0)} s\n`)
    process.exitCode = result.failures.length > 0 ? 1 : 0
  } finally {
    removeSignalHandlers()
    await shutdown()
  }
  // ioredis, bus and keyv clients that a peer forgot to close must not keep us alive
  setTimeout(() => process.exit(), 500).unref()
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`[bench] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    void shutdown().finally(() => process.exit(1))
  })
}
