/**
 * What the environment turns into: a standalone Redis, a Redis Cluster or a Sentinel set, and
 * clear typed errors for lists and combinations that cannot describe one. No server is needed:
 * every failing case fails before a connection is attempted.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Exit, Layer, Option, Redacted } from "effect"
import { Redis } from "../src/index.js"
import * as Nodes from "../src/internal/redis/addresses.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** An environment, and a text its error must contain. */
type Case = readonly [Record<string, string>, string]

const options = (env: Record<string, string>) => Redis.optionsFromEnv.pipe(withEnv(env))

/** The failure of `effect` as text, failing the test when it succeeds. */
const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flip(effect).pipe(
    Effect.map((e) => String(e)),
    Effect.catchAllDefect((d) => Effect.succeed(`defect: ${String(d)}`))
  )

describe("node lists", () => {
  it("parses host:port entries, IPv6 in brackets, ignoring blanks and duplicates", () => {
    expect(Nodes.parseAddresses(" 127.0.0.1:7000, redis-1.internal:7001,,[::1]:7002,127.0.0.1:7000, ")).toEqual(
      Either.right([
        { host: "127.0.0.1", port: 7000 },
        { host: "redis-1.internal", port: 7001 },
        { host: "::1", port: 7002 }
      ])
    )
  })

  it.each([
    ["", "empty list"],
    [" , ", "empty list"],
    ["host", "\"host\" is not host:port"],
    ["host:abc", "\"host:abc\" is not host:port"],
    ["a:1,host:", "\"host:\" is not host:port"],
    [":7000", "\":7000\" is not host:port"],
    ["::1:7000", "\"::1:7000\" is not host:port"],
    ["host:0", "port 0 of host"],
    ["host:65536", "port 65536 of host"],
    ["host:7000:1", "is not host:port"],
    ["a b:7000", "is not host:port"]
  ])("rejects %j", (text, message) => {
    const parsed = Nodes.parseAddresses(text)
    expect(Either.isLeft(parsed)).toBe(true)
    if (Either.isLeft(parsed)) expect(parsed.left).toContain(message)
  })
})

describe("Redis.optionsFromEnv", () => {
  it.effect("nothing set: no Redis", () =>
    Effect.gen(function*() {
      expect(Option.isNone(yield* options({}))).toBe(true)
    }))

  it.effect("REDIS_HOST: a standalone Redis, as before", () =>
    Effect.gen(function*() {
      const o = Option.getOrThrow(yield* options({ REDIS_HOST: "cache", REDIS_PORT: "6380", REDIS_DB: "2", TENANT: "shop" }))
      expect(o.redis).toMatchObject({ host: "cache", port: 6380, db: 2 })
      expect(o.tenant).toBe("shop")
      expect(o.cluster).toBeUndefined()
      expect(o.sentinel).toBeUndefined()
    }))

  it.effect("REDIS_CLUSTER_NODES: a cluster, with credentials and TLS for every node", () =>
    Effect.gen(function*() {
      const o = Option.getOrThrow(
        yield* options({
          REDIS_CLUSTER_NODES: "10.0.0.1:7000,10.0.0.2:7000",
          REDIS_USERNAME: "app",
          REDIS_PASSWORD: "s3cret",
          REDIS_TLS: "true",
          REDIS_COMMAND_TIMEOUT: "300 millis"
        })
      )
      expect(o.cluster).toEqual([{ host: "10.0.0.1", port: 7000 }, { host: "10.0.0.2", port: 7000 }])
      expect(o.redis).toEqual({ username: "app", tls: {} })
      expect(Redacted.isRedacted(o.password) && Redacted.value(o.password)).toBe("s3cret") // kept redacted
      expect(o.sentinel).toBeUndefined()
    }))

  it.effect("REDIS_SENTINELS + REDIS_SENTINEL_NAME: a Sentinel set, sentinel credentials apart", () =>
    Effect.gen(function*() {
      const o = Option.getOrThrow(
        yield* options({
          REDIS_SENTINELS: "s1:26379,s2:26379,s3:26379",
          REDIS_SENTINEL_NAME: "main",
          REDIS_SENTINEL_PASSWORD: "sentinel-secret",
          REDIS_PASSWORD: "data-secret",
          REDIS_DB: "1"
        })
      )
      expect(o.sentinel).toEqual({
        name: "main",
        sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 26379 }, { host: "s3", port: 26379 }]
      })
      expect(o.redis).toEqual({ db: 1, sentinelPassword: "sentinel-secret" })
      expect(Redacted.isRedacted(o.password) && Redacted.value(o.password)).toBe("data-secret")
      expect(o.cluster).toBeUndefined()
    }))

  it.effect.each<Case>([
    [{ REDIS_CLUSTER_NODES: "host" }, "REDIS_CLUSTER_NODES"],
    [{ REDIS_CLUSTER_NODES: "host:abc" }, "REDIS_CLUSTER_NODES"],
    [{ REDIS_CLUSTER_NODES: "" }, "REDIS_CLUSTER_NODES"],
    [{ REDIS_SENTINELS: "s1:26379,s2", REDIS_SENTINEL_NAME: "main" }, "REDIS_SENTINELS"],
    [{ REDIS_SENTINELS: "", REDIS_SENTINEL_NAME: "main" }, "REDIS_SENTINELS"]
  ])("a malformed list is a ConfigError naming its variable: %j", ([env, variable]) =>
    Effect.gen(function*() {
      const message = yield* failure(options(env))
      expect(message).toContain("Invalid data")
      expect(message).toContain(variable)
      expect(message).toContain("host:port")
    }))

  it.effect.each<Case>([
    [{ REDIS_HOST: "cache", REDIS_CLUSTER_NODES: "a:7000" }, "set only one of"],
    [{ REDIS_CLUSTER_NODES: "a:7000", REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_NAME: "m" }, "set only one of"],
    [{ REDIS_SENTINELS: "s:26379" }, "needs REDIS_SENTINEL_NAME"],
    [{ REDIS_SENTINEL_NAME: "main" }, "REDIS_SENTINELS is not"],
    [{ REDIS_HOST: "cache", REDIS_SENTINEL_NAME: "main" }, "REDIS_SENTINELS is not"],
    [{ REDIS_CLUSTER_NODES: "a:7000", REDIS_DB: "3" }, "only db 0"],
    // a port inside REDIS_HOST would be looked up as a host name and never connect
    [{ REDIS_HOST: "127.0.0.1:6390" }, "write REDIS_HOST=127.0.0.1 and REDIS_PORT=6390"],
    [{ REDIS_HOST: "[::1]:6390" }, "write REDIS_HOST=::1 and REDIS_PORT=6390"],
    [{ REDIS_HOST: "redis://cache:6379" }, "a URL is not a host"]
  ])("an ambiguous or incomplete topology is a RedisConfigError: %j", ([env, text]) =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(options(env))
      expect(e._tag).toBe("RedisConfigError")
      expect(e.message).toContain(text)
    }))
})

describe("layers from the environment", () => {
  const build = (layer: Layer.Layer<Redis.Redis, unknown>, env: Record<string, string>) =>
    Effect.flatMap(Redis.Redis, (store) => Effect.succeed(store.kind)).pipe(
      Effect.provide(layer),
      withEnv(env),
      Effect.scoped
    )

  it.effect("layerFromEnv without any Redis is the in-memory store", () =>
    Effect.gen(function*() {
      expect(yield* build(Redis.layerFromEnv, {})).toBe("memory")
    }))

  it.effect("layerRedisFromEnv without any Redis says what to set", () =>
    Effect.gen(function*() {
      const message = yield* failure(build(Redis.layerRedisFromEnv, {}))
      expect(message).toContain("REDIS_HOST")
      expect(message).toContain("REDIS_CLUSTER_NODES")
      expect(message).toContain("REDIS_SENTINELS")
    }))

  it.effect.each<Case>([
    [{ REDIS_CLUSTER_NODES: "127.0.0.1" }, "REDIS_CLUSTER_NODES"],
    [{ REDIS_SENTINELS: "127.0.0.1:x", REDIS_SENTINEL_NAME: "m" }, "REDIS_SENTINELS"],
    [{ REDIS_SENTINELS: "127.0.0.1:26379" }, "REDIS_SENTINEL_NAME"]
  ])("both layers fail at construction, without connecting: %j", ([env, variable]) =>
    Effect.gen(function*() {
      for (const layer of [Redis.layerRedisFromEnv, Redis.layerFromEnv]) {
        const exit = yield* Effect.exit(build(layer, env))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(yield* failure(build(layer, env))).toContain(variable)
      }
    }))

  it.effect.each<Case>([
    [{ REDIS_HOST: "127.0.0.1", REDIS_COMMAND_TIMEOUT: "30 days" }, "REDIS_COMMAND_TIMEOUT"],
    [{ REDIS_HOST: "127.0.0.1", REDIS_COMMAND_TIMEOUT: "0 millis" }, "REDIS_COMMAND_TIMEOUT"],
    [{ REDIS_HOST: "127.0.0.1", REDIS_COMMAND_TIMEOUT: "-5 millis" }, "REDIS_COMMAND_TIMEOUT"],
    [{ REDIS_HOST: "127.0.0.1", REDIS_COMMAND_TIMEOUT: "2 minutes" }, "REDIS_COMMAND_TIMEOUT"]
  ])("a duration that would switch fail-fast off or overflow a timer is refused, naming it: %j", ([env, variable]) =>
    Effect.gen(function*() {
      for (const layer of [Redis.layerRedisFromEnv, Redis.layerFromEnv]) {
        const message = yield* failure(build(layer, env))
        expect(message).toContain(variable)
        expect(message).toContain("RedisConfigError")
      }
    }))

  it.effect("options given in code are checked the same way", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Redis.Options, string]> = [
        [{ cluster: [] }, "at least one host:port"],
        [{ cluster: [{ host: "a", port: 70000 }] }, "port 70000"],
        [{ cluster: [{ host: "a", port: 7000 }], redis: { db: 2 } }, "only db 0"],
        [{ sentinel: { sentinels: [{ host: "", port: 26379 }], name: "m" } }, "not a host name"],
        [{ sentinel: { sentinels: [{ host: "s", port: 26379 }], name: " " } }, "name of the primary"],
        [{ commandTimeout: 0 }, "commandTimeout"],
        [{ commandTimeout: "30 days" }, "commandTimeout"],
        [{ connectTimeout: "30 days" }, "connectTimeout"],
        [{ breakerCooldown: "banana" as never }, "breakerCooldown"],
        [{ breakerThreshold: 0 }, "breakerThreshold"],
        [{ breakerThreshold: 1.5 }, "breakerThreshold"],
        [
          { cluster: [{ host: "a", port: 7000 }], sentinel: { sentinels: [{ host: "s", port: 26379 }], name: "m" } },
          "not both"
        ]
      ]
      for (const [o, text] of cases) {
        const e = yield* Effect.flip(Effect.scoped(Redis.make(o)))
        expect(e._tag).toBe("RedisConfigError")
        expect(e.message).toContain(text)
      }
    }))
})
