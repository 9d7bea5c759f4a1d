/**
 * ioredis clients as scoped resources, configured to fail fast: a request never waits behind a
 * reconnect, and a frozen server costs at most the command timeout.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
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

/**
 * A client as a scoped resource: created (and connecting) when the scope opens, given an error
 * listener, awaited until ready or `connectTimeoutMs` (after which it goes on reconnecting in
 * the background, so the process starts degraded rather than not at all), quit when the scope
 * closes.
 */
export const scoped = <C extends Client>(create: () => C, connectTimeoutMs: number): Effect.Effect<C, never, Scope.Scope> =>
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
        Effect.timeoutOption(connectTimeoutMs),
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
    resolved.connectTimeoutMs
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
    resolved.connectTimeoutMs
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
