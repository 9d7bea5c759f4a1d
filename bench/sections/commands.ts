/**
 * Section: Redis commands per key per window, counted by the server (`INFO commandstats`, reset
 * with `CONFIG RESETSTAT`).
 * - A warm key on `pods` processes (`bench/pod.ts`, watch protocol) under continuous load, for
 *   several windows with nothing invalidated: every command the fleet sends, per window.
 * - Per request type, in this process: a cold key's first load, an L2 read (a fresh runtime,
 *   the value in Redis), an L1 hit.
 * The benchmark's own `CONFIG` and `INFO` are left out of the counts.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis as IORedis } from "ioredis"
import { Memo, Redis } from "../../src/index.js"
import type { BenchContext } from "../context.js"
import { Dashboard, dashboard, sleep } from "../fixtures.js"
import { fmtCount, type Section, summarize } from "../stats.js"
import { Fleet } from "./fleet.js"
import { judge } from "../targets.js"

/** `cmdstat_<name>:calls=N,...` lines of `INFO commandstats`, the harness's own commands left out. */
export const commandStats = async (client: IORedis): Promise<Map<string, number>> => {
  const text = await client.info("commandstats")
  const out = new Map<string, number>()
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = m[1]!
    if (name === "info" || name === "echo" || name.startsWith("config")) continue
    out.set(name, Number(m[2]))
  }
  return out
}

/**
 * Every command the server runs, from `MONITOR`, split by where it came from: sent by a client,
 * or called by a Lua script (`INFO commandstats` counts both alike). The counted span is
 * between the harness's two `ECHO` markers (`MONITOR` does not show `CONFIG`), as the server
 * saw them: `reset` sends the first with `CONFIG RESETSTAT`, `stats` the second with `INFO`.
 */
const monitor = async (ctx: BenchContext, harness: string) => {
  const client = new IORedis({ host: ctx.redis.host, port: ctx.redis.port })
  const m = await client.monitor()
  let counting = false
  let client_ = new Map<string, number>()
  let script = new Map<string, number>()
  m.on("monitor", (_time: string, args: Array<string>, source: string) => {
    const name = (args[0] ?? "").toLowerCase()
    if (source === harness && name === "echo" && args[1] === "lockstep:count:start") {
      counting = true
      client_ = new Map()
      script = new Map()
      return
    }
    if (source === harness && name === "echo" && args[1] === "lockstep:count:stop") {
      counting = false
      return
    }
    if (!counting) return
    const into = source === "lua" ? script : client_
    into.set(name, (into.get(name) ?? 0) + 1)
  })
  return {
    reset: async (admin: IORedis) => {
      await admin.config("RESETSTAT")
      await admin.echo("lockstep:count:start")
    },
    /** `INFO commandstats`, and what `MONITOR` saw since `reset`. */
    stats: async (admin: IORedis) => {
      await admin.echo("lockstep:count:stop")
      const all = await commandStats(admin)
      await sleep(50) // the monitor stream trails the server a little
      return { all, client: client_, script }
    },
    close: () => {
      m.disconnect()
      client.disconnect()
    }
  }
}

interface Counted {
  readonly all: Map<string, number>
  readonly client: Map<string, number>
  readonly script: Map<string, number>
}

const total = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
const breakdown = (m: ReadonlyMap<string, number>, per = 1) =>
  [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmtCount(Math.round((v / per) * 10) / 10)}`).join(", ") || "none"

export const run = async (ctx: BenchContext): Promise<Section> => {
  const pods = ctx.smoke ? 2 : 4
  const windowMs = ctx.smoke ? 400 : 1_000
  const windows = ctx.smoke ? 2 : 6
  const producerMs = 50
  const callers = ctx.smoke ? 2 : 10
  const admin = new IORedis({ host: ctx.redis.host, port: ctx.redis.port })
  await admin.ping()
  const mon = await monitor(ctx, `127.0.0.1:${(admin as unknown as { stream: { localPort: number } }).stream.localPort}`)
  try {
    // 1. the fleet, a warm key, several windows
    const key = `${ctx.runId}:commands`
    const fleet = await Fleet.spawn(pods, ctx.redis.port, ctx.signal)
    let fleetStats: Map<string, number>
    let fleetSplit: { client: Map<string, number>; script: Map<string, number> }
    let startsInWindows: number
    try {
      await fleet.ask({ t: "watch-setup", namespace: `${ctx.runId}-cmd`, key, windowMs, producerMs }, "ready", ctx.signal, { timeoutMs: 20_000 })
      await fleet.ask({ t: "loop", callers, everyMs: 1 }, "ready", ctx.signal)
      // from the middle of a window to the middle of the window `windows` later: `windows` boundaries
      const now = Date.now()
      const mid = (Math.floor(now / windowMs) + 2) * windowMs + windowMs / 2
      await sleep(mid - now)
      await mon.reset(admin)
      const startsBefore = fleet.starts.length
      await sleep(windows * windowMs - (Date.now() - mid))
      const counted = await mon.stats(admin)
      fleetStats = counted.all
      fleetSplit = counted
      startsInWindows = fleet.starts.length - startsBefore
      await fleet.ask({ t: "loop-stop" }, "ready", ctx.signal)
    } finally {
      await fleet.close()
    }

    // 2. per request type, in this process
    let runs = 0
    const loader = Memo.loader({
      key: (k: string) => k,
      window: 24 * 3_600_000,
      schema: Dashboard,
      lookup: (k: string) => Effect.promise(() => sleep(producerMs).then(() => dashboard(k, ++runs)))
    })
    const fresh = async () => {
      const runtime = ManagedRuntime.make(
        Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: ctx.redis.host, port: ctx.redis.port }, tenant: `${ctx.runId}-cmd1` })))
      )
      // connects, loads the scripts and subscribes on a key outside the counted ones
      await runtime.runPromise(loader.get(`${ctx.runId}:cmd:connect:${Math.random()}`))
      await sleep(50)
      return runtime
    }
    const count = async (f: () => Promise<unknown>): Promise<Counted> => {
      await mon.reset(admin)
      await f()
      await sleep(100) // what the request set going in the background (commit, publish) counts too
      return mon.stats(admin)
    }
    const samples = ctx.smoke ? 1 : 3
    const perType = { cold: [] as Array<Counted>, l2: [] as Array<Counted>, l1: [] as Array<Counted> }
    for (let i = 0; i < samples; i++) {
      ctx.signal.throwIfAborted()
      const k = `${ctx.runId}:cmd:type:${i}`
      const a = await fresh()
      try {
        perType.cold.push(await count(() => a.runPromise(loader.get(k))))
        perType.l1.push(await count(() => a.runPromise(loader.get(k))))
      } finally {
        await a.dispose()
      }
      const b = await fresh()
      try {
        perType.l2.push(await count(() => b.runPromise(loader.get(k))))
      } finally {
        await b.dispose()
      }
    }

    const perWindow = total(fleetStats) / windows
    const sentPerWindow = total(fleetSplit.client) / windows
    const bound = pods + 2
    const typeRow = (what: string, xs: ReadonlyArray<Counted>) => {
      const all = summarize(xs.map((x) => total(x.all)))
      const sent = summarize(xs.map((x) => total(x.client)))
      const range = (s: typeof all) => (s.n > 1 ? `${fmtCount(s.min)} – ${fmtCount(s.max)}` : "–")
      return [what, fmtCount(sent.median), range(sent), breakdown(xs[0]?.client ?? new Map()), fmtCount(all.median), breakdown(xs[0]?.script ?? new Map())]
    }
    const r1 = (x: number) => fmtCount(Math.round(x * 10) / 10)
    return {
      id: "commands",
      title: `Redis commands per key per window (${pods} processes, a warm key, ${windows} windows)`,
      setup: [
        `${pods} processes (\`bench/pod.ts\`) each run one lockstep \`Memo.loader\` (window ${windowMs} ms, lookup ${producerMs} ms) and`,
        `call \`get\` on one warm key continuously (${callers} callers each, one call per millisecond per caller). From the middle of a`,
        `window, \`CONFIG RESETSTAT\`, then \`INFO commandstats\` ${windows} windows later: every command the fleet sent over`,
        `${windows} window boundaries, nothing invalidated. Per request type: one process, \`CONFIG RESETSTAT\` before the request and`,
        "`INFO commandstats` 100 ms after it (so the commit and its notice count), on a runtime that is already connected and",
        `subscribed; ${samples} sample(s) each. The benchmark's own \`CONFIG\`, \`ECHO\` (markers) and \`INFO\` are not counted. A \`MONITOR\` connection`,
        "over the same span tells the commands the processes sent from those their Lua scripts called."
      ].join(" "),
      tables: [
        {
          caption: `**Warm key under load**, commands per window for the whole fleet (${windows} windows; ${r1(startsInWindows / windows)} producer starts per window)`,
          headers: ["counted", "per key per window", "bound: processes + 2", "within", "by command (per window)"],
          rows: [
            ["sent by the processes (round trips to Redis)", r1(sentPerWindow), String(bound), sentPerWindow <= bound ? "yes" : "no", breakdown(fleetSplit.client, windows)],
            ["run by the server (`INFO commandstats`: sent + called inside Lua scripts)", r1(perWindow), String(bound), perWindow <= bound ? "yes" : "no", breakdown(fleetStats, windows)],
            ["of which called inside Lua scripts (`MONITOR`)", r1(total(fleetSplit.script) / windows), "", "", breakdown(fleetSplit.script, windows)]
          ]
        },
        {
          caption: "**Per request type**, one process (commands per request)",
          headers: ["request", "sent (median)", "min – max", "sent, by command (first sample)", "run by the server (median)", "called inside scripts (first sample)"],
          rows: [
            typeRow("a cold key's first load (lookup runs, commit, notice)", perType.cold),
            typeRow("an L2 read (fresh runtime, value in Redis)", perType.l2),
            typeRow("an L1 hit", perType.l1)
          ]
        }
      ],
      targets: [
        judge("commands.sent", Math.round(sentPerWindow * 10) / 10, { scale: pods, smoke: ctx.smoke, detail: `${pods} processes` }),
        {
          name: "commands run by the server per key per window (`INFO commandstats`, script calls included)",
          figure: r1(perWindow),
          target: `for information; processes + 2 = ${bound}`,
          met: undefined
        }
      ],
      notes: [
        "Pub/sub deliveries are not commands: a `publish` counts once however many processes receive it.",
        "`INFO commandstats` counts a command a Lua script calls (`redis.call`) like one a client sends; `MONITOR` tells them apart (source `lua`). The bound is compared with both; which one the issue means is not for this benchmark to decide."
      ],
      data: {
        fleet: Object.fromEntries(fleetStats),
        fleetSent: Object.fromEntries(fleetSplit.client),
        fleetInScripts: Object.fromEntries(fleetSplit.script),
        windows,
        pods,
        perType: Object.fromEntries(Object.entries(perType).map(([k, v]) => [k, v.map((c) => ({ all: Object.fromEntries(c.all), sent: Object.fromEntries(c.client) }))]))
      }
    }
  } finally {
    mon.close()
    admin.disconnect()
  }
}
