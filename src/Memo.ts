/**
 * Loaders: one lookup run per window for the whole fleet, stale values served at once, and a
 * last-known-good value that outlives every window.
 *
 * Define a loader once, at module level; its options are checked there. A request then goes
 * top to bottom:
 * 1. `get`: a fresh L1 entry is returned at once (one map lookup, one bucket comparison);
 * 2. otherwise a held value is answered at once, stale, and refreshed in the background; with
 *    nothing held, the request waits for the key's one run in this process;
 * 3. that run claims the fleet lock and runs the lookup, waits for another process's commit,
 *    or runs on its own while the store is unreachable.
 *
 * The guide is the README; what the fleet guarantees is in `docs/guarantees.md`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { createHash } from "node:crypto"
import * as Batch from "./internal/memo/batch.js"
import * as Core from "./internal/memo/core.js"
import * as JsonCheck from "./internal/memo/jsonCheck.js"
import * as L1 from "./internal/memo/l1.js"
import * as Leader from "./internal/memo/leader.js"
import * as Encryption from "./internal/encryption.js"
import * as Engine from "./internal/memo/runtime.js"
import * as internalSettings from "./internal/memo/settings.js"
import * as Store from "./internal/store.js"
import * as Metrics from "./Metrics.js"
import type * as Redis from "./Redis.js"
import * as Window from "./Window.js"

// ---------------------------------------------------------------------------------------------
// models

/**
 * A value with what pages turn into `Cache-Control`, `Age` and refresh times (`cacheHeaders`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Info<A> {
  readonly value: A
  /** The window the value was computed for. */
  readonly bucket: number
  /** When the lookup finished, in epoch milliseconds (the store's clock). */
  readonly computedAt: number
  /**
   * `true` when the value is not this window's latest: it belongs to an earlier window, or was
   * invalidated (a refresh is under way either way).
   */
  readonly stale: boolean
  /** The start of the next window, in epoch milliseconds. */
  readonly nextBoundary: number
  /** `hit`: fresh from L1 or the store; `stale`: see `stale`; `miss`: waited for a lookup. */
  readonly cache: "hit" | "stale" | "miss"
  /** The loader's window length. */
  readonly windowMs: number
  /** The store's clock when the answer was given (this process's, corrected for skew). */
  readonly serverNow: number
  /**
   * When the next value is expected, in epoch milliseconds: the next boundary when it is
   * computed before its window opens (`keepWarm`'s early runs), the boundary plus the key's
   * measured run time otherwise; for a stale answer, now plus that run time.
   */
  readonly nextValueAt: number
}

/**
 * A loader's options, checked once when it is defined.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoaderOptions<K, A, I, E, R, O extends A | Unchanged = A> {
  /** The cache key, or how to make it from the lookup's argument. Any string is a key of its own. */
  readonly key: string | ((k: K) => string)
  /** The window length: the lookup runs at most once per window for the whole fleet. */
  readonly window: Duration.DurationInput
  /**
   * How the value crosses the wire; a stored value that fails to decode is recomputed. Every
   * value is stored with the identity of the schema's encoded side, so that during a rolling
   * deploy that changes it, each version's lookup runs once per window, beside the other's value
   * rather than over it (README, "Rolling deploys").
   */
  readonly schema: Schema.Schema<A, I, never>
  /**
   * Names the version of the stored shape, for a schema whose encoded side says nothing of it (a
   * `Schema.Unknown`, a Standard Schema through `lockstep/promise`): change it when the shape
   * changes. With an Effect Schema it adds to the identity its encoded side gives. 1 to 100
   * characters.
   */
  readonly schemaVersion?: string | undefined
  /**
   * The expensive computation. It runs in the runtime, with the services of the request that
   * started it but never that request's `Scope` (a lookup that needs one gets its own): it must
   * not read request-specific services such as the current user.
   *
   * `previous` is the value it replaces (`None` on a cold key), from L1 or decoded from the
   * store. When a cheap check shows nothing changed, the lookup may answer `Memo.unchanged`:
   * that value stands for this window, committed under a new version without its payload
   * crossing the wire again. Answering `unchanged` with no previous value fails the run with
   * `UnchangedWithoutPrevious`.
   */
  readonly lookup: (k: K, previous: Option.Option<Info<A>>) => Effect.Effect<O, E, R>
  /**
   * Names the loader: its metrics carry it as the label `loader` (so the label set is the set
   * of loader names, never keys) and its spans as `lockstep.loader`. Unnamed loaders keep
   * unlabelled metrics. 1 to 100 characters.
   */
  readonly name?: string | undefined
  /**
   * Looks many keys up at once, for `getMany`: the values in the order of `ks` (one query for
   * a page's rows rather than one per row). Each key is still claimed under its own fleet lock,
   * so a key runs at most once per window for the whole fleet; only the keys this process
   * claimed are asked for, `batchSize` at most per call. Answering another number of values
   * fails every key of the call with `LookupManyMismatch`. Without it, `getMany` runs `lookup`
   * for the keys it claimed, at most 16 at a time.
   */
  readonly lookupMany?: ((ks: ReadonlyArray<K>) => Effect.Effect<ReadonlyArray<O>, E, R>) | undefined
  /** Keys per `lookupMany` call (default 100; 1 to 10 000). */
  readonly batchSize?: number | undefined
  /**
   * How long a request may wait when no value exists anywhere (a cold start), before it fails
   * with `WaitTimeout`; the lookup goes on for later requests. Hits and stale values never wait.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** Drop a key's records from the store when not refreshed for this long (default: kept forever). */
  readonly retain?: Duration.DurationInput | undefined
  /** Tags for `Memo.invalidateTag`, fixed or by key. */
  readonly tags?: ReadonlyArray<string> | ((k: K) => ReadonlyArray<string>) | undefined
  /**
   * A schema that contains `Redacted` (a password, a token) is refused: the value would be
   * stored in Redis, and sent on its notices, in clear. Cache the public variant instead (for
   * an `@effect/sql` model, `User.json`), or set this to `true` to store it knowingly.
   */
  readonly storeRedacted?: boolean | undefined
  /**
   * Encrypts the value in the store and on the fleet's notices (AES-256-GCM): `key` is 32 bytes,
   * as bytes or base64 text, `Redacted`. To rotate, make the new key `key` and list the old one
   * in `previousKeys` until every stored value was rewritten (a window, or `retain`). A value no
   * listed key opens is recomputed. A schema with `Redacted` is then accepted.
   */
  readonly encrypt?: Encryption.Keys | undefined
}

/**
 * Options of a fixed-key `memo`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, I> {
  readonly key: string
  readonly window: Duration.DurationInput
  readonly schema: Schema.Schema<A, I, never>
  /** See `LoaderOptions.schemaVersion`. */
  readonly schemaVersion?: string | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly retain?: Duration.DurationInput | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  /** See `LoaderOptions.storeRedacted`. */
  readonly storeRedacted?: boolean | undefined
  /** See `LoaderOptions.encrypt`. */
  readonly encrypt?: Encryption.Keys | undefined
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const LoaderTypeId: unique symbol = Symbol.for("lockstep/Loader")

/**
 * @since 0.1.0
 * @category type ids
 */
export type LoaderTypeId = typeof LoaderTypeId

/**
 * A family of cached values, one per key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loader<K, A, E = never, R = never> {
  readonly [LoaderTypeId]: LoaderTypeId
  /** The value: from L1, the store, or (cold) the lookup. */
  readonly get: (k: K) => Effect.Effect<A, E, Exclude<R, Scope.Scope> | Memo>
  readonly getWithInfo: (k: K) => Effect.Effect<Info<A>, E, Exclude<R, Scope.Scope> | Memo>
  /**
   * The values of `ks`, in their order (duplicates allowed): L1's fresh values inline, every
   * other key read from the store in one round trip, stale values answered at once and
   * refreshed in the background, and the keys with no value anywhere looked up together
   * (`lookupMany`), each still under its own fleet lock: one run per key per window for the
   * fleet, however batches overlap.
   */
  readonly getMany: (ks: Iterable<K>) => Effect.Effect<Array<A>, E | LookupManyMismatch, Exclude<R, Scope.Scope> | Memo>
  readonly getManyWithInfo: (ks: Iterable<K>) => Effect.Effect<Array<Info<A>>, E | LookupManyMismatch, Exclude<R, Scope.Scope> | Memo>
  /** What L1 or the store holds, never running the lookup; `None` when nothing is (or Redis is down). */
  readonly peek: (k: K) => Effect.Effect<Option.Option<Info<A>>, never, Memo>
  /**
   * Marks the value stale everywhere (it stays, as last-known-good): the next request anywhere
   * gets it at once and one recompute runs fleet-wide. Fails only when the store is unreachable
   * (this process stops answering hits with it even then).
   */
  readonly invalidate: (k: K) => Effect.Effect<void, Redis.RedisError, Memo>
  /** Recomputes now (one run fleet-wide) and answers the new value. */
  readonly refresh: (k: K) => Effect.Effect<Info<A>, E, Exclude<R, Scope.Scope> | Memo>
  /**
   * Removes the value everywhere (unlike `invalidate`, which keeps it as last-known-good) and
   * tells the fleet: afterwards no process answers it, `peek` answers `None`, and the next
   * request is cold (one run for the fleet). A lookup running meanwhile cannot bring it back.
   */
  readonly purge: (k: K) => Effect.Effect<void, Redis.RedisError, Memo>
  /**
   * Stores `value` as this window's, newer than anything stored or being computed. Fails with
   * `RedisError` when the store is unreachable: a `set` that returns is never lost (this process
   * stops answering hits with the value it replaces even then).
   */
  readonly set: (k: K, value: A) => Effect.Effect<Info<A>, ParseError | Redis.RedisError, Memo>
  /** The cache key of `k`. */
  readonly keyOf: (k: K) => string
  /** The window length in milliseconds. */
  readonly windowMs: number
}

/**
 * Options that cannot describe a cache entry or a runtime: a window of zero, a negative lag,
 * something that is not a schema, …. Thrown when a loader is defined; a layer with such
 * settings fails to build.
 *
 * @since 0.1.0
 * @category errors
 */
export const InvalidOptions: typeof internalSettings.InvalidOptions = internalSettings.InvalidOptions

/**
 * @since 0.1.0
 * @category errors
 */
export type InvalidOptions = internalSettings.InvalidOptions

/**
 * A cold request waited longer than its `timeout` for the first value of its key.
 *
 * @since 0.1.0
 * @category errors
 */
export class WaitTimeout extends Data.TaggedError("WaitTimeout")<{
  readonly key: string
  readonly timeout: Duration.Duration
}> {
  override get message() {
    return `lockstep: no value for ${JSON.stringify(this.key)} within ${Duration.format(this.timeout)}`
  }
}

/**
 * A lookup ran longer than `maxRun` and was stopped; a cold request waiting for it dies with this.
 *
 * @since 0.1.0
 * @category errors
 */
export const MaxRunExceeded: typeof Leader.MaxRunExceeded = Leader.MaxRunExceeded

/**
 * @since 0.1.0
 * @category errors
 */
export type MaxRunExceeded = Leader.MaxRunExceeded

/**
 * A lookup answered `Memo.unchanged` with no previous value to stand (a cold or purged key).
 * The run fails like any failed lookup: a stale value is served where one exists.
 *
 * @since 0.1.0
 * @category errors
 */
export const UnchangedWithoutPrevious: typeof Leader.UnchangedWithoutPrevious = Leader.UnchangedWithoutPrevious

/**
 * @since 0.1.0
 * @category errors
 */
export type UnchangedWithoutPrevious = Leader.UnchangedWithoutPrevious

/**
 * @since 0.1.0
 * @category models
 */
export type Unchanged = Core.Unchanged

/**
 * A loader's `lookupMany` answered another number of values than it was asked for: every key
 * of that call fails with it (stale values are served where they exist).
 *
 * @since 0.1.0
 * @category errors
 */
export const LookupManyMismatch: typeof Batch.LookupManyMismatch = Batch.LookupManyMismatch

/**
 * @since 0.1.0
 * @category errors
 */
export type LookupManyMismatch = Batch.LookupManyMismatch

/**
 * What a lookup answers when the value it was given as `previous` stands for this window too:
 * the store gives that value a new version (the same guarantees as a commit: one run per
 * window, fenced, notified to the fleet) without its payload being encoded or sent again.
 *
 * @example
 * import { Effect, Option, Schema } from "effect"
 * import { Memo } from "lockstep"
 *
 * const Stats = Schema.Struct({ trades: Schema.Number, computedAt: Schema.Number })
 * // stand in for a cheap indexed query and the expensive aggregate
 * const newestTrade = (_id: number) => Effect.succeed(0)
 * const aggregate = (_id: number) => Effect.succeed({ trades: 42, computedAt: 1 })
 *
 * export const items = Memo.loader({
 *   key: (id: number) => `market:item:${id}`,
 *   window: "1 minute",
 *   schema: Stats,
 *   lookup: (id: number, previous) =>
 *     Effect.gen(function*() {
 *       if (Option.isSome(previous) && (yield* newestTrade(id)) <= previous.value.computedAt) return Memo.unchanged
 *       return yield* aggregate(id)
 *     })
 * })
 *
 * @since 0.1.0
 * @category constructors
 */
export const unchanged: Unchanged = Core.unchanged

/** A loader's extra error when its lookup may answer `unchanged`. */
type UnchangedError<O> = [Unchanged] extends [O] ? UnchangedWithoutPrevious : never

/**
 * Tuning of the per-process runtime. Every duration is from 1 ms (30 ms for `lease`; 0 for
 * `failureBackoff`, `maxFailureBackoff` and `degradedAfter`) to 24.8 days, what timers support.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  /** How long a fleet lock lives without renewal; renewed every third of it. Default 10 s. */
  readonly lease: Duration.DurationInput
  /** How often a process polls while another one runs the lookup (commit notices usually come first). Default 50 ms. */
  readonly pollInterval: Duration.DurationInput
  /** While Redis is unreachable, how soon a process tries it again (serving L1 meanwhile). Default 250 ms. */
  readonly redisRetry: Duration.DurationInput
  /** Back-off after the first lookup failure, doubled per further failure fleet-wide. Default 1 s. */
  readonly failureBackoff: Duration.DurationInput
  /** The longest back-off. Default 30 s. */
  readonly maxFailureBackoff: Duration.DurationInput
  /**
   * While Redis is unreachable, how long past the window boundary a process keeps serving its
   * stale value before it runs the lookup on its own. Default 1 s.
   */
  readonly degradedAfter: Duration.DurationInput
  /**
   * The longest one lookup may run: past it, the run is stopped, its lock becomes a back-off
   * marker and another process may take over. Default 5 minutes.
   */
  readonly maxRun: Duration.DurationInput
  /** Entries kept in the L1 before the least recently written is dropped. Default 10 000. */
  readonly l1Capacity: number
}

/**
 * @since 0.1.0
 */
export const defaultSettings: Settings = internalSettings.defaults

// ---------------------------------------------------------------------------------------------
// the runtime

/**
 * The per-process cache runtime: L1, the keys' workers, the fleet's notices, the store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Runtime {
  readonly [Engine.TypeId]: Engine.TypeId
  readonly store: Redis.Store
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Memo extends Context.Tag("lockstep/Memo")<Memo, Runtime>() {}

const engineOf = (runtime: Runtime): Engine.Engine => runtime as Engine.Engine

/**
 * Builds the runtime over the `Redis` store. Its workers live in the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (settings: Partial<Settings> = {}): Effect.Effect<Runtime, InvalidOptions, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* internalSettings.resolve(settings)
    const store = yield* Store.Redis
    return yield* Engine.make(store, resolved)
  })

/**
 * The runtime with explicit settings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (settings: Partial<Settings>): Layer.Layer<Memo, InvalidOptions, Redis.Redis> =>
  Layer.scoped(Memo, make(settings))

/**
 * The runtime with settings from `Config`s (each setting may be one).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config.Wrap<Partial<Settings>>
): Layer.Layer<Memo, InvalidOptions | ConfigError.ConfigError, Redis.Redis> =>
  Layer.scoped(Memo, Effect.flatMap(Config.unwrap(settings), make))

/**
 * The runtime with default settings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Memo, never, Redis.Redis> = Layer.orDie(layerWith({}))

// ---------------------------------------------------------------------------------------------
// loaders

/** `JSON.stringify` of a value, `undefined` where it throws or writes nothing (Schema then says why). */
const stringified = (value: unknown): string | undefined => {
  try {
    const text: unknown = JSON.stringify(value)
    return typeof text === "string" ? text : undefined
  } catch {
    return undefined
  }
}

/** Compiled JSON codecs per schema: building them is the costly part of defining a loader. */
const codecs = new WeakMap<Schema.Schema.Any, Pick<Core.Spec, "decode" | "encode">>()

const codecsOf = (schema: Schema.Schema<any, any, never>): Pick<Core.Spec, "decode" | "encode"> => {
  let found = codecs.get(schema)
  if (found === undefined) {
    const json = Schema.parseJson(schema)
    const decodeJson = Schema.decodeEither(json)
    const encode = Schema.encodeEither(json)
    // a value that decoding leaves as it is (most JSON shapes) is checked, not rebuilt
    const check = JsonCheck.compile(schema.ast)
    // a value to write is not parsed JSON: it has its own check (see `JsonCheck.Source`)
    const checkValue = check === undefined ? undefined : JsonCheck.compile(schema.ast, "value")
    const decodeParsed = Schema.decodeUnknownEither(schema)
    const decode = check === undefined ? decodeJson : (data: string): Either.Either<unknown, ParseError> => {
      let parsed: unknown
      try {
        parsed = JSON.parse(data)
      } catch {
        return decodeJson(data)
      }
      // what the check does not vouch for, Schema decides (and rebuilds)
      return check(parsed) ? Either.right(parsed) : decodeParsed(parsed)
    }
    found = {
      decode: (data) => {
        const decoded = decode(data)
        return Either.isRight(decoded) ? { ok: true, value: decoded.right } : { ok: false }
      },
      // a value the fleet could not read back (a NaN that JSON stores as null) does not encode:
      // committed, it would make every other process recompute it
      encode: (value) => {
        const text = checkValue !== undefined && checkValue(value) ? stringified(value) : undefined
        return Either.flatMap(text === undefined ? encode(value) : Either.right(text), (data) => Either.map(decode(data), () => data))
      }
    }
    codecs.set(schema, found)
  }
  return found
}

/** Each schema's identities, by `schemaVersion` ("" for none): worked out once per schema. */
const identities = new WeakMap<Schema.Schema.Any, Map<string, string>>()

/** What a JSON Schema says for people, not of the shape: a changed description is the same shape. */
const annotationKeys = new Set(["$schema", "$comment", "title", "description", "examples", "default"])
/** JSON Schema keys whose value maps names to schemas. */
const schemaMaps = new Set(["properties", "patternProperties", "$defs", "definitions"])

/** A JSON Schema without its annotations (values under `enum` and `const` are data, kept whole). */
const shapeOf = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(shapeOf)
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) {
    if (annotationKeys.has(key)) continue
    out[key] = key === "enum" || key === "const"
      ? value
      : schemaMaps.has(key) && typeof value === "object" && value !== null
      ? Object.fromEntries(Object.entries(value).map(([name, schema]) => [name, shapeOf(schema)]))
      : shapeOf(value)
  }
  return out
}

/**
 * A schema's identity: a short hash of its encoded side (as JSON Schema without annotations, or
 * the encoded AST's description where JSON Schema has no form for it) and of `schemaVersion`. Two
 * versions of a loader whose stored shape differs get different identities; refinements,
 * transformations and descriptions that leave the stored shape alone do not change it.
 */
const identityOf = (schema: Schema.Schema<any, any, never>, version: string | undefined): string => {
  let byVersion = identities.get(schema)
  if (byVersion === undefined) {
    byVersion = new Map()
    identities.set(schema, byVersion)
  }
  let id = byVersion.get(version ?? "")
  if (id === undefined) {
    const encoded = Schema.encodedSchema(schema)
    let shape: string
    try {
      shape = JSON.stringify(shapeOf(JSONSchema.make(encoded)))
    } catch {
      shape = String(encoded.ast)
    }
    id = createHash("sha256").update(version === undefined ? shape : `${shape}\u0000${version}`).digest("base64url").slice(0, 16)
    byVersion.set(version ?? "", id)
  }
  return id
}

const invalid = (message: string): never => {
  throw new InvalidOptions({ message })
}

const describe = (input: unknown) => {
  try {
    return typeof input === "function" ? "a function" : JSON.stringify(input) ?? String(input)
  } catch {
    return String(input)
  }
}

/** A codec whose text is encrypted: what does not decrypt does not decode. */
const encrypted = (
  codec: Pick<Core.Spec, "decode" | "encode">,
  cipher: Exclude<ReturnType<typeof Encryption.make>, string>
): Pick<Core.Spec, "decode" | "encode"> => ({
  encode: (value) => Either.map(codec.encode(value), cipher.encrypt),
  decode: (data) => {
    const plain = cipher.decrypt(data)
    return plain === undefined ? { ok: false } : codec.decode(plain)
  }
})

/** Whether a schema holds a `Redacted` anywhere (fields, elements, unions, classes, recursion). */
const containsRedacted = (ast: AST.AST, seen: Set<AST.AST> = new Set()): boolean => {
  if (seen.has(ast)) return false
  seen.add(ast)
  const inner = (a: AST.AST) => containsRedacted(a, seen)
  switch (ast._tag) {
    case "Declaration": {
      const constructor = ast.annotations[AST.TypeConstructorAnnotationId] as { readonly _tag?: unknown } | undefined
      return constructor?._tag === "effect/Redacted" || ast.typeParameters.some(inner)
    }
    case "Transformation":
      return inner(ast.from) || inner(ast.to)
    case "Refinement":
      return inner(ast.from)
    case "Suspend":
      return inner(ast.f())
    case "Union":
      return ast.types.some(inner)
    case "TupleType":
      return ast.elements.some((e) => inner(e.type)) || ast.rest.some((r) => inner(r.type))
    case "TypeLiteral":
      return ast.propertySignatures.some((p) => inner(p.type)) || ast.indexSignatures.some((i) => inner(i.type))
    default:
      return false
  }
}

/** Checks a loader's static options: a bad one throws `InvalidOptions`, once, here. */
const specOf = (options: LoaderOptions<any, any, any, any, any, any>) => {
  if (typeof options !== "object" || options === null) {
    return invalid("loader options must be an object { key, window, schema, lookup }")
  }
  const { key, schema } = options
  const name = typeof key === "string" ? JSON.stringify(key) : "(keyed)"
  if (typeof key !== "string" && typeof key !== "function") invalid(`loader key must be a string or a function, got ${describe(key)}`)
  if (!Schema.isSchema(schema)) invalid(`loader ${name} needs a Schema to store its value`)
  if (typeof options.lookup !== "function") invalid(`loader ${name} needs a lookup function`)
  const encryption = options.encrypt === undefined ? undefined : Encryption.make(options.encrypt)
  if (typeof encryption === "string") invalid(`loader ${name}: ${encryption}`)
  if (options.storeRedacted !== true && options.encrypt === undefined && containsRedacted(schema.ast)) {
    invalid(
      `loader ${name}: its schema contains Redacted, which would be stored in Redis and sent on its notices in clear; ` +
        "cache the public variant instead (for an @effect/sql Model, e.g. User.json), or set storeRedacted: true to store it knowingly"
    )
  }
  const windowMs = Either.getOrElse(Window.toMillis(options.window), (e) => invalid(`loader ${name}: ${e.message}`))
  const timeout = options.timeout === undefined
    ? undefined
    : Duration.millis(Either.getOrElse(internalSettings.millis(`loader ${name}: timeout`, options.timeout, 1), (e) => invalid(e.message)))
  const retainMs = options.retain === undefined
    ? 0
    : Either.getOrElse(
      internalSettings.millis(`loader ${name}: retain`, options.retain, windowMs, 100 * 366 * 86_400_000),
      () => invalid(`loader ${name}: retain must be a duration of at least the window (${windowMs} ms), got ${describe(options.retain)}`)
    )
  const tags = options.tags
  if (tags !== undefined && typeof tags !== "function" && !(Array.isArray(tags) && tags.every((t) => typeof t === "string"))) {
    invalid(`loader ${name}: tags must be an array of strings or a function of the key`)
  }
  const loaderName = options.name
  if (loaderName !== undefined && (typeof loaderName !== "string" || loaderName.length === 0 || loaderName.length > 100)) {
    invalid(`loader ${name}: name must be a string of 1 to 100 characters, got ${describe(loaderName)}`)
  }
  if (options.lookupMany !== undefined && typeof options.lookupMany !== "function") invalid(`loader ${name}: lookupMany must be a function`)
  const batchSize = options.batchSize ?? 100
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    invalid(`loader ${name}: batchSize must be a whole number from 1 to 10000, got ${describe(options.batchSize)}`)
  }
  const schemaVersion = options.schemaVersion
  if (schemaVersion !== undefined && (typeof schemaVersion !== "string" || schemaVersion.length === 0 || schemaVersion.length > 100)) {
    invalid(`loader ${name}: schemaVersion must be a string of 1 to 100 characters, got ${describe(schemaVersion)}`)
  }
  const codec = codecsOf(schema)
  const spec: Core.Spec = {
    name: loaderName,
    schemaId: identityOf(schema, schemaVersion),
    windowMs,
    retainMs,
    timeout,
    ...(typeof encryption === "object" ? encrypted(codec, encryption) : codec)
  }
  return spec
}

/**
 * Checked specs by schema, then by the options a spec depends on, for options with nothing but
 * durations, a name, a schema version and fixed tags besides (what `memo` is given): `memo` built on every request
 * checks its options on the first only. A spec is immutable data, so loaders may share it.
 */
const checkedSpecs = new WeakMap<Schema.Schema.Any, { size: number; readonly levels: Map<unknown, any> }>()

const maxSpecsPerSchema = 64

/** Checks `options` (throwing if they are bad) and keeps the spec under the levels still missing. */
const keepSpec = (
  root: { size: number },
  level: Map<unknown, any>,
  missing: ReadonlyArray<unknown>,
  tags: unknown,
  options: LoaderOptions<any, any, any, any, any, any>,
  isMemo: boolean
): Core.Spec => {
  const spec = checked(options, isMemo)
  if (root.size >= maxSpecsPerSchema) return spec
  root.size++
  for (const part of missing) {
    const next = new Map<unknown, any>()
    level.set(part, next)
    level = next
  }
  level.set(tags === undefined ? undefined : JSON.stringify(tags), spec)
  return spec
}

const plainDuration = (d: unknown) => d === undefined || typeof d === "number" || typeof d === "string"

/** `memo`'s options have no lookup: its producer's type is checked. */
const noLookup = () => Effect.void

/** Checks options; `memo`'s (`isMemo`) get a lookup for it. */
const checked = (options: LoaderOptions<any, any, any, any, any, any>, isMemo: boolean) =>
  specOf(isMemo ? { ...options, lookup: noLookup } : options)

/** `memo` passes its options as they are (`isMemo`): they get a lookup only when they are checked. */
const cachedSpecOf = (options: LoaderOptions<any, any, any, any, any, any>, isMemo = false): Core.Spec => {
  if (typeof options !== "object" || options === null) return specOf(options)
  const { name, retain, schema, schemaVersion, tags, timeout, window } = options
  if (
    !plainDuration(window) || !plainDuration(timeout) || !plainDuration(retain) || (name !== undefined && typeof name !== "string") ||
    (schemaVersion !== undefined && typeof schemaVersion !== "string") ||
    (tags !== undefined && !Array.isArray(tags)) || options.encrypt !== undefined || options.storeRedacted !== undefined ||
    options.lookupMany !== undefined || options.batchSize !== undefined || (!isMemo && typeof options.lookup !== "function") ||
    (typeof options.key !== "string" && typeof options.key !== "function") || (typeof schema !== "object" && typeof schema !== "function") ||
    schema === null
  ) return checked(options, isMemo)
  // one level per option (a Map tells `1000` from `"1000"`), no id built per call; a bounded
  // number of specs per schema (options made per request from request data are checked each time)
  let root = checkedSpecs.get(schema)
  if (root === undefined) checkedSpecs.set(schema, root = { size: 0, levels: new Map() })
  const parts = [window, timeout, retain, name, schemaVersion]
  let level = root.levels
  for (let i = 0; i < parts.length; i++) {
    const next = level.get(parts[i])
    if (next === undefined) return keepSpec(root, level, parts.slice(i), tags, options, isMemo)
    level = next
  }
  const spec: Core.Spec | undefined = level.get(tags === undefined ? undefined : JSON.stringify(tags))
  return spec ?? keepSpec(root, level, [], tags, options, isMemo)
}

const expectOf = Engine.expectOf

const toInfo: <A>(entry: L1.Entry, cache: Core.Outcome["cache"], now: number, next: L1.Expect) => Info<A> = L1.info

/** The value a lookup replaces, as its `previous`: stale, since a run is replacing it. */
const previousInfo = <A>(p: Core.Previous, now: number): Info<A> => ({
  value: p.value as A,
  bucket: p.bucket,
  computedAt: p.computedAt,
  stale: true,
  nextBoundary: (Math.max(Math.floor(now / p.windowMs), p.bucket) + 1) * p.windowMs,
  cache: "stale",
  windowMs: p.windowMs,
  serverNow: now,
  // a run is replacing it right now
  nextValueAt: now
})

const memoKey = Memo.key
const clockKey = Clock.Clock.key

/** How `keepWarm` reaches a loader's engine: runs the key's worker unless it is fresh at `at`. */
const WarmId: unique symbol = Symbol.for("lockstep/Loader/warm")

/** How `keepWarm` starts a loader's early run: computes the value of the window `bucket` before it opens. */
const EarlyId: unique symbol = Symbol.for("lockstep/Loader/early")

interface Warmable<K> {
  readonly [WarmId]: (k: K, at: number) => Effect.Effect<void, never, Memo>
  readonly [EarlyId]: (k: K, bucket: number) => Effect.Effect<void, never, Memo>
}

/**
 * What a loader's requests need, made once per loader (and per `memo` call, so it holds data,
 * not closures: making closures per `memo` call would cost more than the hit it serves).
 */
interface Def<K> {
  readonly spec: Core.Spec
  readonly windowMs: number
  /** The fixed key, or `undefined` when `keyFn` derives it. */
  readonly fixed: string | undefined
  readonly keyFn: ((k: K) => string) | undefined
  /** The lookup, or `producer` for `memo`. */
  readonly lookup: ((k: K, previous: Option.Option<Info<any>>) => Effect.Effect<any, any, any>) | undefined
  readonly producer: Effect.Effect<any, any, any> | undefined
  readonly tags: ReadonlyArray<string> | ((k: K) => ReadonlyArray<string>) | undefined
  readonly countHit: () => void
}

const keyOfDef = <K>(def: Def<K>, k: K): string => {
  if (def.fixed !== undefined) return def.fixed
  const key = def.keyFn!(k)
  if (typeof key !== "string") throw new InvalidOptions({ message: `a loader's key function returned ${describe(key)}, not a string` })
  return key
}

const noTags: ReadonlyArray<string> = []

const tagsOfDef = <K>(def: Def<K>, k: K): ReadonlyArray<string> => {
  const tags = def.tags
  if (tags === undefined) return noTags
  if (typeof tags !== "function") return tags
  const made = tags(k)
  if (!Array.isArray(made) || !made.every((t) => typeof t === "string")) {
    throw new InvalidOptions({ message: `a loader's tags function returned ${describe(made)}, not an array of strings` })
  }
  return made
}

/** An unnamed loader's hit count; a named loader's, its labels made once per name. */
const countL1 = L1.countL1
const namedCounts = new Map<string, () => void>()
const countOf = (name: string | undefined): () => void => {
  if (name === undefined) return countL1
  let count = namedCounts.get(name)
  if (count === undefined) {
    count = Metrics.requestsCounter([Metrics.label("result", "l1"), Metrics.label("loader", name)])
    namedCounts.set(name, count)
  }
  return count
}

const noTimeout = () => undefined
const onTimeoutOf = (spec: Core.Spec): (key: string) => WaitTimeout | undefined => {
  const timeout = spec.timeout
  return timeout === undefined ? noTimeout : (key) => new WaitTimeout({ key, timeout })
}

/**
 * The caller's services a shared run keeps: not its `Scope` (the run gets a scope of its own) nor
 * its span (the run's spans are children of `lockstep.produce`, not of whichever request or
 * `keepWarm` happened to start it).
 */
const runContext = (context: Context.Context<never>): Context.Context<any> =>
  Context.omit(Scope.Scope, Tracer.ParentSpan)(context as Context.Context<any>)

/** The lookup of `k`, bound to the caller's services (`runContext`), with a scope of its own. */
const lookupOf = <K, E>(def: Def<K>, k: K, context: Context.Context<never>, engine: Engine.Engine): Core.Job<E>["lookup"] => (previous) =>
  Effect.flatMap(Clock.currentTimeMillis, (t) =>
    Effect.provide(
      Effect.scoped(
        def.producer !== undefined
          ? def.producer
          : def.lookup!(k, Option.map(previous, (p) => previousInfo(p, t + engine.clock.skew)))
      ),
      runContext(context)
    ))

const tagsOf = <K>(def: Def<K>, k: K) => () => tagsOfDef(def, k)

/**
 * A request's job. Made for every request that misses L1: its functions are made by calls (not
 * written in the object), which under tsx and esbuild's `keepNames` would name each one anew.
 */
const jobOf = <K, E>(def: Def<K>, k: K, key: string, context: Context.Context<never>, engine: Engine.Engine): Core.Job<E> => ({
  spec: def.spec,
  key,
  lookup: lookupOf(def, k, context, engine),
  tags: tagsOf(def, k)
})

type OnHit<B> = (entry: L1.Entry, now: number, engine: Engine.Engine, key: string) => Exit.Exit<B>
type OnOutcome<B> = (o: Core.Outcome, now: number, engine: Engine.Engine, key: string) => B

/**
 * The request path: the fresh hit inline; a cold request joins the key's run if one is under
 * way (the common case in a burst: one step, counted by the run); all else in the engine.
 * `onOutcome` gets the time of the answer when `timed` (`getWithInfo`).
 *
 * A request is an effect of its own (Effect's `Commit` primitive, which the fiber runs by calling
 * `commit` on it) rather than a `withFiberRuntime` closure: the loader's data sit on the effect
 * object itself. A `loader.get` then allocates one object instead of three (the primitive, the
 * closure and its captured variables), and a `memo` effect built once per key and run among
 * many keys reads one object out of the CPU cache instead of three.
 */
class Request<K, B, E, R> extends Effectable.Class<B, E, Exclude<R, Scope.Scope> | Memo> {
  constructor(
    readonly def: Def<K>,
    readonly k: K,
    readonly onHit: OnHit<B>,
    readonly onOutcome: OnOutcome<B>,
    readonly timed: boolean
  ) {
    super()
  }

  commit(): Effect.Effect<B, E, Exclude<R, Scope.Scope> | Memo> {
    // the fiber running this effect (the run loop calls `commit` from inside it)
    const current = Fiber.getCurrentFiber()
    return current._tag === "Some" ? this.run(current.value) : Effect.withFiberRuntime((fiber) => this.run(fiber))
  }

  run(fiber: Fiber.RuntimeFiber<any, any>): Effect.Effect<B, E, Exclude<R, Scope.Scope> | Memo> {
    const def = this.def
    const engine = fiber.currentContext.unsafeMap.get(memoKey) as Engine.Engine
    const t = (fiber.currentDefaultServices.unsafeMap.get(clockKey) as Clock.Clock).unsafeCurrentTimeMillis()
    const now = t + engine.clock.skew
    const key = keyOfDef(def, this.k)
    // a hit: trusted, and of our window or the next (our clock may be a little behind the
    // store's); further ahead, our clock went back: the slow path asks the store. A value
    // committed early for the next window takes over at the store's boundary.
    const fresh = L1.hit(engine.l1, key, def.windowMs, now, t + engine.clock.offset, def.countHit)
    if (fresh !== undefined) return this.onHit(fresh, now, engine, key)
    const held = engine.l1.entries.get(key)
    // stale while its run is under way (or the key backs off): answered inline too
    const stale = held !== undefined && held.windowMs === def.windowMs
      ? engine.staleWhileRunning(key, def.spec.name, now, held)
      : undefined
    const onOutcome = this.onOutcome
    if (stale !== undefined) return Exit.succeed(onOutcome(stale, now, engine, key))
    const run = held === undefined && def.spec.timeout === undefined ? engine.inflight.get(key) : undefined
    if (run !== undefined) run.join()
    const wait = run !== undefined
      ? Deferred.await(run.first) as Effect.Effect<Core.Outcome, E>
      : engine.serve(jobOf<K, E>(def, this.k, key, fiber.currentContext, engine), now, held, onTimeoutOf(def.spec))
    // an answer that waited reports staleness and the next boundary as of when it came
    return this.timed
      ? Effect.flatMap(wait, (o) =>
        Effect.clockWith((clock) => Effect.succeed(onOutcome(o, clock.unsafeCurrentTimeMillis() + engine.clock.skew, engine, key))))
      : Effect.map(wait, (o) => onOutcome(o, 0, engine, key))
  }
}

const request = <K, B, E, R>(def: Def<K>, k: K, onHit: OnHit<B>, onOutcome: OnOutcome<B>, timed: boolean): Effect.Effect<B, E, Exclude<R, Scope.Scope> | Memo> =>
  new Request<K, B, E, R>(def, k, onHit, onOutcome, timed)

/**
 * `get`'s answers. A hit's `Exit` is made per hit: kept on the entry, it would be one more object
 * out of the CPU cache to read when many keys are hot, where a new one costs a few nanoseconds.
 */
const hitValue: OnHit<any> = (entry) => Exit.succeed(entry.value)
const outcomeValue: OnOutcome<any> = (o) => o.entry.value
/** `getWithInfo`'s answers. */
const hitInfo: OnHit<Info<any>> = (entry, now, engine, key) => Exit.succeed(toInfo(entry, "hit", now, expectOf(engine, key, entry)))
const outcomeInfo: OnOutcome<Info<any>> = (o, now, engine, key) => toInfo(o.entry, o.cache, now, expectOf(engine, key, o.entry))

/**
 * Defines a loader: a family of cached values, one per key, each computed at most once per
 * window for the whole fleet. Define it once, at module level: options are checked here, and
 * a bad one throws `InvalidOptions`.
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Memo } from "lockstep"
 *
 * const ItemStats = Schema.Struct({ trades: Schema.Number, volume: Schema.Number })
 * // stands in for the aggregate over one item's trades
 * const itemStats = (id: number) => Effect.succeed({ trades: id, volume: 100 * id })
 *
 * export const itemPage = Memo.loader({
 *   key: (id: number) => `market:item:${id}`,
 *   window: "1 minute",
 *   schema: ItemStats,
 *   lookup: itemStats,
 *   timeout: "2 seconds",
 *   retain: "7 days"
 * })
 *
 * export const page = (id: number) => itemPage.getWithInfo(id)
 *
 * @since 0.1.0
 * @category constructors
 */
export const loader: {
  <A, I, E, R, K = void, O extends A | Unchanged = A>(
    options: LoaderOptions<K, A, I, E, R, O> & { readonly timeout: Duration.DurationInput }
  ): Loader<K, A, E | WaitTimeout | UnchangedError<O>, R>
  <A, I, E, R, K = void, O extends A | Unchanged = A>(options: LoaderOptions<K, A, I, E, R, O>): Loader<K, A, E | UnchangedError<O>, R>
} = <A, I, E, R, K, O extends A | Unchanged>(
  options: LoaderOptions<K, A, I, E, R, O>
): Loader<K, A, any, R> => {
  const spec = cachedSpecOf(options)
  const windowMs = spec.windowMs
  const def: Def<K> = {
    spec,
    windowMs,
    fixed: typeof options.key === "string" ? options.key : undefined,
    keyFn: typeof options.key === "string" ? undefined : options.key,
    lookup: options.lookup,
    producer: undefined,
    tags: options.tags,
    countHit: countOf(spec.name)
  }
  const keyOf = (k: K) => keyOfDef(def, k)
  const onTimeout = onTimeoutOf(spec)

  const batchSize = options.batchSize ?? 100
  const lookupMany = options.lookupMany

  /** `getMany`: one job per distinct key, answers in the order (and multiplicity) of `ks`. */
  const many = <B>(ks: Iterable<K>, pick: (o: Core.Outcome, now: number, engine: Engine.Engine, key: string) => B) =>
    Effect.withFiberRuntime<Array<B>, E | LookupManyMismatch, Exclude<R, Scope.Scope> | Memo>((fiber) => {
      const engine = fiber.currentContext.unsafeMap.get(memoKey) as Engine.Engine
      const now = (fiber.currentDefaultServices.unsafeMap.get(clockKey) as Clock.Clock).unsafeCurrentTimeMillis() +
        engine.clock.skew
      const context = fiber.currentContext
      const all = Array.from(ks)
      const index = new Map<string, number>()
      const distinct: Array<K> = []
      const jobs: Array<Core.Job<E>> = []
      const positions = all.map((k) => {
        const key = keyOf(k)
        let at = index.get(key)
        if (at === undefined) {
          at = jobs.length
          index.set(key, at)
          distinct.push(k)
          jobs.push(jobOf(def, k, key, context, engine))
        }
        return at
      })
      const batch: Batch.Batch<E> = {
        jobs,
        batchSize,
        lookupMany: lookupMany === undefined ? undefined : (indices) =>
          Effect.provide(
            Effect.scoped(lookupMany(indices.map((i) => distinct[i]!))),
            runContext(context)
          ) as Effect.Effect<ReadonlyArray<unknown>, E>
      }
      // answers that waited report staleness and the next boundary as of when they came
      return Effect.flatMap(engine.getMany(batch, now, onTimeout), (outcomes) =>
        Effect.map(Clock.currentTimeMillis, (t) => positions.map((p) => pick(outcomes[p]!, t + engine.clock.skew, engine, jobs[p]!.key))))
    })

  const withEngine = <B, E2, R2>(f: (engine: Engine.Engine) => Effect.Effect<B, E2, R2>) =>
    Effect.flatMap(Memo, (runtime) => f(engineOf(runtime)))

  const answer = (engine: Engine.Engine, key: string, o: Core.Outcome) =>
    Effect.map(Clock.currentTimeMillis, (t) => toInfo<A>(o.entry, o.cache, t + engine.clock.skew, expectOf(engine, key, o.entry)))

  return {
    [LoaderTypeId]: LoaderTypeId,
    windowMs,
    keyOf,
    get: (k) => request(def, k, hitValue, outcomeValue, false),
    getWithInfo: (k) => request(def, k, hitInfo, outcomeInfo, true),
    getMany: (ks) => many(ks, (o) => o.entry.value as A),
    getManyWithInfo: (ks) => many(ks, (o, now, engine, key) => toInfo<A>(o.entry, o.cache, now, expectOf(engine, key, o.entry))),
    peek: (k) =>
      withEngine((engine) =>
        Effect.flatMap(engine.peek(spec, keyOf(k)), (o) =>
          Option.isNone(o) ? Effect.succeed(Option.none()) : Effect.map(answer(engine, keyOf(k), o.value), Option.some))
      ),
    invalidate: (k) => withEngine((engine) => engine.invalidate(keyOf(k))),
    purge: (k) => withEngine((engine) => engine.purge(keyOf(k))),
    refresh: (k) =>
      Effect.withFiberRuntime<Info<A>, E, Exclude<R, Scope.Scope> | Memo>((fiber) => {
        const engine = fiber.currentContext.unsafeMap.get(memoKey) as Engine.Engine
        const key = keyOf(k)
        return Effect.flatMap(engine.refresh(jobOf(def, k, key, fiber.currentContext, engine), onTimeout), (o) => answer(engine, key, o))
      }),
    set: (k, value) => withEngine((engine) => Effect.flatMap(engine.set(spec, keyOf(k), value, tagsOfDef(def, k)), (o) => answer(engine, keyOf(k), o))),
    [WarmId]: (k: K, at: number) =>
      Effect.withFiberRuntime<void, never, Memo>((fiber) => {
        const engine = fiber.currentContext.unsafeMap.get(memoKey) as Engine.Engine
        return engine.warm(jobOf(def, k, keyOf(k), fiber.currentContext, engine), at)
      }),
    [EarlyId]: (k: K, bucket: number) =>
      Effect.withFiberRuntime<void, never, Memo>((fiber) => {
        const engine = fiber.currentContext.unsafeMap.get(memoKey) as Engine.Engine
        return engine.early(jobOf(def, k, keyOf(k), fiber.currentContext, engine), bucket)
      })
  } as Loader<K, A, any, R>
}

const fixedLoader = <A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>) => {
  if (typeof options !== "object" || options === null || typeof options.key !== "string") {
    return invalid(`memo options need a string key, got ${describe(options?.key)}`)
  }
  return loader<A, I, E, R, void>({ ...options, lookup: () => producer })
}

/** `memo`'s request needs no loader, only a `Def` (its options checked once per schema and durations). */
const fixedDef = <A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>): Def<void> => {
  if (typeof options !== "object" || options === null || typeof options.key !== "string") {
    return invalid(`memo options need a string key, got ${describe(options?.key)}`)
  }
  const spec = cachedSpecOf(options as LoaderOptions<any, any, any, any, any, any>, true)
  return {
    spec,
    windowMs: spec.windowMs,
    fixed: options.key,
    keyFn: undefined,
    lookup: undefined,
    producer,
    tags: options.tags,
    countHit: countOf(spec.name)
  }
}

/** Both argument orders of the data-first form: `(options, producer)` as ever, and Effect's `(producer, options)`. */
const ordered = <A, I, E, R>(a: unknown, b: unknown) =>
  (Effect.isEffect(a) ? [b, a] : [a, b]) as [Options<A, I>, Effect.Effect<A, E, R>]

/**
 * Memoises `producer` under a fixed key: sugar over a fixed-key `loader`, for a value that has
 * one instance. Define it once (options are checked when it is called, and a bad one throws).
 * (Its `(options, producer)` forms are its last overloads, so that options without a `schema`
 * get TypeScript's error for those forms, which names the missing `schema`.)
 *
 * @example
 * import { Effect, Layer, Schema } from "effect"
 * import { Memo, Redis } from "lockstep"
 *
 * const Dashboard = Schema.Struct({ volume: Schema.Number })
 * const loadDashboard = Effect.succeed({ volume: 1_250_000 }) // the expensive aggregate
 *
 * const dashboard = Memo.memo({ key: "dashboard", window: "1 minute", schema: Dashboard }, loadDashboard)
 * // or data-last: loadDashboard.pipe(Memo.memo({ key: "dashboard", window: "1 minute", schema: Dashboard }))
 *
 * // build the layer once: each build is a new, empty cache
 * const CacheLive = Memo.layer.pipe(Layer.provide(Redis.layerMemory))
 * Effect.runPromise(Effect.provide(dashboard, CacheLive)).then(console.log) // { volume: 1250000 }
 *
 * @since 0.1.0
 * @category combinators
 */
export const memo: {
  <A, E, R, I>(producer: Effect.Effect<A, E, R>, options: Options<A, I> & { readonly timeout: Duration.DurationInput }): Effect.Effect<A, E | WaitTimeout, Exclude<R, Scope.Scope> | Memo>
  <A, E, R, I>(producer: Effect.Effect<A, E, R>, options: Options<A, I>): Effect.Effect<A, E, Exclude<R, Scope.Scope> | Memo>
  <A, I>(options: Options<A, I> & { readonly timeout: Duration.DurationInput }): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<A, E | WaitTimeout, Exclude<R, Scope.Scope> | Memo>
  <A, I>(options: Options<A, I>): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<A, E, Exclude<R, Scope.Scope> | Memo>
  <A, I, E, R>(options: Options<A, I> & { readonly timeout: Duration.DurationInput }, producer: Effect.Effect<A, E, R>): Effect.Effect<A, E | WaitTimeout, Exclude<R, Scope.Scope> | Memo>
  <A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope> | Memo>
} = dual(2, (a: unknown, b: unknown) => {
  const [options, producer] = ordered(a, b)
  return request(fixedDef(options, producer), undefined, hitValue, outcomeValue, false)
})

/**
 * `memo` with the value's metadata, for response headers and client refresh times.
 *
 * @since 0.1.0
 * @category combinators
 */
export const memoWithInfo: {
  <A, E, R, I>(producer: Effect.Effect<A, E, R>, options: Options<A, I> & { readonly timeout: Duration.DurationInput }): Effect.Effect<Info<A>, E | WaitTimeout, Exclude<R, Scope.Scope> | Memo>
  <A, E, R, I>(producer: Effect.Effect<A, E, R>, options: Options<A, I>): Effect.Effect<Info<A>, E, Exclude<R, Scope.Scope> | Memo>
  <A, I>(options: Options<A, I> & { readonly timeout: Duration.DurationInput }): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<Info<A>, E | WaitTimeout, Exclude<R, Scope.Scope> | Memo>
  <A, I>(options: Options<A, I>): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<Info<A>, E, Exclude<R, Scope.Scope> | Memo>
  <A, I, E, R>(options: Options<A, I> & { readonly timeout: Duration.DurationInput }, producer: Effect.Effect<A, E, R>): Effect.Effect<Info<A>, E | WaitTimeout, Exclude<R, Scope.Scope> | Memo>
  <A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>): Effect.Effect<Info<A>, E, Exclude<R, Scope.Scope> | Memo>
} = dual(2, (a: unknown, b: unknown) => {
  const [options, producer] = ordered(a, b)
  return request(fixedDef(options, producer), undefined, hitInfo, outcomeInfo, true)
})

/**
 * Marks stale, everywhere, every value whose loader gave it `tag` (see `tags`). Answers how many
 * keys it reached.
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidateTag = (tag: string): Effect.Effect<number, Redis.RedisError, Memo> =>
  Effect.flatMap(Memo, (runtime) => engineOf(runtime).invalidateTag(tag))

/**
 * Removes, everywhere, every value whose loader gave it `tag` (see `Loader.purge`). Answers how
 * many keys it reached.
 *
 * @since 0.1.0
 * @category combinators
 */
export const purgeTag = (tag: string): Effect.Effect<number, Redis.RedisError, Memo> =>
  Effect.flatMap(Memo, (runtime) => engineOf(runtime).purgeTag(tag))

/**
 * One key of the tenant as the store holds it (without the value itself), with this process's
 * answers for it: for an inspector page.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyState extends Redis.Inspected {
  /** This process's answers for the key since its L1 took it in. */
  readonly served: Option.Option<{ readonly hit: number; readonly stale: number; readonly miss: number }>
}

/**
 * A page of `inspect`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Inspection {
  /** The store's clock. */
  readonly now: number
  readonly keys: ReadonlyArray<KeyState>
  /** Pass it back for the next page; `None` once every key was listed. */
  readonly cursor: Option.Option<string>
}

/**
 * Lists the tenant's keys a page at a time (`SCAN`, never `KEYS`; every primary of a Cluster),
 * each with its record, lock and back-off, and this process's answers for it. A page holds about
 * `count` keys (Redis may return a few more or fewer).
 *
 * @since 0.1.0
 * @category combinators
 */
export const inspect = (
  options: { readonly cursor?: string | undefined; readonly count?: number | undefined } = {}
): Effect.Effect<Inspection, Redis.RedisError, Memo> =>
  Effect.flatMap(Memo, (runtime) =>
    engineOf(runtime).inspect({
      cursor: options.cursor,
      // a whole number of keys, as SCAN's COUNT must be
      count: Math.max(1, Math.min(Number.isFinite(options.count) ? Math.floor(options.count!) : 100, 1000))
    }))

// ---------------------------------------------------------------------------------------------
// keepWarm

/** Sleeps until `target` on a clock read by `nowMs`, in chunks a timer supports. */
const sleepUntil = (target: number, nowMs: Effect.Effect<number>): Effect.Effect<void> =>
  Effect.flatMap(nowMs, (at) =>
    at >= target ? Effect.void : Effect.zipRight(
      Effect.sleep(Math.min(target - at, internalSettings.maxTimerMs)),
      Effect.suspend(() => sleepUntil(target, nowMs))
    ))

/**
 * How `keepWarm` times a key's next value:
 * - `lag`: how long after the boundary it checks the window's value (default 0);
 * - `lead`: how long before the boundary it starts the next window's run, so that the value is
 *   there when the window opens. `"auto"` (the default) learns it from the key's recent runs
 *   (their 90th percentile plus a margin of a quarter of it, at least 250 ms, at most half the
 *   window); a duration fixes it (less than the window); `false` turns early runs off (the run
 *   starts at the boundary, and the window opens on the previous value, stale).
 *
 * @since 0.1.0
 * @category models
 */
export interface KeepWarmOptions {
  readonly lag?: Duration.DurationInput | undefined
  readonly lead?: "auto" | Duration.DurationInput | false | undefined
}

const isLoader = (u: unknown): u is Loader<any, any, any, any> =>
  typeof u === "object" && u !== null && LoaderTypeId in u

/** The margin an automatic lead adds to the runs' 90th percentile: a quarter of it, at least this. */
const leadMarginMs = 250

/** The automatic lead for runs whose 90th percentile is `p90` (none before the first run). */
const autoLead = (p90: number | undefined, windowMs: number): number =>
  p90 === undefined ? 0 : Math.min(Math.floor(windowMs / 2), Math.ceil(p90 + Math.max(leadMarginMs, p90 / 4)))

const leadOf = (input: KeepWarmOptions["lead"], windowMs: number): "auto" | number =>
  input === undefined || input === "auto"
    ? "auto"
    : input === false
    ? 0
    : Either.getOrElse(
      internalSettings.millis("keepWarm lead", input, 1, windowMs - 1),
      () => invalid(`keepWarm lead must be "auto", false or a duration shorter than the window (${windowMs} ms), got ${describe(input)}`)
    )

/**
 * Keeps a key warm: its next value is computed before its window opens, so that the first
 * request of a window is already a hit. A lead time before each boundary of the store's clock,
 * it starts the next window's run (one for the fleet: the store keeps the value beside the
 * current one and every process switches to it at the boundary); `lag` after the boundary, it
 * makes sure the window has its value (when the early run was late, failed or is turned off).
 * Runs until the scope closes. A bad `lag` or `lead` throws `InvalidOptions`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const keepWarm: {
  <K, A, E, R>(
    loader: Loader<K, A, E, R>,
    k: K,
    options?: KeepWarmOptions
  ): Effect.Effect<void, never, Exclude<R, Scope.Scope> | Memo | Scope.Scope>
  <A, I, E, R>(
    options: Options<A, I> & KeepWarmOptions,
    producer: Effect.Effect<A, E, R>
  ): Effect.Effect<void, never, Exclude<R, Scope.Scope> | Memo | Scope.Scope>
} = (first: any, second?: any, third?: any): Effect.Effect<void, never, any> => {
  const [target, k, options] = isLoader(first)
    ? [first, second, third as KeepWarmOptions | undefined]
    : [fixedLoader(first, second), undefined, first as KeepWarmOptions | undefined]
  const windowMs = target.windowMs
  const lagMs = options?.lag === undefined
    ? 0
    : Either.getOrElse(internalSettings.millis("keepWarm lag", options.lag, 0), (e) => invalid(e.message))
  const lead = leadOf(options?.lead, windowMs)
  /** `attempted`: the window whose early run was last tried, so that it is tried once. */
  const tick = (attempted: { bucket: number }) => Effect.withFiberRuntime<void, never, Memo>((fiber) => {
    const engine = fiber.currentContext.unsafeMap.get(memoKey) as Engine.Engine
    // the store's clock as last measured (not only past the skew threshold): the boundary to
    // wake after is the store's
    const storeNow = Effect.map(Clock.currentTimeMillis, (t) => t + engine.clock.offset)
    const key = target.keyOf(k)
    const leadMs = () => (lead === "auto" ? autoLead(engine.durations.p90(key), windowMs) : lead)
    const warmable = target as unknown as Warmable<unknown>
    return Effect.gen(function*() {
      const at = yield* storeNow
      const next = Window.nextBoundary(at, windowMs)
      const ahead = leadMs()
      const nextBucket = Math.round(next / windowMs)
      if (ahead > 0 && next - at <= ahead && attempted.bucket !== nextBucket) {
        attempted.bucket = nextBucket
        yield* warmable[EarlyId](k, nextBucket)
      } else {
        yield* warmable[WarmId](k, at)
      }
      const after = yield* storeNow
      const boundary = Window.nextBoundary(after, windowMs)
      const early = boundary - leadMs()
      // the next window's early run not tried yet: at its lead time (at once when inside it,
      // e.g. just after start-up); else just after the boundary, to make sure of the window's value
      const wake = early < boundary && attempted.bucket !== Math.round(boundary / windowMs) ? early : boundary + lagMs
      yield* sleepUntil(wake, storeNow)
    })
  })
  const register = lead === 0 ? Effect.void : Effect.acquireRelease(
    Effect.flatMap(Memo, (runtime) =>
      Effect.sync(() => {
        const engine = engineOf(runtime)
        const key = target.keyOf(k)
        engine.earlyKeys.set(key, (engine.earlyKeys.get(key) ?? 0) + 1)
        return { engine, key }
      })),
    ({ engine, key }) =>
      Effect.sync(() => {
        const n = (engine.earlyKeys.get(key) ?? 1) - 1
        if (n > 0) engine.earlyKeys.set(key, n)
        else engine.earlyKeys.delete(key)
      })
  )
  const loop = Effect.suspend(() => {
    const attempted = { bucket: Number.NaN }
    return Effect.forever(tick(attempted))
  })
  return Effect.asVoid(Effect.zipRight(register, Effect.forkScoped(loop))).pipe(Effect.withSpan("lockstep.keepWarm"))
}

// ---------------------------------------------------------------------------------------------
// HTTP

/**
 * The response headers of a value, so that HTTP caches and browsers agree with the window:
 * - `Cache-Control: public, max-age=<Age + seconds to the next boundary>,
 *   stale-while-revalidate=<window seconds>`: caches subtract `Age` from `max-age`, so a value
 *   stays fresh exactly until the next boundary; a stale value gets `max-age=0`;
 * - `Age`: seconds since the value was computed;
 * - `X-Cache`: `hit`, `stale` or `miss`;
 * - `X-Server-Now`, `X-Next-Boundary`, `X-Computed-At`: epoch milliseconds on the store's clock,
 *   for a client that schedules its refresh just after the boundary;
 * - `X-Next-Value-At`: when the next value will be there (the boundary itself when it is computed
 *   ahead, later by the key's run time when it is not), for a client that refreshes onto it.
 *
 * @since 0.1.0
 * @category http
 */
export const cacheHeaders = (info: Info<unknown>): Record<string, string> => {
  const age = Math.max(0, Math.floor((info.serverNow - info.computedAt) / 1000))
  const untilBoundary = Math.max(0, Math.floor((info.nextBoundary - info.serverNow) / 1000))
  const swr = Math.max(1, Math.ceil(info.windowMs / 1000))
  return {
    "cache-control": `public, max-age=${info.stale ? 0 : age + untilBoundary}, stale-while-revalidate=${swr}`,
    "age": String(age),
    "x-cache": info.cache,
    "x-server-now": String(info.serverNow),
    "x-next-boundary": String(info.nextBoundary),
    "x-computed-at": String(info.computedAt),
    "x-next-value-at": String(info.nextValueAt ?? info.nextBoundary)
  }
}
