/**
 * Section 2: L2 hits. The value is in Redis and the in-process tier is empty. Every round
 * builds each implementation afresh (its L1 empty; lockstep: a new `Memo` runtime over a shared
 * Redis store) and reads a set of keys once each, one after another and with 100 callers at a
 * time. The baseline is what any Redis cache must at least do: ioredis `GET` + `JSON.parse`.
 */
import { Redis as IORedis } from "ioredis"
import type { BenchContext } from "../context.js"
import { dashboard, keysOf, producer } from "../fixtures.js"
import { type Cache, type CacheOptions, lockstepStore, makeAcd, makeBentocache, makeCacheManager, makeLockstep } from "../impls.js"
import { blackhole, cell, fmtOps, fmtRatio, interleave, ratios, type Section, summarize } from "../stats.js"
import { judge } from "../targets.js"

interface Contender {
  readonly name: string
  /** Builds a fresh instance whose in-process tier is empty; `call(i)` reads key i. */
  readonly fresh: () => Promise<{ readonly call: (i: number) => Promise<unknown>; readonly close: () => Promise<void> }>
}

const readAll = async (call: (i: number) => Promise<unknown>, n: number, concurrency: number): Promise<number> => {
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (true) {
      const i = next++
      if (i >= n) return
      blackhole.value = await call(i)
    }
  }))
  return (n * 1000) / (performance.now() - t0)
}

export const run = async (ctx: BenchContext): Promise<Section> => {
  const n = ctx.smoke ? 50 : 1_500
  const windowMs = 24 * 3_600_000
  const keys = keysOf(`${ctx.runId}:l2`, n)
  const warmKey = `${ctx.runId}:l2:warm`
  const all = [...keys, warmKey]
  const base: Omit<CacheOptions, "namespace"> = { redis: ctx.redis, windowMs, produce: producer(0), capacity: 20_000, acdStorage: "redis" }
  const opts = (name: string): CacheOptions => ({ ...base, namespace: `${ctx.runId}-l2-${name}` })

  // the raw floor's values, written as a cache would store them
  const raw = new IORedis({ host: ctx.redis.host, port: ctx.redis.port })
  const rawKeys = all.map((k) => `${ctx.runId}:raw:${k}`)
  await raw.mset(...rawKeys.flatMap((k, i) => [k, JSON.stringify(dashboard(all[i]!, i))]))

  // every implementation writes its own keys to Redis through its own cold path
  const store = await lockstepStore(opts("lockstep"))
  const populate = async (make: () => Promise<Cache>) => {
    const c = await make()
    const call = c.bind(all)
    for (let i = 0; i < all.length; i += 250) {
      await Promise.all(Array.from({ length: Math.min(250, all.length - i) }, (_, j) => call(i + j)))
    }
    await c.close()
  }
  await Promise.all([
    populate(() => makeLockstep(opts("lockstep"), store.layer)),
    populate(() => makeBentocache(opts("bentocache"))),
    populate(() => makeCacheManager(opts("cache-manager"))),
    populate(() => makeAcd(opts("async-cache-dedupe")))
  ])

  const viaCache = (name: string, make: () => Promise<Cache>): Contender => ({
    name,
    fresh: async () => {
      const c = await make()
      const call = c.bind(all)
      await call(n) // connects and loads scripts on a key outside the measured set
      return { call, close: c.close }
    }
  })
  const contenders: Array<Contender> = [
    {
      name: "floor: ioredis `GET` + `JSON.parse`",
      fresh: async () => ({ call: async (i) => JSON.parse((await raw.get(rawKeys[i]!))!), close: async () => {} })
    },
    viaCache("lockstep", () => makeLockstep(opts("lockstep"), store.layer)),
    viaCache("bentocache", () => makeBentocache(opts("bentocache"))),
    viaCache("cache-manager", () => makeCacheManager(opts("cache-manager"))),
    viaCache("async-cache-dedupe", () => makeAcd(opts("async-cache-dedupe")))
  ]

  try {
    const results = new Map<number, Map<string, Array<number>>>()
    for (const concurrency of [1, 100]) {
      // one unrecorded round
      for (const c of contenders) {
        const f = await c.fresh()
        await readAll(f.call, Math.min(n, 200), concurrency)
        await f.close()
      }
      results.set(concurrency, await interleave(contenders, ctx.rounds, async (c) => {
        const f = await c.fresh()
        try {
          return await readAll(f.call, n, concurrency)
        } finally {
          await f.close()
        }
      }, ctx.signal))
    }
    const floorName = contenders[0]!.name
    const tables = [...results].map(([concurrency, ops]) => ({
      caption: `**${concurrency === 1 ? "sequential" : `${concurrency} concurrent callers`}** (keys read/s, ${n} distinct keys per round, each read once)`,
      headers: ["implementation", "reads/s (median)", "min – max", "ratio to floor"],
      rows: contenders.map((c) => [c.name, ...cell(summarize(ops.get(c.name)!), fmtOps), fmtRatio(ratios(ops.get(c.name)!, ops.get(floorName)!).median)])
    }))
    // time per read over the floor's: the floor's reads/s over lockstep's, per round
    const targets = [...results].map(([concurrency, ops]) =>
      judge(concurrency === 1 ? "l2.sequential" : "l2.concurrent", ratios(ops.get(floorName)!, ops.get("lockstep")!).median, { smoke: ctx.smoke })
    )
    return {
      id: "l2",
      title: "2. L2 hit (value in Redis, L1 empty)",
      setup: [
        `Each round builds every implementation afresh (empty in-process tier; lockstep: a new \`Memo\` runtime over one shared`,
        `Redis store), reads one key outside the set to connect, then reads ${n} keys once each. ${ctx.rounds} interleaved rounds.`,
        "The value is a ~1.6 KB dashboard aggregate; lockstep decodes it through its `Schema`. lru-cache has no shared tier and is left out;",
        "async-cache-dedupe uses its Redis storage (no L1)."
      ].join(" "),
      tables,
      targets,
      notes: [
        "A lockstep L2 hit is one plain `HMGET` of the record (judged by the process's corrected clock) plus the value's decode (`JSON.parse`, then a check compiled from the `Schema` when decoding would leave the value as it is, as it does the dashboard; Schema's own decode otherwise), done in the caller's own fiber (requests for the same key join it; no worker fiber unless the value is not this window's). `npx tsx bench/diagnose-l2.ts` takes this read apart layer by layer."
      ],
      data: Object.fromEntries([...results].map(([c, ops]) => [`c${c}`, Object.fromEntries(ops)]))
    }
  } finally {
    await raw.del(...rawKeys).catch(() => 0)
    raw.disconnect()
    await store.close()
  }
}

/** The profiled workload: lockstep's L2 reads alone (fresh runtimes over one store), both concurrencies. */
export const profile = async (ctx: BenchContext): Promise<void> => {
  const n = ctx.smoke ? 50 : 1_500
  const keys = keysOf(`${ctx.runId}:l2prof`, n + 1)
  const o: CacheOptions = { redis: ctx.redis, windowMs: 24 * 3_600_000, produce: producer(0), capacity: 20_000, namespace: `${ctx.runId}-l2prof` }
  const store = await lockstepStore(o)
  try {
    const writer = await makeLockstep(o, store.layer)
    const write = writer.bind(keys)
    for (let i = 0; i < keys.length; i += 250) await Promise.all(Array.from({ length: Math.min(250, keys.length - i) }, (_, j) => write(i + j)))
    await writer.close()
    for (let r = 0; r < (ctx.smoke ? 1 : 5); r++) {
      for (const concurrency of [1, 100]) {
        ctx.signal.throwIfAborted()
        const c = await makeLockstep(o, store.layer)
        const call = c.bind(keys)
        await call(n)
        await readAll(call, n, concurrency)
        await c.close()
      }
    }
  } finally {
    await store.close()
  }
}
