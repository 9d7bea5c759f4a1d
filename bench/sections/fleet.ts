/**
 * Section 4: the fleet stampede, on a real redis-server. `pods` processes (`bench/pod.ts`) each
 * fire `callers` concurrent calls at the same instant:
 * - `run` (fleet): on a cold key (no value anywhere), once per round and implementation;
 * - `runRollover` (rollover): at 10 consecutive window rollovers of a warm key.
 * Producer starts are reported by the pods over IPC as they happen and counted here, per key
 * and per window. For lockstep the target is exactly one start per window, and a cold burst
 * that completes within the producer time + 50 ms.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { programOf } from "../../test/support/bundles.js"
import { track } from "../children.js"
import type { BenchContext } from "../context.js"
import { sleep } from "../fixtures.js"
import { type FleetImplName, type ImplName, implNames } from "../impls.js"
import type { FromPod, ToPod } from "../pod.js"
import { cell, fmtCount, fmtMs, fmtRatio, interleave, ratios, type Section, summarize } from "../stats.js"
import { judge } from "../targets.js"

type BurstDone = Extract<FromPod, { t: "burst-done" }>
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export interface Start {
  readonly pod: number
  readonly impl: FleetImplName
  readonly key: string
  readonly at: number
}

/** The pods, and the parent's side of their IPC protocol. */
export class Fleet {
  readonly starts: Array<Start> = []
  private readonly waiting = new Map<string, { need: number; got: Array<FromPod>; resolve: (xs: Array<FromPod>) => void }>()
  private ids = 0
  private failure: Error | undefined

  private constructor(readonly children: ReadonlyArray<ChildProcess>) {
    for (const child of children) {
      child.on("message", (m: FromPod) => this.receive(m))
      child.once("exit", (code, signal) => {
        if (code !== 0 && !this.closing) this.fail(new Error(`pod ${child.pid} exited (${code ?? signal})`))
      })
    }
  }

  private closing = false

  static async spawn(n: number, redisPort: number, signal: AbortSignal): Promise<Fleet> {
    const pod = programOf("benchPod")
    const children = Array.from({ length: n }, (_, index) =>
      track(spawn(process.execPath, [...pod.execArgv, pod.script], {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        env: { ...process.env, POD_INDEX: String(index), REDIS_PORT: String(redisPort) }
      })))
    const fleet = new Fleet(children)
    await fleet.expect("hello", n, 45_000, signal)
    return fleet
  }

  private receive(m: FromPod) {
    if (m.t === "start") {
      this.starts.push(m)
      return
    }
    if (m.t === "error") {
      this.fail(new Error(`pod ${m.pod}: ${m.message}`))
      return
    }
    const key = m.t === "hello" ? "hello" : `${m.t}:${m.id}`
    const w = this.waiting.get(key)
    if (w === undefined) return
    w.got.push(m)
    if (w.got.length === w.need) {
      this.waiting.delete(key)
      w.resolve(w.got)
    }
  }

  private fail(e: Error) {
    this.failure ??= e
    for (const [, w] of this.waiting) w.resolve([])
    this.waiting.clear()
  }

  private expect(key: string, need: number, timeoutMs: number, signal: AbortSignal): Promise<Array<FromPod>> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure)
      const timer = setTimeout(() => {
        this.waiting.delete(key)
        reject(new Error(`fleet: ${key} not answered by every pod within ${timeoutMs} ms`))
      }, timeoutMs)
      const onAbort = () => {
        clearTimeout(timer)
        reject(signal.reason ?? new Error("aborted"))
      }
      signal.addEventListener("abort", onAbort, { once: true })
      this.waiting.set(key, {
        need,
        got: [],
        resolve: (xs) => {
          clearTimeout(timer)
          signal.removeEventListener("abort", onAbort)
          if (this.failure) reject(this.failure)
          else resolve(xs)
        }
      })
    })
  }

  private broadcast(m: ToPod) {
    for (const c of this.children) if (c.connected) c.send(m)
  }

  async setup(o: Omit<Extract<ToPod, { t: "setup" }>, "t" | "id">, signal: AbortSignal) {
    const id = ++this.ids
    const ready = this.expect(`ready:${id}`, this.children.length, 20_000, signal)
    this.broadcast({ t: "setup", id, ...o })
    await ready
  }

  async teardown(signal: AbortSignal) {
    const id = ++this.ids
    const ready = this.expect(`ready:${id}`, this.children.length, 10_000, signal)
    this.broadcast({ t: "teardown", id })
    await ready
  }

  /** Schedules a burst on the first `pods` pods (default: all); resolves with their reports. */
  burst(impl: FleetImplName, key: string, at: number, callers: number, signal: AbortSignal, pods = this.children.length): Promise<Array<BurstDone>> {
    const id = ++this.ids
    const done = this.expect(`burst-done:${id}`, pods, at - Date.now() + 15_000, signal)
    for (const c of this.children.slice(0, pods)) if (c.connected) c.send({ t: "burst", id, impl, key, at, callers } satisfies ToPod)
    return done as Promise<Array<BurstDone>>
  }

  /**
   * Sends a message (its `id` filled in) to the given pods (default: all) and resolves with
   * their replies of type `reply`, one per pod it was sent to.
   */
  ask<T extends FromPod["t"]>(
    message: DistributiveOmit<Extract<ToPod, { id: number }>, "id">,
    reply: T,
    signal: AbortSignal,
    o: { readonly pods?: ReadonlyArray<number>; readonly timeoutMs?: number } = {}
  ): Promise<Array<Extract<FromPod, { t: T }>>> {
    const id = this.nextId()
    const targets = o.pods ?? this.children.map((_, i) => i)
    const done = this.replies(reply, id, targets.length, signal, o.timeoutMs)
    for (const i of targets) this.send(i, { ...message, id } as ToPod)
    return done
  }

  nextId(): number {
    return ++this.ids
  }

  /** `need` replies of type `reply` that carry `id` (register before sending what they answer). */
  replies<T extends FromPod["t"]>(reply: T, id: number, need: number, signal: AbortSignal, timeoutMs = 15_000) {
    return this.expect(`${reply}:${id}`, need, timeoutMs, signal) as Promise<Array<Extract<FromPod, { t: T }>>>
  }

  send(pod: number, message: ToPod) {
    const c = this.children[pod]!
    if (c.connected) c.send(message)
  }

  get size() {
    return this.children.length
  }

  async close() {
    this.closing = true
    this.broadcast({ t: "exit" })
    await Promise.race([
      Promise.all(this.children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined))),
      sleep(process.env.BENCH_CPU_PROF_DIR ? 15_000 : 3_000) // a profiling pod writes its profile first
    ])
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  }
}

const shape = (ctx: BenchContext) => ({
  pods: ctx.smoke ? 2 : 8,
  callers: ctx.smoke ? 20 : 200,
  producerMs: ctx.smoke ? 100 : 250
})

const errorsNote = (bursts: ReadonlyArray<BurstDone>) => {
  const errors = bursts.reduce((n, b) => n + b.errors, 0)
  const first = bursts.find((b) => b.firstError !== undefined)?.firstError
  return errors === 0 ? "0 errors" : `${errors} errors (first: ${first})`
}

interface ColdRound {
  readonly starts: number
  readonly totalMs: number
  readonly lateMs: number
  readonly startLagMs: number
  readonly bursts: Array<BurstDone>
}

/** Interleaved rounds of cold bursts on the first `pods` pods, a new key per round and implementation. */
const coldRounds = async (
  ctx: BenchContext,
  fleet: Fleet,
  o: { readonly label: string; readonly pods: number; readonly callers: number; readonly impls: ReadonlyArray<FleetImplName>; readonly rounds: number }
): Promise<Map<FleetImplName, Array<ColdRound>>> => {
  const results = new Map<FleetImplName, Array<ColdRound>>(o.impls.map((n) => [n, []]))
  await interleave(o.impls.map((name) => ({ name })), o.rounds, async ({ name }, r) => {
    const key = `cold-${o.label}-${r}`
    const at = Date.now() + 150
    const bursts = await fleet.burst(name, key, at, o.callers, ctx.signal, o.pods)
    await sleep(100) // a start that a slow pod makes late still counts
    const mine = fleet.starts.filter((s) => s.impl === name && s.key === key)
    results.get(name)!.push({
      starts: mine.length,
      totalMs: Math.max(...bursts.map((b) => b.maxMs)),
      lateMs: Math.max(...bursts.map((b) => b.lateMs)),
      startLagMs: Math.min(...mine.map((s) => s.at)) - at,
      bursts
    })
    return mine.length
  }, ctx.signal)
  return results
}

const baselineName = "set-nx-px" as const
const displayName = (n: FleetImplName) => (n === baselineName ? "baseline: `SET NX PX` lock, followers poll `GET` every 5 ms" : n)

/**
 * Cold key, every pod at the same instant: (a) lockstep against its peers and the hand-written
 * `SET NX PX` baseline, 8 × 200 callers; (b) lockstep against the baseline on 4 of the same pods
 * × 250 callers.
 */
export const run = async (ctx: BenchContext): Promise<Section> => {
  const { pods, callers } = shape(ctx)
  const producerMs = ctx.smoke ? 30 : 50
  const rounds = ctx.smoke ? 1 : Math.max(5, ctx.rounds)
  const small = { pods: ctx.smoke ? 1 : 4, callers: ctx.smoke ? 25 : 250 }
  const warmBursts = ctx.smoke ? 1 : 10
  const everyone: ReadonlyArray<FleetImplName> = [...implNames, baselineName]
  const pair: ReadonlyArray<FleetImplName> = ["lockstep", baselineName]
  const t0 = performance.now()
  const fleet = await Fleet.spawn(pods, ctx.redis.port, ctx.signal)
  const spawnS = (performance.now() - t0) / 1000
  try {
    await fleet.setup({ namespace: `${ctx.runId}-cold`, windowMs: 3_600_000, peerTtlMs: 3_600_000, producerMs }, ctx.signal)
    // unmeasured bursts, interleaved, on keys of their own: connections open, and the code every
    // implementation runs per caller optimised by V8. After one burst it is still interpreted,
    // and lockstep's pods spent about four times the CPU per burst they spend on a running server
    // (`bench/timeline.ts` shows it)
    for (let i = 0; i < warmBursts; i++) {
      for (const impl of everyone) {
        await fleet.burst(impl, `warm-${impl}-${i}`, Date.now() + 50, callers, ctx.signal)
      }
    }
    await sleep(producerMs + 100)
    const shapes = [
      { label: `${pods}x${callers}`, pods, callers, impls: everyone, rounds },
      { label: `${small.pods}x${small.callers}`, pods: small.pods, callers: small.callers, impls: pair, rounds }
    ]
    const measured: Array<{ readonly shape: (typeof shapes)[number]; readonly results: Map<FleetImplName, Array<ColdRound>> }> = []
    for (const sh of shapes) measured.push({ shape: sh, results: await coldRounds(ctx, fleet, sh) })

    const [big] = measured
    const rows = big!.shape.impls.map((name) => {
      const xs = big!.results.get(name)!
      const starts = summarize(xs.map((x) => x.starts))
      const total = summarize(xs.map((x) => x.totalMs))
      const over = summarize(xs.map((x) => x.totalMs - producerMs))
      return [
        displayName(name),
        ...cell(starts, fmtCount),
        ...cell(total, fmtMs),
        fmtMs(over.median),
        `${(total.median / producerMs).toFixed(2)}×`,
        fmtMs(summarize(xs.map((x) => x.startLagMs)).median),
        errorsNote(xs.flatMap((x) => x.bursts))
      ]
    })
    const sideRows = measured.flatMap(({ shape: sh, results }) => {
      const base = results.get(baselineName)!
      return pair.map((name) => {
        const xs = results.get(name)!
        const over = xs.map((x) => x.totalMs - producerMs)
        return [
          `${sh.pods} × ${sh.callers}`,
          displayName(name),
          ...cell(summarize(xs.map((x) => x.starts)), fmtCount),
          ...cell(summarize(over), fmtMs),
          fmtRatio(ratios(xs.map((x) => x.totalMs), base.map((x) => x.totalMs)).median),
          fmtMs(summarize(xs.map((x) => x.startLagMs)).median),
          errorsNote(xs.flatMap((x) => x.bursts))
        ]
      })
    })
    const targets = measured.flatMap(({ shape: sh, results }, i) => {
      const lock = results.get("lockstep")!
      const base = results.get(baselineName)!
      const over = summarize(lock.map((x) => x.totalMs - producerMs))
      const which = i === 0 ? "large" : "small"
      const o = { smoke: ctx.smoke, ...(ctx.smoke ? { detail: `smoke: ${sh.pods} × ${sh.callers}` } : {}) }
      return [
        judge(`fleet.${which}.starts`, lock.map((x) => x.starts), o),
        judge(`fleet.${which}.overhead`, over.median, {
          ...o,
          detail: `${o.detail === undefined ? "" : `${o.detail}; `}\`SET NX PX\`: ${fmtMs(summarize(base.map((x) => x.totalMs - producerMs)).median)}`
        }),
        judge(`fleet.${which}.vs-setnx`, ratios(lock.map((x) => x.totalMs), base.map((x) => x.totalMs)).median, o)
      ]
    })
    const late = summarize([...measured.flatMap((m) => [...m.results.values()])].flat().map((x) => x.lateMs))
    return {
      id: "fleet",
      title: `4a. Fleet stampede on a cold key (${pods} processes × ${callers} callers, and ${small.pods} × ${small.callers})`,
      setup: [
        `${pods} processes (\`node --import tsx bench/pod.ts\`), each with every implementation on one redis-server, fire ${callers}`,
        `concurrent calls each at the same instant on a key with no value anywhere; the producer takes ${producerMs} ms.`,
        "Producer starts are sent to the parent over IPC as they happen and counted there. Total = the longest wait of any",
        `caller, from the instant its process fired. ${rounds} interleaved rounds, a new key each, after ${warmBursts} unmeasured`,
        "bursts per implementation on keys of their own, so that a cold key meets running servers, not code V8 has yet to",
        "optimise (`BENCH_TIMELINE`, `bench/timeline.ts`). Peers: bentocache L1+L2+bus,",
        "cache-manager L1+`@keyv/redis`, lru-cache (in-process only), async-cache-dedupe with Redis storage.",
        "bentocache keeps its default serialised L1 here: unserialised, it crashes when values arrive from other processes.",
        "The baseline is the lock a team writes by hand (`bench/impls.ts`, `makeSetNxPoll`): in-process single-flight, then",
        "`GET`; on a miss `SET lock NX PX 10000`; the winner produces, `SET`s the value and deletes its lock; the others poll",
        `\`GET\` every 5 ms. The second shape fires ${small.callers} callers on ${small.pods} of the same processes.`
      ].join(" "),
      tables: [
        {
          caption: `**Side by side**: lockstep against the \`SET NX PX\` baseline, same processes, same run (ratio: per-round total / the baseline's)`,
          headers: ["processes × callers", "implementation", "producer starts (median)", "min – max", "total − producer (median)", "min – max", "total / baseline", "first start after", "errors"],
          rows: sideRows
        },
        {
          caption: `**Every implementation**, ${pods} × ${callers}`,
          headers: ["implementation", "producer starts (median)", "min – max", "total (median)", "min – max", "total − producer", "total / producer", "first start after", "errors"],
          rows
        }
      ],
      targets,
      notes: [
        "First start after: from the burst instant to the first producer start anywhere (clock of the same machine).",
        `Spawning the ${pods} processes took ${spawnS.toFixed(1)} s. Bursts fired up to ${fmtMs(late.max)} after their instant (median ${fmtMs(late.median)}): event-loop delay on a loaded machine, not counted in the totals.`
      ],
      data: Object.fromEntries(measured.flatMap(({ shape: sh, results }) =>
        [...results].map(([k, v]) => [sh.label === shapes[0]!.label ? k : `${k}@${sh.label}`, v.map(({ bursts: _, ...x }) => x)])
      ))
    }
  } finally {
    await fleet.close()
  }
}

/** A warm key, every pod at each of 10 consecutive window rollovers. */
export const runRollover = async (ctx: BenchContext): Promise<Section> => {
  const { pods, callers } = shape(ctx)
  const windows = ctx.smoke ? 2 : 10
  const windowMs = ctx.smoke ? 250 : 500
  const producerMs = ctx.smoke ? 60 : 200
  const peerTtlMs = windowMs / 2
  const lagMs = 5
  const t0 = performance.now()
  const fleet = await Fleet.spawn(pods, ctx.redis.port, ctx.signal)
  const spawnS = (performance.now() - t0) / 1000
  try {
    await fleet.setup({ namespace: `${ctx.runId}-roll`, windowMs, peerTtlMs, producerMs }, ctx.signal)
    const results = new Map<ImplName, { perWindow: Array<number>; maxWait: Array<number>; bursts: Array<BurstDone> }>()
    for (const impl of implNames) {
      ctx.signal.throwIfAborted()
      const key = `roll-${impl}`
      const first = (Math.floor(Date.now() / windowMs) + 2) * windowMs + lagMs
      const instants = Array.from({ length: windows + 1 }, (_, k) => first + k * windowMs)
      // instant 0 warms the key (cold start, not counted); 1..windows are the rollovers
      const done = instants.map((at) => fleet.burst(impl, key, at, callers, ctx.signal))
      const reports = await Promise.all(done)
      await sleep(producerMs + 100)
      const mine = fleet.starts.filter((s) => s.impl === impl && s.key === key)
      const perWindow = instants.slice(1).map((at, k) => {
        const end = instants[k + 2] ?? Number.POSITIVE_INFINITY
        return mine.filter((s) => s.at >= at && s.at < end).length
      })
      results.set(impl, {
        perWindow,
        maxWait: reports.slice(1).map((bs) => Math.max(...bs.map((b) => b.maxMs))),
        bursts: reports.slice(1).flat()
      })
    }
    const rows = implNames.map((name) => {
      const r = results.get(name)!
      return [
        name,
        ...cell(summarize(r.perWindow), fmtCount),
        String(r.perWindow.reduce((a, b) => a + b, 0)),
        `${r.perWindow.filter((x) => x === 1).length}/${windows}`,
        ...cell(summarize(r.maxWait), fmtMs),
        errorsNote(r.bursts)
      ]
    })
    const lock = results.get("lockstep")!.perWindow
    return {
      id: "rollover",
      title: `4b. Fleet at ${windows} consecutive window rollovers (${pods} processes × ${callers} callers)`,
      setup: [
        `The same fleet; a warm key; at ${lagMs} ms past each of ${windows} consecutive boundaries of a ${windowMs} ms window, every`,
        `process fires ${callers} concurrent calls. The producer takes ${producerMs} ms. lockstep's windows are epoch-aligned; the`,
        `peers have no windows, so they get a TTL of ${peerTtlMs} ms, which makes every burst meet an expired entry (a rollover`,
        "for them too). async-cache-dedupe counts TTLs in whole seconds (1 s here), so only some of its bursts meet one.",
        "Starts are attributed to the burst they follow. Each window is one sample."
      ].join(" "),
      tables: [{
        headers: ["implementation", "starts per window (median)", "min – max", "starts in all", "windows with exactly 1", "longest wait (median)", "min – max", "errors"],
        rows
      }],
      targets: [judge("rollover.starts", lock, { smoke: ctx.smoke })],
      notes: [`Spawning the ${pods} processes took ${spawnS.toFixed(1)} s.`],
      data: Object.fromEntries([...results].map(([k, v]) => [k, { perWindow: v.perWindow, maxWait: v.maxWait }]))
    }
  } finally {
    await fleet.close()
  }
}
