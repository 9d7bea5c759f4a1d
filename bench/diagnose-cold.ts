/**
 * Where a cold burst's time goes, in one process: 1000 callers on a key with no value anywhere,
 * a 50 ms producer, Effect's `Cache` and lockstep over Redis and over the in-memory store, in
 * interleaved rounds. For each, the medians of:
 *
 * - `launch`: the synchronous loop that fires the callers (each its own `runPromise`);
 * - `lookup`: when the lookup started (lockstep: once the claim's reply was handled, which the
 *   launch holds back; `Cache`: inside the first caller);
 * - `fan-out`: from the lookup's end to the first caller's answer, and `last`: to the last one's;
 * - `over`: the longest wait less the producer's time (the section's figure).
 *
 *   npx tsx bench/diagnose-cold.ts [--rounds=11] [--callers=1000]
 */
import * as Cache from "effect/Cache"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRefs from "effect/FiberRefs"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import { Memo, Redis } from "../src/index.js"
import { startRedis } from "../test/support/services.js"
import { Dashboard, dashboard, sleep } from "./fixtures.js"
import { renderTable } from "./stats.js"

const arg = (name: string, fallback: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? fallback : Number(a.slice(name.length + 3))
}

const producerMs = 50

const main = async () => {
  const rounds = arg("rounds", 11)
  const callers = arg("callers", 1_000)
  const redis = await startRedis()
  const make = async (name: string) => {
    const run = { start: 0, end: 0 }
    const lookup = (k: string) =>
      Effect.promise(async () => {
        run.start = performance.now()
        await sleep(producerMs)
        run.end = performance.now()
        return dashboard(k)
      })
    if (name === "Effect `Cache`") {
      const cache = await Effect.runPromise(Cache.make({ capacity: 20_000, timeToLive: 3_600_000, lookup }))
      return { name, run, call: (k: string) => Effect.runPromise(cache.get(k)), close: async () => {} }
    }
    const store = name.endsWith("memory")
      ? Redis.layerMemory
      : Redis.layer({ redis: { host: "127.0.0.1", port: redis.port }, tenant: "diag-cold" })
    const runtime = ManagedRuntime.make(Memo.layerWith({ l1Capacity: 20_000 }).pipe(Layer.provide(store)))
    const loader = Memo.loader({ key: (k: string) => k, window: 3_600_000, schema: Dashboard, lookup })
    await runtime.runPromise(loader.get(`connect:${name}`))
    const built = await runtime.runtime()
    // as the section's callers: `Effect.runPromise`'s runtime plus the `Memo` service
    const runPromise = Runtime.runPromise(Runtime.make({
      context: Context.make(Memo.Memo, Context.get(built.context, Memo.Memo)),
      fiberRefs: FiberRefs.empty(),
      runtimeFlags: Runtime.defaultRuntimeFlags
    }))
    return { name, run, call: (k: string) => runPromise(loader.get(k)), close: () => runtime.dispose() }
  }
  const contenders = [await make("Effect `Cache`"), await make("lockstep, Redis"), await make("lockstep, memory")]
  const figures = new Map<string, Array<Record<"launch" | "lookup" | "fanout" | "last" | "over", number>>>()
  try {
    for (let r = -1; r < rounds; r++) {
      for (const c of r % 2 === 0 ? contenders : [...contenders].reverse()) {
        const key = `cold:${r}`
        let first = 0
        const t0 = performance.now()
        const answers = Array.from({ length: callers }, () =>
          c.call(key).then(() => {
            const t = performance.now()
            if (first === 0) first = t
            return t
          }))
        const launched = performance.now()
        const last = Math.max(...await Promise.all(answers))
        if (r >= 0) {
          figures.set(c.name, [...(figures.get(c.name) ?? []), {
            launch: launched - t0,
            lookup: c.run.start - t0,
            fanout: first - c.run.end,
            last: last - c.run.end,
            over: last - t0 - producerMs
          }])
        }
        await sleep(20)
      }
    }
    const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
    const columns = ["launch", "lookup", "fanout", "last", "over"] as const
    process.stdout.write(renderTable({
      caption: `A cold burst of ${callers} callers, ${producerMs} ms producer: medians of ${rounds} rounds (ms from the burst's start; fan-out and last from the lookup's end)`,
      headers: ["implementation", "launch", "lookup starts", "first answer", "last answer", "longest wait − producer"],
      rows: contenders.map((c) => [c.name, ...columns.map((k) => median(figures.get(c.name)!.map((f) => f[k])).toFixed(2))])
    }) + "\n")
  } finally {
    for (const c of contenders) await c.close()
    await redis.stop()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
