/**
 * Section: batch reads and conditional lookups, on the suite's redis-server.
 *
 * 1. `getMany` of 100 keys whose values are in Redis, L1 empty (a fresh `Memo` runtime per
 *    measurement), against 100 `get`s of the same keys, one after another (a page's loop) and
 *    all at once. Rounds interleave the three.
 * 2. A cold `getMany` of 100 keys with `lookupMany` on 4 processes at once (`bench/pod.ts`, as
 *    the fleet section starts them): how many keys were looked up in total (100 when each ran
 *    once for the fleet) and in how many `lookupMany` calls, counted by each process and summed.
 * 3. `Memo.unchanged`: the bytes Redis received per window (its `total_net_input_bytes`) when
 *    every window's lookup answers a 20 KB value, against when it answers `unchanged`.
 */
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Redis as IORedis } from "ioredis"
import { Memo, Redis } from "../../src/index.js"
import type { BenchContext } from "../context.js"
import { sleep } from "../fixtures.js"
import { Fleet } from "./fleet.js"
import { cell, fmtCount, fmtMs, fmtRatio, interleave, ratios, type Section, summarize } from "../stats.js"
import { judge } from "../targets.js"

const Row = Schema.Struct({ id: Schema.Number, name: Schema.String, volume: Schema.Number })

/** A Redis store of its own (its own connections). */
const storeOf = async (ctx: BenchContext, tenant: string) => {
  const runtime = ManagedRuntime.make(Redis.layer({ redis: { host: ctx.redis.host, port: ctx.redis.port }, tenant }))
  const store = await runtime.runPromise(Redis.Redis)
  return { layer: Layer.succeed(Redis.Redis, store), close: () => runtime.dispose() }
}

/** Runs `f` on a fresh `Memo` runtime (L1 empty) over `store`, timing only `f`. */
const onFreshRuntime = <A, E>(store: Layer.Layer<Redis.Redis>, f: Effect.Effect<A, E, Memo.Memo>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const runtime = yield* Effect.orDie(Memo.make())
    const t0 = performance.now()
    yield* Effect.provideService(f, Memo.Memo, runtime)
    return performance.now() - t0
  })).pipe(Effect.provide(store)))

export const run = async (ctx: BenchContext): Promise<Section> => {
  const n = 100
  // a round is a few tens of milliseconds: many of them, so that one busy moment of the machine is one outlier
  const rounds = ctx.smoke ? 1 : Math.max(ctx.rounds * 3, 21)
  const tenant = `${ctx.runId}-batch`
  const ids = Array.from({ length: n }, (_, i) => i + 1)
  const windowMs = 24 * 3_600_000
  const rows = Memo.loader({
    key: (id: number) => `bench:batch:row:${id}`,
    window: windowMs,
    schema: Row,
    lookup: (id: number) => Effect.succeed({ id, name: `item ${id}`, volume: id * 100 }),
    lookupMany: (many: ReadonlyArray<number>) =>
      Effect.sync(() => many.map((id) => ({ id, name: `item ${id}`, volume: id * 100 }))).pipe(Effect.delay(20)) // one SQL query
  })
  const main = await storeOf(ctx, tenant)
  const closers: Array<() => Promise<void>> = [main.close]
  try {
    // 1. warm reads: getMany against gets
    await onFreshRuntime(main.layer, rows.getMany(ids))
    const measured = await interleave([{ name: "many" }, { name: "sequential" }, { name: "concurrent" }] as const, rounds, ({ name }) =>
      onFreshRuntime(
        main.layer,
        name === "many"
          ? rows.getMany(ids)
          : Effect.forEach(ids, (id) => rows.get(id), { concurrency: name === "concurrent" ? "unbounded" : 1 })
      ), ctx.signal)
    const times = { many: measured.get("many")!, sequential: measured.get("sequential")!, concurrent: measured.get("concurrent")! }
    const many = summarize(times.many)
    const sequential = summarize(times.sequential)
    const concurrent = summarize(times.concurrent)
    // per-round ratios, each taken moments apart
    const ratioSequential = ratios(times.many, times.sequential).median
    const ratioConcurrent = ratios(times.many, times.concurrent).median

    // 2. a cold getMany on 4 processes at once
    const processes = 4
    const spawnStart = performance.now()
    const fleet = await Fleet.spawn(processes, ctx.redis.port, ctx.signal)
    closers.push(() => fleet.close())
    const spawnS = (performance.now() - spawnStart) / 1000
    await fleet.ask({ t: "batch-setup", namespace: `${ctx.runId}-batch-cold`, windowMs, queryMs: 20 }, "ready", ctx.signal, { timeoutMs: 20_000 })
    const at = Date.now() + 300 // every process fires at the same instant
    const done = await fleet.ask({ t: "batch-cold", keys: n, at }, "batch-done", ctx.signal, { timeoutMs: 20_000 })
    const failed = done.filter((d) => d.error !== undefined)
    if (failed.length > 0) throw new Error(`batch: a cold getMany failed in process ${failed[0]!.pod}: ${failed[0]!.error}`)
    const byLookupMany = done.reduce((sum, d) => sum + d.byLookupMany, 0)
    const singles = done.reduce((sum, d) => sum + d.single, 0)
    const cold = {
      processes,
      lookedUp: byLookupMany + singles,
      byLookupMany,
      calls: done.reduce((sum, d) => sum + d.calls, 0),
      single: singles,
      ms: Math.max(...done.map((d) => d.ms)),
      perProcess: [...done].sort((a, b) => a.pod - b.pod).map((d) => ({ pod: d.pod, byLookupMany: d.byLookupMany, calls: d.calls, single: d.single }))
    }

    // 3. unchanged: bytes Redis received per window
    const big = "x".repeat(20_000)
    const Blob = Schema.Struct({ text: Schema.String, n: Schema.Number })
    const raw = new IORedis({ host: ctx.redis.host, port: ctx.redis.port })
    closers.push(async () => void (await raw.quit()))
    const inputBytes = async () => Number(/total_net_input_bytes:(\d+)/.exec(await raw.info("stats"))?.[1] ?? NaN)
    const shortWindow = ctx.smoke ? 200 : 300
    const windows = ctx.smoke ? 3 : 10
    const perWindow = async (same: boolean) => {
      const blob = Memo.loader({
        key: `bench:batch:blob:${same}`,
        window: shortWindow,
        schema: Blob,
        lookup: (_: void, previous) => Effect.succeed(same && previous._tag === "Some" ? Memo.unchanged : { text: big, n: 1 })
      })
      return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const runtime = yield* Effect.orDie(Memo.make())
        const get = Effect.provideService(blob.refresh(), Memo.Memo, runtime)
        yield* get // the first value, outside the measurement
        yield* Effect.promise(() => sleep(shortWindow))
        const before = yield* Effect.promise(inputBytes)
        for (let i = 0; i < windows; i++) {
          yield* get
          yield* Effect.promise(() => sleep(shortWindow))
        }
        return ((yield* Effect.promise(inputBytes)) - before) / windows
      })).pipe(Effect.provide(main.layer)))
    }
    const fullBytes = await perWindow(false)
    const unchangedBytes = await perWindow(true)

    return {
      id: "batch",
      title: "Batch reads and conditional lookups",
      setup: `${n} keys of a loader with lookupMany (a 20 ms query), values in Redis (redis-server on loopback), each measurement on a fresh Memo runtime (L1 empty); ${rounds} rounds, interleaved; ratios are medians of per-round ratios.`,
      tables: [
        {
          caption: `Reading ${n} keys from the store, L1 empty`,
          headers: ["", "median", "range", "getMany ÷ this"],
          rows: [
            ["`getMany` (one pipelined read)", ...cell(many, fmtMs), "1.00×"],
            [`${n} \`get\`s, one after another`, ...cell(sequential, fmtMs), fmtRatio(ratioSequential)],
            [`${n} \`get\`s, all at once`, ...cell(concurrent, fmtMs), fmtRatio(ratioConcurrent)]
          ]
        },
        {
          caption: `A cold getMany of ${n} keys on ${processes} processes at once`,
          headers: ["keys looked up", "by lookupMany", "lookupMany calls", "by lookup (a key's own run)", "time"],
          rows: [[fmtCount(cold.lookedUp), fmtCount(cold.byLookupMany), fmtCount(cold.calls), fmtCount(cold.single), fmtMs(cold.ms)]]
        },
        {
          caption: `Bytes Redis received per window, a 20 KB value (${windows} windows of ${shortWindow} ms)`,
          headers: ["", "bytes per window", "÷ full commit"],
          rows: [
            ["full commit", fmtCount(Math.round(fullBytes)), "1.00×"],
            ["`Memo.unchanged`", fmtCount(Math.round(unchangedBytes)), fmtRatio(unchangedBytes / fullBytes)]
          ]
        }
      ],
      targets: [
        judge("batch.sequential", ratioSequential, { smoke: ctx.smoke }),
        {
          name: `getMany of ${n} keys against ${n} gets (all at once)`,
          figure: fmtRatio(ratioConcurrent),
          target: "for information",
          met: undefined
        },
        judge("batch.cold", cold.lookedUp, {
          scale: n,
          smoke: ctx.smoke,
          detail: `${processes} processes, in ${cold.calls} lookupMany call${cold.calls === 1 ? "" : "s"}`
        })
      ],
      notes: [
        `The ${processes} processes (\`node --import tsx bench/pod.ts\`, spawned in ${spawnS.toFixed(1)} s) fire their getMany at the same instant; each counts its own lookupMany calls and keys, and the table sums them (per process: ${cold.perProcess.map((p) => `${p.byLookupMany} keys in ${p.calls} call${p.calls === 1 ? "" : "s"}${p.single > 0 ? ` + ${p.single} alone` : ""}`).join("; ")}). Each key is claimed under its own fleet lock, so the processes split the keys between them; a key whose claim another process won is awaited through its commit notice; one whose claim was not answered goes on alone, as a \`get\` would, and runs \`lookup\`.`,
        "Bytes per window count everything Redis received in the window (claims, reads, the commit)."
      ],
      data: { times, cold, fullBytes, unchangedBytes, ratioSequential, ratioConcurrent }
    }
  } finally {
    for (const close of closers) await close().catch(() => {})
  }
}
