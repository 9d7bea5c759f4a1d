/**
 * Section: keyed loaders. A page keyed by request input (an item page) defines its loader once
 * and derives the key per call (`items.get(id)` → `market:item:${id}`). Every key is warm in L1;
 * calls run back to back, one `ManagedRuntime.runPromise` per call, on one runtime for all.
 * Baselines in the same run and on the same runtime:
 * `Effect.sync(() => map.get(`market:item:${id}`))` (the key derived the same way) and Effect's
 * own `Cache.get(id)`. Also `Memo.memo` built on every call, as code written before loaders does.
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
import { answers, answersNote, Dashboard, dashboard, settle } from "../fixtures.js"
import { judge } from "../targets.js"
import { cell, cycling as cyclingOver, fmtOps, fmtRatio, interleave, ratios, type Section, summarize, throughput } from "../stats.js"

const names = {
  floor: "floor: `Effect.sync(() => map.get(key(id)))`",
  cache: "Effect `Cache.get(id)`",
  loader: "lockstep `loader.get(id)`",
  memo: "lockstep `Memo.memo({ key: key(id), … }, lookup)`, built per call",
  floorPlain: "floor, `Effect.runPromise`",
  loaderPlain: "lockstep `loader.get(id)`, `Runtime.runPromise`"
} as const

export const run = async (ctx: BenchContext): Promise<Section> => {
  const sliceMs = ctx.smoke ? 10 : 120
  const chunk = ctx.smoke ? 50 : 500
  const windowMs = 24 * 3_600_000
  const tables = []
  const targets = []
  const data: Record<string, unknown> = {}
  const keyOf = (id: number) => `market:item:${id}`
  const answerNotes: Array<string> = []
  for (const k of ctx.smoke ? [1, 100] : [1, 10_000]) {
    const ids = Array.from({ length: k }, (_, i) => i + 1)
    const items = Memo.loader({
      key: keyOf,
      window: windowMs,
      schema: Dashboard,
      lookup: (id: number) => Effect.succeed(dashboard(keyOf(id), id))
    })
    const memoOf = (id: number) => Memo.memo({ key: keyOf(id), window: windowMs, schema: Dashboard }, Effect.sync(() => dashboard(keyOf(id), id)))
    const map = new Map(ids.map((id) => [keyOf(id), dashboard(keyOf(id), id)]))
    const store = ctx.redis === undefined
      ? Redis.layerMemory
      : Redis.layer({ redis: { host: ctx.redis.host, port: ctx.redis.port }, tenant: `${ctx.runId}-keyed-${k}` })
    const managed = ManagedRuntime.make(Memo.layerWith({ l1Capacity: 20_000 }).pipe(Layer.provide(store)))
    const cache = await Effect.runPromise(Cache.make({
      capacity: 20_000,
      timeToLive: windowMs,
      lookup: (id: number) => Effect.succeed(dashboard(keyOf(id), id))
    }))
    try {
      const built = await managed.runtime()
      // like `Effect.runPromise`'s runtime, plus the `Memo` service (see the L1 section)
      const runPlain = Runtime.runPromise(Runtime.make({
        context: Context.make(Memo.Memo, Context.get(built.context, Memo.Memo)),
        fiberRefs: FiberRefs.empty(),
        runtimeFlags: Runtime.defaultRuntimeFlags
      }))
      // twice, each time until the event loop is idle (see the L1 section)
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < k; i += 500) {
          await Promise.all(ids.slice(i, i + 500).map((id) => Promise.all([runPlain(items.get(id)), Effect.runPromise(cache.get(id))])))
        }
        await settle(ctx.smoke ? 500 : 3_000)
      }
      const cycling = (name: string, call: (id: number) => Promise<unknown>) => cyclingOver(name, ids, call)
      const runners = [
        cycling(names.floor, (id) => managed.runPromise(Effect.sync(() => map.get(keyOf(id))))),
        cycling(names.cache, (id) => managed.runPromise(cache.get(id))),
        cycling(names.loader, (id) => managed.runPromise(items.get(id))),
        cycling(names.memo, (id) => managed.runPromise(memoOf(id))),
        cycling(names.floorPlain, (id) => Effect.runPromise(Effect.sync(() => map.get(keyOf(id))))),
        cycling(names.loaderPlain, (id) => runPlain(items.get(id)))
      ]
      for (const r of runners) await throughput(sliceMs / 2, chunk, r.step)
      const before = await answers()
      const ops = await interleave(runners, ctx.rounds, (r) => throughput(sliceMs, chunk, r.step), ctx.signal)
      answerNotes.push(answersNote(k === 1 ? "1 key" : `${k.toLocaleString("en")} keys`, before, await answers()))
      data[`k${k}`] = Object.fromEntries(ops)
      const base = ops.get(names.floor)!
      tables.push({
        caption: `**${k === 1 ? "1 key" : `${k.toLocaleString("en")} keys`}**, the key derived from the id on every call (calls/s)`,
        headers: ["implementation", "calls/s (median)", "min – max", "ratio to the floor"],
        rows: runners.map((r) => [r.name, ...cell(summarize(ops.get(r.name)!), fmtOps), fmtRatio(ratios(ops.get(r.name)!, base).median)])
      })
      const vsFloor = ratios(ops.get(names.loader)!, base)
      const vsCache = ratios(ops.get(names.loader)!, ops.get(names.cache)!)
      // time per hit: the loader's calls/s over memo's
      const memoCost = ratios(ops.get(names.loader)!, ops.get(names.memo)!)
      const plainVsFloor = ratios(ops.get(names.loaderPlain)!, ops.get(names.floorPlain)!)
      if (k === 1) {
        targets.push(
          { name: "1 key: keyed loader / floor", figure: fmtRatio(vsFloor.median), target: "for information", met: undefined },
          { name: "1 key: keyed loader / Effect `Cache.get`", figure: fmtRatio(vsCache.median), target: "for information", met: undefined },
          { name: "1 key: `Memo.memo` built per call, time per hit / the loader's", figure: fmtRatio(memoCost.median), target: "for information", met: undefined }
        )
      } else {
        const o = { smoke: ctx.smoke }
        targets.push(judge("keyed.cache.10000", vsCache.median, o), judge("keyed.floor.10000", vsFloor.median, o), judge("keyed.memo.10000", memoCost.median, o))
      }
      targets.push({
        name: `${k === 1 ? "1 key" : `${k} keys`}: keyed loader / floor, both through \`Runtime.runPromise\` on a runtime like \`Effect.runPromise\`'s`,
        figure: fmtRatio(plainVsFloor.median),
        target: "for information",
        met: undefined
      })
    } finally {
      await managed.dispose()
    }
  }
  return {
    id: "keyed",
    title: "Keyed loader hit",
    setup: [
      "One `Memo.loader` keyed by id, defined once; every id warm in L1; the key is derived from the id on each call, in",
      `lockstep and in the floor alike. ${ctx.rounds} interleaved rounds of ${sliceMs} ms each. Every call is one`,
      "`ManagedRuntime.runPromise` on the runtime that holds the `Memo` service, floor and Effect's `Cache` included (the last",
      "two rows: `Effect.runPromise`'s runtime, plus the `Memo` service for lockstep). Effect's `Cache` holds the same values with",
      "the same capacity and a time-to-live of the window. `Memo.memo` is called with its options on every call, as code",
      "written before loaders does; its key's value is warm."
    ].join(" "),
    tables,
    targets,
    notes: answerNotes,
    data
  }
}
