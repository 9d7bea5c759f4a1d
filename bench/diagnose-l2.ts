/**
 * Where an L2 hit goes: the layers of lockstep's Redis read, one added at a time, in the same
 * interleaved rounds, sequential reads (one awaited read after another).
 *
 *   npx tsx bench/diagnose-l2.ts [--rounds=7] [--reads=600]
 *
 * - raw ioredis `GET` + `JSON.parse` (the section's floor), and the `get` Lua script alone;
 * - `store.get` through `Effect.runPromise` (breaker, `tryPromise`, reply parsing);
 * - + `Effect.timeout` (what `Memo`'s worker wraps the read in: it races two forked fibers);
 * - + a timer inside the promise instead (the same bound without forking);
 * - + the `Schema` decode of the value;
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
import * as Scripts from "../src/internal/redis/scripts.js"
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
    // every memo round reads keys it has never read: enough distinct keys for all of them
    const keys = keysOf("diag", reads * (rounds + 1))
    const populate = await makeLockstep(options, store.layer)
    const fill = populate.bind(keys)
    for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((_, j) => fill(i + j)))
    await populate.close()

    const raw = new IORedis({ port: redis.port })
    raw.defineCommand("lockstepGet", { numberOfKeys: 2, lua: Scripts.get })
    const data = JSON.stringify(dashboard("diag"))
    await raw.set("diag:raw", data)
    const rt = ManagedRuntime.make(Layer.empty)
    const s = await Effect.runPromise(Effect.provide(Redis.Redis, store.layer))
    const decode = Schema.decodeEither(Schema.parseJson(Dashboard))
    const withTimer = <A>(ms: number, p: () => Promise<A>) =>
      Effect.tryPromise(() =>
        new Promise<A>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("timeout")), ms)
          p().then((a) => {
            clearTimeout(timer)
            resolve(a)
          }, (e) => {
            clearTimeout(timer)
            reject(e)
          })
        })
      )
    let k = 0
    const key = () => keys[k++ % keys.length]!
    const decodeStored = (r: { stored: Option.Option<Redis.Stored> }) =>
      Option.isSome(r.stored) ? Either.getOrThrow(decode(r.stored.value.data)) : undefined
    const variants: Array<{ name: string; read: () => Promise<unknown> }> = [
      { name: "floor: ioredis GET + JSON.parse", read: async () => JSON.parse((await raw.get("diag:raw"))!) },
      { name: "ioredis `get` script (EVALSHA)", read: () => (raw as unknown as { lockstepGet: (...a: Array<string>) => Promise<unknown> }).lockstepGet(Keys.make("diag", "diag:1").value, Keys.make("diag", "diag:1").mark, "") },
      { name: "Effect.runPromise(store.get)", read: () => rt.runPromise(s.get(key())) },
      { name: "+ Effect.timeout(250 ms)", read: () => rt.runPromise(Effect.timeout(s.get(key()), 250)) },
      { name: "+ Effect.timeout + Schema decode", read: () => rt.runPromise(Effect.map(Effect.timeout(s.get(key()), 250), decodeStored)) },
      {
        name: "store.get, timer in the promise (sketch) + decode",
        read: () => rt.runPromise(Effect.map(withTimer(250, () => Effect.runPromise(s.get(key()))), decodeStored))
      }
    ]
    // memo: a fresh runtime per round, each key read once
    let memoRuntime = await makeLockstep(options, store.layer)
    let memoCall = memoRuntime.bind(keys)
    let m = 0
    variants.push({ name: "memo, key in Redis, not in L1", read: () => memoCall(m++) })
    const runners = variants.map((v) => ({
      name: v.name,
      run: async () => {
        const t0 = performance.now()
        for (let i = 0; i < reads; i++) await v.read()
        return (reads * 1000) / (performance.now() - t0)
      }
    }))
    for (const r of runners.slice(0, -1)) await r.run() // warm-up (memo's first round below)
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
      caption: `L2 read, layer by layer: ${reads} sequential reads per round, ${rounds} rounds (reads/s)`,
      headers: ["variant", "reads/s", "min – max", "/ floor", "µs per read"],
      rows: variants.map((v) => {
        const xs = ops.get(v.name)!
        const sum = summarize(xs)
        return [v.name, fmtOps(sum.median), `${fmtOps(sum.min)} – ${fmtOps(sum.max)}`, fmtRatio(ratios(xs, floor).median), (1e6 / sum.median).toFixed(0)]
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
