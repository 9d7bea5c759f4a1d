import { Cache, Effect, Layer, ManagedRuntime } from "effect"
import { Memo, Redis } from "../src/index.js"
import { startRedis } from "../test/support/services.js"
import { Dashboard, dashboard } from "./fixtures.js"
const server = await startRedis()
const rt = ManagedRuntime.make(Memo.layer.pipe(Layer.provide(Redis.layer({ redis: { host: "127.0.0.1", port: server.port }, tenant: "probe" }))))
await rt.runtime()
const producer = (id: number) => Effect.promise(() => new Promise<typeof Dashboard.Type>((r) => setTimeout(() => r(dashboard(`k${id}`, id)), 50)))
const loader = Memo.loader({ key: (id: number) => `cold:${id}`, window: "1 hour", schema: Dashboard, lookup: producer })
const N = 1000
const results: Record<string, Array<number>> = { lockstep: [], cache: [], promises: [] }
const cpu: Record<string, Array<number>> = { lockstep: [], cache: [], promises: [] }
const used = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
for (let round = 0; round < Number(process.env.ROUNDS ?? 12); round++) {
  const id = round
  // lockstep
  let c0 = used()
  let t0 = performance.now()
  await Promise.all(Array.from({ length: N }, () => rt.runPromise(loader.get(id))))
  results.lockstep!.push(performance.now() - t0 - 50)
  cpu.lockstep!.push(used() - c0)
  // Effect Cache
  const cache = await Effect.runPromise(Cache.make({ capacity: 100, timeToLive: "1 hour", lookup: producer }))
  c0 = used()
  t0 = performance.now()
  await Promise.all(Array.from({ length: N }, () => Effect.runPromise(cache.get(id))))
  results.cache!.push(performance.now() - t0 - 50)
  cpu.cache!.push(used() - c0)
  // map of promises
  const m = new Map<number, Promise<unknown>>()
  c0 = used()
  t0 = performance.now()
  await Promise.all(Array.from({ length: N }, () => { let p = m.get(id); if (!p) { p = Effect.runPromise(producer(id)); m.set(id, p) } return p }))
  results.promises!.push(performance.now() - t0 - 50)
  cpu.promises!.push(used() - c0)
}
for (const [k, v] of Object.entries(results)) {
  const s = v.slice(2).sort((a, b) => a - b)
  const c = cpu[k]!.slice(2).sort((a, b) => a - b)
  console.log(k, "overhead median", s[Math.floor(s.length / 2)]!.toFixed(1), "ms", "min", s[0]!.toFixed(1), "| cpu median", c[Math.floor(c.length / 2)]!.toFixed(1), "ms min", c[0]!.toFixed(1))
}
await rt.dispose()
await server.stop()
