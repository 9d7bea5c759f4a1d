/**
 * Section 1: L1 hits. Every implementation holds the value in process memory; the figure is
 * calls per second, back to back, one promise per call (and, for Effect, many calls inside one
 * fiber). The baseline is `Effect.runPromise(Effect.sync(() => map.get(k)))`: the least any
 * Effect-returning cache can cost when called with one `runPromise` per call.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRefs from "effect/FiberRefs"
import * as Runtime from "effect/Runtime"
import { Memo } from "../../src/index.js"
import type { BenchContext } from "../context.js"
import { answers, answersNote, keysOf, producer, settle } from "../fixtures.js"
import { type Cache, makeAcd, makeBentocache, makeCacheManager, makeLockstep, makeLockstepPromise, makeLruCache } from "../impls.js"
import { judge } from "../targets.js"
import { blackhole, cell, fmtOps, fmtRatio, interleave, ratios, type Section, summarize, throughput } from "../stats.js"

interface Runner {
  readonly name: string
  readonly step: (n: number) => Promise<void> | void
}

/** One awaited call after another over `call(0..k-1)`, cycling. */
const sequential = (name: string, call: (i: number) => Promise<unknown>, k: number): Runner => {
  let i = 0
  return {
    name,
    step: async (n) => {
      for (let j = 0; j < n; j++) {
        blackhole.value = await call(i)
        i = i + 1 === k ? 0 : i + 1
      }
    }
  }
}

/** `n` effects in one fiber. */
const inFiber = <R>(name: string, run: (e: Effect.Effect<void, unknown, R>) => Promise<void>, effects: ReadonlyArray<Effect.Effect<unknown, unknown, R>>): Runner => {
  let i = 0
  const k = effects.length
  return {
    name,
    step: (n) =>
      run(Effect.gen(function*() {
        for (let j = 0; j < n; j++) {
          blackhole.value = yield* effects[i]!
          i = i + 1 === k ? 0 : i + 1
        }
      }))
  }
}

const names = {
  map: "floor: `map.get`",
  floor: "floor: `Effect.runPromise(Effect.sync(map.get))`",
  floorManaged: "floor: `ManagedRuntime.runPromise(Effect.sync(map.get))`",
  lockstep: "lockstep `memo`, `Runtime.runPromise`",
  lockstepManaged: "lockstep `memo`, `ManagedRuntime.runPromise`",
  fiberFloor: "floor: `Effect.sync(map.get)` in one fiber",
  fiberLockstep: "lockstep `memo` in one fiber"
} as const

export const run = async (ctx: BenchContext): Promise<Section> => {
  const sliceMs = ctx.smoke ? 10 : 120
  const chunk = ctx.smoke ? 50 : 500
  const windowMs = 24 * 3_600_000 // no rollover while we measure
  const redis = ctx.redis
  const tables = []
  const targets = []
  const data: Record<string, unknown> = {}
  const answerNotes: Array<string> = []
  for (const k of ctx.smoke ? [1, 100] : [1, 10_000]) {
    const keys = keysOf(`${ctx.runId}:l1:${k}`, k)
    const map = new Map(keys.map((key, i) => [key, { i }]))
    const options = {
      redis,
      namespace: `${ctx.runId}-l1-${k}`,
      windowMs,
      produce: producer(0),
      capacity: 20_000,
      acdStorage: "memory" as const
    }
    const lockstep = await makeLockstep(options)
    const peers: Array<Cache> = [
      // a tenant of its own: sharing the `memo` runtime's keys, it would hear that runtime's commits
      // and read each key back from Redis once, in the measured rounds
      await makeLockstepPromise({ ...options, namespace: `${options.namespace}-promise` }),
      await makeBentocache(options),
      await makeCacheManager(options),
      await makeLruCache(options),
      await makeLruCache({ ...options, keyPerCall: true }),
      await makeAcd(options)
    ]
    try {
      // Memo in the context of a runtime otherwise like the default one (empty FiberRefs), so
      // that it is compared with `Effect.runPromise` like for like; `ManagedRuntime` (whose
      // runtime carries the FiberRefs of the layer build) is measured separately.
      const managed = await lockstep.runtime.runtime()
      const plain = Runtime.make({
        context: Context.make(Memo.Memo, Context.get(managed.context, Memo.Memo)),
        fiberRefs: FiberRefs.empty(),
        runtimeFlags: Runtime.defaultRuntimeFlags
      })
      const runPlain = Runtime.runPromise(plain)
      const effects = lockstep.effects(keys)
      const floors = keys.map((key) => Effect.sync(() => map.get(key)))
      // warm every key, in batches (the cold path goes through Redis)
      const calls = [lockstep, ...peers].map((c) => c.bind(keys))
      // twice, each time until the event loop is idle: the first pass's commits and notices keep a
      // busy loop from answering the notice connection's ping, and a cache that counts its notice
      // connection as down answers stale (and rereads the store) until it is confirmed again: the
      // second pass is lockstep's (`memo` and the facade) alone
      for (const pass of [calls, calls.slice(0, 2)]) {
        for (let i = 0; i < k; i += 500) {
          await Promise.all(pass.flatMap((call) => Array.from({ length: Math.min(500, k - i) }, (_, j) => call(i + j))))
        }
        await settle(ctx.smoke ? 500 : 3_000)
      }
      let m = 0
      const runners: Array<Runner> = [
        {
          name: names.map,
          step: (n) => {
            for (let j = 0; j < n; j++) {
              blackhole.value = map.get(keys[m]!)
              m = m + 1 === k ? 0 : m + 1
            }
          }
        },
        sequential(names.floor, (i) => Effect.runPromise(floors[i]!), k),
        sequential(names.floorManaged, (i) => lockstep.runtime.runPromise(floors[i]!), k),
        sequential(names.lockstep, (i) => runPlain(effects[i]!), k),
        sequential(names.lockstepManaged, (i) => lockstep.runtime.runPromise(effects[i]!), k),
        ...peers.map((p, j) => sequential(p.name, calls[j + 1]!, k)),
        inFiber(names.fiberFloor, Effect.runPromise, floors),
        inFiber(names.fiberLockstep, runPlain, effects)
      ]
      // one unrecorded round to get every path compiled
      for (const r of runners) await throughput(sliceMs / 2, chunk, r.step)
      const before = await answers()
      const ops = await interleave(runners, ctx.rounds, (r) => throughput(sliceMs, chunk, r.step), ctx.signal)
      answerNotes.push(answersNote(k === 1 ? "1 key" : `${k.toLocaleString("en")} keys`, before, await answers()))
      data[`k${k}`] = Object.fromEntries(ops)
      const base = ops.get(names.floor)!
      const fiberBase = ops.get(names.fiberFloor)!
      const row = (name: string, baseline: ReadonlyArray<number>, baselineName: string) => {
        const s = summarize(ops.get(name)!)
        return [name, ...cell(s, fmtOps), fmtRatio(ratios(ops.get(name)!, baseline).median), baselineName]
      }
      tables.push({
        caption: `**${k === 1 ? "1 key" : `${k.toLocaleString("en")} keys`}** (calls/s; ratio = median of per-round ratios to the baseline)`,
        headers: ["implementation", "calls/s (median)", "min – max", "ratio", "baseline"],
        rows: [
          ...runners.filter((r) => !r.name.includes("one fiber")).map((r) => row(r.name, base, "`Effect.runPromise` floor")),
          ...runners.filter((r) => r.name.includes("one fiber")).map((r) => row(r.name, fiberBase, "`Effect.sync` in one fiber"))
        ]
      })
      const vsFloor = ratios(ops.get(names.lockstep)!, base)
      const vsBento = ratios(ops.get(names.lockstep)!, ops.get("bentocache")!)
      const managedVsFloor = ratios(ops.get(names.lockstepManaged)!, ops.get(names.floorManaged)!)
      const fiberVsFloor = ratios(ops.get(names.fiberLockstep)!, fiberBase)
      // like for like: both build the key string on every call; against pre-built keys for information
      const promiseVsLru = ratios(ops.get(peers[0]!.name)!, ops.get("lru-cache, key built per call")!)
      const promiseVsLruPrebuilt = ratios(ops.get(peers[0]!.name)!, ops.get("lru-cache")!)
      const label = k === 1 ? "1 key" : `${k} keys`
      const one = k === 1
      const o = { smoke: ctx.smoke }
      targets.push(
        judge(one ? "l1.floor.1" : "l1.floor.10000", vsFloor.median, o),
        ...(one ? [] : [judge("l1.bentocache.10000", vsBento.median, o)]),
        judge(one ? "facade.lru.1" : "facade.lru.10000", promiseVsLru.median, o),
        { name: `${label}: \`lockstep/promise\` (key built per call) / lru-cache \`fetch\` with pre-built keys`, figure: fmtRatio(promiseVsLruPrebuilt.median), target: "for information", met: undefined },
        { name: `${label}: lockstep / floor, both through \`ManagedRuntime\``, figure: fmtRatio(managedVsFloor.median), target: "for information", met: undefined },
        { name: `${label}: lockstep / \`Effect.sync(map.get)\`, many calls in one fiber`, figure: fmtRatio(fiberVsFloor.median), target: "for information", met: undefined }
      )
    } finally {
      await Promise.allSettled([lockstep.close(), ...peers.map((p) => p.close())])
    }
  }
  return {
    id: "l1",
    title: "1. L1 hit",
    setup: [
      "Every key is warm in every implementation's in-process tier; calls run back to back, one awaited promise per call,",
      `cycling over the keys. ${ctx.rounds} interleaved rounds of ${sliceMs} ms per implementation. bentocache: L1 memory`,
      "(`serialize: false`) + Redis L2 + bus; cache-manager: `wrap` over a Keyv Map L1 (no serialisation) and `@keyv/redis`;",
      "lru-cache: `fetch`, once with pre-built keys and once with its key built per call from the facade's template; async-cache-dedupe: memory storage; lockstep: `memo` over `Redis.layer`, one effect per key built once;",
      "lockstep/promise: `createCache` over Redis, one loader keyed by index whose key string is built on every call, `get` per call (a fresh hit never enters the Effect runtime)."
    ].join(" "),
    tables,
    targets,
    notes: [
      ...answerNotes,
      "`Runtime.runPromise` runs lockstep on a runtime like the default one plus the `Memo` service: the like-for-like counterpart of `Effect.runPromise`. `ManagedRuntime.runPromise` also copies the FiberRefs its layer build left behind into every fiber; the floor run the same way shows that this cost is the runtime's, not lockstep's. `npx tsx bench/diagnose-l1.ts --keys=10000` compares variants of the hit path."
    ],
    data
  }
}
