/**
 * Where an L2 hit goes: the layers of lockstep's Redis read, one added at a time, in the same
 * interleaved rounds, sequential reads (one awaited read after another), each with the CPU time
 * the process spent per read.
 *
 *   npx tsx bench/diagnose-l2.ts [--rounds=7] [--reads=600] [--concurrency=1]
 *
 * - raw ioredis `GET` + `JSON.parse` (the section's floor), and `HMGET` of a lockstep record
 *   (the fields a read takes) + `JSON.parse` of its value;
 * - the floor through `ManagedRuntime.runPromise` (what the benchmark's callers pay per call);
 * - `store.read` through `runPromise` (breaker, `tryPromise`, the record's checks);
 * - + the value's decode: Schema's (`parseJson`), and the JSON check a loader uses first;
 * - `memo` itself on a key that is in Redis but not in this runtime's L1.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Redis as IORedis } from "ioredis"
import { Redis } from "../src/index.js"
import * as Keys from "../src/internal/keys.js"
import * as JsonCheck from "../src/internal/memo/jsonCheck.js"
import { startRedis } from "../test/support/services.js"
import { Dashboard, dashboard, keysOf, producer } from "./fixtures.js"
import { lockstepStore, makeLockstep } from "./impls.js"
import { fmtOps, fmtRatio, interleave, ratios, renderTable, summarize } from "./stats.js"

const arg = (name: string, fallback: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? fallback : Number(a.slice(name.length + 3))
}

const main = async () => {
  const rounds = arg("rounds", 7)
  const reads = arg("reads", 600)
  const concurrency = arg("concurrency", 1)
  const redis = await startRedis()
  try {
    const options = {
      redis: { host: "127.0.0.1", port: redis.port },
      namespace: "diag",
      windowMs: 24 * 3_600_000,
      produce: producer(0),
      capacity: 100_000
    }
    const store = await lockstepStore(options)
    // every round reads keys it has never read: enough distinct keys for all of them
    const keys = keysOf("diag", reads * (rounds + 2))
    const populate = await makeLockstep(options, store.layer)
    const fill = populate.bind(keys)
    for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((_, j) => fill(i + j)))
    await populate.close()

    const raw = new IORedis({ port: redis.port })
    const rawKeys = keys.map((k) => `raw:${k}`)
    for (let i = 0; i < keys.length; i += 500) {
      await raw.mset(...rawKeys.slice(i, i + 500).flatMap((k, j) => [k, JSON.stringify(dashboard(keys[i + j]!, i + j))]))
    }
    const prefix = Keys.tenantPrefix("diag")
    const records = keys.map((k) => Keys.make(prefix, k).value)
    const fields = ["b", "f", "w", "t", "d", "k", "i", "pb", "pf", "pw", "pt", "pd", "s", "ps"]
    const rt = ManagedRuntime.make(Layer.empty)
    const s = await Effect.runPromise(Effect.provide(Redis.Redis, store.layer))
    const decode = Schema.decodeEither(Schema.parseJson(Dashboard))
    const check = JsonCheck.compile(Dashboard.ast)!
    let k = 0
    const key = () => k++ % keys.length
    const dataOf = (r: { readonly stored: Option.Option<{ readonly data: string }> }) => Option.isSome(r.stored) ? r.stored.value.data : undefined
    const variants: Array<{ name: string; read: () => Promise<unknown> }> = [
      { name: "floor: ioredis GET + JSON.parse", read: async () => JSON.parse((await raw.get(rawKeys[key()]!))!) },
      { name: "ioredis HMGET of the record + JSON.parse", read: async () => JSON.parse((await raw.hmget(records[key()]!, ...fields))[4]!) },
      { name: "the floor in ManagedRuntime.runPromise", read: () => rt.runPromise(Effect.promise(async () => JSON.parse((await raw.get(rawKeys[key()]!))!))) },
      { name: "runPromise(store.read)", read: () => rt.runPromise(s.read(keys[key()]!)) },
      {
        name: "runPromise(store.read) + Schema decode",
        read: () => rt.runPromise(Effect.map(s.read(keys[key()]!), (r) => Either.getOrThrow(decode(dataOf(r)!))))
      },
      {
        name: "runPromise(store.read) + JSON.parse + check",
        read: () =>
          rt.runPromise(Effect.map(s.read(keys[key()]!), (r) => {
            const v: unknown = JSON.parse(dataOf(r)!)
            if (!check(v)) throw new Error("not a dashboard")
            return v
          }))
      }
    ]
    // memo: a fresh runtime per round, each key read once
    let memoRuntime = await makeLockstep(options, store.layer)
    let memoCall = memoRuntime.bind(keys)
    let m = 0
    variants.push({ name: "memo, key in Redis, not in L1", read: () => memoCall(m++) })
    const cpu = new Map<string, Array<number>>()
    const runners = variants.map((v) => ({
      name: v.name,
      run: async () => {
        let next = 0
        const c0 = process.cpuUsage()
        const t0 = performance.now()
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (next++ < reads) await v.read()
        }))
        const elapsed = performance.now() - t0
        const c = process.cpuUsage(c0)
        cpu.set(v.name, [...(cpu.get(v.name) ?? []), (c.user + c.system) / reads])
        return (reads * 1000) / elapsed
      }
    }))
    for (const r of runners.slice(0, -1)) await r.run() // warm-up (memo's first round below)
    cpu.clear()
    const ops = await interleave(runners, rounds, async (r) => {
      if (r.name.startsWith("memo")) {
        await memoRuntime.close()
        memoRuntime = await makeLockstep(options, store.layer)
        memoCall = memoRuntime.bind(keys)
        await memoCall(m++) // connect outside the measurement
      }
      return r.run()
    })
    const floor = ops.get(variants[0]!.name)!
    process.stdout.write(renderTable({
      caption: `L2 read, layer by layer: ${reads} reads per round, ${concurrency} at a time, ${rounds} rounds (reads/s; CPU: the process's user + system time per read)`,
      headers: ["variant", "reads/s", "min – max", "/ floor", "µs per read", "CPU µs per read"],
      rows: variants.map((v) => {
        const xs = ops.get(v.name)!
        const sum = summarize(xs)
        return [
          v.name,
          fmtOps(sum.median),
          `${fmtOps(sum.min)} – ${fmtOps(sum.max)}`,
          fmtRatio(ratios(xs, floor).median),
          (1e6 / sum.median).toFixed(0),
          summarize(cpu.get(v.name)!).median.toFixed(0)
        ]
      })
    }) + "\n")
    await memoRuntime.close()
    await rt.dispose()
    raw.disconnect()
    await store.close()
  } finally {
    await redis.stop()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
