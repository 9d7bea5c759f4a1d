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
import type { Claim, Stored } from "../store.js"
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

type Mode = "leader" | "local"

/** A lookup's value and how long it took. */
interface Produced {
  readonly value: unknown
  readonly durationMs: number
}

/** Runs the lookup with its span, metrics and `maxRun`; a run past `maxRun` dies with `MaxRunExceeded`. */
const produce = <E>(core: Core.Core, job: Core.Job<E>, mode: Mode): Effect.Effect<Produced, E> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const exit = yield* job.lookup.pipe(
      Effect.withSpan("lockstep.produce", {
        attributes: { "lockstep.key": job.key, "lockstep.mode": mode },
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
    const finished = yield* Clock.currentTimeMillis
    const outcome = Exit.isSuccess(exit)
      ? "success"
      : Cause.isInterruptedOnly(exit.cause)
      ? "interrupted"
      : isMaxRun(exit.cause)
      ? "timeout"
      : "failure"
    Metrics.update(Metrics.producerRuns, 1, { outcome, mode })
    Metrics.producerDuration.unsafeUpdate((finished - started) / 1000, [])
    if (outcome === "timeout") {
      yield* Effect.logError(`lockstep: the lookup of ${job.key} ran past maxRun (${core.settings.maxRunMs} ms); stopped, backing off`)
    }
    const value = yield* exit
    core.durations.record(job.key, finished - started)
    return { value, durationMs: finished - started }
  })

const isMaxRun = (cause: Cause.Cause<unknown>) =>
  Option.exists(Cause.dieOption(cause), (d) => d instanceof MaxRunExceeded)

const toStored = (job: Core.Job, value: unknown, bucket: number, fence: number, computedAt: number) =>
  Either.map(job.spec.encode(value), (data): Stored => ({ data, bucket, fence, windowMs: job.spec.windowMs, computedAt }))

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
    const { durationMs, value } = result.value
    const computedAt = Math.round(yield* Core.now(core))
    const mine = own(job, value, claim.bucket, claim.fence, computedAt, claim.mark)
    // an early run's value is the next window's: it waits beside the current one (`pending`)
    // and answers nobody before its window opens
    const early = claim.bucket > Window.bucketOf(claim.now, job.spec.windowMs)
    // the waiting requests need not wait for the commit's round trip
    if (!early) yield* answer(l1.publish(job.key, mine))
    const stored = toStored(job, value, claim.bucket, claim.fence, computedAt)
    if (Either.isLeft(stored)) {
      Metrics.encodeFailures.unsafeUpdate(1, [])
      if (Core.firstInWindow(core, job.key, claim.bucket)) {
        yield* Effect.logError(
          `lockstep: the value of ${job.key} does not survive encode then decode with its schema; kept in this process only`,
          stored.left
        )
      }
      return early ? Option.none() : led(l1.publish(job.key, mine))
    }
    // a shutdown does not lose a value already computed: an attempt under way (bounded by the
    // command timeout) completes; the pauses between attempts stay interruptible
    const committed = yield* Effect.uninterruptible(
      store.commit(job.key, stored.right, token, { retainMs: job.spec.retainMs, durationMs, tags })
    ).pipe(
      Effect.retry(Schedule.spaced(settings.pollMs).pipe(Schedule.intersect(Schedule.recurs(2)))),
      Effect.either
    )
    if (Either.isLeft(committed)) {
      yield* Core.storeFailed(committed.left)
      // an early value is not offered back: past its boundary the window's run makes it anew
      if (early) return Option.none()
      yield* writeBack(core, job, stored.right, durationMs)
      return led(l1.publish(job.key, { ...mine, local: true }))
    }
    const c = committed.right
    // a committed value released the lock; a refused one did not: the finalizer drops it if it
    // is still ours, rather than leave the fleet waiting out the lease
    lock.settled = c._tag === "Committed"
    Metrics.update(Metrics.commits, 1, { outcome: c._tag === "Committed" ? "committed" : c.reason })
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
 * Offers a value produced without the store back to it, every `redisRetry`, until it lands or its
 * window is over (then the fleet computes the next one anyway).
 */
export const writeBack = (core: Core.Core, job: Core.Job, stored: Stored, durationMs?: number): Effect.Effect<void> =>
  Effect.flatMap(Core.now(core), (at) =>
    FiberMap.run(
      core.writeBacks,
      job.key,
      core.store.commit(job.key, stored, undefined, { retainMs: job.spec.retainMs, durationMs, tags: job.tags() }).pipe(
        Effect.retry(
          Schedule.spaced(core.settings.redisRetryMs).pipe(
            Schedule.upTo(Math.max(core.settings.redisRetryMs, Window.startOf(stored.bucket + 1, stored.windowMs) - at))
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
