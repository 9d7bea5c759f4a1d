/**
 * Batch reads (`getMany`): many keys of one loader with one store round trip and, for the keys
 * that need a run, one `lookupMany` call per chunk, while each key keeps its own fleet lock and
 * so its one run per window.
 *
 * 1. L1's fresh entries answer inline; a key already running in this process joins its run.
 * 2. Every other key is read in one round trip (`readMany`). Fresh values answer at once; stale
 *    ones (from the store or L1) answer at once too, and their keys need a run; keys with no
 *    value anywhere need a run and wait for it.
 * 3. The keys that need a run get a run each in this process (`Inflight`), so that concurrent
 *    requests join them, and a driver fiber in the runtime's scope claims them chunk by chunk,
 *    each under its own lock. The claimed keys of a chunk are led together: each key's leader
 *    (renewal, `maxRun`, fenced commit, back-off) asks a barrier for its value, and the barrier
 *    makes one `lookupMany` call once every claimed key of the chunk has asked. A key another
 *    process holds, or that the store did not answer for, goes on as a `get` would (its
 *    worker waits for the holder's commit notice, or degrades).
 */
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Metrics from "../../Metrics.js"
import * as Window from "../../Window.js"
import type { Claim } from "../store.js"
import * as Core from "./core.js"
import type * as Inflight from "./inflight.js"
import * as L1 from "./l1.js"
import * as Leader from "./leader.js"

/**
 * `lookupMany` answered another number of values than it was asked for: the values cannot be
 * matched to their keys, so every key of that call fails with this (stale values are served
 * where they exist).
 */
export class LookupManyMismatch extends Data.TaggedError("LookupManyMismatch")<{
  readonly key: string
  readonly asked: number
  readonly answered: number
}> {
  override get message() {
    return `lockstep: lookupMany was asked for ${this.asked} values and answered ${this.answered} (key ${JSON.stringify(this.key)})`
  }
}

/** Keys a `getMany` without `lookupMany` claims at once, each running its own lookup: the bound on its concurrent lookups. */
export const lookupConcurrency = 16

/** The distinct keys of a `getMany` (one job each), and how to look many of them up at once. */
export interface Batch<E> {
  readonly jobs: ReadonlyArray<Core.Job<E>>
  /** The values of the jobs at `indices`, in their order. */
  readonly lookupMany: ((indices: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<unknown>, E>) | undefined
  /** Keys per `lookupMany` call. */
  readonly batchSize: number
}

/** What the engine lends a batch. */
export interface Deps {
  readonly core: Core.Core
  readonly inflight: Inflight.Inflight<Core.Outcome>
  readonly scope: Scope.Scope
  /** The one-key request path (`Engine.serve`). */
  readonly serve: <E>(job: Core.Job<E>, at: number, held: L1.Entry | undefined) => Effect.Effect<Core.Outcome, E>
  /** The one-key worker, for a key the batch does not lead. */
  readonly work: <E>(job: Core.Job<E>) => (run: Inflight.Run<Core.Outcome>) => Effect.Effect<Core.Outcome, E>
  /** A cold request's wait for a run's first answer, within the loader's `timeout`. */
  readonly awaitFirst: <E>(job: Core.Job<E>, run: Inflight.Run<Core.Outcome>) => Effect.Effect<Core.Outcome, E>
}

/** What the driver decided for a key it registered a run for. */
type Decision =
  | { readonly _tag: "Answer"; readonly outcome: Core.Outcome }
  | { readonly _tag: "Lead"; readonly job: Core.Job; readonly claim: Extract<Claim, { _tag: "Acquired" }>; readonly token: string }
  /** Claimed elsewhere, backing off, or not answered: the key's worker goes on as for a `get`. */
  | { readonly _tag: "Alone" }

/**
 * Hands each of `size` leaders its value out of one `call`, made once all of them have asked.
 * A call that answers another number of values fails every leader with `LookupManyMismatch`.
 */
const barrier = <E>(
  scope: Scope.Scope,
  keys: ReadonlyArray<string>,
  call: Effect.Effect<ReadonlyArray<unknown>, E>
) => {
  const result = Deferred.unsafeMake<ReadonlyArray<unknown>, E>(FiberId.none)
  let asked = 0
  return (position: number): Effect.Effect<unknown, E | LookupManyMismatch> =>
    Effect.suspend(() => {
      const start = ++asked === keys.length
        ? Effect.asVoid(Effect.forkIn(Effect.interruptible(Effect.intoDeferred(call, result)), scope))
        : Effect.void
      return Effect.zipRight(
        start,
        Effect.flatMap(Deferred.await(result), (values) =>
          values.length === keys.length
            ? Effect.succeed(values[position])
            : Effect.fail(new LookupManyMismatch({ key: keys[position]!, asked: keys.length, answered: values.length })))
      )
    })
}

/** A key's answer: known at once, or to wait for. */
type Answer<E> = Core.Outcome | Effect.Effect<Core.Outcome, E>

const isKnown = <E>(a: Answer<E>): a is Core.Outcome => !Effect.isEffect(a)

const chunksOf = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

export const getMany = <E>(deps: Deps, batch: Batch<E>, at: number): Effect.Effect<Array<Core.Outcome>, E | LookupManyMismatch> =>
  Effect.suspend(() => {
    const { core, inflight } = deps
    const { l1 } = core
    const { jobs } = batch
    const answers: Array<Answer<E> | undefined> = new Array(jobs.length)
    const toRead: Array<number> = []
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]!
      const spec = job.spec
      const held = l1.entries.get(job.key)
      if (held !== undefined && held.windowMs === spec.windowMs && L1.isHit(held, Window.bucketOf(at, spec.windowMs))) {
        Metrics.countRequests("l1", 1, spec.name)
        held.hits++
        answers[i] = { entry: held, cache: "hit" }
      } else if (inflight.get(job.key) !== undefined) {
        answers[i] = deps.serve(job, at, held)
      } else {
        // nothing held and the key backs off after a failure: answered at once with it, as `get` is
        const failed = held === undefined ? core.failures.get(job.key, at) : undefined
        if (failed !== undefined) {
          Metrics.countRequests("error", 1, spec.name)
          answers[i] = Effect.failCause(failed.cause as Cause.Cause<E>)
        } else {
          toRead.push(i)
        }
      }
    }
    const all = Effect.suspend(() => {
      // most answers are known at once: only those that wait get a fiber
      const pending: Array<number> = []
      for (let i = 0; i < answers.length; i++) if (!isKnown(answers[i]!)) pending.push(i)
      const out = answers as Array<Core.Outcome | Effect.Effect<Core.Outcome, E>>
      if (pending.length === 0) return Effect.succeed(out as Array<Core.Outcome>)
      return Effect.map(
        Effect.forEach(pending, (i) => out[i] as Effect.Effect<Core.Outcome, E>, { concurrency: "unbounded" }),
        (done) => {
          pending.forEach((i, j) => (out[i] = done[j]!))
          return out as Array<Core.Outcome>
        }
      )
    })
    if (toRead.length === 0) return all
    return Effect.zipRight(readAndRun(deps, batch, toRead, answers), all)
  })

/** Step 2 and 3: one read for `indices`, then runs for the keys that need one. */
const readAndRun = <E>(
  deps: Deps,
  batch: Batch<E>,
  indices: ReadonlyArray<number>,
  answers: Array<Answer<E> | undefined>
): Effect.Effect<void> => {
  const { core } = deps
  const { l1, store } = core
  const { jobs } = batch
  return Effect.matchEffect(store.readMany(indices.map((i) => jobs[i]!.key)), {
    // the store did not answer: each key goes its own way, as a `get` would (it degrades)
    onFailure: (error) =>
      Effect.zipRight(
        Core.storeFailed(error),
        Effect.flatMap(Core.now(core), (at) =>
          Effect.sync(() => {
            for (const i of indices) answers[i] = deps.serve(jobs[i]!, at, l1.entries.get(jobs[i]!.key))
          }))
      ),
    onSuccess: (reads) =>
      Effect.flatMap(Core.storeNow(core), (at) => {
        const needed: Array<number> = []
        const waiting = new Set<number>()
        reads.forEach((read, j) => {
          const i = indices[j]!
          const job = jobs[i]!
          const spec = job.spec
          const bucket = Window.bucketOf(at, spec.windowMs)
          const c = Option.isSome(read.stored)
            ? Core.candidate(spec, read.stored.value, read.stored.value.bucket === bucket && read.stored.value.fence > read.mark, read.mark)
            : undefined
          const entry = c !== undefined ? l1.publish(job.key, c) : l1.entries.get(job.key)
          if (entry !== undefined && entry.windowMs === spec.windowMs && L1.isHit(entry, bucket)) {
            Metrics.countRequests("redis", 1, spec.name)
            entry.hits++
            answers[i] = { entry, cache: "hit" }
            return
          }
          if (entry !== undefined && entry.windowMs === spec.windowMs) {
            // stale: answered now; refreshed unless the key backs off
            Metrics.countRequests("stale", 1, spec.name)
            entry.stales++
            answers[i] = { entry, cache: "stale" }
            if (at >= entry.retryAt) needed.push(i)
            return
          }
          waiting.add(i)
          needed.push(i)
        })
        return run(deps, batch, needed, waiting, answers)
      })
  })
}

/** Registers a run for each of `needed` (or joins the one under way) and starts the driver over those it registered. */
const run = <E>(
  deps: Deps,
  batch: Batch<E>,
  needed: ReadonlyArray<number>,
  waiting: ReadonlySet<number>,
  answers: Array<Answer<E> | undefined>
): Effect.Effect<void> =>
  Effect.uninterruptible(Effect.gen(function*() {
    const { core, inflight } = deps
    const { jobs } = batch
    const decisions = new Map<number, Deferred.Deferred<Decision>>()
    const ours: Array<number> = []
    for (const i of needed) {
      const job = jobs[i]!
      const decided = Deferred.unsafeMake<Decision>(FiberId.none)
      let created = false
      const started = yield* inflight.start(job.key, () => {
        created = true
        return (r) => Effect.flatMap(Deferred.await(decided), (d) => carryOut(deps, job, d, r))
      }, waiting.has(i), job.spec.name)
      if (created) {
        decisions.set(i, decided)
        ours.push(i)
        const held = core.l1.entries.get(job.key)
        // a stale value answers the run's joiners at once too
        if (!waiting.has(i) && held !== undefined) inflight.answer(started, Exit.succeed({ entry: held, cache: "stale" }))
      }
      if (waiting.has(i)) answers[i] = deps.awaitFirst(job, started)
    }
    if (ours.length === 0) return
    const size = batch.lookupMany === undefined ? lookupConcurrency : batch.batchSize
    const drive = Effect.forEach(chunksOf(ours, size), (chunk) => driveChunk(deps, batch, chunk, decisions, waiting), { discard: true }).pipe(
      // whatever ended the driver, no key is left undecided (a decided one keeps its decision)
      Effect.ensuring(Effect.sync(() => {
        for (const d of decisions.values()) Deferred.unsafeDone(d, Exit.succeed<Decision>({ _tag: "Alone" }))
      }))
    )
    // interruptible: forked from this uninterruptible step it would not be, and a closing
    // runtime would wait on it while it waits on the runs it cannot see interrupted
    yield* Effect.forkIn(Effect.interruptible(drive), deps.scope)
  }))

/** Claims a chunk's keys, each under its own lock, leads the claimed ones together, and waits for their runs. */
const driveChunk = <E>(
  deps: Deps,
  batch: Batch<E>,
  chunk: ReadonlyArray<number>,
  decisions: ReadonlyMap<number, Deferred.Deferred<Decision>>,
  waiting: ReadonlySet<number>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { core, inflight } = deps
    const { l1, settings, store } = core
    const { jobs } = batch
    const decide = (i: number, d: Decision) => Deferred.unsafeDone(decisions.get(i)!, Exit.succeed(d))
    const claims = yield* Effect.forEach(chunk, (i) => {
      const job = jobs[i]!
      const token = core.nextToken()
      return Effect.map(
        Effect.either(store.claim(job.key, {
          windowMs: job.spec.windowMs,
          leaseMs: settings.leaseMs,
          token,
          force: false,
          retainMs: job.spec.retainMs,
          schema: job.spec.schemaId
        })),
        (claimed) => ({ i, token, claimed })
      )
    }, { concurrency: "unbounded" })
    const acquired: Array<{ readonly i: number; readonly token: string; readonly claim: Extract<Claim, { _tag: "Acquired" }> }> = []
    for (const { claimed, i, token } of claims) {
      const job = jobs[i]!
      if (Either.isLeft(claimed)) {
        decide(i, { _tag: "Alone" })
        continue
      }
      const c = claimed.right
      yield* Core.observe(core, c.now)
      Metrics.update(Metrics.lockOutcomes, 1, { outcome: c._tag.toLowerCase() })
      if (c._tag === "Fresh") {
        const fresh = Core.candidate(job.spec, c.stored, true, c.mark)
        decide(i, fresh === undefined ? { _tag: "Alone" } : {
          _tag: "Answer",
          outcome: { entry: l1.publish(job.key, fresh), cache: waiting.has(i) ? "miss" : "hit" }
        })
        continue
      }
      if (Option.isSome(c.stored)) {
        const stale = Core.candidate(job.spec, c.stored.value, false, c.mark)
        if (stale !== undefined) {
          const entry = l1.publish(job.key, stale)
          const r = inflight.get(job.key)
          if (r !== undefined) inflight.answer(r, Exit.succeed({ entry, cache: "stale" }))
        }
      }
      if (c._tag === "Acquired") acquired.push({ i, token, claim: c })
      else decide(i, { _tag: "Alone" })
    }
    if (acquired.length > 0) {
      const lookupMany = batch.lookupMany
      const ask = lookupMany === undefined
        ? undefined
        : barrier(deps.scope, acquired.map((a) => jobs[a.i]!.key), lookupMany(acquired.map((a) => a.i)))
      acquired.forEach((a, position) => {
        const job = jobs[a.i]!
        decide(a.i, {
          _tag: "Lead",
          job: ask === undefined ? job : { ...job, lookup: () => ask(position) },
          claim: a.claim,
          token: a.token
        })
      })
    }
    // the next chunk is claimed once this one's runs are over
    yield* Effect.forEach(chunk, (i) => {
      const r = inflight.get(jobs[i]!.key)
      return r === undefined ? Effect.void : Effect.exit(Deferred.await(r.final))
    }, { discard: true })
  })

/** A registered key's worker: what the driver decided. */
const carryOut = <E>(deps: Deps, job: Core.Job<E>, d: Decision, r: Inflight.Run<Core.Outcome>): Effect.Effect<Core.Outcome, E> => {
  switch (d._tag) {
    case "Answer":
      return Effect.succeed(d.outcome)
    case "Alone":
      return deps.work(job)(r)
    case "Lead":
      return Effect.flatMap(
        Leader.lead(deps.core, d.job as Core.Job<E>, d.claim, d.token, (entry) =>
          Effect.sync(() => deps.inflight.answer(r, Exit.succeed({ entry, cache: "miss" })))),
        (led) =>
          Option.isSome(led) && !led.value.invalidated
            ? Effect.succeed<Core.Outcome>({ entry: led.value.entry, cache: "miss" })
            // taken over, purged or invalidated while it ran: the key goes on as for a `get`
            : deps.work(job)(r)
      ).pipe(Effect.withSpan("lockstep.refresh", { attributes: Core.attributes(job.spec, job.key, { "lockstep.batch": true }), captureStackTrace: false }))
  }
}
