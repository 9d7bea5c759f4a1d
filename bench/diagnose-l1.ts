/**
 * Where the L1 hit goes: the current `memo` hit path against variants of it, rebuilt here on
 * the runtime's own L1 map, in the same interleaved rounds as the main benchmark.
 *
 *   npx tsx bench/diagnose-l1.ts [--keys=1] [--rounds=9]
 *
 * - `current`: `Memo.memo` as shipped (`lookup` in src/Memo.ts: `contextWithEffect` → `clockWith`
 *   → `Effect.succeed`, and `Metrics.requestsL1.unsafeUpdate(1, [])`);
 * - `one op`: the same decision in a single `Effect.withFiberRuntime` (context and clock read
 *   from the fiber), returning `Effect.succeed`;
 * - `+ cached metric`: and the counter updated through labels fixed once, so Effect's metric
 *   hook cache hits (a tagged metric called with `[]` re-derives its key on every call);
 * - `no metric`: the decision alone.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as MetricLabel from "effect/MetricLabel"
import * as Runtime from "effect/Runtime"
import { Memo, Metrics } from "../src/index.js"
import type { Engine } from "../src/internal/memo/runtime.js"
import { keysOf, producer } from "./fixtures.js"
import { makeLockstep } from "./impls.js"
import { blackhole, fmtOps, fmtRatio, interleave, ratios, renderTable, summarize, throughput } from "./stats.js"

const arg = (name: string, fallback: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? fallback : Number(a.slice(name.length + 3))
}

const l1Labels = [MetricLabel.make("result", "l1")]

const variant = (key: string, windowMs: number, metric: "tagged" | "cached" | "none") =>
  Effect.withFiberRuntime<unknown, string>((fiber) => {
    // a diagnosis of the engine's hit path: it reads the engine's own L1, which nothing else may
    const runtime = Context.get(fiber.getFiberRef(FiberRef.currentContext) as Context.Context<Memo.Memo>, Memo.Memo) as unknown as Engine
    const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis() + runtime.clock.skew
    const held = runtime.l1.entries.get(key)
    if (held !== undefined && held.windowMs === windowMs && held.freshThrough >= Math.floor(now / windowMs)) {
      if (metric === "tagged") Metrics.requestsL1.unsafeUpdate(1, [])
      else if (metric === "cached") Metrics.requests.unsafeUpdate(1, l1Labels)
      return Effect.succeed(held.value)
    }
    return Effect.fail("not an L1 hit")
  })

const main = async () => {
  const k = arg("keys", 1)
  const rounds = arg("rounds", 9)
  const windowMs = 24 * 3_600_000
  const keys = keysOf("diag", k)
  const lockstep = await makeLockstep({ redis: undefined, namespace: "diag", windowMs, produce: producer(0), capacity: 20_000 })
  try {
    const managed = await lockstep.runtime.runtime()
    const run = Runtime.runPromise(Runtime.make({
      context: Context.make(Memo.Memo, Context.get(managed.context, Memo.Memo)),
      fiberRefs: FiberRefs.empty(),
      runtimeFlags: Runtime.defaultRuntimeFlags
    }))
    const current = lockstep.effects(keys)
    for (const e of current) await run(e)
    const map = new Map(keys.map((key, i) => [key, i]))
    const sets: Record<string, ReadonlyArray<Effect.Effect<unknown, unknown, Memo.Memo>>> = {
      "floor: Effect.sync(map.get)": keys.map((key) => Effect.sync(() => map.get(key))),
      "current memo": current,
      "one op, tagged metric (as now)": keys.map((key) => variant(key, windowMs, "tagged")),
      "one op + cached metric": keys.map((key) => variant(key, windowMs, "cached")),
      "one op, no metric": keys.map((key) => variant(key, windowMs, "none"))
    }
    const runners = Object.entries(sets).flatMap(([name, effects]) => {
      let i = 0
      const next = () => {
        const e = effects[i]!
        i = i + 1 === k ? 0 : i + 1
        return e
      }
      return [
        {
          name: `${name} | runPromise per call`,
          step: async (n: number) => {
            for (let j = 0; j < n; j++) blackhole.value = await run(next())
          }
        },
        {
          name: `${name} | in one fiber`,
          step: (n: number) =>
            run(Effect.gen(function*() {
              for (let j = 0; j < n; j++) blackhole.value = yield* next()
            }))
        }
      ]
    })
    for (const r of runners) await throughput(60, 500, r.step)
    const ops = await interleave(runners, rounds, (r) => throughput(120, 500, r.step))
    const rows = runners.map((r) => {
      const mode = r.name.split(" | ")[1]!
      const base = ops.get(`floor: Effect.sync(map.get) | ${mode}`)!
      const cur = ops.get(`current memo | ${mode}`)!
      const s = summarize(ops.get(r.name)!)
      return [r.name, fmtOps(s.median), `${fmtOps(s.min)} – ${fmtOps(s.max)}`, fmtRatio(ratios(ops.get(r.name)!, base).median), fmtRatio(ratios(ops.get(r.name)!, cur).median)]
    })
    process.stdout.write(renderTable({
      caption: `L1 hit variants, ${k} key(s), ${rounds} rounds (calls/s)`,
      headers: ["variant | mode", "calls/s", "min – max", "/ floor", "/ current"],
      rows
    }) + "\n")
  } finally {
    await lockstep.close()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
