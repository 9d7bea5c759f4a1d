/**
 * The two store layers the contract suite runs against, and a way to let time pass that suits
 * each: the in-memory store reads `Clock` (so `TestClock.adjust`), Redis reads its own `TIME`
 * (so a real sleep, kept short).
 */
import { Clock, Effect, Layer, TestClock, TestServices } from "effect"
import { Redis as IORedis } from "ioredis"
import { inject } from "vitest"
import { Redis } from "../../src/index.js"

export interface StoreCase {
  readonly name: string
  readonly layer: (tenant: string) => Layer.Layer<Redis.Redis, Redis.RedisConfigError>
  readonly advance: (ms: number) => Effect.Effect<void>
  /** Waits (a little, on Redis: notices travel on another connection) until `done` holds. */
  readonly settle: (done: () => boolean) => Effect.Effect<void>
  /** Raw access to the server, for planting foreign data; absent for the in-memory store. */
  readonly raw?: () => IORedis
  /**
   * The server loses every record of the tenant, as after a restart without persistence, a
   * `FLUSHDB` or an eviction (tag sets included).
   */
  readonly lose: (tenant: string) => Effect.Effect<void>
  /** The records of the tenant that have not expired; absent for Redis (read their PTTL with `raw`). */
  readonly live?: (tenant: string) => Effect.Effect<ReadonlyArray<string>>
}

const memoryServer = Redis.makeMemoryServer()

export const memoryCase: StoreCase = {
  name: "memory",
  layer: (tenant) => Layer.effect(Redis.Redis, Redis.makeMemory({ tenant, server: memoryServer })),
  advance: (ms) => TestClock.adjust(ms),
  settle: () => Effect.void,
  lose: (tenant) =>
    Effect.sync(() => {
      for (const name of [...memoryServer.cells.keys()]) if (name.startsWith(`${tenant}:`)) memoryServer.cells.delete(name)
    }),
  live: (tenant) =>
    Effect.map(Clock.currentTimeMillis, (now) =>
      [...memoryServer.cells].flatMap(([name, cell]) => (name.startsWith(`${tenant}:`) && cell.expiresAt > now ? [name] : [])))
}

export const redisCase = (): StoreCase => {
  const port = inject("redisPort")
  return {
    name: "redis",
    layer: (tenant) => Redis.layer({ tenant, redis: { host: "127.0.0.1", port } }),
    advance: (ms) => TestServices.provideLive(Effect.sleep(ms)),
    settle: (done) =>
      TestServices.provideLive(
        Effect.gen(function*() {
          for (let i = 0; i < 200 && !done(); i++) yield* Effect.sleep(10)
        })
      ),
    raw: () => new IORedis({ host: "127.0.0.1", port, lazyConnect: false }),
    lose: (tenant) =>
      Effect.promise(async () => {
        const raw = new IORedis({ host: "127.0.0.1", port })
        try {
          let cursor = "0"
          do {
            const [next, names] = await raw.scan(cursor, "MATCH", `${tenant}:*`, "COUNT", 1000)
            if (names.length > 0) await raw.del(...names)
            cursor = next
          } while (cursor !== "0")
        } finally {
          raw.disconnect()
        }
      })
  }
}

let tenants = 0
/** A tenant no other test uses, so tests share one server without meeting. */
export const freshTenant = (prefix = "t") => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++tenants}`
