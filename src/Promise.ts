/**
 * lockstep without Effect: the same engine as `Memo.loader`, behind Promises, for Express,
 * Fastify, Hono, Remix or any other Promise-based server.
 *
 * A cache is one runtime (`ManagedRuntime`) over Redis or the in-memory store. A fresh hit does
 * not enter it: one L1 lookup and one freshness check, then an already-resolved promise. Every
 * other request runs in the runtime, with `Memo.loader`'s semantics: stale values served at once
 * while one refresh runs for the whole fleet, cold requests coalesced onto one lookup.
 *
 * @example
 * import { createCache } from "lockstep/promise"
 * import { z } from "zod"
 *
 * const Item = z.object({ id: z.number(), name: z.string() })
 *
 * const cache = createCache() // or createCache({ redis: "redis://localhost:6379", tenant: "shop" })
 * const items = cache.loader({
 *   key: (id: number) => `item:${id}`,
 *   window: "1 minute",
 *   schema: Item,
 *   lookup: async (id) => ({ id, name: `item ${id}` }),
 *   tags: () => ["items"]
 * })
 *
 * const item = await items.get(5)
 * await cache.close()
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { RedisOptions as IORedisOptions } from "ioredis"
import * as L1 from "./internal/memo/l1.js"
import * as Leader from "./internal/memo/leader.js"
import * as Engine from "./internal/memo/runtime.js"
import * as Settings from "./internal/memo/settings.js"
import * as RedisConfig from "./internal/redis/config.js"
import * as Store from "./internal/store.js"
import * as Memo from "./Memo.js"
import * as Redis from "./Redis.js"

// ---------------------------------------------------------------------------------------------
// models

/**
 * A duration: milliseconds, or text such as `"1 minute"`, `"500 millis"`, `"2 hours"`.
 *
 * @since 0.1.0
 * @category models
 */
export type DurationInput =
  | number
  | `${number} ${"nano" | "nanos" | "micro" | "micros" | "milli" | "millis" | "second" | "seconds" | "minute" | "minutes" | "hour" | "hours" | "day" | "days" | "week" | "weeks"}`

/**
 * The Standard Schema (v1) interface, which zod 4, valibot, ArkType and others implement.
 *
 * @since 0.1.0
 * @category models
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1
    readonly vendor: string
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>
    readonly types?: { readonly input: Input; readonly output: Output } | undefined
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<unknown> | undefined }> }

/**
 * How a loader's values cross the wire: an Effect Schema (encoded and decoded through JSON), or
 * any Standard Schema (stored as JSON, validated on read). A stored value that does not pass is
 * a miss: the lookup runs again.
 *
 * @since 0.1.0
 * @category models
 */
export type SchemaOf<A> = Schema.Schema<A, any, never> | StandardSchemaV1<any, A>

/**
 * A value with what pages turn into `Cache-Control`, `Age` and refresh times (`cacheHeaders`).
 *
 * @since 0.1.0
 * @category models
 */
export type Info<A> = Memo.Info<A>

/**
 * Connection options of the Redis store: a URL (`redis://user:pass@host:6379/0`, `rediss://` for
 * TLS) or the same options as `Redis.layer`, with plain strings for the password.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions {
  readonly url?: string | undefined
  /** ioredis options; lockstep overrides the ones that make ioredis queue or retry commands. */
  readonly redis?: Omit<IORedisOptions, "replyMapping"> | undefined
  readonly password?: string | undefined
  /** Per-command time limit (default 500 ms). */
  readonly commandTimeout?: DurationInput | undefined
  /** How long the first connection is waited for before the cache goes on degraded (default 2 s). */
  readonly connectTimeout?: DurationInput | undefined
  readonly breakerThreshold?: number | undefined
  readonly breakerCooldown?: DurationInput | undefined
  readonly cluster?: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined
  readonly sentinel?: {
    readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>
    readonly name: string
  } | undefined
}

/**
 * Tuning of the cache's runtime, as `Memo.layerWith` takes it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheSettings {
  readonly lease?: DurationInput | undefined
  readonly pollInterval?: DurationInput | undefined
  readonly redisRetry?: DurationInput | undefined
  readonly failureBackoff?: DurationInput | undefined
  readonly maxFailureBackoff?: DurationInput | undefined
  readonly degradedAfter?: DurationInput | undefined
  readonly maxRun?: DurationInput | undefined
  readonly l1Capacity?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CacheOptions {
  /** Redis (a URL or options); without it, the in-memory store (one process, no fleet). */
  readonly redis?: string | RedisOptions | undefined
  /** The tenant whose keys this cache reads and writes (default `"default"`). */
  readonly tenant?: string | undefined
  readonly settings?: CacheSettings | undefined
}

/**
 * A loader's options, checked once when it is defined (a bad one throws a `TypeError` naming it).
 *
 * @since 0.1.0
 * @category models
 */
export interface LoaderOptions<K, A> {
  /** The cache key, or how to make it from the lookup's argument. */
  readonly key: string | ((k: K) => string)
  /** The window length: the lookup runs at most once per window for the whole fleet. */
  readonly window: DurationInput
  readonly schema: SchemaOf<A>
  /**
   * Names the version of the stored shape (1 to 100 characters): change it when the schema's
   * shape changes, so that during the rolling deploy each version's lookup runs once per window
   * beside the other's value, rather than both taking turns replacing it. An Effect Schema's
   * encoded side gives it an identity of its own; a Standard Schema's says nothing of its shape.
   */
  readonly schemaVersion?: string | undefined
  /**
   * The expensive computation. `previous` is the value this process holds for the key (earlier
   * window or invalidated), when it holds one.
   */
  readonly lookup: (k: K, previous: NoInfer<A> | undefined) => Promise<NoInfer<A>> | NoInfer<A>
  /** How long a request may wait when no value exists anywhere, before it fails with `WaitTimeout`. */
  readonly timeout?: DurationInput | undefined
  /** Drop a key's records from the store when not refreshed for this long (default: kept forever). */
  readonly retain?: DurationInput | undefined
  /** Tags for `cache.invalidateTag`, fixed or by key. */
  readonly tags?: ReadonlyArray<string> | ((k: K) => ReadonlyArray<string>) | undefined
  /**
   * Computes many keys at once for `getMany`: the values in the order of `ks`. Without it, the
   * keys a batch must compute run `lookup` each (at most 16 at once).
   */
  readonly lookupMany?: ((ks: ReadonlyArray<K>) => Promise<ReadonlyArray<NoInfer<A>>>) | undefined
  /** Keys per `lookupMany` call (default 100). */
  readonly batchSize?: number | undefined
}

/**
 * A family of cached values, one per key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loader<K, A> {
  /** The value: from L1, the store, or (cold) the lookup. */
  readonly get: (k: K) => Promise<A>
  readonly getWithInfo: (k: K) => Promise<Info<A>>
  /** What L1 or the store holds, never running the lookup; `undefined` when nothing is (or Redis is down). */
  readonly peek: (k: K) => Promise<Info<A> | undefined>
  /** Marks the value stale everywhere (it stays, as last-known-good); one recompute runs fleet-wide. */
  readonly invalidate: (k: K) => Promise<void>
  /**
   * The values of many keys, in the order of `ks` (duplicates allowed): L1 hits at once, every
   * other key read from the store in one round trip, the keys with no value anywhere computed
   * together through `lookupMany`, each still under its own fleet lock.
   */
  readonly getMany: (ks: Iterable<K>) => Promise<Array<A>>
  readonly getManyWithInfo: (ks: Iterable<K>) => Promise<Array<Info<A>>>
  /** Recomputes now (one run fleet-wide) and answers the new value. */
  readonly refresh: (k: K) => Promise<Info<A>>
  /**
   * Removes the value everywhere (`invalidate` keeps it as last-known-good): afterwards no
   * process answers it and the next request is cold, one run for the fleet.
   */
  readonly purge: (k: K) => Promise<void>
  /** Stores `value` as this window's, newer than anything stored or being computed. */
  readonly set: (k: K, value: A) => Promise<Info<A>>
  /** The cache key of `k`. */
  readonly keyOf: (k: K) => string
  /** The window length in milliseconds. */
  readonly windowMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Cache {
  /** Defines a loader; define each one once, at module level. */
  readonly loader: <A, K = void>(options: LoaderOptions<K, A>) => Loader<K, A>
  /** Marks stale, everywhere, every value whose loader gave it `tag`; answers how many keys it reached. */
  readonly invalidateTag: (tag: string) => Promise<number>
  /** Removes, everywhere, every value whose loader gave it `tag`; answers how many keys it reached. */
  readonly purgeTag: (tag: string) => Promise<number>
  /** The same headers as `Memo.cacheHeaders`: `Cache-Control`, `Age`, `X-Cache`, refresh times. */
  readonly cacheHeaders: (info: Info<unknown>) => Record<string, string>
  /** Ends the runtime: its connections, refreshes and timers. Requests after it fail with `Closed`. */
  readonly close: () => Promise<void>
}

// ---------------------------------------------------------------------------------------------
// errors

/**
 * What a cache rejects with, besides the lookup's own errors (passed through as they are).
 *
 * @since 0.1.0
 * @category errors
 */
export type ErrorCode = "WaitTimeout" | "RedisError" | "MaxRunExceeded" | "InvalidValue" | "LookupManyMismatch" | "Closed"

/**
 * @since 0.1.0
 * @category errors
 */
export class CacheError extends Error {
  /**
   * @since 0.1.0
   */
  override readonly name = "CacheError"
  /**
   * What went wrong, for a program to tell apart.
   *
   * @since 0.1.0
   */
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { readonly cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

const typeError = (e: unknown): TypeError => {
  const error = new TypeError(e instanceof Error ? e.message : String(e))
  if (e instanceof Error) error.cause = e
  return error
}

const fromFailure = (e: unknown): unknown => {
  if (e instanceof Memo.WaitTimeout) return new CacheError("WaitTimeout", e.message, { cause: e })
  if (e instanceof Store.RedisError) return new CacheError("RedisError", e.message, { cause: e })
  if (ParseResult.isParseError(e)) return new CacheError("InvalidValue", e.message, { cause: e })
  if (e instanceof Memo.LookupManyMismatch) return new CacheError("LookupManyMismatch", e.message, { cause: e })
  return e
}

const fromDefect = (e: unknown): unknown => {
  if (e instanceof Leader.MaxRunExceeded) return new CacheError("MaxRunExceeded", e.message, { cause: e })
  if (e instanceof Settings.InvalidOptions) return typeError(e)
  return e
}

const closed = () => new CacheError("Closed", "lockstep: the cache was closed")

const toError = (cause: Cause.Cause<unknown>): unknown => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return fromFailure(failure.value)
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) return fromDefect(defect.value)
  if (Cause.isInterruptedOnly(cause)) return closed()
  return new Error(Cause.pretty(cause))
}

// ---------------------------------------------------------------------------------------------
// schemas

const standardSchemas = new WeakMap<object, Schema.Schema<any, any, never>>()

const isStandard = (u: unknown): u is StandardSchemaV1 =>
  (typeof u === "object" || typeof u === "function") && u !== null && "~standard" in u &&
  typeof (u as StandardSchemaV1)["~standard"]?.validate === "function"

/** A Standard Schema as an Effect Schema of JSON-able values: validated when decoded, as is when encoded. */
const fromStandard = <A>(standard: StandardSchemaV1<unknown, A>): Schema.Schema<A, any, never> => {
  let found = standardSchemas.get(standard)
  if (found === undefined) {
    found = Schema.transformOrFail(Schema.Unknown, Schema.Any, {
      strict: false,
      decode: (u, _, ast) => {
        const result = standard["~standard"].validate(u)
        if (result instanceof Promise) {
          return ParseResult.fail(new ParseResult.Type(ast, u, "lockstep validates stored values synchronously; this schema is async"))
        }
        return result.issues === undefined
          ? ParseResult.succeed(result.value)
          : ParseResult.fail(new ParseResult.Type(ast, u, result.issues.map((i) => i.message).join("; ")))
      },
      encode: ParseResult.succeed
    })
    standardSchemas.set(standard, found)
  }
  return found
}

const effectSchemaOf = (name: string, schema: unknown): Schema.Schema<any, any, never> => {
  if (Schema.isSchema(schema)) return schema as Schema.Schema<any, any, never>
  if (isStandard(schema)) {
    if (schema["~standard"].version !== 1) throw new TypeError(`loader ${name}: schema is a Standard Schema of an unknown version`)
    return fromStandard(schema)
  }
  throw new TypeError(`loader ${name} needs a schema to store its value: an Effect Schema or a Standard Schema (zod, valibot, …)`)
}

// ---------------------------------------------------------------------------------------------
// the store

const fromUrl = (url: string): Omit<IORedisOptions, "replyMapping"> => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new TypeError(`redis must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`)
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(`redis must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`)
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined
  if (db !== undefined && !Number.isSafeInteger(db)) throw new TypeError(`redis URL: the database must be a number, got ${JSON.stringify(u.pathname.slice(1))}`)
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port === "" ? 6379 : Number(u.port),
    ...(u.username !== "" ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== "" ? { password: decodeURIComponent(u.password) } : {}),
    ...(db !== undefined ? { db } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {})
  }
}

/** The store's layer, its options checked now: a bad one throws a `TypeError` naming it. */
const storeLayer = (options: CacheOptions): Layer.Layer<Redis.Redis> => {
  const tenant = options.tenant
  if (options.redis === undefined) {
    const invalid = Store.validateTenant(tenant ?? "default")
    if (invalid !== undefined) throw new TypeError(`tenant: ${invalid.message}`)
    return Layer.effect(Redis.Redis, Effect.orDie(Redis.makeMemory({ tenant })))
  }
  const given: RedisOptions = typeof options.redis === "string" ? { url: options.redis } : options.redis
  if (typeof given !== "object" || given === null) {
    throw new TypeError(`redis must be a URL or an options object, got ${typeof options.redis}`)
  }
  const { url, ...rest } = given
  const redisOptions: RedisConfig.Options = {
    ...rest,
    redis: { ...(url === undefined ? {} : fromUrl(url)), ...given.redis },
    tenant
  }
  const resolved = RedisConfig.resolve(redisOptions)
  if (Either.isLeft(resolved)) throw new TypeError(resolved.left.message)
  return Layer.orDie(Redis.layer(redisOptions))
}

// ---------------------------------------------------------------------------------------------
// the cache

/**
 * Makes a cache: one runtime over Redis (`redis`), or over the in-memory store when `redis` is
 * not given. Bad options throw a `TypeError` naming the option.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createCache = (options: CacheOptions = {}): Cache => {
  if (typeof options !== "object" || options === null) throw new TypeError("createCache options must be an object { redis?, tenant? }")
  // a setting given as `undefined` is the default
  const settings = Object.fromEntries(
    Object.entries(options.settings ?? {}).filter(([, value]) => value !== undefined)
  ) as Partial<Memo.Settings>
  const resolved = Settings.resolve(settings)
  if (Either.isLeft(resolved)) throw new TypeError(`settings: ${resolved.left.message}`)
  const managed = ManagedRuntime.make(
    Memo.layerWith(settings).pipe(Layer.provide(storeLayer(options)), Layer.orDie)
  )
  // once built, the hit path reads the engine's L1 and the runtime's clock directly
  let engine: Engine.Engine | undefined
  let clock: Clock.Clock | undefined
  let isClosed = false
  const built = managed.runtime().then((runtime) => {
    if (isClosed) return
    engine = Context.get(runtime.context, Memo.Memo) as Engine.Engine
    clock = managed.runSync(Effect.clock)
  }, () => {})

  const run = <B>(effect: Effect.Effect<B, unknown, Memo.Memo>): Promise<B> =>
    isClosed ? Promise.reject(closed()) : managed.runPromiseExit(effect).then((exit) =>
      Exit.isSuccess(exit) ? exit.value : Promise.reject(toError(exit.cause))
    )

  const loader = <A, K = void>(loaderOptions: LoaderOptions<K, A>): Loader<K, A> => {
    if (typeof loaderOptions !== "object" || loaderOptions === null) {
      throw new TypeError("loader options must be an object { key, window, schema, lookup }")
    }
    const name = typeof loaderOptions.key === "string" ? JSON.stringify(loaderOptions.key) : "(keyed)"
    const schema = effectSchemaOf(name, loaderOptions.schema)
    const userLookup = loaderOptions.lookup
    if (typeof userLookup !== "function") throw new TypeError(`loader ${name} needs a lookup function`)
    const lookupMany = loaderOptions.lookupMany
    let memo: Memo.Loader<K, A, unknown>
    try {
      memo = Memo.loader<A, unknown, unknown, never, K>({
        key: loaderOptions.key,
        window: loaderOptions.window,
        schema,
        schemaVersion: loaderOptions.schemaVersion,
        // the value it replaces, from L1 or decoded from the store
        lookup: (k, previous) =>
          Effect.tryPromise({
            try: async () => userLookup(k, Option.isSome(previous) ? previous.value.value : undefined),
            catch: (e) => e
          }),
        ...(lookupMany === undefined ? {} : {
          lookupMany: (ks: ReadonlyArray<K>) => Effect.tryPromise({ try: async () => lookupMany(ks), catch: (e) => e })
        }),
        batchSize: loaderOptions.batchSize,
        timeout: loaderOptions.timeout,
        retain: loaderOptions.retain,
        tags: loaderOptions.tags
      })
    } catch (e) {
      throw e instanceof Settings.InvalidOptions ? typeError(e) : e
    }
    const windowMs = memo.windowMs
    const keyOf = (k: K): string => {
      try {
        return memo.keyOf(k)
      } catch (e) {
        throw e instanceof Settings.InvalidOptions ? typeError(e) : e
      }
    }
    /**
     * The request path: a fresh hit without the runtime (one L1 lookup, one freshness check, as
     * `Memo.loader`'s), everything else through it.
     */
    const request = <B>(
      k: K,
      onHit: (entry: L1.Entry, now: number, key: string) => Promise<B>,
      slow: (k: K) => Effect.Effect<B, unknown, Memo.Memo>
    ): Promise<B> => {
      if (engine !== undefined && !isClosed) {
        let key: string
        try {
          key = memo.keyOf(k)
        } catch (e) {
          return Promise.reject(fromDefect(e))
        }
        const t = clock!.unsafeCurrentTimeMillis()
        const now = t + engine.clock.skew
        const held = L1.hit(engine.l1, key, windowMs, now, t + engine.clock.offset)
        if (held !== undefined) return onHit(held, now, key)
      }
      return run(slow(k))
    }
    // one resolved promise per entry, made on its first hit
    const hitValue = (entry: L1.Entry) => (entry.resolved ??= Promise.resolve(entry.value)) as Promise<A>
    const hitInfo = (entry: L1.Entry, now: number, key: string) =>
      Promise.resolve(L1.info<A>(entry, "hit", now, Engine.expectOf(engine!, key, entry)))
    return {
      windowMs,
      keyOf,
      get: (k) => request(k, hitValue, memo.get),
      getWithInfo: (k) => request(k, hitInfo, memo.getWithInfo),
      peek: (k) => run(Effect.map(memo.peek(k), Option.getOrUndefined)),
      invalidate: (k) => run(memo.invalidate(k)),
      getMany: (ks) => run(memo.getMany(ks)),
      getManyWithInfo: (ks) => run(memo.getManyWithInfo(ks)),
      refresh: (k) => run(memo.refresh(k)),
      purge: (k) => run(memo.purge(k)),
      set: (k, value) => run(memo.set(k, value))
    }
  }

  return {
    loader,
    invalidateTag: (tag) => {
      if (typeof tag !== "string") return Promise.reject(new TypeError(`invalidateTag needs a string tag, got ${typeof tag}`))
      return run(Memo.invalidateTag(tag))
    },
    purgeTag: (tag) => {
      if (typeof tag !== "string") return Promise.reject(new TypeError(`purgeTag needs a string tag, got ${typeof tag}`))
      return run(Memo.purgeTag(tag))
    },
    cacheHeaders: Memo.cacheHeaders,
    close: async () => {
      if (isClosed) return
      isClosed = true
      engine = undefined
      await built
      await managed.dispose()
    }
  }
}
