/**
 * Running a lookup: under the fleet lock (`lead`: renew the lease while it runs, stop it at
 * `maxRun`, commit with our fence, release in the finalizer), or on our own while the store is
 * unreachable (`local`), offering the value back once it is reachable again (`writeBack`).
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberMap from "effect/FiberMap"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Metrics from "../../Metrics.js"
import * as Window from "../../Window.js"
import * as Backoff from "../backoff.js"
import type { Claim, Commit, Stored } from "../store.js"
import * as Core from "./core.js"
import type * as L1 from "./l1.js"

/** The fleet lock was taken over while we ran: someone else's value will land. */
class LockLost extends Data.TaggedError("LockLost")<{}> {}

/**
 * A lookup ran longer than `maxRun` and was stopped. Its lock became a back-off marker, so
 * another process takes over once it lapses. A cold request waiting for it dies with this.
 */
export class MaxRunExceeded extends Data.TaggedError("MaxRunExceeded")<{
  readonly key: string
  readonly maxRunMs: number
}> {
  override get message() {
    return `lockstep: the lookup of ${JSON.stringify(this.key)} ran longer than maxRun (${this.maxRunMs} ms) and was stopped`
  }
}

/**
 * A lookup answered `Memo.unchanged` for a key that had no value to stand: a cold key, or one
 * whose value was purged.
 */
export class UnchangedWithoutPrevious extends Data.TaggedError("UnchangedWithoutPrevious")<{
  readonly key: string
}> {
  override get message() {
    return `lockstep: the lookup of ${JSON.stringify(this.key)} answered unchanged, but there was no previous value`
  }
}

type Mode = "leader" | "local"

/**
 * A lookup's value and how long it took. `from`: the version of the previous value when the
 * lookup answered `unchanged` (then `value` is that value).
 */
interface Produced {
  readonly value: unknown
  readonly durationMs: number
  readonly from: Option.Option<{ readonly bucket: number; readonly fence: number }>
}

/** The value the run replaces: what L1 holds of the loader's window length (a claim put the store's there). */
const previousOf = (core: Core.Core, job: Core.Job): Option.Option<Core.Previous> => {
  const held = core.l1.entries.get(job.key)
  return held !== undefined && held.windowMs === job.spec.windowMs ? Option.some(held) : Option.none()
}

/**
 * Runs the lookup with its span, metrics and `maxRun`; a run past `maxRun` dies with
 * `MaxRunExceeded`, and `unchanged` without a previous value fails with `UnchangedWithoutPrevious`.
 */
const produce = <E>(core: Core.Core, job: Core.Job<E>, mode: Mode): Effect.Effect<Produced, E> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const previous = previousOf(core, job)
    const ran = yield* job.lookup(previous).pipe(
      Effect.withSpan("lockstep.produce", {
        attributes: Core.attributes(job.spec, job.key, { "lockstep.mode": mode }),
        captureStackTrace: false
      }),
      // returns at the deadline even if the lookup takes its time to stop
      Effect.disconnect,
      Effect.timeoutFailCause({
        duration: core.settings.maxRunMs,
        onTimeout: () => Cause.die(new MaxRunExceeded({ key: job.key, maxRunMs: core.settings.maxRunMs }))
      }),
      Effect.exit
    )
    const exit: Exit.Exit<unknown, unknown> = Exit.isSuccess(ran) && Core.isUnchanged(ran.value) && Option.isNone(previous)
      ? Exit.fail(new UnchangedWithoutPrevious({ key: job.key }))
      : ran
    const finished = yield* Clock.currentTimeMillis
    const outcome = Exit.isSuccess(exit)
      ? "success"
      : Cause.isInterruptedOnly(exit.cause)
      ? "interrupted"
      : isMaxRun(exit.cause)
      ? "timeout"
      : "failure"
    Metrics.update(Metrics.producerRuns, 1, Metrics.forLoader({ outcome, mode }, job.spec.name))
    Metrics.update(Metrics.producerDuration, (finished - started) / 1000, Metrics.forLoader({}, job.spec.name))
    if (outcome === "timeout") {
      yield* Effect.logError(`lockstep: the lookup of ${job.key} ran past maxRun (${core.settings.maxRunMs} ms); stopped, backing off`)
    }
    const value = yield* (exit as Exit.Exit<unknown, E>)
    core.durations.record(job.key, finished - started)
    if (Core.isUnchanged(value) && Option.isSome(previous)) {
      const p = previous.value
      return { value: p.value, durationMs: finished - started, from: Option.some({ bucket: p.bucket, fence: p.fence }) }
    }
    return { value, durationMs: finished - started, from: Option.none() }
  })

const isMaxRun = (cause: Cause.Cause<unknown>) =>
  Option.exists(Cause.dieOption(cause), (d) => d instanceof MaxRunExceeded)

const toStored = (job: Core.Job, value: unknown, bucket: number, fence: number, computedAt: number) =>
  Either.map(job.spec.encode(value), (data): Stored => ({
    data,
    bucket,
    fence,
    windowMs: job.spec.windowMs,
    computedAt,
    ...(job.spec.schemaId === undefined ? {} : { schema: job.spec.schemaId })
  }))

const own = (job: Core.Job, value: unknown, bucket: number, fence: number, computedAt: number, mark: number): L1.Candidate => ({
  value,
  bucket,
  fence,
  computedAt,
  windowMs: job.spec.windowMs,
  decode: job.spec.decode,
  latest: true,
  mark
})

/**
 * Holds the fleet lock for one run: the lookup under a renewed lease, then a commit with our
 * fence. The release is the lock's finalizer: after a failure it leaves a back-off marker
 * (whose length the store decides), after an interruption it frees the lock at once. The value
 * goes to the waiting requests (`answer`) as soon as the lookup returns, before the commit.
 * `None` when the lease was taken over (the new holder's value will land).
 */
/**
 * What a run under the lock ended with: its entry, and whether an invalidation came while it ran
 * (then it is stored, not fresh, and the window's value is still to come).
 */
export interface Led {
  readonly entry: L1.Entry
  readonly invalidated: boolean
}

const led = (entry: L1.Entry, invalidated = false): Option.Option<Led> => Option.some({ entry, invalidated })

export const lead = <E>(
  core: Core.Core,
  job: Core.Job<E>,
  claim: Extract<Claim, { _tag: "Acquired" }>,
  token: string,
  answer: (entry: L1.Entry) => Effect.Effect<void>
): Effect.Effect<Option.Option<Led>, E> =>
  Effect.scoped(Effect.gen(function*() {
    const { l1, settings, store } = core
    const lock = { settled: false }
    yield* Effect.addFinalizer((exit) =>
      lock.settled ? Effect.void : store.release(
        job.key,
        token,
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? Core.backoffOf(core, job.spec) : undefined
      ).pipe(
        Effect.flatMap((released) =>
          released._tag === "Backoff"
            ? Effect.flatMap(Core.now(core), (at) =>
              Effect.sync(() => {
                l1.setRetry(job.key, at + released.ms)
                // cold requests until the back-off ends get this failure at once
                if (Exit.isFailure(exit)) core.failures.record(job.key, exit.cause, at + released.ms)
              }))
            : Effect.void
        ),
        Effect.catchAll((e) => Core.storeFailed(e))
      )
    )
    const tags = job.tags()
    if (tags.length > 0) {
      // before the lookup runs, so an invalidation of a tag from now on reaches this key
      yield* Effect.catchAll(store.tag(job.key, tags, job.spec), (e) => Core.storeFailed(e))
    }
    const renewals = store.renew(job.key, token, settings.leaseMs).pipe(
      Effect.flatMap((held) => held ? Effect.void : Effect.fail(new LockLost())),
      Effect.catchTag("RedisError", (e) => Core.storeFailed(e)), // indeterminate: keep running
      Effect.delay(Math.max(1, Math.floor(settings.leaseMs / 3))),
      Effect.forever
    )
    const result = yield* produce(core, job, "leader").pipe(
      Effect.raceFirst(renewals),
      Effect.map(Option.some),
      Effect.catchIf((e): e is LockLost => e instanceof LockLost, () => {
        Metrics.update(Metrics.lockOutcomes, 1, { outcome: "lost" })
        return Effect.as(
          Effect.logWarning(`lockstep: the lease on ${job.key} was taken over; waiting for the new holder`),
          Option.none<Produced>()
        )
      })
    )
    if (Option.isNone(result)) return Option.none<Led>()
    // purged while it ran: its value must not come back; the next claim starts afresh
    if (l1.purgedThrough(job.key) >= claim.fence) return Option.none<Led>()
    const { durationMs, from, value } = result.value
    const computedAt = Math.round(yield* Core.now(core))
    const mine = own(job, value, claim.bucket, claim.fence, computedAt, claim.mark)
    // an early run's value is the next window's: it waits beside the current one (`pending`)
    // and answers nobody before its window opens
    const early = claim.bucket > Window.bucketOf(claim.now, job.spec.windowMs)
    // the waiting requests need not wait for the commit's round trip
    if (!early) yield* answer(l1.publish(job.key, mine))
    const details = { retainMs: job.spec.retainMs, durationMs, tags }
    const whole = Effect.suspend(() => {
      const stored = toStored(job, value, claim.bucket, claim.fence, computedAt)
      if (Either.isRight(stored)) return Effect.map(store.commit(job.key, stored.right, token, details), Option.some)
      // a value the fleet could not read back is kept in this process only, counted, and logged
      // once per key and window
      Metrics.encodeFailures.unsafeUpdate(1, [])
      return Effect.as(
        Core.firstInWindow(core, job.key, claim.bucket)
          ? Effect.logError(
            `lockstep: the value of ${job.key} does not survive encode then decode with its schema; kept in this process only`,
            stored.left
          )
          : Effect.void,
        Option.none<Commit>()
      )
    })
    // unchanged: the stored record takes the new version, its payload stays where it is; a
    // record that is not the previous value any more (lost, replaced) gets the value whole, and
    // so does an early run's (the next window's value waits beside the record, whole)
    const send = Option.isNone(from) || early ? whole : Effect.flatMap(
      store.unchanged(job.key, { from: from.value, bucket: claim.bucket, fence: claim.fence, windowMs: job.spec.windowMs, computedAt }, token, details),
      (c) => c._tag === "Refused" && c.reason === "changed" ? whole : Effect.succeed(Option.some<Commit>(c))
    )
    // a shutdown does not lose a value already computed: an attempt under way (bounded by the
    // command timeout) completes; the pauses between attempts stay interruptible
    const sent = yield* Effect.uninterruptible(send).pipe(
      Effect.retry(Schedule.spaced(settings.pollMs).pipe(Schedule.intersect(Schedule.recurs(2)))),
      Effect.either
    )
    if (Either.isLeft(sent)) {
      yield* Core.storeFailed(sent.left)
      // an early value is not offered back: past its boundary the window's run makes it anew
      if (early) return Option.none()
      const stored = toStored(job, value, claim.bucket, claim.fence, computedAt)
      if (Either.isRight(stored)) yield* writeBack(core, job, stored.right, durationMs)
      return led(l1.publish(job.key, { ...mine, local: true }))
    }
    if (Option.isNone(sent.right)) return early ? Option.none() : led(l1.publish(job.key, mine))
    const c = sent.right.value
    // a committed value released the lock; a refused one did not: the finalizer drops it if it
    // is still ours, rather than leave the fleet waiting out the lease
    lock.settled = c._tag === "Committed"
    Metrics.update(
      Metrics.commits,
      1,
      Metrics.forLoader({ outcome: c._tag === "Committed" ? (Option.isSome(from) && !early ? "unchanged" : "committed") : c.reason }, job.spec.name)
    )
    if (c._tag === "Committed" && c.pending === true) {
      l1.publishPending(job.key, { ...mine, mark: c.mark })
      return Option.none()
    }
    if (c._tag === "Committed") {
      // the key joins its tags again now that it has a value: an invalidateTag that found it
      // holding nothing while it ran may have dropped it from a set
      if (tags.length > 0) yield* Effect.catchAll(store.tag(job.key, tags, job.spec), (e) => Core.storeFailed(e))
      // invalidated while it ran: stored, but not as fresh; the window's value is still to come
      return led(l1.publish(job.key, { ...mine, mark: c.mark }), c.mark >= claim.fence)
    }
    // fenced with nothing stored: purged while it ran; its value must not come back
    if (c.reason === "fenced" && Option.isNone(c.stored)) return Option.none<Led>()
    // refused: a newer value (a newer window, or a newer holder of this one) is stored, and it is
    // the latest if it belongs to the store's window and no invalidation came after it
    const newer = Option.flatMap(c.stored, (s) => {
      const latest = s.bucket >= Window.bucketOf(c.now, job.spec.windowMs) && s.fence > c.mark
      return Option.fromNullable(Core.candidate(job.spec, s, latest, c.mark))
    })
    return led(l1.publish(job.key, Option.getOrElse(newer, () => ({ ...mine, latest: false }))))
  }))

/**
 * The store lost the key's records (a restart without persistence, `FLUSHDB`, eviction) while
 * this process holds the value of the store's window, which it does not know to be invalidated or
 * superseded: it puts that value back under the claim's fence (newer than every version issued
 * before the loss) instead of running the lookup again. Under the lock, so once per key for the
 * fleet: the others wait for its commit like for any run. `None` when it did not land (the lock
 * is still ours: the lookup runs).
 */
export const restore = (
  core: Core.Core,
  job: Core.Job,
  claim: Extract<Claim, { _tag: "Acquired" }>,
  token: string,
  held: L1.Entry
): Effect.Effect<Option.Option<L1.Entry>> =>
  Effect.gen(function*() {
    const stored = toStored(job, held.value, claim.bucket, claim.fence, held.computedAt)
    if (Either.isLeft(stored)) return Option.none()
    const tags = job.tags()
    // the tag sets were lost with the records
    if (tags.length > 0) yield* Effect.catchAll(core.store.tag(job.key, tags, job.spec), (e) => Core.storeFailed(e))
    const committed = yield* Effect.either(core.store.commit(job.key, stored.right, token, { retainMs: job.spec.retainMs, tags }))
    if (Either.isLeft(committed)) {
      yield* Core.storeFailed(committed.left)
      return Option.none()
    }
    if (committed.right._tag !== "Committed") return Option.none()
    Metrics.update(Metrics.commits, 1, { outcome: "restored" })
    return Option.some(core.l1.publish(job.key, own(job, held.value, claim.bucket, claim.fence, held.computedAt, committed.right.mark)))
  })

/**
 * Offers a value back to the store, every `redisRetry`, until it lands or its window is over (then
 * the fleet computes the next one anyway). A holder's value whose commit failed (a fence above 0)
 * is offered until the window after its own is over: the store may hold a value of its window made
 * without the lock (fence 0) that it must replace, and the store's answers may stay refused (an
 * open breaker) past the boundary; the store refuses it as `older` once a newer window's value is
 * there.
 */
export const writeBack = (core: Core.Core, job: Core.Job, stored: Stored, durationMs?: number): Effect.Effect<void> =>
  Effect.flatMap(Core.now(core), (at) =>
    FiberMap.run(
      core.writeBacks,
      job.key,
      core.store.commit(job.key, stored, undefined, { retainMs: job.spec.retainMs, durationMs, tags: job.tags() }).pipe(
        Effect.retry(
          Schedule.spaced(core.settings.redisRetryMs).pipe(
            Schedule.upTo(Math.max(core.settings.redisRetryMs, Window.startOf(stored.bucket + (stored.fence > 0 ? 2 : 1), stored.windowMs) - at))
          )
        ),
        Effect.tap((c) =>
          Metrics.update(Metrics.commits, 1, { outcome: c._tag === "Committed" ? "writeback" : c.reason })
        ),
        Effect.ignore
      )
    )).pipe(Effect.asVoid)

/**
 * The store is unreachable: keep serving what we hold until `degradedAfter` past its window,
 * then run the lookup on our own (at most once per window, backing off after failures).
 * `force` (a `refresh`) runs it at once. `None` when there is nothing to do yet.
 */
export const local = <E>(core: Core.Core, job: Core.Job<E>, force: boolean): Effect.Effect<Option.Option<L1.Entry>, E> =>
  Effect.gen(function*() {
    const { l1, settings } = core
    const at = yield* Core.now(core)
    const held = l1.entries.get(job.key)
    if (!force && held !== undefined && held.windowMs === job.spec.windowMs) {
      const degradeAt = Window.startOf(held.bucket + 1, job.spec.windowMs) + settings.degradedAfterMs
      if (at < degradeAt) {
        // try the store again soon: it may be back before we would run on our own
        l1.setRetry(job.key, Math.min(degradeAt, at + settings.redisRetryMs))
        return Option.none()
      }
    }
    const exit = yield* Effect.exit(produce(core, job, "local"))
    if (Exit.isFailure(exit)) {
      const { baseMs, maxMs } = Core.backoffOf(core, job.spec)
      const current = l1.entries.get(job.key)
      if (current === undefined) {
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
        // nothing held: the cold requests of the back-off get this failure at once
        const count = core.failures.count(job.key) + 1
        core.failures.record(job.key, exit.cause, at + Backoff.delay(count, baseMs, maxMs), count)
      } else {
        current.localFailures++
        current.retryAt = at + Backoff.delay(current.localFailures, baseMs, maxMs)
      }
      return yield* Effect.failCause(exit.cause)
    }
    const { durationMs, value } = exit.value
    const computedAt = Math.round(yield* Core.now(core))
    const bucket = Window.bucketOf(at, job.spec.windowMs)
    const stored = toStored(job, value, bucket, 0, computedAt)
    if (Either.isRight(stored)) yield* writeBack(core, job, stored.right, durationMs)
    return Option.some(l1.publish(job.key, { ...own(job, value, bucket, 0, computedAt, -1), local: true }))
  })
