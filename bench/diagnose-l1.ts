/**
 * Where the L1 hit goes: lockstep's hit as shipped against variants of it that each leave one
 * part out, rebuilt here on the runtime's own L1, in interleaved rounds. Two shapes, as in the
 * benchmark's sections:
 *
 *   npx tsx bench/diagnose-l1.ts [--keys=10000] [--rounds=9] [--shape=keyed|memo] [--wall]
 *   npx tsx bench/diagnose-l1.ts --shape=keyed --profile=shipped   (a CPU profile of one variant)
 *
 * - `keyed` (section "Keyed loader hit"): one `Memo.loader` keyed by id, the key built per call,
 *   one `ManagedRuntime.runPromise` per call; baselines `Effect.sync(() => map.get(key(id)))` and
 *   Effect's `Cache.get` on the same runtime.
 * - `memo` (section "L1 hit"): `Memo.memo` built once per key, `Runtime.runPromise` on a runtime
 *   like `Effect.runPromise`'s plus the `Memo` service; baseline `Effect.runPromise(Effect.sync(map.get))`.
 *
 * Variants (each answers hits only):
 * - `one step`: the same hit in one `Effect.sync`, the fiber read with `Fiber.getCurrentFiber`
 *   (what the second run-loop step, `commit` then the answer, costs);
 * - `no count`: without the hit metric (the entry still counts its hits);
 * - `no clock`: without reading the `Clock` (a fixed instant);
 * - `values map`: a map of values instead of L1's entries (what the entry's indirection costs).
 *
 * Figures are calls per second of this process's CPU time (user + system), since the machine is
 * shared and wall time is mostly other processes' load; `--wall` measures wall time instead.
 */
import * as Cache from "effect/Cache"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRefs from "effect/FiberRefs"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { Memo, Redis } from "../src/index.js"
import * as L1 from "../src/internal/memo/l1.js"
import type { Engine } from "../src/internal/memo/runtime.js"
import { Dashboard, dashboard } from "./fixtures.js"
import * as Profile from "./profile.js"
import { cpuTime, cycling, fmtOps, fmtRatio, interleave, ratios, renderTable, summarize, throughput, wallTime } from "./stats.js"

const arg = (name: string, fallback: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? fallback : Number(a.slice(name.length + 3))
}
const text = (name: string) => process.argv.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3)

const memoKey = Memo.Memo.key
const clockKey = Clock.Clock.key
const noCount = () => {}

type Part = "shipped" | "one step" | "no count" | "no clock"

/** The hit of `key` as `request` in src/Memo.ts answers it, less `part`. */
const hitOf = (fiber: Fiber.RuntimeFiber<any, any>, key: string, windowMs: number, part: Part): unknown => {
  const engine = fiber.currentContext.unsafeMap.get(memoKey) as Engine
  const t = part === "no clock" ? fixedNow : (fiber.currentDefaultServices.unsafeMap.get(clockKey) as Clock.Clock).unsafeCurrentTimeMillis()
  const held = L1.hit(engine.l1, key, windowMs, t + engine.clock.skew, t + engine.clock.offset, part === "no count" ? noCount : undefined)
  if (held === undefined) throw new Error(`not an L1 hit: ${key}`)
  return held.value
}
let fixedNow = 0

const variant = (key: () => string, windowMs: number, part: Part): Effect.Effect<unknown, never, Memo.Memo> =>
  part === "one step"
    ? Effect.sync(() => hitOf(Option.getOrThrow(Fiber.getCurrentFiber()), key(), windowMs, part))
    : Effect.withFiberRuntime((fiber) => Exit.succeed(hitOf(fiber, key(), windowMs, part)))

const main = async () => {
  const k = arg("keys", 10_000)
  const rounds = arg("rounds", 9)
  const shape = text("shape") ?? "keyed"
  const profile = text("profile")
  const wall = process.argv.includes("--wall")
  const measure = (ms: number, chunk: number, step: (n: number) => Promise<void>) => throughput(ms, chunk, step, wall ? wallTime : cpuTime)
  const windowMs = 24 * 3_600_000
  const keyOf = (id: number) => `market:item:${id}`
  const ids = Array.from({ length: k }, (_, i) => i + 1)
  const keys = ids.map(keyOf)
  const values = new Map(ids.map((id) => [keyOf(id), dashboard(keyOf(id), id)]))
  const managed = ManagedRuntime.make(Memo.layerWith({ l1Capacity: 20_000 }).pipe(Layer.provide(Redis.layerMemory)))
  try {
    const built = await managed.runtime()
    const runPlain = Runtime.runPromise(Runtime.make({
      context: Context.make(Memo.Memo, Context.get(built.context, Memo.Memo)),
      fiberRefs: FiberRefs.empty(),
      runtimeFlags: Runtime.defaultRuntimeFlags
    }))
    const items = Memo.loader({ key: keyOf, window: windowMs, schema: Dashboard, lookup: (id: number) => Effect.succeed(dashboard(keyOf(id), id)) })
    const memos = ids.map((id) => Memo.memo({ key: keyOf(id), window: windowMs, schema: Dashboard }, Effect.sync(() => dashboard(keyOf(id), id))))
    const cache = await Effect.runPromise(Cache.make({ capacity: 20_000, timeToLive: windowMs, lookup: (id: number) => Effect.succeed(dashboard(keyOf(id), id)) }))
    for (let i = 0; i < k; i += 500) {
      await Promise.all(ids.slice(i, i + 500).map((id) =>
        shape === "keyed" ? Promise.all([managed.runPromise(items.get(id)), managed.runPromise(cache.get(id))]) : runPlain(memos[id - 1]!)
      ))
    }
    fixedNow = Date.now()
    const parts: ReadonlyArray<Part> = ["one step", "no count", "no clock"]
    // keyed: the key built per call, one `ManagedRuntime.runPromise` per call
    const keyed: Record<string, (id: number) => Promise<unknown>> = {
      "floor": (id) => managed.runPromise(Effect.sync(() => values.get(keyOf(id)))),
      "Effect Cache.get": (id) => managed.runPromise(cache.get(id)),
      "shipped": (id) => managed.runPromise(items.get(id)),
      ...Object.fromEntries(parts.map((p) => [p, (id: number) => managed.runPromise(variant(() => keyOf(id), windowMs, p))])),
      "values map": (id) => managed.runPromise(Effect.withFiberRuntime(() => Exit.succeed(values.get(keyOf(id)))))
    }
    // memo: one effect per key built once, `Runtime.runPromise` per call
    const once = (make: (key: string) => Effect.Effect<unknown, never, Memo.Memo>) => keys.map(make)
    const effects: Record<string, ReadonlyArray<Effect.Effect<unknown, unknown, Memo.Memo>>> = {
      "floor": once((key) => Effect.sync(() => values.get(key))),
      "floor, same runtime": once((key) => Effect.sync(() => values.get(key))),
      "shipped": memos,
      ...Object.fromEntries(parts.map((p) => [p, once((key) => variant(() => key, windowMs, p))])),
      "values map": once((key) => Effect.withFiberRuntime(() => Exit.succeed(values.get(key))))
    }
    const positions = ids.map((id) => id - 1)
    const runners = shape === "keyed"
      ? Object.entries(keyed).map(([name, call]) => cycling(name, ids, call))
      : Object.entries(effects).map(([name, list]) =>
        cycling(name, positions, (i) => name === "floor" ? Effect.runPromise(list[i]! as Effect.Effect<unknown, unknown>) : runPlain(list[i]!))
      )
    for (const r of runners) await measure(60, 500, r.step)
    if (profile !== undefined) {
      const r = runners.find((r) => r.name === profile)
      if (r === undefined) throw new Error(`no variant ${profile}: ${runners.map((r) => r.name).join(", ")}`)
      const { file, result } = await Profile.profileInProcess(Profile.profilesDir, `diagnose-l1-${shape}-${profile.replace(/\W+/g, "-")}`, () => measure(4_000, 500, r.step))
      process.stdout.write(`${profile}: ${fmtOps(result)} calls/s\n\n${Profile.summarize(profile, [file], 20)}\n`)
      return
    }
    const ops = await interleave(runners, rounds, (r) => measure(120, 500, r.step))
    const floor = ops.get("floor")!
    const shipped = ops.get("shipped")!
    process.stdout.write(renderTable({
      caption: `L1 hit, ${shape === "keyed" ? "keyed loader, `ManagedRuntime.runPromise`" : "`memo` built once per key, `Runtime.runPromise`"} per call, ${k} key(s), ${rounds} rounds (calls per ${wall ? "wall" : "CPU"} second)`,
      headers: ["variant", "calls/s", "min – max", "/ floor", "/ shipped"],
      rows: runners.map((r) => {
        const s = summarize(ops.get(r.name)!)
        return [r.name, fmtOps(s.median), `${fmtOps(s.min)} – ${fmtOps(s.max)}`, fmtRatio(ratios(ops.get(r.name)!, floor).median), fmtRatio(ratios(ops.get(r.name)!, shipped).median)]
      })
    }) + "\n")
  } finally {
    await managed.dispose()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
