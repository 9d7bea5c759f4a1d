/**
 * The shared store: the `Redis` service, the fleet protocol it speaks (claim, renew, commit,
 * release, invalidate, set, notices), and its two implementations: Redis through ioredis
 * (standalone, Cluster or Sentinel) and an in-memory store with the same semantics, for one
 * process.
 *
 * Build it with `layerFromEnv` (Redis when `REDIS_HOST` is set, memory otherwise), `layer` or
 * `layerConfig`, or over a client of your own with `fromClient`; `Memo.layer` runs on it.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis as IORedis, RedisOptions } from "ioredis"
import * as MemoryStore from "./internal/memoryStore.js"
import type * as Addresses from "./internal/redis/addresses.js"
import type * as Breaker from "./internal/redis/breaker.js"
import * as RedisClient from "./internal/redis/client.js"
import * as RedisConfig from "./internal/redis/config.js"
import * as RedisStore from "./internal/redis/store.js"
import * as internal from "./internal/store.js"

// ---------------------------------------------------------------------------------------------
// the contract

/**
 * The store of one tenant, as `Memo` uses it.
 *
 * @since 0.1.0
 * @category tags
 */
export const Redis: typeof internal.Redis = internal.Redis

/**
 * @since 0.1.0
 * @category tags
 */
export type Redis = internal.Redis

/**
 * The store operations of the fleet protocol, all for one tenant, on the cache's own keys.
 *
 * @since 0.1.0
 * @category models
 */
export type Store = internal.Store

/**
 * A value as the store keeps it: the encoded payload, its window and fence.
 *
 * @since 0.1.0
 * @category models
 */
export type Stored = internal.Stored

/**
 * What a read finds: the store's clock, the key's invalidation mark, the record.
 *
 * @since 0.1.0
 * @category models
 */
export type Read = internal.Read

/**
 * The outcome of a claim, with the store's clock and whatever value it holds.
 *
 * @since 0.1.0
 * @category models
 */
export type Claim = internal.Claim

/**
 * The outcome of a commit. A refused commit says why and carries the newer value it lost to.
 *
 * @since 0.1.0
 * @category models
 */
export type Commit = internal.Commit

/**
 * The outcome of a release: the lock dropped, turned into a back-off marker (for how long), or
 * already someone else's.
 *
 * @since 0.1.0
 * @category models
 */
export type Release = internal.Release

/**
 * @since 0.1.0
 * @category models
 */
export type Backoff = internal.Backoff

/**
 * @since 0.1.0
 * @category models
 */
export type Written = internal.Written

/**
 * @since 0.1.0
 * @category models
 */
export type Invalidated = internal.Invalidated

/**
 * A commit or an invalidation, as the fleet is told of it.
 *
 * @since 0.1.0
 * @category models
 */
export type Notice = internal.Notice

/**
 * @since 0.1.0
 * @category models
 */
export type Subscriber = internal.Subscriber

/**
 * @since 0.1.0
 * @category models
 */
export type Lifetimes = internal.Lifetimes

/**
 * What a commit records beside the value: lifetimes, the lookup's duration and tags.
 *
 * @since 0.1.0
 * @category models
 */
export type CommitDetails = internal.CommitDetails

/**
 * One key of the tenant as the store holds it, for an inspector.
 *
 * @since 0.1.0
 * @category models
 */
export type Inspected = internal.Inspected

/**
 * A page of `Store.scan`.
 *
 * @since 0.1.0
 * @category models
 */
export type Scanned = internal.Scanned

/**
 * Redis could not be reached, did not answer in time, or answered something unexpected. The
 * cache degrades on it; a request never fails because of it.
 *
 * @since 0.1.0
 * @category errors
 */
export const RedisError: typeof internal.RedisError = internal.RedisError

/**
 * @since 0.1.0
 * @category errors
 */
export type RedisError = internal.RedisError

/**
 * Configuration that cannot describe a working store (bad tenant, duration, topology, …).
 *
 * @since 0.1.0
 * @category errors
 */
export const RedisConfigError: typeof internal.RedisConfigError = internal.RedisConfigError

/**
 * @since 0.1.0
 * @category errors
 */
export type RedisConfigError = internal.RedisConfigError

// ---------------------------------------------------------------------------------------------
// in memory

/**
 * The state behind in-memory stores, standing in for one Redis server: stores built over the
 * same `MemoryServer` (several tenants, or several simulated processes) see each other's keys
 * and notices.
 *
 * @since 0.1.0
 * @category models
 */
export type MemoryServer = MemoryStore.Server

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryServer: () => MemoryServer = MemoryStore.makeServer

/**
 * The in-memory store: the same protocol on maps in this process, with time from `Clock`. Each
 * call gets a server of its own unless one is passed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (
  options: { readonly tenant?: string | undefined; readonly server?: MemoryServer | undefined } = {}
): Effect.Effect<Store, RedisConfigError> => {
  const tenant = options.tenant ?? "default"
  const invalid = internal.validateTenant(tenant)
  return invalid ? Effect.fail(invalid) : Effect.sync(() => MemoryStore.make(tenant, options.server))
}

/**
 * The in-memory store of the default tenant.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Redis> = Layer.effect(Redis, Effect.orDie(makeMemory()))

// ---------------------------------------------------------------------------------------------
// Redis through ioredis

/**
 * Connection and protocol options of the Redis store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** ioredis options; lockstep overrides the ones that make ioredis queue or retry commands. */
  readonly redis?: Omit<RedisOptions, "replyMapping"> | undefined
  /** The password of `redis` (of the primary, under Sentinel), kept redacted. Overrides `redis.password`. */
  readonly password?: Redacted.Redacted<string> | string | undefined
  /** Key prefix: processes of one tenant share values (default `"default"`, 1 to 128 characters). */
  readonly tenant?: string | undefined
  /** Per-command time limit inside ioredis: 1 ms to 1 minute (default 500 ms). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long layer construction waits for the first connection before going on degraded (default 2 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Consecutive failures that open the breaker (default 3). */
  readonly breakerThreshold?: number | undefined
  /** How long the breaker stays open before a probe (default 1 s). */
  readonly breakerCooldown?: Duration.DurationInput | undefined
  /**
   * Redis Cluster: seed nodes (any reachable subset; ioredis discovers the others). `redis`
   * then applies to every node connection, except `host`, `port` and `db` (a cluster has only
   * db 0). Exclusive with `sentinel`.
   */
  readonly cluster?: ReadonlyArray<Address> | undefined
  /**
   * Sentinel: the sentinels to ask and the name of the primary they monitor. `redis` applies to
   * the primary's connection (`sentinelUsername` / `sentinelPassword` to the sentinels'); its
   * `host` and `port` are ignored.
   */
  readonly sentinel?: { readonly sentinels: ReadonlyArray<Address>; readonly name: string } | undefined
}

/**
 * A Redis, Cluster node or Sentinel address.
 *
 * @since 0.1.0
 * @category models
 */
export type Address = Addresses.Address

/**
 * What the store runs its scripts on: a standalone or Sentinel-backed client, or a `Cluster`.
 *
 * @since 0.1.0
 * @category models
 */
export type Client = IORedis | Cluster

/**
 * The ioredis options that keep a request from waiting behind a reconnect or a frozen server;
 * lockstep applies them over whatever options are passed.
 *
 * @since 0.1.0
 */
export const failFastOptions: (commandTimeoutMs: number) => ReturnType<typeof RedisClient.failFastOptions> = RedisClient.failFastOptions

/**
 * Builds a `Store` over an ioredis client you made yourself (a standalone client, a `Cluster`
 * or a Sentinel-backed client). Use the fail-fast options (`failFastOptions`) on it, or a dead
 * Redis will make requests wait. An invalid tenant or breaker setting throws `RedisConfigError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromClient = (
  client: Client,
  options: {
    readonly tenant: string
    /** Consecutive failures that open the breaker (default 3). */
    readonly breakerThreshold?: number | undefined
    /** How long the breaker stays open before a probe (default 1 s). */
    readonly breakerCooldown?: Duration.DurationInput | undefined
    readonly onBreakerChange?: ((state: Breaker.State) => void) | undefined
  }
): Store => {
  const resolved = RedisConfig.resolve({
    tenant: options.tenant,
    breakerThreshold: options.breakerThreshold,
    breakerCooldown: options.breakerCooldown
  })
  if (Either.isLeft(resolved)) throw resolved.left
  return RedisStore.fromClient(client, {
    tenant: resolved.right.tenant,
    breakerThreshold: resolved.right.breakerThreshold,
    breakerCooldownMs: resolved.right.breakerCooldownMs,
    onBreakerChange: options.onBreakerChange
  })
}

/**
 * Builds the Redis store: checks the options, connects (a standalone server, a Cluster, or the
 * primary behind Sentinels) as a scoped resource, and waits up to `connectTimeout` for the first
 * connection before going on degraded.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Store, RedisConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* RedisConfig.resolve(options)
    const client: Client = options.cluster
      ? yield* RedisClient.connectCluster(options.cluster, options, resolved)
      : yield* RedisClient.connect(options, resolved)
    return RedisStore.fromClient(client, resolved)
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Redis, RedisConfigError> => Layer.scoped(Redis, make(options))

/**
 * The store from `Config`s: each option may be a `Config` of its own (or the whole `Options` one
 * `Config`), as `@effect/experimental`'s `Persistence/Redis` takes them.
 *
 * @example
 * import { Config } from "effect"
 * import { Redis } from "lockstep"
 *
 * const CacheStore = Redis.layerConfig({
 *   redis: { host: Config.string("CACHE_HOST"), port: Config.port("CACHE_PORT") },
 *   password: Config.redacted("CACHE_PASSWORD"),
 *   tenant: Config.string("APP_NAME")
 * })
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options>
): Layer.Layer<Redis, RedisConfigError | ConfigError.ConfigError> =>
  Layer.scoped(Redis, Effect.flatMap(Config.unwrap(options), make))

/**
 * The environment the Redis layers read.
 *
 * @since 0.1.0
 * @category config
 */
export const config = RedisConfig.env

/**
 * The store the environment describes: a standalone Redis (`REDIS_HOST`), a Redis Cluster
 * (`REDIS_CLUSTER_NODES=host:port,…`, db 0 only) or a Sentinel set (`REDIS_SENTINELS=host:port,…`
 * with `REDIS_SENTINEL_NAME`, and `REDIS_SENTINEL_USERNAME` / `REDIS_SENTINEL_PASSWORD` when the
 * sentinels require them), or `None` when it names none. `REDIS_USERNAME`, `REDIS_PASSWORD`,
 * `REDIS_TLS`, `REDIS_COMMAND_TIMEOUT` and `TENANT` apply to all three (`REDIS_TLS` to the
 * sentinels' connections too). Setting more than one of the three, or half a Sentinel set, is a
 * `RedisConfigError`; a malformed list is a `ConfigError` naming its variable.
 *
 * @since 0.1.0
 * @category config
 */
export const optionsFromEnv: Effect.Effect<Option.Option<Options>, RedisConfigError | ConfigError.ConfigError> =
  RedisConfig.optionsFromEnv

/**
 * Redis when `REDIS_HOST` (or `REDIS_CLUSTER_NODES`, or `REDIS_SENTINELS`) is set, otherwise the
 * in-memory store with one warning: the same program runs on a laptop and in the fleet. Invalid
 * values are refused either way.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<Redis, RedisConfigError | ConfigError.ConfigError> = Layer.scoped(
  Redis,
  Effect.gen(function*() {
    const c = yield* RedisConfig.env
    const options = yield* RedisConfig.optionsFromEnv
    if (Option.isSome(options)) return yield* make(options.value)
    yield* Effect.logWarning(
      "lockstep: REDIS_HOST is not set; using the in-memory store (one process, no fleet coordination)"
    )
    return yield* makeMemory({ tenant: c.tenant })
  })
)

/**
 * Redis from the environment, as `layerFromEnv`, but never the in-memory store: without
 * `REDIS_HOST` (or `REDIS_CLUSTER_NODES`, or `REDIS_SENTINELS`) it fails, for deployments where
 * running without the fleet's store would be a mistake.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisFromEnv: Layer.Layer<Redis, RedisConfigError | ConfigError.ConfigError> = Layer.scoped(
  Redis,
  Effect.gen(function*() {
    const options = yield* RedisConfig.optionsFromEnv
    if (Option.isNone(options)) {
      return yield* new internal.RedisConfigError({
        message: "REDIS_HOST is not set (nor REDIS_CLUSTER_NODES, nor REDIS_SENTINELS)"
      })
    }
    return yield* make(options.value)
  })
)
