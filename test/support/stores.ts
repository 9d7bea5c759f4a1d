/**
 * The two store layers the contract suite runs against, and a way to let time pass that suits
 * each: the in-memory store reads `Clock` (so `TestClock.adjust`), Redis reads its own `TIME`
 * (so a real sleep, kept short).
 */
import { Effect, Layer, TestClock, TestServices } from "effect"
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
}

const memoryServer = Redis.makeMemoryServer()

export const memoryCase: StoreCase = {
  name: "memory",
  layer: (tenant) => Layer.effect(Redis.Redis, Redis.makeMemory({ tenant, server: memoryServer })),
  advance: (ms) => TestClock.adjust(ms),
  settle: () => Effect.void
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
    raw: () => new IORedis({ host: "127.0.0.1", port, lazyConnect: false })
  }
}

let tenants = 0
/** A tenant no other test uses, so tests share one server without meeting. */
export const freshTenant = (prefix = "t") => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++tenants}`
