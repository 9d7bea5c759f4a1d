/**
 * An L2 read through a loader that sets a `timeout`, against two trees of lockstep (before and
 * after a change), and the second tree's loader without a timeout: a fresh runtime per round,
 * the keys in Redis and not in L1, sequential and 100 concurrent callers, interleaved rounds.
 *
 *   npx tsx bench/diagnose-l2-timeout.ts <tree-before> <tree-after> [rounds]
 *
 * (a tree: a checkout of this repository, e.g. `git worktree add /tmp/before <commit>`, with
 * `node_modules` linked in.)
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
const [a, b, roundsArg] = process.argv.slice(2)
const rounds = Number(roundsArg ?? 5)
const N = 2000
const load = async (repo: string) => {
  const lib = await import(`${repo}/src/index.ts`)
  const { startRedis } = await import(`${repo}/test/support/services.ts`)
  return { lib, startRedis }
}
const main = async () => {
  const A = await load(a!), B = await load(b!)
  const redis = await A.startRedis()
  const tenant = "l2t"
  const mk = (lib: any, timeout: boolean) => lib.Memo.loader({
    key: (k: number) => `k${k}`, window: 3_600_000, schema: Schema.Struct({ id: Schema.Number, v: Schema.String }),
    lookup: (k: number) => Effect.succeed({ id: k, v: "x".repeat(200) }),
    ...(timeout ? { timeout: "2 seconds" } : {})
  })
  const rt = (lib: any) => ManagedRuntime.make(lib.Memo.layer.pipe(Layer.provide(lib.Redis.layer({ redis: { host: "127.0.0.1", port: redis.port }, tenant }))))
  // fill
  { const r = rt(A.lib); const l = mk(A.lib, false); for (let i = 0; i < N; i++) await r.runPromise(l.get(i)); await r.dispose() }
  const impls = [["before", A.lib, true], ["after", B.lib, true], ["after, no timeout", B.lib, false]] as const
  const res: Record<string, { seq: number[]; conc: number[] }> = Object.fromEntries(impls.map(([n]) => [n, { seq: [], conc: [] }]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, lib, to] of impls) {
      for (const mode of ["seq", "conc"] as const) {
        const r = rt(lib); const l = mk(lib, to)
        await r.runPromise(l.get(-1 - round)).catch(() => {})
        const keys = Array.from({ length: N / 2 }, (_, i) => (mode === "seq" ? i : N / 2 + i))
        const t0 = performance.now()
        if (mode === "seq") for (const k of keys) await r.runPromise(l.get(k))
        else {
          let next = 0
          await Promise.all(Array.from({ length: 100 }, async () => { while (next < keys.length) await r.runPromise(l.get(keys[next++]!)) }))
        }
        res[name]![mode].push((performance.now() - t0) * 1000 / keys.length)
        await r.dispose()
      }
    }
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!.toFixed(1)
  for (const [name] of impls) console.log(`${name}: sequential ${med(res[name]!.seq)} us/read, 100 callers ${med(res[name]!.conc)} us/read (medians of ${rounds})`)
  await redis.stop?.(); process.exit(0)
}
main()
