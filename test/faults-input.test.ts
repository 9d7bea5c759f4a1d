/**
 * Bad input: corrupt and foreign data under the cache's own Redis keys (on a real redis-server,
 * with pod processes reading it), and environment configuration that cannot describe a store.
 */
import { Cause, ConfigError, ConfigProvider, Effect, Exit, Layer, Option } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Redis } from "../src/index.js"
import * as Keys from "../src/internal/keys.js"
import { sleep } from "./support/fleet.js"
import { type Bench, checkInvariants, note, startBench, startsPerWindow } from "./support/faults.js"

let bench: Bench | undefined
afterEach(async () => {
  await bench?.stop()
  bench = undefined
})

describe("faults: bad input", () => {
  it("corrupt and foreign blobs under the cache's keys: recomputed or ignored, never a crash or an error", async () => {
    const WINDOW = 1000
    const b = bench = await startBench({ pods: 3, windowMs: WINDOW, producerMs: 100 })
    const keys = Keys.make(Keys.tenantPrefix(b.tenant), b.key)
    const raw = b.watch.client
    await b.load({ callers: 10, durationMs: 1000, pauseMs: 10 })

    /** Plants data, makes every pod forget its L1 (a restart), and reads through the fleet. */
    // a blob no pod happens to read (all hold a fresh L1 value) stays until the next window's
    // claim replaces it: each load crosses a window boundary
    /** Each pod's decode failures so far, by pod id (a reply may come twice: the last one counts). */
    const decodeFailures = async () => {
      const byPod = new Map<number, number>()
      for (const st of await b.fleet.stats()) byPod.set(st.id, st.metrics["lockstep_decode_failures_total"] ?? 0)
      return b.fleet.pods.map((p) => byPod.get(p.id) ?? 0)
    }
    /** `undecodable`: the record is this window's and well formed, but its value does not decode: every pod reads it and counts it. */
    const plant = async (name: string, write: () => Promise<unknown>, options: { readonly undecodable?: boolean } = {}) => {
      const loadMs = WINDOW + 300
      const failuresBefore = await decodeFailures()
      const since = Date.now()
      const before = b.watch.latest()!
      await write()
      for (const p of b.fleet.pods) p.send({ type: "forget" })
      const loaded = await b.load({ callers: 10, durationMs: loadMs, pauseMs: 10 })
      await sleep(100)
      const after = b.watch.latest()!
      const rec = await raw.hgetall(keys.value)
      const result = {
        calls: loaded.reduce((n, s) => n + s.calls, 0),
        errors: loaded.reduce((n, s) => n + s.errors, 0),
        starts: b.fleet.of("start", since).length,
        claims: b.fleet.of("claim", since).map((m) => `${m.id}:${m.outcome}:${m.wallAt - since}`).join(" "),
        commits: b.fleet.of("commit", since).map((m) => m.outcome),
        storedAfter: { type: await raw.type(keys.value), b: rec.b ? Number(rec.b) - b.bucketOf(Date.now()) : null, f: rec.f, d: rec.d },
        decodeFailuresByPod: (await decodeFailures()).map((n, i) => n - (failuresBefore[i] ?? 0))
      }
      note("bad-blobs", { [name]: result })
      expect(result.errors, name).toBe(0)
      // every pod that could not read the value needed a new one, yet they did not each make
      // one: a pod waits for the one that took the lock (two only if a pod claims after the
      // first one's commit, which its forced claim then overrides)
      for (const [w, n] of startsPerWindow(b, since)) expect(n, `${name}: starts in window ${w}`).toBeLessThanOrEqual(2)
      // the store holds a readable value of a window that has begun, no older than before
      expect(result.storedAfter.type, name).toBe("hash")
      expect(() => JSON.parse(rec.d!), name).not.toThrow()
      expect(JSON.parse(rec.d!), name).toMatchObject({ pod: expect.any(Number), bucket: expect.any(Number) })
      expect(Number(rec.b), name).toBeLessThanOrEqual(b.bucketOf(Date.now()))
      expect(after.bucket, name).toBeGreaterThanOrEqual(before.bucket)
      if (options.undecodable) {
        for (const [pod, n] of result.decodeFailuresByPod.entries()) expect(n, `${name}: decode failures counted by pod ${pod}`).toBeGreaterThanOrEqual(1)
      }
      return result
    }
    const current = () => b.bucketOf(Date.now())
    const fields = (o: Record<string, string | number>) => raw.del(keys.value).then(() => raw.hset(keys.value, o))

    // planted above the fence the store holds, as a foreign writer that outbids the fleet would
    const above = (n: number) => b.watch.latest()!.fence + n
    await plant("not JSON, this window", () =>
      fields({ b: current(), f: above(1000), w: WINDOW, t: Date.now(), d: "{not json" }), { undecodable: true })
    await plant("JSON of another shape", () =>
      fields({ b: current(), f: above(2000), w: WINDOW, t: Date.now(), d: JSON.stringify({ foo: "bar" }) }), { undecodable: true })
    await plant("a string instead of a hash", () => raw.set(keys.value, "garbage"))
    await plant("a hash without its fields", () => fields({ d: "1" }))
    await plant("non-numeric bucket and fence", () =>
      fields({ b: "soon", f: "NaN", w: WINDOW, t: Date.now(), d: "{}" }))
    await plant("another window length", () =>
      fields({ b: Math.floor(Date.now() / 60_000), f: 1, w: 60_000, t: Date.now(), d: "{\"pod\":9}" }))
    await plant("a readable value stamped with a window far in the future", () =>
      fields({ b: current() + 100_000, f: 1, w: WINDOW, t: Date.now(), d: JSON.stringify({ pod: 99, bucket: 0, seq: 0 }) }))
    await plant("foreign lock and fence keys (read at the next window)", () =>
      Promise.all([raw.del(keys.lock).then(() => raw.hset(keys.lock, { who: "me" })), raw.set(keys.fence, "abc")]))

    note("bad-blobs", { decodeFailures: await decodeFailures() })
    checkInvariants(b)
  })

  /** Builds `layer` with `env` as the only configuration: its exit. */
  const build = (layer: Layer.Layer<Redis.Redis, unknown>, env: Record<string, string>) =>
    Effect.runPromise(
      Layer.build(layer).pipe(
        Effect.scoped,
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
        Effect.exit
      )
    )

  /** The typed error `layer` fails with under `env` (a defect or a success fails the test). */
  const failureOf = async (layer: Layer.Layer<Redis.Redis, unknown>, env: Record<string, string>) => {
    const exit = await build(layer, env)
    const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    expect(error, `a typed failure, not a success or a defect, for ${JSON.stringify(env)}`).toBeDefined()
    return error as { readonly _tag: string; readonly message?: string }
  }

  it("invalid environment: a typed ConfigError or RedisConfigError naming the variable, never a crash", async () => {
    const host = { REDIS_HOST: "127.0.0.1" }
    const cases: Array<[Record<string, string>, "ConfigError" | "RedisConfigError", RegExp]> = [
      [{ ...host, REDIS_PORT: "abc" }, "ConfigError", /REDIS_PORT/],
      [{ ...host, REDIS_PORT: "70000" }, "ConfigError", /REDIS_PORT/],
      [{ ...host, REDIS_TLS: "maybe" }, "ConfigError", /REDIS_TLS/],
      [{ ...host, REDIS_DB: "99" }, "ConfigError", /REDIS_DB/],
      [{ ...host, REDIS_COMMAND_TIMEOUT: "banana" }, "ConfigError", /REDIS_COMMAND_TIMEOUT/],
      [{ ...host, TENANT: "" }, "RedisConfigError", /TENANT/],
      [{}, "RedisConfigError", /REDIS_HOST/]
    ]
    const seen: Record<string, string> = {}
    for (const [env, tag, mentions] of cases) {
      const error = await failureOf(Redis.layerRedisFromEnv, env)
      const text = ConfigError.isConfigError(error) ? String(error) : error.message ?? ""
      seen[JSON.stringify(env)] = `${error._tag}: ${text}`
      expect(error._tag, JSON.stringify(env)).toBe(tag)
      expect(text, JSON.stringify(env)).toMatch(mentions)
    }
    // without REDIS_HOST the same bad values are still refused, not silently ignored
    for (const env of [{ REDIS_PORT: "abc" }, { REDIS_TLS: "maybe" }]) {
      const error = await failureOf(Redis.layerFromEnv, env)
      seen[`fromEnv ${JSON.stringify(env)}`] = `${error._tag}: ${String(error)}`
      expect(error._tag).toBe("ConfigError")
    }
    note("bad-env", seen)
    // and a valid environment without REDIS_HOST falls back to the in-memory store
    expect(Exit.isSuccess(await build(Redis.layerFromEnv, { TENANT: "ok" }))).toBe(true)
  })
})
