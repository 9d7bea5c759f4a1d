/**
 * The options of the ioredis store, their bounds, and the environment that describes them.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { RedisConfigError } from "../store.js"
import * as Addresses from "./addresses.js"

/** The store's options: the public `Redis.Options`, declared there so the reference shows its fields. */
export type { Options } from "../../Redis.js"
import type { Options } from "../../Redis.js"

/** Options checked and turned into numbers. */
export interface Resolved {
  readonly tenant: string
  readonly commandTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly breakerThreshold: number
  readonly breakerCooldownMs: number
}

/** The longest delay a Node timer supports: longer ones fire after 1 ms. */
export const maxTimerMs = 2 ** 31 - 1

const duration = (
  name: string,
  input: Duration.DurationInput | undefined,
  fallback: number,
  min: number,
  max: number
): Either.Either<number, RedisConfigError> => {
  if (input === undefined) return Either.right(fallback)
  // Duration clamps negative inputs to zero: a negative duration is a mistake, not a zero
  const negative = (typeof input === "number" && input < 0) || (typeof input === "string" && input.trim().startsWith("-"))
  const decoded = Duration.decodeUnknown(input)
  const ms = negative ? NaN : Option.isSome(decoded) ? Duration.toMillis(decoded.value) : NaN
  if (!(ms >= min && ms <= max)) {
    return Either.left(
      new RedisConfigError({
        message: `${name} must be a duration from ${Duration.format(Duration.millis(min))} to ${
          Duration.format(Duration.millis(max))
        }, got ${describe(input)}`
      })
    )
  }
  return Either.right(Math.round(ms))
}

const describe = (input: unknown) => {
  if (Duration.isDuration(input)) return Duration.format(input)
  try {
    return JSON.stringify(input) ?? String(input)
  } catch {
    return String(input)
  }
}

/**
 * Every duration is bounded to what timers support, and a value that would switch fail-fast off
 * (a command timeout of 0 disables ioredis' own) is refused with the setting's name.
 */
export const resolve = (options: Options): Either.Either<Resolved, RedisConfigError> =>
  Either.gen(function*() {
    const tenant = options.tenant ?? "default"
    if (typeof tenant !== "string" || tenant.length === 0 || tenant.length > 128) {
      return yield* Either.left(
        new RedisConfigError({ message: `TENANT must be 1 to 128 characters, got ${JSON.stringify(tenant)}` })
      )
    }
    const commandTimeoutMs = yield* duration(
      "commandTimeout (REDIS_COMMAND_TIMEOUT)",
      options.commandTimeout,
      500,
      1,
      60_000
    )
    const connectTimeoutMs = yield* duration("connectTimeout", options.connectTimeout, 2_000, 1, maxTimerMs)
    const breakerCooldownMs = yield* duration("breakerCooldown", options.breakerCooldown, 1_000, 1, maxTimerMs)
    const threshold = options.breakerThreshold ?? 3
    if (!Number.isSafeInteger(threshold) || threshold < 1) {
      return yield* Either.left(
        new RedisConfigError({ message: `breakerThreshold must be a whole number of at least 1, got ${describe(threshold)}` })
      )
    }
    yield* validateTopology(options)
    return { tenant, commandTimeoutMs, connectTimeoutMs, breakerThreshold: threshold, breakerCooldownMs }
  })

const validateAddresses = (what: string, addresses: ReadonlyArray<Addresses.Address>): Either.Either<void, RedisConfigError> => {
  if (addresses.length === 0) return Either.left(new RedisConfigError({ message: `${what} needs at least one host:port` }))
  for (const a of addresses) {
    const valid = Addresses.validateAddress(a)
    if (Either.isLeft(valid)) return Either.left(new RedisConfigError({ message: `${what}: ${valid.left}` }))
  }
  return Either.void
}

/**
 * A host that carries a port (`127.0.0.1:6390`, `[::1]:6390`) or a URL would be looked up as a
 * host name and never connect: refused, saying what to write instead.
 */
export const validateHost = (host: unknown, names: { readonly host: string; readonly port: string }): RedisConfigError | undefined => {
  if (typeof host !== "string") return undefined
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(host)
  const withPort = /^([^:\s]+|\[[^\]]*\]):(\d*)$/.exec(host)
  if (!url && withPort === null) return undefined
  const example = withPort === null
    ? ""
    : ` ${names.host}=${withPort[1]!.replace(/^\[(.*)\]$/, "$1")}${withPort[2] === "" ? "" : ` and ${names.port}=${withPort[2]}`}`
  return new RedisConfigError({
    message: `${names.host} must be a host name or address alone, got ${JSON.stringify(host)}: ${
      url ? "a URL is not a host" : "the port goes in " + names.port
    }${example === "" ? "" : `; write${example}`}`
  })
}

const validateTopology = (options: Options): Either.Either<void, RedisConfigError> =>
  Either.gen(function*() {
    const host = validateHost(options.redis?.host, { host: "redis.host", port: "redis.port" })
    if (host !== undefined && !options.cluster && !options.sentinel) return yield* Either.left(host)
    if (options.cluster && options.sentinel) {
      return yield* Either.left(new RedisConfigError({ message: "a store is either a Redis Cluster or a Sentinel set, not both" }))
    }
    if (options.cluster) {
      yield* validateAddresses("the cluster", options.cluster)
      if ((options.redis?.db ?? 0) !== 0) {
        return yield* Either.left(new RedisConfigError({ message: `a Redis Cluster has only db 0, got db ${options.redis?.db}` }))
      }
    }
    if (options.sentinel) {
      yield* validateAddresses("the sentinel set", options.sentinel.sentinels)
      if (options.sentinel.name.trim().length === 0) {
        return yield* Either.left(new RedisConfigError({ message: "the sentinel set needs the name of the primary it monitors" }))
      }
    }
  })

/** The password as ioredis takes it. */
export const password = (options: Options): string | undefined =>
  options.password === undefined
    ? options.redis?.password
    : Redacted.isRedacted(options.password)
    ? Redacted.value(options.password)
    : options.password

// ---------------------------------------------------------------------------------------------
// environment

/** A `host:port,host:port,…` list; a malformed one is `InvalidData` at `name`. */
const addresses = (name: string): Config.Config<ReadonlyArray<Addresses.Address>> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Either.mapLeft(Addresses.parseAddresses(text), (message) => ConfigError.InvalidData([], message))
    )
  )

export const env = Config.all({
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

export const optionsFromEnv: Effect.Effect<Option.Option<Options>, RedisConfigError | ConfigError.ConfigError> = Effect
  .gen(function*() {
    const c = yield* env
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
    const common = {
      tenant: c.tenant,
      commandTimeout: c.commandTimeout,
      ...(Option.isSome(c.password) ? { password: c.password.value } : {})
    }
    const auth = {
      ...(Option.isSome(c.username) ? { username: c.username.value } : {}),
      ...(c.tls ? { tls: {} } : {})
    }
    if (Option.isSome(c.host)) {
      const invalid = validateHost(c.host.value, { host: "REDIS_HOST", port: "REDIS_PORT" })
      if (invalid !== undefined) return yield* invalid
      return Option.some<Options>({ ...common, redis: { host: c.host.value, port: c.port, db: c.db, ...auth } })
    }
    if (Option.isSome(c.clusterNodes)) {
      if (c.db !== 0) {
        return yield* new RedisConfigError({ message: `a Redis Cluster has only db 0: unset REDIS_DB (got ${c.db})` })
      }
      return Option.some<Options>({ ...common, cluster: c.clusterNodes.value, redis: auth })
    }
    if (Option.isSome(c.sentinels) && Option.isSome(c.sentinelName)) {
      return Option.some<Options>({
        ...common,
        sentinel: { sentinels: c.sentinels.value, name: c.sentinelName.value },
        redis: {
          ...auth,
          db: c.db,
          ...(Option.isSome(c.sentinelUsername) ? { sentinelUsername: c.sentinelUsername.value } : {}),
          ...(Option.isSome(c.sentinelPassword) ? { sentinelPassword: Redacted.value(c.sentinelPassword.value) } : {}),
          ...(c.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {})
        }
      })
    }
    return Option.none()
  })
