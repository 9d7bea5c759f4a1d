/**
 * The store contract: what `Memo` needs from a shared store, whichever implements it (the Lua
 * scripts on Redis, or the maps of the in-memory store). Public through `Redis.ts`.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

/** A value as the store keeps it: the encoded payload and the window it belongs to. */
export interface Stored {
  /** The value, encoded by the loader's `Schema` and serialised as JSON. */
  readonly data: string
  readonly bucket: number
  /** The fencing token of the claim that produced it (0 for a value produced without Redis). */
  readonly fence: number
  readonly windowMs: number
  /** When the lookup finished, in epoch milliseconds (the store's clock). */
  readonly computedAt: number
  /**
   * The identity of the schema that encoded `data` (a hash of its encoded side): another version
   * of the loader (a rolling deploy that changed its schema) knows the value is not its own. Absent
   * in records written without one, which every version reads.
   */
  readonly schema?: string | undefined
}

/**
 * Every answer carries the store's clock (`now`) and the key's invalidation `mark`: values whose
 * fence is at or below it were computed before the last invalidation, so they are stale whatever
 * their window (-1: never invalidated).
 */
interface Answer {
  readonly now: number
  readonly mark: number
}

export interface Read extends Answer {
  readonly stored: Option.Option<Stored>
}

/**
 * A plain read (no script, so no store clock): the record, and the next window's value when one
 * was committed early. The reader promotes `pending` itself once its window has begun by its
 * view of the store's clock; every script does the same by the store's own.
 */
export interface PlainRead extends Omit<Read, "now"> {
  readonly pending: Option.Option<Stored>
}

export type Claim =
  | Answer & { readonly _tag: "Fresh"; readonly stored: Stored }
  | Answer & { readonly _tag: "Busy"; readonly stored: Option.Option<Stored>; readonly ttlMs: number }
  | Answer & { readonly _tag: "Backoff"; readonly stored: Option.Option<Stored>; readonly ttlMs: number }
  | Answer & {
    readonly _tag: "Acquired"
    readonly stored: Option.Option<Stored>
    readonly bucket: number
    readonly fence: number
  }

export type Commit =
  /**
   * `pending`: the value is the next window's, committed early: it is kept beside the current
   * one and becomes the record when its window opens by the store's clock.
   */
  | Answer & { readonly _tag: "Committed"; readonly pending?: boolean | undefined }
  | Answer & {
    readonly _tag: "Refused"
    /**
     * `changed` (only for `unchanged`): the stored record is not the version the lookup saw,
     * so the value must be sent whole.
     */
    readonly reason: "older" | "fenced" | "future" | "changed"
    readonly stored: Option.Option<Stored>
  }

/** `Backoff`: the lock became a back-off marker for `ms`. `Lost`: the lock was not ours any more. */
export type Release =
  | { readonly _tag: "Released"; readonly now: number }
  | { readonly _tag: "Backoff"; readonly now: number; readonly ms: number }
  | { readonly _tag: "Lost"; readonly now: number }

export interface Backoff {
  readonly baseMs: number
  readonly maxMs: number
}

/** A value written with `set`: fenced like a commit, as the store's current window. */
export interface Written extends Answer {
  readonly bucket: number
  readonly fence: number
}

/**
 * How long the invalidation mark of a key with nothing stored lasts: a value computed without
 * the store before the invalidation may be written back later, and must land stale. A commit
 * gives the mark its record's lifetime.
 */
export const absentMarkMs = 24 * 60 * 60 * 1000

export interface InvalidateOptions {
  /**
   * Mark a key with nothing stored too (the default): a value computed without the store may be
   * written back later. A tag's invalidation skips its members that are gone (their `retain`
   * lapsed), rather than leave a mark for each.
   */
  readonly markAbsent?: boolean | undefined
}

export interface Purged {
  readonly now: number
  readonly fence: number
}

/**
 * `mark`: the new invalidation mark; `None` when the key held nothing and was left unmarked
 * (`markAbsent: false`). A key that holds nothing is marked with the store's clock (in
 * microseconds), above every version issued before its records were lost.
 */
export interface Invalidated {
  readonly now: number
  readonly mark: Option.Option<number>
}

/**
 * What the fleet is told of a key's change, so that processes drop older values from L1 and
 * waiters wake at once instead of at their next poll. `version` orders messages of one key:
 * a lost, repeated or reordered message is harmless.
 */
export type Notice =
  | {
    readonly _tag: "Committed"
    readonly key: string
    readonly bucket: number
    readonly fence: number
    readonly windowMs: number
    readonly computedAt: number
    /** The key's invalidation mark when it was committed: at or above `fence`, the value is stale. */
    readonly mark: number
    /** The encoded value, when small enough to travel with the notice. */
    readonly data: Option.Option<string>
    /**
     * Set when the value is the one of version `from` committed again (`unchanged`): a process
     * holding that version has the value without it travelling.
     */
    readonly from?: { readonly bucket: number; readonly fence: number } | undefined
  }
  /**
   * A value committed early for the next window: it answers from the start of its window (by
   * the store's clock) unless an invalidation with a mark at or above its fence comes first.
   */
  | {
    readonly _tag: "Pending"
    readonly key: string
    readonly bucket: number
    readonly fence: number
    readonly windowMs: number
    readonly computedAt: number
    readonly mark: number
    /** How long its lookup ran, so that every process learns how early to start the next one. */
    readonly durationMs: number
    readonly data: Option.Option<string>
  }
  | { readonly _tag: "Invalidated"; readonly key: string; readonly mark: number }
  /** A holder let go of the key's lock without a value (interrupted, shut down): waiters may claim. */
  | { readonly _tag: "Released"; readonly key: string }
  /**
   * The key's records were removed (`purge`): every value with a fence at or below `fence` is
   * gone for good, and a lookup running under an older fence cannot commit.
   */
  | { readonly _tag: "Purged"; readonly key: string; readonly fence: number }

/** The subscription's state: while it is not `up`, notices may be missing. */
export type BusState = "up" | "down"

export interface Subscriber {
  readonly onNotice: (notice: Notice) => void
  readonly onState: (state: BusState) => void
}

export interface Lifetimes {
  /** Drop the records of a key not refreshed for this long (0: keep them forever). */
  readonly retainMs: number
}

/** What a commit records beside the value, for whoever inspects the store. */
export interface CommitDetails extends Lifetimes {
  /** How long the lookup ran. */
  readonly durationMs?: number | undefined
  /** The loader's tags for the key. */
  readonly tags?: ReadonlyArray<string> | undefined
}

/** One key of the tenant as the store holds it, for an inspector. */
export interface Inspected {
  readonly key: string
  /**
   * The record without its payload: its window, fence, when and how long it was computed, its
   * size (the payload's UTF-8 bytes) and tags.
   */
  readonly stored: Option.Option<Omit<Stored, "data"> & {
    readonly size: number
    readonly durationMs: Option.Option<number>
    readonly tags: ReadonlyArray<string>
  }>
  /** Values with a fence at or below it were invalidated (-1: never). */
  readonly mark: number
  /** Who holds the fleet lock (host, process and runtime) and what is left of its lease. */
  readonly lock: Option.Option<{ readonly holder: string; readonly ttlMs: number }>
  /** What is left of a back-off marker after a failed lookup. */
  readonly backoffMs: Option.Option<number>
}

export interface Scanned {
  readonly now: number
  readonly keys: ReadonlyArray<Inspected>
  /** Where the next page starts; `None` when the scan is complete. */
  readonly cursor: Option.Option<string>
}

/** The store operations of the fleet protocol, all for one tenant, on the cache's own keys. */
export interface Store {
  readonly tenant: string
  /** `"redis"` or `"memory"`, for logs and metrics. */
  readonly kind: "redis" | "memory"
  /** The record and mark with the store's clock (a script). */
  readonly get: (key: string) => Effect.Effect<Read, RedisError>
  /**
   * The record and its mark, without the store's clock: one plain read, the cheapest way to a
   * value that this process then judges fresh or not by its own (corrected) clock.
   */
  readonly read: (key: string) => Effect.Effect<PlainRead, RedisError>
  /**
   * `read` of many keys in one round trip (a pipeline; on a Cluster, one per node), answers in
   * the order of `keys`.
   */
  readonly readMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<PlainRead>, RedisError>
  readonly claim: (key: string, options: Lifetimes & {
    readonly windowMs: number
    readonly leaseMs: number
    readonly token: string
    /** Take the lock even when a fresh value is stored (that value could not be decoded). */
    readonly force: boolean
    /**
     * Claim for this window when it has not begun yet (an early run): at most the store's next
     * window, otherwise the store's current one. `Fresh` then answers the value committed early.
     */
    readonly bucket?: number | undefined
    /**
     * The loader's schema identity. A fresh record of another identity is another version's
     * value (a rolling deploy): `Fresh` answers this version's value kept beside it, or the lock
     * is taken under the record's own bucket and fence (`Acquired`), and the commit of a value
     * with this identity and that version is kept beside the record instead of replacing it.
     */
    readonly schema?: string | undefined
  }) => Effect.Effect<Claim, RedisError>
  /** `true` while the lock is still ours; `false` is a definitive loss. */
  readonly renew: (key: string, token: string, leaseMs: number) => Effect.Effect<boolean, RedisError>
  /**
   * `token` is `undefined` for a value produced while Redis was unreachable, offered back. A
   * holder's value for the store's next window is kept as pending (`Committed` with `pending`).
   */
  readonly commit: (
    key: string,
    value: Stored,
    token: string | undefined,
    details: CommitDetails
  ) => Effect.Effect<Commit, RedisError>
  /**
   * Commits the stored value of version `from` again as `(bucket, fence)` (a lookup answered
   * `Memo.unchanged`), without sending its payload: accepted as `commit` would accept it, and
   * refused as `changed` when the stored record is not version `from` (the caller then commits
   * the value whole).
   */
  readonly unchanged: (
    key: string,
    value: Omit<Stored, "data"> & { readonly from: { readonly bucket: number; readonly fence: number } },
    token: string,
    details: CommitDetails
  ) => Effect.Effect<Commit, RedisError>
  /**
   * Removes the key's record, lock and back-off and tells the fleet; the fence counter moves
   * past every fence issued so far (kept for `absentMarkMs`, as an absent key's mark is), so a
   * lookup running now cannot commit and versions never go back. `fence`: the purge's fence.
   */
  readonly purge: (key: string) => Effect.Effect<Purged, RedisError>
  /**
   * Drops our lock or, with `backoff`, turns it into a back-off marker lasting
   * `baseMs * 2^(n-1)` (at most `maxMs`), `n` counting failures fleet-wide since the last commit.
   */
  readonly release: (key: string, token: string, backoff?: Backoff | undefined) => Effect.Effect<Release, RedisError>
  /**
   * Marks the stored value stale (it stays, as last-known-good) and tells the fleet. The mark
   * lives as long as the key's records do.
   */
  readonly invalidate: (key: string, options?: InvalidateOptions) => Effect.Effect<Invalidated, RedisError>
  /** Adds the key to each tag's set, so that `tagged` finds it. */
  readonly tag: (key: string, tags: ReadonlyArray<string>, lifetimes: Lifetimes) => Effect.Effect<void, RedisError>
  /** The keys a tag was given to. */
  readonly tagged: (tag: string) => Effect.Effect<ReadonlyArray<string>, RedisError>
  /** Removes keys from a tag's set (members whose records are gone), so that sets do not grow for ever. */
  readonly untag: (tag: string, keys: ReadonlyArray<string>) => Effect.Effect<void, RedisError>
  /**
   * One page of the tenant's keys with their records, locks and back-off, in bounded pages
   * (`SCAN`, never `KEYS`; every primary of a Cluster). Start with no cursor.
   */
  readonly scan: (options: { readonly cursor?: string | undefined; readonly count: number }) => Effect.Effect<Scanned, RedisError>
  /** Stores a value as the current window's, with a new fence, and tells the fleet. */
  readonly set: (
    key: string,
    value: { readonly data: string; readonly windowMs: number; readonly schema?: string | undefined },
    lifetimes: Lifetimes
  ) => Effect.Effect<Written, RedisError>
  /**
   * Receives the fleet's notices until the scope closes; `onState` tells when the subscription
   * is up and when notices may have been missed.
   */
  readonly subscribe: (subscriber: Subscriber) => Effect.Effect<void, never, Scope.Scope>
  /** The breaker's state (always `"closed"` for the in-memory store). */
  readonly health: Effect.Effect<"closed" | "open" | "half-open">
}

/**
 * Redis could not be reached, did not answer in time, or answered something unexpected. The
 * cache degrades on it; a request never fails because of it.
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  readonly reason: "Unavailable" | "Timeout" | "CircuitOpen" | "Protocol"
  readonly operation: string
  readonly cause?: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : undefined
    switch (this.reason) {
      case "CircuitOpen":
        return `Redis ${this.operation}: not sent, because the last calls to Redis failed (circuit breaker open${
          cause === undefined ? "" : `; last failure: ${cause}`
        }); this process serves what it holds and tries Redis again after the breaker's cooldown`
      case "Timeout":
        return `Redis ${this.operation}: no answer within the command timeout${cause === undefined ? "" : ` (${cause})`}`
      case "Unavailable":
        return `Redis ${this.operation}: Redis is not reachable${cause === undefined ? "" : ` (${cause})`}`
      case "Protocol":
        return `Redis ${this.operation}: unexpected answer${cause === undefined ? "" : ` (${cause})`}`
    }
  }
}

/** Configuration that cannot describe a working store (bad tenant, port, duration, …). */
export class RedisConfigError extends Data.TaggedError("RedisConfigError")<{
  readonly message: string
}> {}

export class Redis extends Context.Tag("lockstep/Redis")<Redis, Store>() {}

/** Tenants are part of every key name: 1 to 128 characters. */
export const validateTenant = (tenant: string): RedisConfigError | undefined =>
  typeof tenant !== "string" || tenant.length === 0 || tenant.length > 128
    ? new RedisConfigError({ message: `TENANT must be 1 to 128 characters, got ${JSON.stringify(tenant)}` })
    : undefined
