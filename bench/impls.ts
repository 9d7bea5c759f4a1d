/**
 * Every implementation behind one small interface, configured the way each one is meant to be
 * used for "an aggregate that may be a little stale", and given its fastest documented options
 * where there is a choice (no L1 serialisation in bentocache and cache-manager, except where it
 * breaks), so that the comparison is never won by handicapping a peer.
 *
 * - lockstep: `Memo.memo` over `Redis.layer` (or the in-memory store), one effect per key built
 *   once, run with `ManagedRuntime.runPromise` per call;
 * - lockstep/promise: `createCache` (the Promise facade), one keyed loader, `get` per call;
 * - bentocache: L1 memory + L2 Redis + Redis bus, `getOrSet` with `grace` (stale serving);
 * - cache-manager: `wrap` over an L1 Keyv (Map) and an L2 `@keyv/redis`, `refreshThreshold`
 *   for refresh-ahead (it has no stale serving after expiry);
 * - lru-cache: `fetch` with `allowStale` (in-process only);
 * - async-cache-dedupe: `define` with `stale`, memory or Redis storage (whole seconds only).
 */
import { createCache as createAcd } from "async-cache-dedupe"
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import { redisBusDriver, redisDriver } from "bentocache/drivers/redis"
import { createCache as createCacheManager } from "cache-manager"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis as IORedis } from "ioredis"
import { createKeyv as createKeyvRedis } from "@keyv/redis"
import { Keyv } from "keyv"
import { LRUCache } from "lru-cache"
import { Memo, Redis } from "../src/index.js"
import { createCache } from "../src/Promise.js"
import { Dashboard } from "./fixtures.js"

export const implNames = ["lockstep", "bentocache", "cache-manager", "lru-cache", "async-cache-dedupe"] as const
export type ImplName = (typeof implNames)[number]

export interface CacheOptions {
  /** Redis for the implementations that have a shared tier; `undefined`: in-process stores. */
  readonly redis: { readonly host: string; readonly port: number } | undefined
  /** Isolates this run's keys (tenant, prefix, namespace). */
  readonly namespace: string
  /** lockstep's window; the peers' time-to-live unless `peerTtlMs` is given. */
  readonly windowMs: number
  readonly peerTtlMs?: number | undefined
  readonly produce: (key: string) => Promise<Dashboard>
  /** In-process capacity (entries). */
  readonly capacity?: number | undefined
  /** async-cache-dedupe's storage: its memory storage is its L1; with Redis it has no L1. */
  readonly acdStorage?: "memory" | "redis" | undefined
  /**
   * bentocache's L1 keeps objects (`serialize: false`, its fastest setting) unless this is set.
   * With several processes on the bus, an unserialised L1 crashes in bentocache 1.6
   * (`CacheEntry.fromDriver` meets a string without a serializer), so the fleet uses the default.
   */
  readonly bentoSerializeL1?: boolean | undefined
  /** Added to lockstep's runtime (a tracer that times spans, `bench/timeline.ts`). */
  readonly lockstepLayer?: Layer.Layer<never> | undefined
}

export interface Cache {
  readonly name: string
  /** Prepares callers for `keys` (what each library lets a caller build once); call by index. */
  readonly bind: (keys: ReadonlyArray<string>) => (i: number) => Promise<unknown>
  readonly close: () => Promise<void>
}

export interface LockstepCache extends Cache {
  readonly runtime: ManagedRuntime.ManagedRuntime<Memo.Memo, unknown>
  readonly effects: (keys: ReadonlyArray<string>) => Array<Effect.Effect<Dashboard, Memo.InvalidOptions, Memo.Memo>>
}

const ignore = () => {}

type MemoEffect = Effect.Effect<Dashboard, Memo.InvalidOptions, Memo.Memo>
const built = new WeakMap<ReadonlyArray<string>, Map<string, Array<MemoEffect>>>()
const producerIds = new WeakMap<object, number>()
let producers = 0

/**
 * One `memo` effect per key, built once and shared by every runtime that reads the same keys (a
 * memo effect does not depend on the runtime): an application defines its memo effects once,
 * and building them anew for each fresh runtime would charge lockstep for garbage it never makes.
 */
const memoEffects = (keys: ReadonlyArray<string>, windowMs: number, produce: CacheOptions["produce"]): Array<MemoEffect> => {
  let byOptions = built.get(keys)
  if (byOptions === undefined) built.set(keys, byOptions = new Map())
  if (!producerIds.has(produce)) producerIds.set(produce, ++producers)
  const id = `${windowMs}:${producerIds.get(produce)}`
  let effects = byOptions.get(id)
  if (effects === undefined) {
    effects = keys.map((key) => Memo.memo({ key, window: windowMs, schema: Dashboard }, Effect.promise(() => produce(key))))
    byOptions.set(id, effects)
  }
  return effects
}

export const makeLockstep = async (
  o: CacheOptions,
  redisLayer?: Layer.Layer<Redis.Redis, unknown>
): Promise<LockstepCache> => {
  const store = redisLayer ??
    (o.redis === undefined
      ? Redis.layerMemory
      : Redis.layer({ redis: { host: o.redis.host, port: o.redis.port }, tenant: o.namespace }))
  const runtime = ManagedRuntime.make(
    Memo.layerWith(o.capacity === undefined ? {} : { l1Capacity: o.capacity }).pipe(
      Layer.provide(store),
      Layer.merge(o.lockstepLayer ?? Layer.empty)
    )
  )
  await runtime.runtime()
  const effects = (keys: ReadonlyArray<string>) => memoEffects(keys, o.windowMs, o.produce)
  return {
    name: "lockstep",
    runtime,
    effects,
    bind: (keys) => {
      const effs = effects(keys)
      return (i) => runtime.runPromise(effs[i]!)
    },
    close: () => runtime.dispose()
  }
}

/**
 * The Promise facade: one loader keyed by index over Redis (or the in-memory store), its key
 * built on every call as an application's would be (`keys` must be `keysOf(prefix, n)`).
 */
export const makeLockstepPromise = async (o: CacheOptions): Promise<Cache> => {
  const cache = createCache({
    ...(o.redis === undefined ? {} : { redis: { redis: { host: o.redis.host, port: o.redis.port } } }),
    tenant: o.namespace,
    settings: o.capacity === undefined ? {} : { l1Capacity: o.capacity }
  })
  let prefix = ""
  const dashboards = cache.loader({ key: (i: number) => `${prefix}:${i}`, window: o.windowMs, schema: Dashboard, lookup: (i) => o.produce(`${prefix}:${i}`) })
  return {
    name: "lockstep/promise `get`",
    bind: (keys) => {
      // flat and internalized, as the literal prefix of an application's key template is
      prefix = Object.keys({ [keys[0]!.slice(0, keys[0]!.lastIndexOf(":"))]: 0 })[0]!
      return (i) => dashboards.get(i)
    },
    close: () => cache.close()
  }
}

/** The Redis store alone, to share between several fresh `Memo` runtimes (L2 rounds). */
export const lockstepStore = async (o: CacheOptions) => {
  const runtime = ManagedRuntime.make(
    Redis.layer({ redis: { host: o.redis!.host, port: o.redis!.port }, tenant: o.namespace })
  )
  const store = await runtime.runPromise(Redis.Redis)
  return { layer: Layer.succeed(Redis.Redis, store), close: () => runtime.dispose() }
}

export const makeBentocache = async (o: CacheOptions): Promise<Cache> => {
  const ttl = o.peerTtlMs ?? o.windowMs
  let store = bentostore().useL1Layer(memoryDriver({ maxItems: o.capacity ?? 20_000, serialize: o.bentoSerializeL1 === true }))
  if (o.redis !== undefined) {
    const connection = { host: o.redis.host, port: o.redis.port }
    store = store.useL2Layer(redisDriver({ connection })).useBus(redisBusDriver({ connection }))
  }
  const bento = new BentoCache({ default: "cache", prefix: o.namespace, stores: { cache: store } })
  return {
    name: "bentocache",
    bind: (keys) => {
      const options = keys.map((key) => ({ key, factory: () => o.produce(key), ttl, grace: "1h", timeout: 0 }))
      return (i) => bento.getOrSet(options[i]!)
    },
    close: () => bento.disconnect()
  }
}

export const makeCacheManager = async (o: CacheOptions): Promise<Cache> => {
  const ttl = o.peerTtlMs ?? o.windowMs
  const l1 = new Keyv({ namespace: o.namespace })
  // in-process values stay objects, as in the other L1s
  l1.serialize = undefined
  l1.deserialize = undefined
  l1.on("error", ignore)
  const stores = [l1]
  if (o.redis !== undefined) {
    const l2 = createKeyvRedis(`redis://${o.redis.host}:${o.redis.port}`, { namespace: o.namespace })
    l2.on("error", ignore)
    stores.push(l2)
  }
  const cache = createCacheManager({ stores })
  // No stale serving after expiry in cache-manager: the closest is refresh-ahead. The entry
  // lives an hour and is refreshed in the background once it is `ttl` old.
  const life = 3_600_000
  const wrapOptions = { ttl: life, refreshThreshold: life - ttl }
  return {
    name: "cache-manager",
    bind: (keys) => (i) => cache.wrap(keys[i]!, () => o.produce(keys[i]!), wrapOptions),
    close: async () => {
      await cache.disconnect()
    }
  }
}

export const makeLruCache = async (o: CacheOptions & { readonly keyPerCall?: boolean }): Promise<Cache> => {
  const ttl = o.peerTtlMs ?? o.windowMs
  const lru = new LRUCache<string, Dashboard>({
    max: o.capacity ?? 20_000,
    ttl,
    allowStale: true,
    noDeleteOnStaleGet: true,
    fetchMethod: (key) => o.produce(key)
  })
  const close = async () => {
    lru.clear()
  }
  if (o.keyPerCall !== true) return { name: "lru-cache", bind: (keys) => (i) => lru.fetch(keys[i]!), close }
  // the key built on every call from the same template as the facade's (`keys` must be
  // `keysOf(prefix, n)`): what an application that calls lru-cache pays, like for like
  return {
    name: "lru-cache, key built per call",
    bind: (keys) => {
      const prefix = Object.keys({ [keys[0]!.slice(0, keys[0]!.lastIndexOf(":"))]: 0 })[0]!
      return (i) => lru.fetch(`${prefix}:${i}`)
    },
    close
  }
}

export const makeAcd = async (o: CacheOptions): Promise<Cache> => {
  const ttlS = Math.max(1, Math.round((o.peerTtlMs ?? o.windowMs) / 1000))
  const useRedis = o.acdStorage === "redis" && o.redis !== undefined
  const client = useRedis ? new IORedis({ host: o.redis!.host, port: o.redis!.port, lazyConnect: false }) : undefined
  client?.on("error", ignore)
  const cache = createAcd({
    ttl: ttlS,
    stale: 3600,
    storage: client !== undefined
      ? { type: "redis", options: { client } }
      : { type: "memory", options: { size: o.capacity ?? 20_000 } }
  }).define(`d_${o.namespace.replace(/\W/g, "_")}`, (key: string) => o.produce(key))
  const name = `d_${o.namespace.replace(/\W/g, "_")}`
  const fn = (cache as unknown as Record<string, (key: string) => Promise<Dashboard>>)[name]!
  return {
    name: "async-cache-dedupe",
    bind: (keys) => (i) => fn(keys[i]!),
    close: async () => {
      await client?.quit().catch(ignore)
    }
  }
}

/**
 * The fleet baseline: what a team writes by hand without a caching library. A process with a
 * miss tries `SET lock NX PX lease`; the winner runs the producer, `SET`s the value and deletes
 * its lock (compare-and-delete); every other process polls `GET value` every `pollMs` (5 ms)
 * until it appears. Callers in one process share one pending load (in-process single-flight),
 * and a loaded value is kept in a `Map` (L1), as any cache would.
 */
export const makeSetNxPoll = async (o: CacheOptions & { readonly pollMs?: number; readonly leaseMs?: number }): Promise<Cache> => {
  const client = new IORedis({ host: o.redis!.host, port: o.redis!.port })
  client.on("error", ignore)
  const pollMs = o.pollMs ?? 5
  const leaseMs = o.leaseMs ?? 10_000
  const l1 = new Map<string, Dashboard>()
  const pending = new Map<string, Promise<Dashboard>>()
  const token = `${process.pid}:${Math.random().toString(36).slice(2)}`
  const valueKey = (key: string) => `${o.namespace}:v:${key}`
  const lockKey = (key: string) => `${o.namespace}:l:${key}`
  const release = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`
  const load = async (key: string): Promise<Dashboard> => {
    while (true) {
      const raw = await client.get(valueKey(key))
      if (raw !== null) return JSON.parse(raw) as Dashboard
      const won = await client.set(lockKey(key), token, "PX", leaseMs, "NX")
      if (won === "OK") {
        try {
          const value = await o.produce(key)
          await client.set(valueKey(key), JSON.stringify(value))
          return value
        } finally {
          await client.eval(release, 1, lockKey(key), token).catch(ignore)
        }
      }
      await new Promise((r) => setTimeout(r, pollMs))
    }
  }
  const get = (key: string): Promise<Dashboard> => {
    const hit = l1.get(key)
    if (hit !== undefined) return Promise.resolve(hit)
    let p = pending.get(key)
    if (p === undefined) {
      p = load(key).then((v) => {
        l1.set(key, v)
        return v
      }).finally(() => pending.delete(key))
      pending.set(key, p)
    }
    return p
  }
  return {
    name: "SET NX PX + 5 ms poll",
    bind: (keys) => (i) => get(keys[i]!),
    close: async () => {
      await client.quit().catch(ignore)
    }
  }
}

/** What the fleet's pods can build: the peers, and the hand-written lock baseline. */
export const fleetImplNames = [...implNames, "set-nx-px"] as const
export type FleetImplName = (typeof fleetImplNames)[number]

export const makers: Record<ImplName, (o: CacheOptions) => Promise<Cache>> = {
  "lockstep": (o) => makeLockstep(o),
  "bentocache": makeBentocache,
  "cache-manager": makeCacheManager,
  "lru-cache": makeLruCache,
  "async-cache-dedupe": makeAcd
}

export const fleetMakers: Record<FleetImplName, (o: CacheOptions) => Promise<Cache>> = {
  ...makers,
  "set-nx-px": makeSetNxPoll
}
