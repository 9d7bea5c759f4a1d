/**
 * One key's worker: it finds this window's value and hands out, meanwhile, any value it learns
 * of. It is a loop over explicit steps:
 *
 * - `Read` (when nothing older is held here): read the record without a script; a value of this window (by this process's
 *   corrected clock) not invalidated is the answer, else it is offered as stale and we claim.
 * - `Claim`: ask the store, which decides by its own clock. `Fresh` → done. `Acquired` → lead the run (`leader.ts`),
 *   or put back the window's value we hold when the store lost it (`Leader.restore`).
 *   `Busy` → wait for the holder. `Backoff` → done for now if we hold a value, else wait it out.
 * - `Unreachable`: the store did not answer a read or a claim: serve what we hold until the
 *   breaker's probe, retry a cold key a few times, then run locally (`leader.local`).
 * - `Wait`: until the holder's commit notice (with its value, when small) or the poll interval,
 *   whichever comes first; then claim again.
 * - `Done`: the outcome, or `None` when there is nothing newer to be had now.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Metrics from "../../Metrics.js"
import * as Window from "../../Window.js"
import * as Core from "./core.js"
import * as L1 from "./l1.js"
import * as Leader from "./leader.js"
import type { PlainRead, RedisError } from "../store.js"
import type * as Notices from "./notices.js"

export type Step =
  /** A plain read of the record: enough when it is this window's (most L2 reads). */
  | { readonly _tag: "Read" }
  /**
   * `recompute`: take the lock even over a fresh value (it could not be decoded here).
   * `failures`: claims of this run the store did not answer.
   */
  | { readonly _tag: "Claim"; readonly recompute: boolean; readonly waited: boolean; readonly failures: number }
  /** The store did not answer the read or the claim `claim`: serve, wait for it, or run on our own. */
  | { readonly _tag: "Unreachable"; readonly error: RedisError; readonly claim: Extract<Step, { _tag: "Claim" }> }
  /** Until the key's next commit notice or `ms`, then `next` (by default, claim again). */
  | { readonly _tag: "Wait"; readonly ms: number; readonly listener: Notices.Listener; readonly next?: Step }
  | { readonly _tag: "Done"; readonly outcome: Option.Option<Core.Outcome> }

const done = (outcome: Option.Option<Core.Outcome>): Step => ({ _tag: "Done", outcome })
const claimAgain: Step = { _tag: "Claim", recompute: false, waited: true, failures: 0 }

/**
 * How many unanswered claims a cold key tries before running the lookup on its own: a timeout
 * may be a busy event loop or a blip rather than a dead store, and a burst of cold keys that
 * each ran their lookup locally would be the stampede this library exists to prevent.
 */
const coldAttempts = 3

/**
 * Answers the waiting requests before the run is over: with a stale value found on the way, or
 * with the lookup's own value before it is committed.
 */
export type Offer = (entry: L1.Entry, cache: "stale" | "miss") => Effect.Effect<void>

/**
 * How long to wait for another process's commit before asking again. With notices up, the
 * commit's notice wakes us: polling is only the fallback for a holder that dies (its lock lapses
 * in `ttlMs`), at most once a second. With notices down, every `pollInterval`. Never faster
 * than `pollInterval`, whatever lease the lock says it has left.
 */
const busyWait = (core: Core.Core, ttlMs: number) =>
  core.notices.state() === "up"
    ? Math.max(core.settings.pollMs, Math.min(ttlMs + 1, noticedPollMs))
    : core.settings.pollMs

/** The fallback poll while notices are up. */
const noticedPollMs = 1_000

const claimStep = <E>(
  core: Core.Core,
  job: Core.Job<E>,
  offer: Offer,
  step: Extract<Step, { _tag: "Claim" }>,
  refreshing: boolean
): Effect.Effect<Step, E> =>
  Effect.suspend(() => {
    // listen before asking, so a commit noticed during the round trip is not missed
    const listener = core.notices.listen(job.key, job.spec.decode)
    return Effect.gen(function*() {
      const { l1, settings, store } = core
      const token = core.nextToken()
      const claimed = yield* Effect.either(store.claim(job.key, {
        windowMs: job.spec.windowMs,
        leaseMs: settings.leaseMs,
        token,
        force: step.recompute,
        retainMs: job.spec.retainMs,
        schema: job.spec.schemaId
      }))
      if (Either.isLeft(claimed)) return { _tag: "Unreachable", error: claimed.left, claim: step } satisfies Step
      const c = claimed.right
      yield* Core.observe(core, c.now)
      Metrics.update(Metrics.lockOutcomes, 1, { outcome: c._tag.toLowerCase() })
      if (c._tag === "Fresh") {
        const fresh = Core.candidate(job.spec, c.stored, true, c.mark)
        // fresh but unreadable here (another schema, a foreign record): recompute it
        if (fresh === undefined) return { _tag: "Claim", recompute: true, waited: step.waited, failures: 0 } satisfies Step
        const entry = l1.publish(job.key, fresh)
        if (!L1.isTrusted(entry)) {
          // the store vouched for it, but notices may be missing: check again, no sooner than a poll
          l1.setRetry(job.key, c.now + settings.pollMs)
        } else if (entry.bucket < Window.bucketOf(c.now, job.spec.windowMs)) {
          // our clock is ahead of the store's by less than we correct: ask again at its boundary
          l1.setRetry(job.key, Window.nextBoundary(c.now, job.spec.windowMs))
        }
        return done(Option.some({ entry, cache: step.waited ? "miss" : "hit" }))
      }
      // whatever happens next, the stored value may be newer than ours: serve it meanwhile
      if (Option.isSome(c.stored)) {
        const stale = Core.candidate(job.spec, c.stored.value, false, c.mark)
        if (stale !== undefined) yield* offer(l1.publish(job.key, stale), "stale")
      }
      switch (c._tag) {
        case "Acquired": {
          const held = Option.isNone(c.stored) ? l1.restorable(job.key, job.spec.windowMs, c.bucket) : undefined
          if (held !== undefined) {
            // the store lost the key while we hold its window's value: put it back, not recompute
            const restored = yield* Leader.restore(core, job, c, token, held)
            if (Option.isSome(restored)) return done(Option.some({ entry: restored.value, cache: "hit" }))
          }
          const led = yield* Leader.lead(core, job, c, token, (entry) => offer(entry, "miss"))
          // invalidated while it ran: the requests have their answer; the window's value is
          // what the next claim says
          if (Option.isNone(led) || led.value.invalidated) return claimAgain
          return done(Option.some({ entry: led.value.entry, cache: "miss" }))
        }
        case "Busy":
          return { _tag: "Wait", ms: busyWait(core, c.ttlMs), listener } satisfies Step
        case "Backoff": {
          const held = l1.entries.get(job.key)
          if (!refreshing && held !== undefined && held.windowMs === job.spec.windowMs) {
            l1.setRetry(job.key, c.now + c.ttlMs)
            return done(Option.none())
          }
          if (!refreshing) {
            // nothing held: the requests fail at once, with the failure this process met, or
            // (another process failed) with the failure of one run of our own; the back-off
            // decides when the lookup runs again, never how long a request waits
            const failed = core.failures.get(job.key, yield* Core.now(core))
            if (failed !== undefined) return yield* Effect.failCause(failed.cause as Cause.Cause<E>)
            const own = yield* Effect.exit(Leader.local(core, job, true))
            if (Exit.isFailure(own) && !Cause.isInterruptedOnly(own.cause)) {
              core.failures.record(job.key, own.cause, c.now + c.ttlMs)
            }
            return done(Option.map(yield* own, (entry): Core.Outcome => ({ entry, cache: "miss" })))
          }
          return { _tag: "Wait", ms: Math.max(settings.pollMs, c.ttlMs + 1), listener } satisfies Step
        }
      }
    }).pipe(
      // the listener goes on to the wait, and nowhere else
      Effect.onExit((exit) => Exit.isSuccess(exit) && exit.value._tag === "Wait" ? Effect.void : listener.cancel)
    )
  })

const unreachableStep = <E>(
  core: Core.Core,
  job: Core.Job<E>,
  step: Extract<Step, { _tag: "Unreachable" }>,
  refreshing: boolean
): Effect.Effect<Step, E> =>
  Effect.gen(function*() {
    const { l1, settings } = core
    yield* Core.storeFailed(step.error)
    const held = l1.entries.get(job.key)
    const holds = held !== undefined && held.windowMs === job.spec.windowMs
    if (holds && !refreshing && step.error.reason === "CircuitOpen") {
      // no answer yet either way: serve what we hold and ask again once the breaker lets a
      // probe through; only a store that fails its probe (a read or a claim) makes us run on
      // our own
      l1.setRetry(job.key, (yield* Core.now(core)) + settings.redisRetryMs)
      return done(Option.none())
    }
    if (!holds && step.claim.failures + 1 < coldAttempts) {
      return {
        _tag: "Wait",
        ms: settings.redisRetryMs,
        listener: core.notices.listen(job.key, job.spec.decode),
        next: { ...step.claim, failures: step.claim.failures + 1 }
      } satisfies Step
    }
    const produced = yield* Leader.local(core, job, refreshing)
    return done(Option.map(produced, (entry): Core.Outcome => ({ entry, cache: "miss" })))
  })

export const firstClaim: Extract<Step, { _tag: "Claim" }> = { _tag: "Claim", recompute: false, waited: false, failures: 0 }

/**
 * The `Read` step, which a cold request with no run of its key under way takes in its own fiber
 * (`runtime.ts`): most of these are L2 reads, answered without a worker. A `Done` step is the
 * answer; any other is where the worker takes over.
 */
export const readStep = (core: Core.Core, job: Core.Job, offer: Offer): Effect.Effect<Step> =>
  Effect.matchEffect(core.store.read(job.key), { onFailure: readFailed, onSuccess: readFound(core, job, offer) })

/**
 * A fault is the store's answer for this attempt (a probe the breaker let through, too): asking
 * again at once would only meet the breaker; an open breaker has the claim decide.
 */
const readFailed = (error: RedisError): Effect.Effect<Step> =>
  Effect.succeed<Step>(error.reason === "CircuitOpen" ? firstClaim : { _tag: "Unreachable", error, claim: firstClaim })

/** What a read found, as the step it ends with (made by a call: see `readStep`'s handlers). */
const readFound = (core: Core.Core, job: Core.Job, offer: Offer) => (read: PlainRead): Effect.Effect<Step> =>
  // judged by the store's clock as last measured (not only past the skew threshold): a read
  // must not call a value fresh that the store would not
  Effect.flatMap(Core.storeNow(core), (at) => {
    const bucket = Window.bucketOf(at, job.spec.windowMs)
    // a value committed early whose window has begun is the record, as the scripts promote it
    const due = Option.filter(read.pending, (p) => p.bucket <= bucket)
    const found = Option.orElse(due, () => read.stored)
    if (Option.isNone(found)) return Effect.succeed(firstClaim)
    const stored = found.value
    // a window that has not begun (foreign data, or a clock that went back) is not taken in,
    // as the scripts would not pass it on: the claim decides, by the store's own clock
    if (stored.bucket > bucket) return Effect.succeed(firstClaim)
    const c = Core.candidate(job.spec, stored, stored.bucket === bucket && stored.fence > read.mark, read.mark)
    if (c === undefined) return Effect.succeed(firstClaim)
    const entry = core.l1.publish(job.key, c)
    if (Option.isSome(read.pending) && Option.isNone(due)) {
      const next = Core.candidate(job.spec, read.pending.value, read.pending.value.fence > read.mark, read.mark)
      if (next !== undefined) core.l1.publishPending(job.key, next)
    }
    if (L1.isHit(entry, bucket)) {
      Metrics.update(Metrics.lockOutcomes, 1, { outcome: "read" })
      return Effect.succeed(done(Option.some({ entry, cache: "hit" })))
    }
    return Effect.as(offer(entry, "stale"), firstClaim)
  })

const waitStep = (core: Core.Core, job: Core.Job, step: Extract<Step, { _tag: "Wait" }>): Effect.Effect<Step> =>
  Effect.gen(function*() {
    const woken = yield* Effect.raceFirst(Effect.as(Effect.sleep(step.ms), Option.none<L1.Entry>()), step.listener.await).pipe(
      Effect.ensuring(step.listener.cancel)
    )
    if (Option.isSome(woken)) {
      const at = yield* Core.now(core)
      if (L1.isHit(woken.value, Window.bucketOf(at, job.spec.windowMs))) {
        return done(Option.some({ entry: woken.value, cache: "miss" }))
      }
    }
    return step.next ?? claimAgain
  })

/**
 * This window's value, by whatever step gets it. `refreshing` (a `refresh`): run even while
 * backing off, and locally at once when the store is unreachable.
 */
export const obtain = <E>(
  core: Core.Core,
  job: Core.Job<E>,
  offer: Offer,
  refreshing: boolean,
  /** Where to begin, when a request took the first step itself. */
  from?: Step
): Effect.Effect<Option.Option<Core.Outcome>, E> => {
  const loop = (step: Step): Effect.Effect<Option.Option<Core.Outcome>, E> => {
    switch (step._tag) {
      case "Done":
        return Effect.succeed(step.outcome)
      case "Read":
        return Effect.flatMap(readStep(core, job, offer), loop)
      case "Claim":
        return Effect.flatMap(claimStep(core, job, offer, step, refreshing), loop)
      case "Unreachable":
        return Effect.flatMap(unreachableStep(core, job, step, refreshing), loop)
      case "Wait":
        return Effect.flatMap(waitStep(core, job, step), loop)
    }
  }
  // a refresh must ask the store. Holding a value of an earlier window (a rollover), so must we:
  // this window's is most likely being computed right now, which only a claim tells, and a read
  // would find the record we hold. Anything else (nothing held: an L2 read) reads first.
  if (from !== undefined) return loop(from)
  if (refreshing) return loop(firstClaim)
  return Effect.flatMap(Core.storeNow(core), (at) => {
    const held = core.l1.entries.get(job.key)
    const behind = held !== undefined && held.windowMs === job.spec.windowMs && held.bucket < Window.bucketOf(at, job.spec.windowMs)
    return loop(behind ? firstClaim : { _tag: "Read" })
  })
}
