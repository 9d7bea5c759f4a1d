/**
 * `npm run bench`: lockstep against its peers and the floors, side by side in one run.
 *
 *   npx tsx bench/main.ts                 the whole run (< 10 min), results in bench/results/
 *   npx tsx bench/main.ts --only=l1,stale  some sections (l1, keyed, l2, stale, fleet, rollover, http)
 *   npx tsx bench/main.ts --smoke          a tiny run that checks the harness, not the figures
 *   --rounds=N (default 7, at least 5 outside smoke runs), --no-write (print only)
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
import { renderSection, type Section } from "./stats.js"

export const sectionIds = ["l1", "keyed", "l2", "stale", "fleet", "rollover", "http"] as const
export type SectionId = (typeof sectionIds)[number]

const load: Record<SectionId, () => Promise<{ run: (ctx: BenchContext) => Promise<Section> }>> = {
  l1: () => import("./sections/l1.js"),
  keyed: () => import("./sections/keyed.js"),
  l2: () => import("./sections/l2.js"),
  stale: () => import("./sections/stale.js"),
  fleet: () => import("./sections/fleet.js"),
  rollover: () => import("./sections/fleet.js").then((m) => ({ run: m.runRollover })),
  http: () => import("./sections/http.js")
}

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
}

export interface RunResult {
  readonly sections: ReadonlyArray<Section>
  readonly failures: ReadonlyArray<{ readonly id: SectionId; readonly error: string }>
  readonly markdown: string
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
    const failures: Array<{ id: SectionId; error: string }> = []
    for (const id of options.only) {
      log(`section ${id}`)
      const t0 = performance.now()
      try {
        const mod = await load[id]()
        const section = await withDeadline(`section ${id}`, options.sectionTimeoutMs ?? 60_000, (signal) => mod.run({ ...base, signal }))
        sections.push(section)
        log(`section ${id} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      } catch (e) {
        const error = e instanceof Error ? (e.stack ?? e.message) : String(e)
        failures.push({ id, error })
        log(`section ${id} failed: ${error}`)
      }
    }
    const info = await machine({ redisPort, mysqlPort })
    const markdown = [
      renderHeader(info, started, options),
      ...sections.map(renderSection),
      ...failures.map((f) => `## ${f.id}: failed\n\n\`\`\`\n${f.error}\n\`\`\`\n`)
    ].join("\n")
    return { sections, failures, markdown }
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
    write: !argv.includes("--no-write") && !smoke
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
    const result = await runBench({ smoke: args.smoke, only: args.only, rounds: args.rounds })
    process.stdout.write(result.markdown + "\n")
    if (args.write) {
      const dir = Path.join(root, "bench/results")
      Fs.mkdirSync(dir, { recursive: true })
      const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-")
      Fs.writeFileSync(Path.join(dir, `${stamp}.md`), result.markdown)
      Fs.writeFileSync(Path.join(dir, "latest.md"), result.markdown)
      process.stderr.write(`[bench] wrote bench/results/${stamp}.md and bench/results/latest.md\n`)
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
