/**
 * `memo`: one producer run per window for the whole fleet, stale-while-revalidate, and a
 * last-known-good value that outlives every window.
 *
 * A request goes top to bottom through this module:
 * 1. `lookup`: a fresh L1 entry is returned at once (one map lookup, one bucket comparison);
 * 2. `serveStale`: a stale L1 entry is returned at once and a refresh starts in the background;
 * 3. `awaitValue`: no L1 entry: the request joins the key's in-flight `Deferred`, whose worker
 *    reads Redis (`load`), then, unless that value is fresh, `obtain`s this window's value:
 *    `claim` the fleet lock, and either `lead` (produce, renewing the lease, then `commit`),
 *    or poll while another process leads, or produce locally when Redis is unreachable
 *    (`produceLocally`).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Keys from "./internal/keys.js"
import * as Metrics from "./Metrics.js"
import * as Redis from "./Redis.js"
import * as Window from "./Window.js"

// ---------------------------------------------------------------------------------------------
// models

/**
 * Options of one memoised computation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, I> {
  /** The cache key, shared by every process of the tenant. */
  readonly key: string
  /** The window length: the producer runs at most once per window for the whole fleet. */
  readonly window: Duration.DurationInput
  /** How the value crosses the wire; a stored value that fails to decode is recomputed. */
  readonly schema: Schema.Schema<A, I>
  /**
   * How long a request may wait when no value exists anywhere (a cold start), before it fails
   * with `WaitTimeout`. The computation goes on for later requests. Hits and stale values never
   * wait, so they never time out.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * A value with the metadata that pages turn into `Cache-Control`, `Age` and refresh times.
 *
 * @since 0.1.0
 * @category models
 */
export interface Info<A> {
  readonly value: A
  /** The window the value was computed for. */
  readonly bucket: number
  /** When the producer finished, in epoch milliseconds (the store's clock). */
  readonly computedAt: number
  /** `true` when the value belongs to an earlier window (a refresh is under way). */
  readonly stale: boolean
  /** The start of the next window, in epoch milliseconds. */
  readonly nextBoundary: number
  /** `hit`: fresh from L1 or Redis; `stale`: earlier window; `miss`: waited for a producer. */
  readonly cache: "hit" | "stale" | "miss"
}

/**
 * Options that cannot describe a cache entry: empty or oversized key, non-positive window, …
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Data.TaggedError("InvalidOptions")<{
  readonly message: string
  readonly cause?: unknown
}> {}

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
 * Tuning of the per-process runtime.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  /** How long a fleet lock lives without renewal; renewed every third of it. Default 10 s. */
  readonly lease: Duration.DurationInput
  /** How often a process polls while another one produces. Default 50 ms. */
  readonly pollInterval: Duration.DurationInput
  /** While Redis is unreachable, how soon a process tries it again (serving L1 meanwhile). Default 250 ms. */
  readonly redisRetry: Duration.DurationInput
  /** Back-off after the first producer failure, doubled per further failure. Default 1 s. */
  readonly failureBackoff: Duration.DurationInput
  /** The longest back-off. Default 30 s. */
  readonly maxFailureBackoff: Duration.DurationInput
  /**
   * While Redis is unreachable, how long past the window boundary a process keeps serving its
   * stale value before it produces on its own. Default 1 s.
   */
  readonly degradedAfter: Duration.DurationInput
  /** Entries kept in the L1 before the least recently written is dropped. Default 10 000. */
  readonly l1Capacity: number
}

/**
 * @since 0.1.0
 */
export const defaultSettings: Settings = {
  lease: "10 seconds",
  pollInterval: "50 millis",
  redisRetry: "250 millis",
  failureBackoff: "1 second",
  maxFailureBackoff: "30 seconds",
  degradedAfter: "1 second",
  l1Capacity: 10_000
}

interface Resolved {
  readonly leaseMs: number
  readonly pollMs: number
  readonly redisRetryMs: number
  readonly backoffMs: number
  readonly maxBackoffMs: number
  readonly degradedAfterMs: number
  readonly l1Capacity: number
}

const resolveSettings = (settings: Partial<Settings>): Either.Either<Resolved, InvalidOptions> => {
  const s = { ...defaultSettings, ...settings }
  const ms = (name: string, input: Duration.DurationInput, min: number) => {
    const d = Duration.decodeUnknown(input)
    const v = Option.isSome(d) ? Duration.toMillis(d.value) : NaN
    if (!Number.isFinite(v) || v < min) throw new InvalidOptions({ message: `${name} must be a duration of at least ${min} ms` })
    return Math.round(v)
  }
  try {
    const resolved: Resolved = {
      leaseMs: ms("lease", s.lease, 30),
      pollMs: ms("pollInterval", s.pollInterval, 1),
      redisRetryMs: ms("redisRetry", s.redisRetry, 1),
      backoffMs: ms("failureBackoff", s.failureBackoff, 0),
      maxBackoffMs: ms("maxFailureBackoff", s.maxFailureBackoff, 0),
      degradedAfterMs: ms("degradedAfter", s.degradedAfter, 0),
      l1Capacity: Number.isSafeInteger(s.l1Capacity) && s.l1Capacity > 0
        ? s.l1Capacity
        : (() => {
          throw new InvalidOptions({ message: "l1Capacity must be a positive integer" })
        })()
    }
    return Either.right(resolved)
  } catch (e) {
    return Either.left(e as InvalidOptions)
  }
}

/** What a `memo` call knows about its key, worked out once when the call is built. */
interface Spec<A> {
  readonly key: string
  readonly windowMs: number
  readonly timeout: Duration.Duration | undefined
  readonly decode: (data: string) => Either.Either<A, ParseError>
  readonly encode: (value: A) => Either.Either<string, ParseError>
}

interface Entry {
  readonly value: unknown
  readonly bucket: number
  readonly fence: number
  readonly computedAt: number
  readonly windowMs: number
}

interface Outcome {
  readonly entry: Entry
  readonly cache: Info<unknown>["cache"]
}

/** The fleet lock was taken over while we produced: someone else's value will land. */
class LockLost extends Data.TaggedError("LockLost")<{}> {}

// ---------------------------------------------------------------------------------------------
// runtime

/**
 * The per-process cache runtime: L1, in-flight `Deferred`s, background fibers, the store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Runtime {
  readonly store: Redis.Store
  readonly settings: Resolved
  /** @internal */
  readonly l1: Map<string, Entry>
  /** @internal the store's clock minus ours, corrected only when off by more than 250 ms */
  skew: number
  /** @internal */
  readonly slow: <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>, now: number, entry: Entry | undefined) => Effect.Effect<Outcome, E>
  /** @internal runs a refresh now unless the L1 value is fresh, and waits for it */
  readonly warm: <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Memo extends Context.Tag("lockstep/Memo")<Memo, Runtime>() {}

/**
 * Builds the runtime over the `Redis` store. Background fibers live in the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (settings: Partial<Settings> = {}): Effect.Effect<Runtime, InvalidOptions, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolveSettings(settings)
    const store = yield* Redis.Redis
    const scope = yield* Effect.scope
    const writeBacks = yield* FiberMap.make<string>()
    return makeRuntime(store, resolved, scope, writeBacks)
  })

const makeRuntime = (
  store: Redis.Store,
  settings: Resolved,
  scope: Scope.Scope,
  writeBacks: FiberMap.FiberMap<string>
): Runtime => {
  const l1 = new Map<string, Entry>()
  const inflight = new Map<string, Deferred.Deferred<Outcome, unknown>>()
  /** No refresh before this instant (producer back-off, Redis unreachable). */
  const retryAt = new Map<string, number>()
  const failures = new Map<string, number>()
  const instance = crypto.randomUUID()
  let tokens = 0

  const runtime: Runtime = { store, settings, l1, skew: 0, slow, warm }

  const now = Effect.map(Clock.currentTimeMillis, (t) => t + runtime.skew)

  const observe = (serverNow: number) =>
    Effect.map(Clock.currentTimeMillis, (local) => {
      const measured = serverNow - local
      if (Math.abs(measured - runtime.skew) > 250) {
        runtime.skew = measured
        // a value made while Redis was unreachable and our clock ahead belongs to a window that
        // has not begun: it would pass for fresh until then, so it goes
        for (const [key, e] of l1) if (e.bucket > Math.floor(serverNow / e.windowMs)) l1.delete(key)
      }
    })

  const countRedisError = (error: unknown, operation?: string) =>
    Effect.zipRight(
      Effect.sync(() =>
        Metrics.redisErrors.unsafeUpdate(1, [
          Metrics.label("operation", error instanceof Redis.RedisError ? error.operation : operation ?? "unknown"),
          Metrics.label("reason", error instanceof Redis.RedisError ? error.reason : Cause.isTimeoutException(error) ? "Timeout" : "Unavailable")
        ])
      ),
      Effect.logDebug("lockstep: Redis unavailable, degrading", error)
    )

  /** Never lets a process serve an older window than it already holds. */
  const publish = (key: string, entry: Entry): Entry => {
    const current = l1.get(key)
    if (
      current !== undefined && current.windowMs === entry.windowMs &&
      (current.bucket > entry.bucket || (current.bucket === entry.bucket && current.fence > entry.fence))
    ) {
      return current
    }
    l1.delete(key)
    l1.set(key, entry)
    if (l1.size > settings.l1Capacity) l1.delete(l1.keys().next().value!)
    Metrics.l1Entries.unsafeUpdate(l1.size, [])
    return entry
  }

  const decodeStored = <A>(spec: Spec<A>, stored: Redis.Stored): Entry | undefined => {
    if (stored.windowMs !== spec.windowMs) return undefined
    const decoded = spec.decode(stored.data)
    if (Either.isLeft(decoded)) {
      Metrics.decodeFailures.unsafeUpdate(1, [])
      return undefined
    }
    return { value: decoded.right, bucket: stored.bucket, fence: stored.fence, computedAt: stored.computedAt, windowMs: stored.windowMs }
  }

  const backoffFor = (key: string) =>
    Math.min(settings.backoffMs * 2 ** Math.min((failures.get(key) ?? 1) - 1, 30), settings.maxBackoffMs)

  /** Runs the producer with its metrics and the failure bookkeeping that drives back-off. */
  const produce = <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>, mode: "leader" | "local") =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const exit = yield* Effect.exit(
        Effect.withSpan(producer, "lockstep.produce", {
          attributes: { "lockstep.key": spec.key, "lockstep.mode": mode },
          captureStackTrace: false
        })
      )
      const finished = yield* Clock.currentTimeMillis
      const outcome = Exit.isSuccess(exit) ? "success" : Exit.isInterrupted(exit) ? "interrupted" : "failure"
      Metrics.producerRuns.unsafeUpdate(1, [Metrics.label("outcome", outcome), Metrics.label("mode", mode)])
      Metrics.producerDuration.unsafeUpdate((finished - started) / 1000, [])
      if (outcome === "success") {
        failures.delete(spec.key)
        retryAt.delete(spec.key)
      } else if (outcome === "failure") {
        failures.set(spec.key, (failures.get(spec.key) ?? 0) + 1)
        retryAt.set(spec.key, finished + runtime.skew + backoffFor(spec.key))
      }
      return yield* exit
    })

  const toStored = <A>(spec: Spec<A>, value: A, bucket: number, fence: number, computedAt: number) =>
    Either.map(spec.encode(value), (data): Redis.Stored => ({ data, bucket, fence, windowMs: spec.windowMs, computedAt }))

  /** Holds the fleet lock: produce under a renewed lease, then commit with our fence. */
  const lead = <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>, claim: { bucket: number; fence: number }, token: string) =>
    Effect.scoped(Effect.gen(function*() {
      let settled = false
      yield* Effect.addFinalizer((exit) =>
        settled ? Effect.void : store.release(
          spec.key,
          token,
          Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
            ? { baseMs: settings.backoffMs, maxMs: settings.maxBackoffMs }
            : undefined
        ).pipe(Effect.catchAll(countRedisError))
      )
      const renewals = store.renew(spec.key, token, settings.leaseMs).pipe(
        Effect.flatMap((held) => held ? Effect.void : Effect.fail(new LockLost())),
        Effect.catchTag("RedisError", countRedisError), // indeterminate: keep producing
        Effect.delay(Math.max(1, Math.floor(settings.leaseMs / 3))),
        Effect.forever
      )
      const result = yield* produce(spec, producer, "leader").pipe(
        Effect.raceFirst(renewals),
        Effect.map(Option.some),
        Effect.catchIf((e): e is LockLost => e instanceof LockLost, () => {
          Metrics.lockOutcomes.unsafeUpdate(1, [Metrics.label("outcome", "lost")])
          return Effect.as(Effect.logWarning(`lockstep: lease on ${spec.key} was taken over; waiting for the new holder`), Option.none<A>())
        })
      )
      if (Option.isNone(result)) return Option.none<Entry>()
      const computedAt = yield* now
      const own: Entry = { value: result.value, bucket: claim.bucket, fence: claim.fence, computedAt, windowMs: spec.windowMs }
      const stored = toStored(spec, result.value, claim.bucket, claim.fence, computedAt)
      if (Either.isLeft(stored)) {
        yield* Effect.logError(`lockstep: the value of ${spec.key} does not encode with its schema; kept in this process only`, stored.left)
        return Option.some(own)
      }
      const committed = yield* store.commit(spec.key, stored.right, token).pipe(
        Effect.retry(Schedule.spaced(settings.pollMs).pipe(Schedule.intersect(Schedule.recurs(2)))),
        Effect.either
      )
      if (Either.isLeft(committed)) {
        yield* countRedisError(committed.left)
        yield* writeBack(spec, stored.right)
        return Option.some(own)
      }
      const c = committed.right
      // a committed value released the lock; a refused one did not: the finalizer drops it if
      // it is still ours, rather than leave the fleet waiting out the lease
      settled = c._tag === "Committed"
      Metrics.commits.unsafeUpdate(1, [Metrics.label("outcome", c._tag === "Committed" ? "committed" : c.reason)])
      if (c._tag === "Committed") return Option.some(own)
      // refused: a newer value (a newer window, or a newer holder of this one) is stored
      return Option.some(Option.flatMap(c.stored, (s) => Option.fromNullable(decodeStored(spec, s))).pipe(Option.getOrElse(() => own)))
    }))

  /** Offers a value produced without Redis back to it until it lands or its window is over. */
  const writeBack = <A>(spec: Spec<A>, stored: Redis.Stored) =>
    FiberMap.run(
      writeBacks,
      spec.key,
      store.commit(spec.key, stored, undefined).pipe(
        Effect.retry(
          Schedule.exponential(settings.pollMs * 2).pipe(
            Schedule.either(Schedule.spaced("2 seconds")),
            Schedule.upTo(spec.windowMs)
          )
        ),
        Effect.tap((c) =>
          Metrics.commits.unsafeUpdate(1, [Metrics.label("outcome", c._tag === "Committed" ? "writeback" : c.reason)])
        ),
        Effect.ignore
      )
    ).pipe(Effect.asVoid)

  /** Redis is unreachable: keep serving, and produce on our own once the value is too old. */
  const produceLocally = <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const at = yield* now
      const held = l1.get(spec.key)
      if (held !== undefined && held.windowMs === spec.windowMs) {
        const degradeAt = Window.startOf(held.bucket + 1, spec.windowMs) + settings.degradedAfterMs
        if (at < degradeAt) {
          // try Redis again soon: it may be back before we would produce on our own
          retryAt.set(spec.key, Math.min(degradeAt, at + settings.redisRetryMs))
          return Option.none<Entry>()
        }
      }
      const value = yield* produce(spec, producer, "local")
      const computedAt = yield* now
      const bucket = Window.bucketOf(at, spec.windowMs)
      const stored = toStored(spec, value, bucket, 0, computedAt)
      if (Either.isRight(stored)) yield* writeBack(spec, stored.right)
      return Option.some<Entry>({ value, bucket, fence: 0, computedAt, windowMs: spec.windowMs })
    })

  const produced = (entry: Entry): Outcome => ({ entry, cache: "miss" })

  /**
   * This window's value: from the store when fresh, by leading when the lock is free, by polling
   * while another process leads. `offer` hands a stale value to waiting requests meanwhile.
   * `None` when there is nothing newer to be had now (back-off, Redis unreachable).
   */
  const obtain = <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>, offer: (e: Entry) => Effect.Effect<void>, force: boolean) =>
    Effect.gen(function*() {
      let waited = false // a value found only after polling was waited for: a miss, not a hit
      while (true) {
        const token = `${instance}:${++tokens}`
        const claimed = yield* Effect.either(store.claim(spec.key, { windowMs: spec.windowMs, leaseMs: settings.leaseMs, token, force }))
        if (Either.isLeft(claimed)) {
          yield* countRedisError(claimed.left)
          return Option.map(yield* produceLocally(spec, producer), produced)
        }
        const c = claimed.right
        yield* observe(c.now)
        Metrics.lockOutcomes.unsafeUpdate(1, [Metrics.label("outcome", c._tag.toLowerCase())])
        if (c._tag !== "Fresh" && Option.isSome(c.stored)) {
          // whatever happens next, the stored value may be newer than ours: serve it meanwhile
          const stale = decodeStored(spec, c.stored.value)
          if (stale !== undefined) yield* offer(stale)
        }
        switch (c._tag) {
          case "Fresh": {
            const entry = decodeStored(spec, c.stored)
            if (entry !== undefined) return Option.some<Outcome>({ entry, cache: waited ? "miss" : "hit" })
            force = true // fresh but unreadable here: recompute it
            continue
          }
          case "Acquired": {
            const led = yield* lead(spec, producer, c, token)
            if (Option.isSome(led)) return Option.some(produced(led.value))
            continue
          }
          case "Busy":
          case "Backoff": {
            const held = l1.get(spec.key)
            if (c._tag === "Backoff" && held !== undefined && held.windowMs === spec.windowMs) {
              retryAt.set(spec.key, c.now + c.ttlMs)
              return Option.none<Outcome>()
            }
            // someone else is replacing the value we could not read: look at theirs before
            // forcing a recomputation of our own
            force = false
            waited = true
            yield* Effect.sleep(c._tag === "Busy" ? Math.max(1, Math.min(settings.pollMs, c.ttlMs + 1)) : c.ttlMs + 1)
          }
        }
      }
    })

  /** The key's worker: completes its `Deferred` as soon as any value is known, then refreshes. */
  const work = <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>, deferred: Deferred.Deferred<Outcome, unknown>) =>
    Effect.gen(function*() {
      const offer = (entry: Entry, cache: Outcome["cache"] = "stale") =>
        Effect.asVoid(Deferred.succeed(deferred, { entry: publish(spec.key, entry), cache }))
      // the claim answers with the stored value too: a cold start costs one round trip
      const obtained = yield* obtain(spec, producer, offer, false)
      if (Option.isSome(obtained)) {
        yield* offer(obtained.value.entry, obtained.value.cache)
      } else {
        const current = l1.get(spec.key)
        if (current !== undefined) yield* offer(current)
      }
    }).pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) ? Effect.void : Effect.flatMap(
          Deferred.failCause(deferred, exit.cause),
          (delivered) =>
            delivered || Cause.isInterruptedOnly(exit.cause)
              ? Effect.void
              : Effect.logWarning(`lockstep: refresh of ${spec.key} failed; serving the last value`, exit.cause)
        )
      ),
      Effect.ensuring(Effect.sync(() => {
        if (inflight.get(spec.key) === deferred) inflight.delete(spec.key)
      })),
      Effect.withSpan("lockstep.refresh", { attributes: { "lockstep.key": spec.key }, captureStackTrace: false })
    )

  /** The key's in-flight `Deferred`, starting its worker in the runtime's scope if none runs. */
  const start = <A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>) =>
    Effect.suspend(() => {
      const running = inflight.get(spec.key)
      if (running !== undefined) return Effect.succeed(running)
      const deferred = Deferred.unsafeMake<Outcome, unknown>(FiberId.none)
      inflight.set(spec.key, deferred)
      return Effect.as(Effect.forkIn(work(spec, producer, deferred), scope), deferred)
    })

  function slow<A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>, at: number, held: Entry | undefined): Effect.Effect<Outcome, E> {
    if (held !== undefined && held.windowMs === spec.windowMs) return serveStale(spec, producer, at, held)
    return awaitValue(spec, producer)
  }

  function serveStale<A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>, at: number, held: Entry): Effect.Effect<Outcome, E> {
    Metrics.requestsStale.unsafeUpdate(1, [])
    Metrics.staleAge.unsafeUpdate(Math.floor(at / spec.windowMs) - held.bucket, [])
    const outcome: Outcome = { entry: held, cache: "stale" }
    if (inflight.has(spec.key) || at < (retryAt.get(spec.key) ?? 0)) return Effect.succeed(outcome)
    return Effect.as(start(spec, producer), outcome)
  }

  function awaitValue<A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>): Effect.Effect<Outcome, E> {
    return Effect.flatMap(start(spec, producer), (deferred) =>
      Effect.tapBoth(waitFor(spec, Deferred.await(deferred) as Effect.Effect<Outcome, E>), {
        onSuccess: (o) =>
          Effect.sync(() =>
            (o.cache === "miss" ? Metrics.requestsCold : o.cache === "hit" ? Metrics.requestsRedis : Metrics.requestsStale)
              .unsafeUpdate(1, [])
          ),
        onFailure: () => Effect.sync(() => Metrics.requestsError.unsafeUpdate(1, []))
      }))
  }

  function waitFor<A, E>(spec: Spec<A>, wait: Effect.Effect<Outcome, E>): Effect.Effect<Outcome, E> {
    const timeout = spec.timeout
    if (timeout === undefined) return wait
    return Effect.timeoutFail(wait, {
      duration: timeout,
      onTimeout: () => new WaitTimeout({ key: spec.key, timeout }) as unknown as E
    })
  }

  function warm<A, E>(spec: Spec<A>, producer: Effect.Effect<A, E>): Effect.Effect<void> {
    return Effect.flatMap(now, (at) => {
      const held = l1.get(spec.key)
      if (held !== undefined && held.windowMs === spec.windowMs && held.bucket >= Window.bucketOf(at, spec.windowMs)) {
        return Effect.void
      }
      return Effect.flatMap(start(spec, producer), (d) => Effect.ignore(Deferred.await(d)))
    })
  }

  return runtime
}

// ---------------------------------------------------------------------------------------------
// combinators

/** Compiled JSON codecs per schema: building them is the costly part of a `memo` call. */
const codecs = new WeakMap<Schema.Schema.Any, Pick<Spec<any>, "decode" | "encode">>()

const codecsOf = <A, I>(schema: Schema.Schema<A, I>): Pick<Spec<A>, "decode" | "encode"> => {
  let found = codecs.get(schema)
  if (found === undefined) {
    const json = Schema.parseJson(schema)
    found = { decode: Schema.decodeEither(json), encode: Schema.encodeEither(json) }
    codecs.set(schema, found)
  }
  return found
}

const validate = <A, I>(options: Options<A, I>): Either.Either<Spec<A>, InvalidOptions> => {
  if (typeof options !== "object" || options === null) {
    return Either.left(new InvalidOptions({ message: "memo options must be an object { key, window, schema }" }))
  }
  const { key, schema } = options
  if (typeof key !== "string" || key.length === 0) {
    return Either.left(new InvalidOptions({ message: `memo key must be a non-empty string, got ${JSON.stringify(key)}` }))
  }
  if (key.length > Keys.maxKeyLength) {
    return Either.left(new InvalidOptions({ message: `memo key is longer than ${Keys.maxKeyLength} characters` }))
  }
  if (!Schema.isSchema(schema)) {
    return Either.left(new InvalidOptions({ message: `memo ${JSON.stringify(key)} needs a Schema to store its value` }))
  }
  return Either.match(Window.toMillis(options.window), {
    onLeft: (cause) => Either.left(new InvalidOptions({ message: `memo ${JSON.stringify(key)}: ${cause.message}`, cause })),
    onRight: (windowMs) => {
      let timeout: Duration.Duration | undefined
      if (options.timeout !== undefined) {
        const decoded = Duration.decodeUnknown(options.timeout)
        if (Option.isNone(decoded) || !(Duration.toMillis(decoded.value) > 0)) {
          return Either.left(new InvalidOptions({ message: `memo ${JSON.stringify(key)}: timeout must be a positive duration` }))
        }
        timeout = decoded.value
      }
      return Either.right({ key, windowMs, timeout, ...codecsOf(schema) })
    }
  })
}

const toInfo = <A>(o: Outcome, now: number): Info<A> => {
  const bucket = Window.bucketOf(now, o.entry.windowMs)
  return {
    value: o.entry.value as A,
    bucket: o.entry.bucket,
    computedAt: o.entry.computedAt,
    stale: o.entry.bucket < bucket,
    nextBoundary: Window.startOf(bucket + 1, o.entry.windowMs),
    cache: o.cache === "hit" && o.entry.bucket < bucket ? "stale" : o.cache
  }
}

/**
 * The request path shared by `memo` and `memoWithInfo`: the fresh L1 hit is decided inline, all
 * else goes to the runtime's slow path with the producer bound to the caller's context.
 */
const lookup = <A, E, R, B>(
  options: Options<A, any>,
  producer: Effect.Effect<A, E, R>,
  onHit: (entry: Entry, now: number) => B,
  onOutcome: (o: Outcome, now: number) => B
): Effect.Effect<B, E | InvalidOptions, R | Memo> => {
  const spec = validate(options)
  if (Either.isLeft(spec)) return Effect.fail(spec.left)
  const { key, windowMs } = spec.right
  // one primitive for the whole hit path: the fiber gives both the context and the clock
  return Effect.withFiberRuntime((fiber) => {
    const context = fiber.currentContext as Context.Context<R | Memo>
    const runtime = Context.get(context, Memo)
    const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis() + runtime.skew
    const held = runtime.l1.get(key)
    if (held !== undefined && held.windowMs === windowMs && held.bucket >= Math.floor(now / windowMs)) {
      Metrics.requestsL1.unsafeUpdate(1, [])
      return Effect.succeed(onHit(held, now))
    }
    // a request that waited reports staleness and the next boundary as of its answer
    return Effect.flatMap(
      runtime.slow(spec.right, Effect.provide(producer, context), now, held),
      (o) => Effect.clockWith((clock) => Effect.succeed(onOutcome(o, clock.unsafeCurrentTimeMillis() + runtime.skew)))
    )
  })
}

/** Options with a `timeout`: the request may also fail with `WaitTimeout`. */
type Timed<A, I> = Options<A, I> & { readonly timeout: Duration.DurationInput }

type MemoFn = {
  <A, I>(options: Timed<A, I>): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<A, E | InvalidOptions | WaitTimeout, R | Memo>
  <A, I>(options: Options<A, I>): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<A, E | InvalidOptions, R | Memo>
  <A, I, E, R>(options: Timed<A, I>, producer: Effect.Effect<A, E, R>): Effect.Effect<A, E | InvalidOptions | WaitTimeout, R | Memo>
  <A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>): Effect.Effect<A, E | InvalidOptions, R | Memo>
}

type MemoWithInfoFn = {
  <A, I>(options: Timed<A, I>): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<Info<A>, E | InvalidOptions | WaitTimeout, R | Memo>
  <A, I>(options: Options<A, I>): <E, R>(producer: Effect.Effect<A, E, R>) => Effect.Effect<Info<A>, E | InvalidOptions, R | Memo>
  <A, I, E, R>(options: Timed<A, I>, producer: Effect.Effect<A, E, R>): Effect.Effect<Info<A>, E | InvalidOptions | WaitTimeout, R | Memo>
  <A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>): Effect.Effect<Info<A>, E | InvalidOptions, R | Memo>
}

const dataLast = <F extends (options: any, producer: any) => any>(f: F): any =>
  function(this: unknown, options: unknown, producer?: unknown) {
    return arguments.length === 1 ? (p: unknown) => f(options, p) : f(options, producer)
  }

/**
 * Memoises `producer` under `options.key` for `options.window`: at most one run per window for
 * the whole fleet, stale values served at once, the last good value kept forever.
 *
 * @example
 * import { Effect, Layer, Schema } from "effect"
 * import { Memo, Redis } from "lockstep"
 *
 * const Dashboard = Schema.Struct({ volume: Schema.Number })
 * const loadDashboard = Effect.succeed({ volume: 1_250_000 }) // the expensive aggregate
 *
 * const dashboard = Memo.memo({ key: "dashboard", window: "1 minute", schema: Dashboard }, loadDashboard)
 *
 * // build the layer once: each build is a new, empty cache
 * const CacheLive = Memo.layer.pipe(Layer.provide(Redis.layerMemory))
 * Effect.runPromise(Effect.provide(dashboard, CacheLive)).then(console.log) // { volume: 1250000 }
 *
 * @since 0.1.0
 * @category combinators
 */
export const memo: MemoFn = dataLast(<A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>) =>
  lookup(options, producer, (entry) => entry.value as A, (o) => o.entry.value as A)
)

/**
 * `memo` with the value's metadata, for response headers and client refresh times.
 *
 * @since 0.1.0
 * @category combinators
 */
export const memoWithInfo: MemoWithInfoFn = dataLast(<A, I, E, R>(options: Options<A, I>, producer: Effect.Effect<A, E, R>) =>
  lookup(options, producer, (entry, now) => toInfo<A>({ entry, cache: "hit" }, now), toInfo<A>)
)

/**
 * Keeps a key warm: refreshes it right after every window boundary (plus `lag`), so the first
 * request of a window is already a hit. Runs until the enclosing scope closes.
 *
 * @since 0.1.0
 * @category combinators
 */
export const keepWarm = Effect.fn("lockstep.keepWarm")(function*<A, I, E, R>(
  options: Options<A, I> & { readonly lag?: Duration.DurationInput | undefined },
  producer: Effect.Effect<A, E, R>
) {
  const spec = yield* validate(options)
  const lagMs = options.lag === undefined ? 0 : Duration.toMillis(options.lag)
  if (!Number.isFinite(lagMs) || lagMs < 0) {
    return yield* new InvalidOptions({ message: `keepWarm ${JSON.stringify(spec.key)}: lag must be a non-negative duration` })
  }
  const runtime = yield* Memo
  const context = yield* Effect.context<R>()
  const provided = Effect.provide(producer, context)
  const tick = Effect.gen(function*() {
    yield* runtime.warm(spec, provided)
    const at = (yield* Clock.currentTimeMillis) + runtime.skew
    yield* Effect.sleep(Window.untilNextBoundary(at, spec.windowMs) + lagMs)
  })
  yield* Effect.forkScoped(Effect.forever(tick))
})

// ---------------------------------------------------------------------------------------------
// layers

/**
 * The runtime with explicit settings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (settings: Partial<Settings>): Layer.Layer<Memo, InvalidOptions, Redis.Redis> =>
  Layer.scoped(Memo, make(settings))

/**
 * The runtime with default settings.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Memo, never, Redis.Redis> = Layer.orDie(layerWith({}))
