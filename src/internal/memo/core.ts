/**
 * What the engine's modules share: the runtime's parts (`Core`), what a loader knows of its
 * values (`Spec`), one key's run (`Job`) and what a run answers (`Outcome`).
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as FiberMap from "effect/FiberMap"
import type * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Metrics from "../../Metrics.js"
import type { Store, Stored } from "../store.js"
import { RedisError } from "../store.js"
import type * as Failures from "./failures.js"
import type * as L1 from "./l1.js"
import type * as Notices from "./notices.js"
import type { Resolved } from "./settings.js"

/** What a loader knows about its values, worked out once when it is defined. */
export interface Spec {
  /** The loader's `name`: its metrics' `loader` label and its spans' `lockstep.loader`. */
  readonly name: string | undefined
  readonly windowMs: number
  readonly retainMs: number
  readonly timeout: Duration.Duration | undefined
  readonly decode: L1.Decode
  readonly encode: (value: unknown) => Either.Either<string, ParseError>
  /**
   * The identity of the loader's schema (a hash of its encoded side), written with every value:
   * a record of another identity is another version's value during a rolling deploy.
   */
  readonly schemaId?: string | undefined
}

/**
 * One key's run: the lookup bound to its first caller's services and a scope of its own. Made
 * for every request that misses L1, used only by the one that starts a run: its parts are made
 * when the run needs them (`lookup` is suspended, `tags` a function).
 */
export interface Job<E = unknown> {
  readonly spec: Spec
  readonly key: string
  /** Given the value it replaces (none on a cold key); it may answer `unchanged`. */
  readonly lookup: (previous: Option.Option<Previous>) => Effect.Effect<unknown, E>
  readonly tags: () => ReadonlyArray<string>
}

/** The value a lookup replaces, as L1 holds it. */
export type Previous = Pick<L1.Entry, "value" | "bucket" | "fence" | "computedAt" | "windowMs">

export const UnchangedTypeId: unique symbol = Symbol.for("lockstep/Memo/unchanged")
export type UnchangedTypeId = typeof UnchangedTypeId

/** What a lookup answers when the value it replaces stands for this window too. */
export interface Unchanged {
  readonly [UnchangedTypeId]: UnchangedTypeId
}

export const unchanged: Unchanged = { [UnchangedTypeId]: UnchangedTypeId }

export const isUnchanged = (u: unknown): u is Unchanged => u === unchanged

/** A span's attributes for a key of a loader. */
export const attributes = (spec: Spec, key: string, more?: Record<string, unknown>): Record<string, unknown> =>
  spec.name === undefined ? { "lockstep.key": key, ...more } : { "lockstep.key": key, "lockstep.loader": spec.name, ...more }

/** `hit`: fresh from the store; `stale`: an earlier or invalidated value; `miss`: waited for a lookup. */
export interface Outcome {
  readonly entry: L1.Entry
  readonly cache: "hit" | "stale" | "miss"
}

/**
 * The store's clock as this process sees it. `skew` is the correction applied to every time read
 * (changed only when off by more than 250 ms, so that jitter does not move windows); `offset` is
 * the latest measurement, which `keepWarm` uses to wake just after the store's boundary.
 */
export interface StoreClock {
  skew: number
  offset: number
}

/**
 * How long a key's recent runs took, here and (through the fleet's early commits) elsewhere:
 * how early `keepWarm` starts the next window's run, and when a client may expect the next value.
 * Bounded like L1.
 */
export interface Durations {
  readonly record: (key: string, ms: number) => void
  /** The 90th percentile of the key's recent runs, `undefined` before the first. */
  readonly p90: (key: string) => number | undefined
}

/** Runs remembered per key. */
const samplesPerKey = 16

export const makeDurations = (capacity: number): Durations => {
  const samples = new Map<string, { readonly runs: Array<number>; p90: number }>()
  return {
    record: (key, ms) => {
      if (!(ms >= 0) || !Number.isFinite(ms)) return
      const s = samples.get(key) ?? { runs: [], p90: 0 }
      s.runs.push(ms)
      if (s.runs.length > samplesPerKey) s.runs.shift()
      const sorted = [...s.runs].sort((a, b) => a - b)
      s.p90 = sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)]!
      samples.delete(key)
      samples.set(key, s)
      if (samples.size > capacity) samples.delete(samples.keys().next().value!)
    },
    p90: (key) => samples.get(key)?.p90
  }
}

export interface Core {
  readonly store: Store
  readonly durations: Durations
  readonly settings: Resolved
  readonly l1: L1.L1
  readonly clock: StoreClock
  readonly notices: Notices.Notices
  /** Failures met while a key backs off, answered at once to its cold requests. */
  readonly failures: Failures.Failures
  readonly writeBacks: FiberMap.FiberMap<string>
  readonly nextToken: () => string
  /** The window in which each key last logged a value that does not encode (bounded like L1). */
  readonly unencodable: Map<string, number>
}

/** Whether this is the first time in window `bucket` that the key logs an unencodable value. */
export const firstInWindow = (core: Core, key: string, bucket: number): boolean => {
  if (core.unencodable.get(key) === bucket) return false
  core.unencodable.delete(key)
  core.unencodable.set(key, bucket)
  if (core.unencodable.size > core.settings.l1Capacity) core.unencodable.delete(core.unencodable.keys().next().value!)
  return true
}

/** Now, on the store's clock as corrected. */
export const now = (core: Core): Effect.Effect<number> => Effect.map(Clock.currentTimeMillis, (t) => t + core.clock.skew)

/** Now, on the store's clock as last measured (within a round trip). */
export const storeNow = (core: Core): Effect.Effect<number> => Effect.map(Clock.currentTimeMillis, (t) => t + core.clock.offset)

/** Learns the store's clock from one of its answers. */
export const observe = (core: Core, serverNow: number): Effect.Effect<void> =>
  Effect.map(Clock.currentTimeMillis, (local) => {
    const measured = serverNow - local
    core.clock.offset = measured
    if (Math.abs(measured - core.clock.skew) > 250) {
      core.clock.skew = measured
      // a value made while the store was unreachable and our clock ahead belongs to a window
      // that has not begun: it would pass for fresh until then, so it goes
      core.l1.dropAhead(serverNow)
    }
  })

/**
 * The back-off after a lookup failure, at most one window: the key then recovers within one
 * window of its lookup succeeding again, however long it failed.
 */
export const backoffOf = (core: Core, spec: Spec): { readonly baseMs: number; readonly maxMs: number } => ({
  baseMs: Math.min(core.settings.backoffMs, spec.windowMs),
  maxMs: Math.min(core.settings.maxBackoffMs, spec.windowMs)
})

/** Counts a store call the cache gave up on (it degrades instead). */
export const storeFailed = (error: unknown, operation?: string): Effect.Effect<void> =>
  Effect.zipRight(
    Effect.sync(() =>
      Metrics.update(Metrics.redisErrors, 1, {
        operation: error instanceof RedisError ? error.operation : operation ?? "unknown",
        reason: error instanceof RedisError ? error.reason : Cause.isTimeoutException(error) ? "Timeout" : "Unavailable"
      })
    ),
    Effect.logDebug("lockstep: store unavailable, degrading", error)
  )

/**
 * Whether a stored value was written by another version of the loader (a rolling deploy that
 * changed its schema): not undecodable data to recompute over, but that version's value, which
 * this version leaves in place. Records without an identity are every version's.
 */
export const otherVersion = (spec: Spec, stored: { readonly schema?: string | undefined }): boolean =>
  stored.schema !== undefined && spec.schemaId !== undefined && stored.schema !== spec.schemaId

/** A stored value as an L1 candidate, or `undefined` when it is not this loader's (window, schema). */
export const candidate = (
  spec: Spec,
  stored: Stored,
  latest: boolean,
  mark: number
): L1.Candidate | undefined => {
  if (stored.windowMs !== spec.windowMs || otherVersion(spec, stored)) return undefined
  const decoded = spec.decode(stored.data)
  if (!decoded.ok) {
    Metrics.decodeFailures.unsafeUpdate(1, [])
    return undefined
  }
  return {
    value: decoded.value,
    bucket: stored.bucket,
    fence: stored.fence,
    computedAt: stored.computedAt,
    windowMs: stored.windowMs,
    decode: spec.decode,
    latest,
    mark
  }
}
