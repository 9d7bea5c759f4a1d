/**
 * The shared store: a tenant-scoped Redis speaking the lockstep protocol (claim, renew, commit,
 * release), or an in-memory store with the same semantics for a single process.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Cluster, Redis as IORedis, type RedisOptions } from "ioredis"
import * as Breaker from "./internal/breaker.js"
import * as Nodes from "./internal/cluster.js"
import * as Keys from "./internal/keys.js"
import * as MemoryStore from "./internal/memoryStore.js"
import * as Scripts from "./internal/scripts.js"
import * as Metrics from "./Metrics.js"

/**
 * A value as the store keeps it: the encoded payload and the window it belongs to.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stored {
  /** The value, encoded by the memo's `Schema` and serialised as JSON. */
  readonly data: string
  readonly bucket: number
  /** The fencing token of the claim that produced it (0 for a value produced without Redis). */
  readonly fence: number
  readonly windowMs: number
  readonly computedAt: number
}

/**
 * The outcome of a claim, with the store's clock and whatever value it holds.
 *
 * @since 0.1.0
 * @category models
 */
export type Claim =
  | { readonly _tag: "Fresh"; readonly now: number; readonly stored: Stored }
  | { readonly _tag: "Busy"; readonly now: number; readonly stored: Option.Option<Stored>; readonly ttlMs: number }
  | {
    readonly _tag: "Backoff"
    readonly now: number
    readonly stored: Option.Option<Stored>
    readonly ttlMs: number
  }
  | {
    readonly _tag: "Acquired"
    readonly now: number
    readonly stored: Option.Option<Stored>
    readonly bucket: number
    readonly fence: number
  }

/**
 * The outcome of a commit. A refused commit says why and carries the newer value it lost to.
 *
 * @since 0.1.0
 * @category models
 */
export type Commit =
  | { readonly _tag: "Committed"; readonly now: number }
  | {
    readonly _tag: "Refused"
    readonly reason: "older" | "fenced" | "future"
    readonly now: number
    readonly stored: Option.Option<Stored>
  }

/**
 * Redis could not be reached, did not answer in time, or answered something unexpected. The
 * cache degrades on it; callers of `memo` never see it.
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  readonly reason: "Unavailable" | "Timeout" | "CircuitOpen" | "Protocol"
  readonly operation: string
  readonly cause?: unknown
}> {
  override get message() {
    return `Redis ${this.operation}: ${this.reason}${this.cause instanceof Error ? ` (${this.cause.message})` : ""}`
  }
}

/**
 * Configuration that cannot describe a working store (bad tenant, port, TLS flag, …).
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisConfigError extends Data.TaggedError("RedisConfigError")<{
  readonly message: string
}> {}

/**
 * The store operations of the fleet protocol, all for one tenant. Keys are the cache's own
 * (unescaped) keys; the store maps them to its key layout.
 *
 * @since 0.1.0
 * @category models
 */
export interface Store {
  readonly tenant: string
  /** `"redis"` or `"memory"`, for logs and metrics. */
  readonly kind: "redis" | "memory"
  readonly get: (key: string) => Effect.Effect<{ readonly now: number; readonly stored: Option.Option<Stored> }, RedisError>
  readonly claim: (key: string, options: {
    readonly windowMs: number
    readonly leaseMs: number
    readonly token: string
    /** Take the lock even when a fresh value is stored (that value could not be decoded). */
    readonly force: boolean
  }) => Effect.Effect<Claim, RedisError>
  /** `true` while the lock is still ours; `false` is a definitive loss. */
  readonly renew: (key: string, token: string, leaseMs: number) => Effect.Effect<boolean, RedisError>
  /** `token` is `undefined` for a value produced while Redis was unreachable, offered back. */
  readonly commit: (key: string, value: Stored, token: string | undefined) => Effect.Effect<Commit, RedisError>
  /**
   * Drops our lock or, with `backoff`, turns it into a back-off marker lasting
   * `baseMs * 2^(n-1)` (at most `maxMs`), `n` counting failures fleet-wide since the last commit.
   */
  readonly release: (key: string, token: string, backoff?: Backoff | undefined) => Effect.Effect<void, RedisError>
  /** The breaker's state (always `"closed"` for the in-memory store). */
  readonly health: Effect.Effect<Breaker.State>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Backoff {
  readonly baseMs: number
  readonly maxMs: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Redis extends Context.Tag("lockstep/Redis")<Redis, Store>() {}

/**
 * Connection and protocol options for the ioredis layer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** ioredis options; lockstep overrides the ones that make ioredis queue or retry commands. */
  readonly redis?: Omit<RedisOptions, "replyMapping"> | undefined
  readonly tenant?: string | undefined
  /** Per-command time limit inside ioredis (default 500 ms). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long layer construction waits for the first connection before going on degraded. */
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
export type Address = Nodes.Address

/**
 * What the store runs its scripts on: a standalone or Sentinel-backed client, or a `Cluster`.
 *
 * @since 0.1.0
 * @category models
 */
export type Client = IORedis | Cluster

/**
 * The options that keep ioredis from queueing or retrying: a request must never wait behind a
 * reconnect, and a frozen server must cost at most `commandTimeout`.
 *
 * @since 0.1.0
 */
export const failFastOptions = (commandTimeoutMs: number) => ({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  enableReadyCheck: true,
  commandTimeout: commandTimeoutMs,
  connectTimeout: 2_000,
  retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000)
} as const)

const validateTenant = (tenant: string): Effect.Effect<string, RedisConfigError> =>
  tenant.length === 0 || tenant.length > 128
    ? Effect.fail(new RedisConfigError({ message: `TENANT must be 1 to 128 characters, got ${JSON.stringify(tenant)}` }))
    : Effect.succeed(tenant)

// ---------------------------------------------------------------------------------------------
// replies

const parseStored = (reply: ReadonlyArray<string>, at: number): Option.Option<Stored> => {
  if (reply.length < at + 5) return Option.none()
  const bucket = Number(reply[at])
  const fence = Number(reply[at + 1])
  const windowMs = Number(reply[at + 2])
  const computedAt = Number(reply[at + 3])
  const data = reply[at + 4]!
  return Number.isSafeInteger(bucket) && Number.isSafeInteger(fence) && Number.isSafeInteger(windowMs) &&
      windowMs > 0 && Number.isFinite(computedAt)
    ? Option.some({ data, bucket, fence, windowMs, computedAt })
    : Option.none()
}

const asReply = (operation: string, raw: unknown): Effect.Effect<ReadonlyArray<string>, RedisError> =>
  Array.isArray(raw) && raw.length >= 2 && raw.every((x) => typeof x === "string" || Buffer.isBuffer(x))
    ? Effect.succeed(raw.map(String))
    : Effect.fail(new RedisError({ reason: "Protocol", operation, cause: raw }))

/** @internal */
export const decodeClaim = (r: ReadonlyArray<string>): Claim | undefined => {
  const now = Number(r[1])
  switch (r[0]) {
    case "fresh": {
      const stored = parseStored(r, 2)
      return Option.isSome(stored) ? { _tag: "Fresh", now, stored: stored.value } : undefined
    }
    case "busy":
    case "backoff":
      return {
        _tag: r[0] === "busy" ? "Busy" : "Backoff",
        now,
        ttlMs: Math.max(0, Number(r[2])),
        stored: parseStored(r, 3)
      }
    case "acquired":
      return { _tag: "Acquired", now, bucket: Number(r[2]), fence: Number(r[3]), stored: parseStored(r, 4) }
  }
  return undefined
}

/** @internal */
export const decodeCommit = (r: ReadonlyArray<string>): Commit | undefined => {
  const now = Number(r[1])
  switch (r[0]) {
    case "committed":
      return { _tag: "Committed", now }
    case "older":
    case "fenced":
    case "future":
      return { _tag: "Refused", reason: r[0], now, stored: parseStored(r, 2) }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// ioredis

type ScriptRunner = (name: keyof typeof Scripts, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>) => Promise<unknown>

/** How many of each script's arguments are keys (all in one hash tag). */
const scriptKeys: Record<keyof typeof Scripts, number> = { get: 1, renew: 1, release: 2, claim: 3, commit: 4 }

const defineScripts = (client: Client): ScriptRunner => {
  for (const [name, lua] of Object.entries(Scripts)) {
    const numberOfKeys = scriptKeys[name as keyof typeof Scripts]
    client.defineCommand(`lockstep_${name}`, { numberOfKeys, lua })
  }
  return (name, keys, args) =>
    (client as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[`lockstep_${name}`]!(
      ...keys,
      ...args
    )
}

/**
 * Builds a `Store` over an ioredis client (a standalone client, a `Cluster` or a Sentinel-backed
 * client: anything that runs `defineCommand` scripts).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromClient = (
  client: Client,
  options: {
    readonly tenant: string
    readonly breakerThreshold?: number | undefined
    readonly breakerCooldown?: Duration.DurationInput | undefined
    readonly onBreakerChange?: (state: Breaker.State) => void
  }
): Store => {
  const run = defineScripts(client)
  const breakerTags = [Metrics.label("tenant", options.tenant)]
  const breaker = Breaker.make({
    threshold: options.breakerThreshold ?? 3,
    cooldownMs: Duration.toMillis(options.breakerCooldown ?? "1 second"),
    onChange: (state) => {
      Metrics.breakerState.unsafeUpdate(Metrics.breakerValue(state), breakerTags)
      options.onBreakerChange?.(state)
    }
  })
  /** One script call, without the breaker. */
  const attempt = <A>(
    operation: keyof typeof Scripts,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>,
    decode: (r: ReadonlyArray<string>) => A | undefined
  ): Effect.Effect<A, RedisError> =>
    Effect.tryPromise({
      try: () => run(operation, keys, args),
      catch: (cause) =>
        new RedisError({
          reason: cause instanceof Error && /timed? ?out/i.test(cause.message) ? "Timeout" : "Unavailable",
          operation,
          cause
        })
    }).pipe(
      Effect.flatMap((raw) => asReply(operation, raw)),
      Effect.flatMap((r) => {
        const decoded = decode(r)
        return decoded === undefined
          ? Effect.fail(new RedisError({ reason: "Protocol", operation, cause: r }))
          : Effect.succeed(decoded)
      })
    )
  const call = <A>(
    operation: keyof typeof Scripts,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>,
    decode: (r: ReadonlyArray<string>) => A | undefined
  ): Effect.Effect<A, RedisError> =>
    breaker.guard(attempt(operation, keys, args, decode), () => new RedisError({ reason: "CircuitOpen", operation }))
  const release = (key: string, token: string, backoff: Backoff | undefined, send: typeof call = call) => {
    const k = Keys.make(options.tenant, key)
    const base = backoff === undefined ? 0 : Math.max(0, Math.round(backoff.baseMs))
    const max = backoff === undefined ? 0 : Math.max(1, Math.round(backoff.maxMs))
    return Effect.asVoid(send("release", [k.lock, k.failures], [token, base, max], (r) => r[0]))
  }

  const tenant = options.tenant
  return {
    tenant,
    kind: "redis",
    get: (key) => {
      const k = Keys.make(tenant, key)
      return call("get", [k.value], [], (r) => ({ now: Number(r[1]), stored: parseStored(r, 2) }))
    },
    claim: (key, o) => {
      const k = Keys.make(tenant, key)
      return call("claim", [k.value, k.lock, k.fence], [o.windowMs, o.leaseMs, o.token, o.force ? "1" : "0"], decodeClaim).pipe(
        // A claim that timed out (Redis frozen or paused) still runs when Redis wakes up, and
        // would take the lock for a token nobody holds: the fleet would wait a whole lease. A
        // release of that token queued behind it on the same connection undoes it; it is sent
        // past the breaker, which this very timeout may just have opened.
        Effect.tapError((e) =>
          e.reason === "Timeout" ? Effect.forkDaemon(Effect.ignore(release(key, o.token, undefined, attempt))) : Effect.void
        )
      )
    },
    renew: (key, token, leaseMs) =>
      call("renew", [Keys.make(tenant, key).lock], [token, leaseMs], (r) => r[0] === "held"),
    commit: (key, value, token) => {
      const k = Keys.make(tenant, key)
      return call(
        "commit",
        [k.value, k.lock, k.fence, k.failures],
        [value.bucket, value.fence, value.windowMs, value.computedAt, value.data, token ?? ""],
        decodeCommit
      )
    },
    release: (key, token, backoff) => release(key, token, backoff),
    health: breaker.state
  }
}

/**
 * A client as a scoped resource: created (and connecting) when the scope opens, given an error
 * listener, awaited until ready or `connectTimeout` (after which it goes on reconnecting in the
 * background, so the process starts degraded rather than not at all), quit when the scope closes.
 */
const scopedClient = <C extends Client>(
  create: () => C,
  connectTimeout: Duration.DurationInput | undefined
): Effect.Effect<C, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = create()
      // Without a listener, a connection error would be an uncaught "error" event.
      client.on("error", () => {})
      return client
    }),
    (client) =>
      Effect.promise(() => client.quit().catch(() => undefined)).pipe(
        Effect.timeout("1 second"),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  ).pipe(
    Effect.tap((client) =>
      Effect.async<void>((resume) => {
        if (client.status === "ready") return resume(Effect.void)
        const done = () => resume(Effect.void)
        client.once("ready", done)
        return Effect.sync(() => client.off("ready", done))
      }).pipe(
        Effect.timeoutOption(connectTimeout ?? "2 seconds"),
        Effect.tap((ready) =>
          Option.isNone(ready)
            ? Effect.logWarning("lockstep: Redis is not reachable yet; serving degraded until it is")
            : Effect.void
        )
      )
    )
  )

/**
 * What a Sentinel-backed client adds to the fail-fast options. After a failover the primary is
 * elsewhere: each reconnect asks a sentinel first (cheap), so it polls every ≤ 500 ms rather than
 * backing off to 2 s. A primary that was demoted while still up answers writes with `READONLY`:
 * that reconnects (through the sentinels, to the new primary) without resending the command.
 */
const sentinelOptions = (sentinel: NonNullable<Options["sentinel"]>, commandTimeoutMs: number) => ({
  sentinels: sentinel.sentinels.map((a) => ({ host: a.host, port: a.port })),
  name: sentinel.name,
  role: "master" as const,
  sentinelCommandTimeout: commandTimeoutMs,
  sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1_000),
  retryStrategy: (times: number) => Math.min(100 * times, 500),
  reconnectOnError: (error: Error) => (/READONLY/.test(error.message) ? (1 as const) : false)
})

/**
 * Connects an ioredis client as a scoped resource: connected when the scope opens (or left
 * reconnecting in the background when Redis is down, so the process starts degraded rather than
 * not at all), quit when it closes. With `options.sentinel`, the client finds the primary
 * through the sentinels and follows it across failovers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: Options = {}): Effect.Effect<IORedis, never, Scope.Scope> => {
  const commandTimeoutMs = Duration.toMillis(options.commandTimeout ?? "500 millis")
  return scopedClient(
    () =>
      new IORedis({
        ...options.redis,
        ...failFastOptions(commandTimeoutMs),
        ...(options.sentinel ? sentinelOptions(options.sentinel, commandTimeoutMs) : {}),
        lazyConnect: false
      }),
    options.connectTimeout
  )
}

/**
 * Connects a Redis Cluster client as a scoped resource, with the fail-fast options on every node
 * connection and on the cluster itself: no offline queue (a command for a slot without a ready
 * node fails at once), `clusterRetryStrategy` always returning a number (the client never gives
 * up on the cluster), few redirections, and writes and reads on primaries only.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connectCluster = (
  nodes: ReadonlyArray<Address>,
  options: Options = {}
): Effect.Effect<Cluster, never, Scope.Scope> => {
  const commandTimeoutMs = Duration.toMillis(options.commandTimeout ?? "500 millis")
  const { enableOfflineQueue: _queue, retryStrategy, ...perNode } = failFastOptions(commandTimeoutMs)
  // what only makes sense for one server: the cluster assigns each node's address, and has db 0
  const { host: _host, port: _port, path: _path, db: _db, sentinels: _sentinels, ...redisOptions } = options.redis ?? {}
  return scopedClient(
    () =>
      new Cluster(nodes.map((a) => ({ host: a.host, port: a.port })), {
        redisOptions: { ...redisOptions, ...perNode },
        enableOfflineQueue: false,
        enableReadyCheck: true,
        clusterRetryStrategy: retryStrategy,
        scaleReads: "master",
        maxRedirections: 8,
        slotsRefreshTimeout: Math.max(commandTimeoutMs, 1_000),
        lazyConnect: false
      }),
    options.connectTimeout
  )
}

const validateAddresses = (what: string, addresses: ReadonlyArray<Address>): Effect.Effect<void, RedisConfigError> => {
  if (addresses.length === 0) return Effect.fail(new RedisConfigError({ message: `${what} needs at least one host:port` }))
  for (const a of addresses) {
    const valid = Nodes.validateAddress(a)
    if (Either.isLeft(valid)) return Effect.fail(new RedisConfigError({ message: `${what}: ${valid.left}` }))
  }
  return Effect.void
}

const validateTopology = (options: Options): Effect.Effect<void, RedisConfigError> =>
  Effect.gen(function*() {
    if (options.cluster && options.sentinel) {
      return yield* new RedisConfigError({ message: "a store is either a Redis Cluster or a Sentinel set, not both" })
    }
    if (options.cluster) {
      yield* validateAddresses("the cluster", options.cluster)
      if ((options.redis?.db ?? 0) !== 0) {
        return yield* new RedisConfigError({ message: `a Redis Cluster has only db 0, got db ${options.redis?.db}` })
      }
    }
    if (options.sentinel) {
      yield* validateAddresses("the sentinel set", options.sentinel.sentinels)
      if (options.sentinel.name.trim().length === 0) {
        return yield* new RedisConfigError({ message: "the sentinel set needs the name of the primary it monitors" })
      }
    }
  })

/**
 * Builds the Redis-backed store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Store, RedisConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const tenant = yield* validateTenant(options.tenant ?? "default")
    yield* validateTopology(options)
    const client: Client = options.cluster ? yield* connectCluster(options.cluster, options) : yield* connect(options)
    return fromClient(client, {
      tenant,
      breakerThreshold: options.breakerThreshold,
      breakerCooldown: options.breakerCooldown
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Redis, RedisConfigError> =>
  Layer.scoped(Redis, make(options))

/**
 * The state behind in-memory stores, standing in for one Redis server: stores built over the
 * same `MemoryServer` (several tenants, or several simulated processes) see each other's keys.
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
): Effect.Effect<Store, RedisConfigError> =>
  Effect.map(validateTenant(options.tenant ?? "default"), (tenant) => MemoryStore.make(tenant, options.server))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Redis> = Layer.effect(Redis, Effect.orDie(makeMemory()))

/** A `host:port,host:port,…` list; a malformed one is `InvalidData` at `name`. */
const addresses = (name: string): Config.Config<ReadonlyArray<Address>> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => Either.mapLeft(Nodes.parseAddresses(text), (message) => ConfigError.InvalidData([], message)))
  )

/**
 * The environment the Redis layers read.
 *
 * @since 0.1.0
 * @category config
 */
export const config = Config.all({
  host: Config.option(Config.string("REDIS_HOST")),
  port: Config.port("REDIS_PORT").pipe(Config.withDefault(6379)),
  username: Config.option(Config.string("REDIS_USERNAME")),
  password: Config.option(Config.redacted("REDIS_PASSWORD")),
  db: Config.integer("REDIS_DB").pipe(
    Config.validate({ message: "REDIS_DB must be between 0 and 15", validation: (n) => n >= 0 && n <= 15 }),
    Config.withDefault(0)
  ),
  tls: Config.boolean("REDIS_TLS").pipe(Config.withDefault(false)),
  tenant: Config.string("TENANT").pipe(Config.withDefault("default")),
  commandTimeout: Config.duration("REDIS_COMMAND_TIMEOUT").pipe(Config.withDefault(Duration.millis(500))),
  clusterNodes: Config.option(addresses("REDIS_CLUSTER_NODES")),
  sentinels: Config.option(addresses("REDIS_SENTINELS")),
  sentinelName: Config.option(Config.string("REDIS_SENTINEL_NAME")),
  sentinelUsername: Config.option(Config.string("REDIS_SENTINEL_USERNAME")),
  sentinelPassword: Config.option(Config.redacted("REDIS_SENTINEL_PASSWORD"))
})

const optionsFromConfig = (c: Config.Config.Success<typeof config>, host: string): Options => ({
  tenant: c.tenant,
  commandTimeout: c.commandTimeout,
  redis: {
    host,
    port: c.port,
    db: c.db,
    ...(Option.isSome(c.username) ? { username: c.username.value } : {}),
    ...(Option.isSome(c.password) ? { password: Redacted.value(c.password.value) } : {}),
    ...(c.tls ? { tls: {} } : {})
  }
})

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
export const optionsFromEnv: Effect.Effect<Option.Option<Options>, RedisConfigError | ConfigError.ConfigError> = Effect
  .gen(function*() {
    const c = yield* config
    const named = [
      Option.isSome(c.host) ? "REDIS_HOST" : undefined,
      Option.isSome(c.clusterNodes) ? "REDIS_CLUSTER_NODES" : undefined,
      Option.isSome(c.sentinels) ? "REDIS_SENTINELS" : undefined
    ].filter((x) => x !== undefined)
    if (named.length > 1) {
      return yield* new RedisConfigError({
        message: `set only one of REDIS_HOST, REDIS_CLUSTER_NODES and REDIS_SENTINELS (got ${named.join(" and ")})`
      })
    }
    if (Option.isSome(c.sentinelName) !== Option.isSome(c.sentinels)) {
      return yield* new RedisConfigError({
        message: Option.isSome(c.sentinels)
          ? "REDIS_SENTINELS needs REDIS_SENTINEL_NAME, the name of the primary the sentinels monitor"
          : "REDIS_SENTINEL_NAME is set but REDIS_SENTINELS is not"
      })
    }
    const auth: Omit<RedisOptions, "replyMapping"> = {
      ...(Option.isSome(c.username) ? { username: c.username.value } : {}),
      ...(Option.isSome(c.password) ? { password: Redacted.value(c.password.value) } : {})
    }
    if (Option.isSome(c.host)) return Option.some(optionsFromConfig(c, c.host.value))
    if (Option.isSome(c.clusterNodes)) {
      if (c.db !== 0) {
        return yield* new RedisConfigError({ message: `a Redis Cluster has only db 0: unset REDIS_DB (got ${c.db})` })
      }
      return Option.some<Options>({
        tenant: c.tenant,
        commandTimeout: c.commandTimeout,
        cluster: c.clusterNodes.value,
        redis: { ...auth, ...(c.tls ? { tls: {} } : {}) }
      })
    }
    if (Option.isSome(c.sentinels) && Option.isSome(c.sentinelName)) {
      return Option.some<Options>({
        tenant: c.tenant,
        commandTimeout: c.commandTimeout,
        sentinel: { sentinels: c.sentinels.value, name: c.sentinelName.value },
        redis: {
          ...auth,
          db: c.db,
          ...(Option.isSome(c.sentinelUsername) ? { sentinelUsername: c.sentinelUsername.value } : {}),
          ...(Option.isSome(c.sentinelPassword) ? { sentinelPassword: Redacted.value(c.sentinelPassword.value) } : {}),
          ...(c.tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {})
        }
      })
    }
    return Option.none()
  })

/**
 * Redis from the environment (`REDIS_HOST`, `REDIS_PORT`, `REDIS_USERNAME`, `REDIS_PASSWORD`,
 * `REDIS_DB`, `REDIS_TLS`, `REDIS_COMMAND_TIMEOUT`, `TENANT`), or a Redis Cluster
 * (`REDIS_CLUSTER_NODES`) or Sentinel set (`REDIS_SENTINELS`, `REDIS_SENTINEL_NAME`) in place of
 * `REDIS_HOST`: see `optionsFromEnv`. One of the three is required.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<Redis, RedisConfigError | ConfigError.ConfigError> = Layer.scoped(
  Redis,
  Effect.gen(function*() {
    const options = yield* optionsFromEnv
    if (Option.isNone(options)) {
      return yield* new RedisConfigError({
        message: "REDIS_HOST is not set (nor REDIS_CLUSTER_NODES, nor REDIS_SENTINELS)"
      })
    }
    return yield* make(options.value)
  })
)

/**
 * Redis when `REDIS_HOST` (or `REDIS_CLUSTER_NODES`, or `REDIS_SENTINELS`) is set, otherwise the
 * in-memory store with one warning: the same program runs on a laptop and in the fleet.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<Redis, RedisConfigError | ConfigError.ConfigError> = Layer.scoped(
  Redis,
  Effect.gen(function*() {
    const c = yield* config
    const options = yield* optionsFromEnv
    if (Option.isSome(options)) return yield* make(options.value)
    yield* Effect.logWarning(
      "lockstep: REDIS_HOST is not set; using the in-memory store (one process, no fleet coordination)"
    )
    return yield* makeMemory({ tenant: c.tenant })
  })
)
