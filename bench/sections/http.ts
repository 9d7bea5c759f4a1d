/**
 * Section 5: the explorer over HTTP (`app/main.ts`, run as `node --import tsx app/main.ts`), on
 * MariaDB seeded with the synthetic ledger and the shared redis-server.
 * - Warm: autocannon against `/api/dashboard` (a cached page) and `/healthz` (touches neither
 *   database nor Redis) on the same server, interleaved: the cache's cost per request.
 * - Cold start: 4 fresh server processes on a fresh tenant (no value anywhere, keep-warm off),
 *   500 concurrent requests for `/api/dashboard` spread over them: how many times the aggregate
 *   ran (the servers' `lockstep_producer_runs_total`, and MariaDB's `Com_select` delta), errors.
 */
import autocannon from "autocannon"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { freePort } from "../../test/support/services.js"
import { track } from "../children.js"
import { childExecArgv } from "../profile.js"
import type { BenchContext } from "../context.js"
import { sleep } from "../fixtures.js"
import { cell, fmtCount, fmtMs, fmtOps, fmtRatio, interleave, ratios, type Section, summarize } from "../stats.js"
import { judge } from "../targets.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../..")
const run = promisify(execFile)

interface Server {
  readonly port: number
  readonly child: ChildProcess
  readonly stderr: () => string
}

const env = (ctx: BenchContext, extra: Record<string, string>) => ({
  ...process.env,
  HOST: "127.0.0.1",
  REDIS_HOST: ctx.redis.host,
  REDIS_PORT: String(ctx.redis.port),
  MYSQL_HOST: ctx.mysql!.host,
  MYSQL_PORT: String(ctx.mysql!.port),
  MYSQL_USER: "root",
  MYSQL_DATABASE: "lockstep",
  ...extra
})

const get = (port: number, path: string, agent?: Http.Agent): Promise<{ status: number; body: string; headers: Http.IncomingHttpHeaders }> =>
  new Promise((resolve, reject) => {
    const req = Http.get({ host: "127.0.0.1", port, path, agent, timeout: 30_000 }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c) => (body += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
      res.on("error", reject)
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", reject)
  })

const startServer = async (ctx: BenchContext, extra: Record<string, string>): Promise<Server> => {
  const port = await freePort()
  let err = ""
  const child = track(spawn(process.execPath, [...childExecArgv(), "--import", "tsx", Path.join(root, "app/main.ts")], {
    cwd: root,
    env: env(ctx, { ...extra, PORT: String(port) }),
    stdio: ["ignore", "ignore", "pipe"]
  }))
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (c: string) => (err = (err + c).slice(-4_000)))
  return { port, child, stderr: () => err }
}

/**
 * The floor any Node server pays: a bare `node:http` server in its own process answering the
 * body and `Content-Type` the explorer's `/healthz` answers, on every path.
 */
const bareSource = `
const http = require("node:http")
const body = Buffer.from(process.env.BARE_BODY ?? "", "utf8")
const type = process.env.BARE_TYPE ?? "text/plain"
http.createServer((req, res) => {
  res.writeHead(200, { "content-type": type, "content-length": body.length })
  res.end(body)
}).listen(Number(process.env.PORT), "127.0.0.1")
`

const startBare = async (body: string, type: string): Promise<Server> => {
  const port = await freePort()
  let err = ""
  const child = track(spawn(process.execPath, [...childExecArgv(), "-e", bareSource], {
    env: { ...process.env, PORT: String(port), BARE_BODY: body, BARE_TYPE: type },
    stdio: ["ignore", "ignore", "pipe"]
  }))
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (c: string) => (err = (err + c).slice(-4_000)))
  return { port, child, stderr: () => err }
}

const waitReady = async (s: Server, signal: AbortSignal, timeoutMs = 40_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    signal.throwIfAborted()
    if (s.child.exitCode !== null) throw new Error(`explorer exited (${s.child.exitCode}): ${s.stderr()}`)
    const ok = await get(s.port, "/healthz").then((r) => r.status === 200, () => false)
    if (ok) return
    await sleep(100)
  }
  throw new Error(`explorer on ${s.port} not ready within ${timeoutMs} ms: ${s.stderr()}`)
}

const stop = async (servers: ReadonlyArray<Server>) => {
  for (const s of servers) if (s.child.exitCode === null) s.child.kill("SIGTERM")
  await Promise.race([
    Promise.all(servers.map((s) => (s.child.exitCode === null && s.child.signalCode === null ? new Promise((r) => s.child.once("exit", r)) : undefined))),
    sleep(3_000)
  ])
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL")
}

const comSelect = async (ctx: BenchContext): Promise<number> => {
  const { stdout } = await run("mariadb", [
    "--no-defaults",
    "-h127.0.0.1",
    `-P${ctx.mysql!.port}`,
    "-uroot",
    "-N",
    "-e",
    "SHOW GLOBAL STATUS LIKE 'Com_select'"
  ])
  return Number(stdout.trim().split(/\s+/)[1])
}

/** Sum of a Prometheus counter family over its series. */
const counter = (text: string, name: string): number =>
  text.split("\n")
    .filter((l) => l.startsWith(name + "{") || l.startsWith(name + " "))
    .reduce((n, l) => n + Number(l.trim().split(/\s+/).pop()), 0)

const bareName = "floor: bare `node:http`, the same body as `/healthz`"

const cannon = (port: number, path: string, durationS: number, connections: number) =>
  autocannon({ url: `http://127.0.0.1:${port}${path}`, connections, duration: durationS })

export const runHttp = async (ctx: BenchContext): Promise<Section> => {
  if (!Fs.existsSync(Path.join(root, "app/main.ts"))) throw new Error("app/main.ts does not exist yet")
  if (ctx.mysql === undefined) throw new Error("the HTTP section needs MariaDB")
  const rows = ctx.smoke ? 5_000 : 100_000
  const durationS = ctx.smoke ? 0.3 : 2
  const connections = ctx.smoke ? 8 : 32
  const burst = ctx.smoke ? 40 : 500
  const fleetSize = ctx.smoke ? 2 : 4
  const rounds = ctx.smoke ? 1 : 5

  const t0 = performance.now()
  await run(process.execPath, ["--import", "tsx", Path.join(root, "app/seed.ts"), `--rows=${rows}`], {
    cwd: root,
    env: env(ctx, {}),
    maxBuffer: 16 * 2 ** 20
  })
  const seedS = (performance.now() - t0) / 1000
  ctx.signal.throwIfAborted()

  // warm: one server, the dashboard cached
  const warm = await startServer(ctx, { TENANT: `${ctx.runId}-warm` })
  let warmResults: Map<string, Array<number>>
  let p99s: Map<string, Array<number>>
  const errors = new Map<string, number>()
  let bare: Server | undefined
  try {
    await waitReady(warm, ctx.signal)
    const first = await get(warm.port, "/api/dashboard")
    if (first.status !== 200) throw new Error(`/api/dashboard answered ${first.status}: ${first.body.slice(0, 300)}`)
    const health = await get(warm.port, "/healthz")
    bare = await startBare(health.body, String(health.headers["content-type"] ?? "text/plain"))
    await waitReady(bare, ctx.signal)
    const paths = [
      { name: bareName, port: bare.port, path: "/healthz" },
      { name: "/healthz", port: warm.port, path: "/healthz" },
      { name: "/api/dashboard", port: warm.port, path: "/api/dashboard" }
    ]
    if (!ctx.smoke) for (const p of paths) await cannon(p.port, p.path, 1, connections) // warm-up
    p99s = new Map(paths.map((p) => [p.name, []]))
    warmResults = await interleave(paths, rounds, async ({ name, port, path }) => {
      const r = await cannon(port, path, durationS, connections)
      p99s.get(name)!.push(r.latency.p99)
      errors.set(name, (errors.get(name) ?? 0) + r.errors + r.non2xx)
      return r.requests.total / r.duration
    }, ctx.signal)
  } finally {
    await stop(bare === undefined ? [warm] : [warm, bare])
  }

  // cold start: a fresh fleet on a fresh tenant, nothing cached anywhere
  const fleet = await Promise.all(Array.from({ length: fleetSize }, () => startServer(ctx, { TENANT: `${ctx.runId}-cold`, KEEP_WARM: "none" })))
  let cold: { runs: number; selects: number; errors: number; firstError?: string; totalMs: number; cache: Record<string, number> }
  try {
    await Promise.all(fleet.map((s) => waitReady(s, ctx.signal)))
    const before = await comSelect(ctx)
    const agent = new Http.Agent({ keepAlive: false, maxSockets: Infinity })
    const t1 = performance.now()
    const answers = await Promise.all(Array.from({ length: burst }, (_, i) =>
      get(fleet[i % fleet.length]!.port, "/api/dashboard", agent).then(
        (r) => ({ ok: r.status === 200, what: r.status === 200 ? String(r.headers["x-cache"] ?? "?") : `HTTP ${r.status}: ${r.body.slice(0, 200)}` }),
        (e) => ({ ok: false, what: e instanceof Error ? e.message : String(e) })
      )))
    const totalMs = performance.now() - t1
    agent.destroy()
    await sleep(200)
    const after = await comSelect(ctx)
    const metrics = await Promise.all(fleet.map((s) => get(s.port, "/metrics").then((r) => r.body)))
    const failed = answers.filter((a) => !a.ok)
    const cache: Record<string, number> = {}
    for (const a of answers) if (a.ok) cache[a.what] = (cache[a.what] ?? 0) + 1
    cold = {
      runs: metrics.reduce((n, m) => n + counter(m, "lockstep_producer_runs_total"), 0),
      selects: after - before, // SHOW STATUS counts as Com_show_status, not Com_select
      errors: failed.length,
      ...(failed[0] === undefined ? {} : { firstError: failed[0].what }),
      totalMs,
      cache
    }
  } finally {
    await stop(fleet)
  }

  const base = warmResults.get("/healthz")!
  const dash = warmResults.get("/api/dashboard")!
  const thr = ratios(dash, base)
  const p99 = ratios(p99s.get("/api/dashboard")!, p99s.get("/healthz")!)
  const floor = warmResults.get(bareName)!
  const rowsWarm = [bareName, "/healthz", "/api/dashboard"].map((name) => [
    name === bareName ? name : `explorer \`${name}\``,
    ...cell(summarize(warmResults.get(name)!), fmtOps),
    fmtRatio(ratios(warmResults.get(name)!, base).median),
    fmtRatio(ratios(warmResults.get(name)!, floor).median),
    ...cell(summarize(p99s.get(name)!), fmtMs),
    fmtRatio(ratios(p99s.get(name)!, p99s.get("/healthz")!).median),
    fmtRatio(ratios(p99s.get(name)!, p99s.get(bareName)!).median),
    fmtCount(errors.get(name) ?? 0)
  ])
  const vsBare = ratios(dash, floor)
  const healthVsBare = ratios(base, floor)
  return {
    id: "http",
    title: "5. HTTP: the explorer under load",
    setup: [
      `MariaDB seeded with ${rows.toLocaleString("en")} synthetic ledger rows (\`app/seed.ts\`, ${seedS.toFixed(1)} s). Warm: one explorer process,`,
      `autocannon with ${connections} connections for ${durationS} s per run, \`/api/dashboard\` (cached) and \`/healthz\` (neither database`,
      `nor Redis) interleaved with a bare \`node:http\` server in its own process answering the same body and \`Content-Type\` as`,
      `\`/healthz\` (the floor of any Node server), ${rounds} rounds; autocannon runs in the benchmark process on the same two cores. Cold start:`,
      `${fleetSize} fresh explorer processes on a fresh tenant (keep-warm off), then ${burst} concurrent \`/api/dashboard\` requests spread`,
      "over them, each on its own connection."
    ].join(" "),
    tables: [
      {
        caption: "**Warm** (requests/s; latency p99 per run)",
        headers: ["route", "req/s (median)", "min – max", "ratio to `/healthz`", "ratio to bare `node:http`", "p99 (median)", "p99 min – max", "p99 ratio to `/healthz`", "p99 ratio to bare", "errors + non-2xx"],
        rows: rowsWarm
      },
      {
        caption: `**Cold start**: ${burst} concurrent requests on ${fleetSize} cold processes`,
        headers: ["producer runs (all servers' metrics)", "SELECTs on MariaDB (Com_select Δ)", "errors", "last answer after", "answers by X-Cache"],
        rows: [[
          String(cold.runs),
          String(cold.selects),
          `${cold.errors}${cold.firstError ? ` (first: ${cold.firstError})` : ""}`,
          fmtMs(cold.totalMs),
          Object.entries(cold.cache).map(([k, v]) => `${k} ${v}`).join(", ")
        ]]
      }
    ],
    targets: [
      judge("http.throughput", thr.median, { smoke: ctx.smoke }),
      judge("http.p99", p99.median, { smoke: ctx.smoke }),
      { name: "dashboard throughput / bare `node:http` throughput", figure: fmtRatio(vsBare.median), target: "for information", met: undefined },
      { name: "healthz throughput / bare `node:http` throughput (the server stack's own cost)", figure: fmtRatio(healthVsBare.median), target: "for information", met: undefined },
      judge("http.cold.runs", cold.runs, { smoke: ctx.smoke }),
      judge("http.cold.errors", cold.errors, { smoke: ctx.smoke })
    ],
    notes: [
      "One dashboard run issues several SELECTs (span, balances, totals, daily series, active accounts), so the Com_select delta is a multiple of the runs."
    ],
    data: { warm: Object.fromEntries(warmResults), p99: Object.fromEntries(p99s), cold }
  }
}

export { runHttp as run }
