/**
 * Section: a cold stampede in one process. `callers` concurrent calls on a key with no value
 * anywhere, the producer taking 50 ms: lockstep (over the bench's redis-server, and over the
 * in-memory store) against Effect's own `Cache` (in-process single-flight, no shared tier), in
 * interleaved rounds, a new key per round. Figure: the longest wait of any caller, less the
 * producer time.
 */
import * as Cache from "effect/Cache"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRefs from "effect/FiberRefs"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import { Memo, Redis } from "../../src/index.js"
import type { BenchContext } from "../context.js"
import { Dashboard, dashboard, sleep } from "../fixtures.js"
import { cell, fmtCount, fmtMs, fmtRatio, interleave, ratios, type Section, summarize } from "../stats.js"
import { judge } from "../targets.js"

const names = {
  cache: "Effect `Cache.get` (in-process)",
  redis: "lockstep `loader.get`, `Redis.layer`",
  memory: "lockstep `loader.get`, `Redis.layerMemory`"
} as const

const shape = (ctx: BenchContext) => ({ callers: ctx.smoke ? 50 : 1_000, producerMs: 50 })

interface Contender {
  readonly name: string
  /** Fires `callers` calls on `key` at once; resolves with the longest wait (ms). */
  readonly burst: (key: string, callers: number) => Promise<number>
  readonly starts: Map<string, number>
  readonly close: () => Promise<void>
}

const burstOf = (call: (key: string) => Promise<unknown>) => async (key: string, callers: number) => {
  const t0 = performance.now()
  const waits = await Promise.all(Array.from({ length: callers }, () => call(key).then(() => performance.now() - t0)))
  return Math.max(...waits)
}

const contenders = async (ctx: BenchContext, producerMs: number, only?: ReadonlyArray<string>): Promise<Array<Contender>> => {
  const make = async (name: string): Promise<Contender> => {
    const starts = new Map<string, number>()
    const lookup = (k: string) =>
      Effect.promise(async () => {
        starts.set(k, (starts.get(k) ?? 0) + 1)
        await sleep(producerMs)
        return dashboard(k)
      })
    if (name === names.cache) {
      const cache = await Effect.runPromise(Cache.make({ capacity: 20_000, timeToLive: 3_600_000, lookup }))
      return { name, starts, burst: burstOf((k) => Effect.runPromise(cache.get(k))), close: async () => {} }
    }
    const store = name === names.memory
      ? Redis.layerMemory
      : Redis.layer({ redis: { host: ctx.redis.host, port: ctx.redis.port }, tenant: `${ctx.runId}-cold1` })
    const runtime = ManagedRuntime.make(Memo.layerWith({ l1Capacity: 20_000 }).pipe(Layer.provide(store)))
    const loader = Memo.loader({ key: (k: string) => k, window: 3_600_000, schema: Dashboard, lookup })
    await runtime.runPromise(loader.get(`${ctx.runId}:cold1:connect:${name}`)) // connects, loads scripts, subscribes
    // each caller its own `runPromise` on `Effect.runPromise`'s runtime plus the `Memo` service,
    // as `Cache`'s callers get: `ManagedRuntime.runPromise` itself costs more per call (L1 section)
    const built = await runtime.runtime()
    const run = Runtime.runPromise(Runtime.make({
      context: Context.make(Memo.Memo, Context.get(built.context, Memo.Memo)),
      fiberRefs: FiberRefs.empty(),
      runtimeFlags: Runtime.defaultRuntimeFlags
    }))
    return { name, starts, burst: burstOf((k) => run(loader.get(k))), close: () => runtime.dispose() }
  }
  return Promise.all(Object.values(names).filter((n) => only === undefined || only.includes(n)).map(make))
}

export const run = async (ctx: BenchContext): Promise<Section> => {
  const { callers, producerMs } = shape(ctx)
  const rounds = ctx.smoke ? 1 : Math.max(7, ctx.rounds)
  const cs = await contenders(ctx, producerMs)
  try {
    for (const c of cs) await c.burst(`${ctx.runId}:cold1:warm`, callers) // one unmeasured burst each
    const totals = await interleave(cs, rounds, (c, r) => c.burst(`${ctx.runId}:cold1:${r}`, callers), ctx.signal)
    const base = totals.get(names.cache)!
    const rows = cs.map((c) => {
      const t = totals.get(c.name)!
      const over = t.map((x) => x - producerMs)
      const starts = [...c.starts].filter(([k]) => k.startsWith(`${ctx.runId}:cold1:`) && !k.includes(":warm") && !k.includes(":connect")).map(([, v]) => v)
      return [
        c.name,
        ...cell(summarize(t), fmtMs),
        ...cell(summarize(over), fmtMs),
        fmtRatio(ratios(t, base).median),
        fmtRatio(ratios(over, base.map((x) => x - producerMs)).median),
        fmtCount(summarize(starts).max)
      ]
    })
    const lockOver = summarize(totals.get(names.redis)!.map((x) => x - producerMs))
    const redisStarts = [...cs.find((c) => c.name === names.redis)!.starts]
      .filter(([k]) => k.startsWith(`${ctx.runId}:cold1:`) && !k.includes(":warm") && !k.includes(":connect"))
      .map(([, v]) => v)
    const baseOver = summarize(base.map((x) => x - producerMs))
    return {
      id: "cold",
      title: `Cold stampede in one process (${callers} callers, ${producerMs} ms producer)`,
      setup: [
        `${callers} concurrent calls, each its own \`runPromise\`, on a key with no value anywhere; the producer takes ${producerMs} ms.`,
        `Total = the longest wait of any caller. ${rounds} interleaved rounds, a new key each, one unmeasured burst before. Effect's`,
        "`Cache` is in-process single-flight with no shared tier; lockstep over Redis also claims the fleet lock, commits the value",
        "and publishes the commit before the callers are answered; over the in-memory store it does the same in process."
      ].join(" "),
      tables: [{
        headers: ["implementation", "total (median)", "min – max", "total − producer (median)", "min – max", "total / `Cache`", "(total − producer) / `Cache`'s", "starts per key (max)"],
        rows
      }],
      targets: [
        judge("cold.overhead", lockOver.median, { smoke: ctx.smoke, detail: `Effect \`Cache\`: ${fmtMs(baseOver.median)}` }),
        judge("cold.vs-cache", ratios(totals.get(names.redis)!.map((x) => x - producerMs), base.map((x) => x - producerMs)).median, { smoke: ctx.smoke }),
        judge("cold.starts", redisStarts, { smoke: ctx.smoke })
      ],
      notes: [],
      data: Object.fromEntries(totals)
    }
  } finally {
    await Promise.all(cs.map((c) => c.close()))
  }
}

/** The profiled workload: lockstep over Redis alone, the same bursts. */
export const profile = async (ctx: BenchContext): Promise<void> => {
  const { callers, producerMs } = shape(ctx)
  const [c] = await contenders(ctx, producerMs, [names.redis])
  try {
    for (let r = 0; r < (ctx.smoke ? 2 : 20); r++) await c!.burst(`${ctx.runId}:cold1:prof:${r}`, callers)
  } finally {
    await c!.close()
  }
}
