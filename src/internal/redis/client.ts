/**
 * ioredis clients as scoped resources, configured to fail fast: a request never waits behind a
 * reconnect, and a frozen server costs at most the command timeout.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { Cluster, Redis as IORedis, type RedisOptions } from "ioredis"
import type * as Addresses from "./addresses.js"
import * as Config from "./config.js"

/** What the store runs its scripts on: a standalone or Sentinel-backed client, or a `Cluster`. */
export type Client = IORedis | Cluster

/**
 * The options that keep ioredis from queueing or retrying: no offline queue, no retry per
 * request, no re-sending after a reconnect, a command timeout, a retry strategy that always
 * returns a number (the client never gives up) and waits at most 500 ms between attempts.
 */
export const failFastOptions = (commandTimeoutMs: number) => ({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  enableReadyCheck: true,
  commandTimeout: commandTimeoutMs,
  connectTimeout: 2_000,
  // reconnect soon: a restarted server is used again within half a second, before pods that
  // hold a stale value give up on it (`degradedAfter`)
  retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 500)
} as const)

/** While Redis is unreachable, how often the error is logged again (the first time at once). */
export const unreachableLogMs = 60_000

/** The socket error of an ioredis `error` event, as a log line shows it. */
const describeError = (error: unknown): string =>
  error instanceof Error ? error.message || (error as { code?: string }).code || error.name : String(error)

/**
 * A client as a scoped resource: created (and connecting) when the scope opens, given an error
 * listener, awaited until ready or `connectTimeoutMs` (after which it goes on reconnecting in
 * the background, so the process starts degraded rather than not at all), quit when the scope
 * closes.
 *
 * What the connection goes through is logged, naming `address` and the socket's error: an info
 * line when it is ready (and when it comes back), a warning when it is lost, and while it stays
 * unreachable an error every `unreachableLogMs` (on `Clock`), since every process then runs
 * every lookup on its own.
 */
export const scoped = <C extends Client>(
  create: () => C,
  connectTimeoutMs: number,
  address: string
): Effect.Effect<C, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
    const health = { lastError: undefined as string | undefined, ready: false, wasReady: false, closing: false }
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = create()
        // Without a listener, a connection error would be an uncaught "error" event.
        client.on("error", (error: unknown) => {
          health.lastError = describeError(error)
        })
        client.on("ready", () => {
          health.ready = true
          health.lastError = undefined
          log(Effect.logInfo(`lockstep: ${health.wasReady ? "reconnected" : "connected"} to Redis at ${address}`))
          health.wasReady = true
        })
        client.on("close", () => {
          if (!health.ready || health.closing) return
          health.ready = false
          log(Effect.logWarning(`lockstep: lost the connection to Redis at ${address}; serving degraded until it is back`))
        })
        return client
      }),
      (client) =>
        Effect.sync(() => {
          health.closing = true
        }).pipe(
          Effect.zipRight(Effect.promise(() => client.quit().catch(() => undefined))),
          Effect.timeout("1 second"),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
    )
    const ready = yield* Effect.async<void>((resume) => {
      if (client.status === "ready") return resume(Effect.void)
      const done = () => resume(Effect.void)
      client.once("ready", done)
      return Effect.sync(() => client.off("ready", done))
    }).pipe(Effect.timeoutOption(connectTimeoutMs))
    const cause = () => (health.lastError === undefined ? "" : ` (${health.lastError})`)
    if (Option.isNone(ready)) {
      yield* Effect.logWarning(`lockstep: Redis at ${address} is not reachable yet${cause()}; serving degraded until it is`)
    }
    // while unreachable, said again at a bounded rate: every process runs its lookups alone
    yield* Effect.sleep(unreachableLogMs).pipe(
      Effect.zipRight(Effect.suspend(() =>
        health.ready || health.closing
          ? Effect.void
          : Effect.logError(
            `lockstep: Redis at ${address} is still not reachable${cause()}; every process runs its lookups on its own`
          )
      )),
      Effect.forever,
      Effect.forkScoped
    )
    return client
  })

/**
 * What a Sentinel-backed client adds to the fail-fast options. After a failover the primary is
 * elsewhere: each reconnect asks a sentinel first (cheap), so it polls every ≤ 500 ms rather than
 * backing off to 2 s. A primary that was demoted while still up answers writes with `READONLY`:
 * that reconnects (through the sentinels, to the new primary) without resending the command.
 */
const sentinelOptions = (sentinel: NonNullable<Config.Options["sentinel"]>, commandTimeoutMs: number) => ({
  sentinels: sentinel.sentinels.map((a) => ({ host: a.host, port: a.port })),
  name: sentinel.name,
  role: "master" as const,
  sentinelCommandTimeout: commandTimeoutMs,
  sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1_000),
  retryStrategy: (times: number) => Math.min(100 * times, 500),
  reconnectOnError: (error: Error) => (/READONLY/.test(error.message) ? (1 as const) : false)
})

const withPassword = (options: Config.Options) => {
  const password = Config.password(options)
  return password === undefined ? {} : { password }
}

/** Where a standalone or Sentinel-backed client connects, as logs name it. */
export const addressOf = (options: Config.Options): string =>
  options.sentinel
    ? `the primary "${options.sentinel.name}" of the sentinels ${options.sentinel.sentinels.map((a) => `${a.host}:${a.port}`).join(",")}`
    : options.redis?.path !== undefined && options.redis.path !== null
    ? options.redis.path
    : `${options.redis?.host ?? "localhost"}:${options.redis?.port ?? 6379}`

/** A standalone client, or one that finds the primary through the sentinels. */
export const connect = (options: Config.Options, resolved: Config.Resolved): Effect.Effect<IORedis, never, Scope.Scope> =>
  scoped(
    () =>
      new IORedis({
        ...options.redis,
        ...withPassword(options),
        ...failFastOptions(resolved.commandTimeoutMs),
        ...(options.sentinel ? sentinelOptions(options.sentinel, resolved.commandTimeoutMs) : {}),
        lazyConnect: false
      }),
    resolved.connectTimeoutMs,
    addressOf(options)
  )

/**
 * A Redis Cluster client, with the fail-fast options on every node connection and on the cluster
 * itself: no offline queue (a command for a slot without a ready node fails at once),
 * `clusterRetryStrategy` always returning a number, few redirections, primaries only.
 */
export const connectCluster = (
  nodes: ReadonlyArray<Addresses.Address>,
  options: Config.Options,
  resolved: Config.Resolved
): Effect.Effect<Cluster, never, Scope.Scope> => {
  const { enableOfflineQueue: _queue, retryStrategy, ...perNode } = failFastOptions(resolved.commandTimeoutMs)
  // what only makes sense for one server: the cluster assigns each node's address, and has db 0
  const { host: _host, port: _port, path: _path, db: _db, sentinels: _sentinels, ...redisOptions } = options.redis ?? {}
  return scoped(
    () =>
      new Cluster(nodes.map((a) => ({ host: a.host, port: a.port })), {
        redisOptions: { ...redisOptions, ...withPassword(options), ...perNode },
        enableOfflineQueue: false,
        enableReadyCheck: true,
        clusterRetryStrategy: retryStrategy,
        scaleReads: "master",
        maxRedirections: 8,
        slotsRefreshTimeout: Math.max(resolved.commandTimeoutMs, 1_000),
        lazyConnect: false
      }),
    resolved.connectTimeoutMs,
    `the cluster ${nodes.map((a) => `${a.host}:${a.port}`).join(",")}`
  )
}

/**
 * A connection for the fleet's notices, apart from the command connection (a subscribed
 * connection cannot run scripts under RESP2). It reconnects forever; the store resubscribes on
 * every `ready`. On a Cluster it is a plain connection to one primary: `PUBLISH` reaches every
 * node of a cluster.
 */
export const subscriberOf = (client: Client): IORedis => {
  const own = { enableOfflineQueue: true, autoResubscribe: false, lazyConnect: false, maxRetriesPerRequest: null }
  if (client instanceof IORedis) return client.duplicate(own)
  const primary = client.nodes("master")[0]
  const seed: unknown = primary?.options ?? (client as unknown as { startupNodes: ReadonlyArray<unknown> }).startupNodes[0]
  const { host, port } = typeof seed === "object" && seed !== null ? seed as { host?: string; port?: number } : {}
  const { replyMapping: _mapping, ...inherited } = client.options.redisOptions ?? {}
  const options: Omit<RedisOptions, "replyMapping"> = {
    ...inherited,
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port }),
    ...own
  }
  return new IORedis(options)
}
