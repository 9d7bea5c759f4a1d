/**
 * lockstep for Next.js 16: a `cacheHandlers` handler for `'use cache: remote'` that renders each
 * entry once per window for the whole fleet.
 *
 * On a miss, the first process to claim the key renders and the others wait for its commit. On an
 * entry past its `revalidate` time, the claim's winner answers it with `revalidate: -1` (Next
 * serves it and re-renders in the background) while the others keep serving it as fresh. A window
 * is the entry's `revalidate`. Tags are kept per tenant and enforced on read. While Redis is
 * down, every call gives up within `REDIS_COMMAND_TIMEOUT` and Next renders locally.
 *
 * Configured by `REDIS_*` and `TENANT`, as `Redis.layerFromEnv` is; one runtime per process, on
 * first use (its connections are the process's, not a request's). The handler does not import Next.
 *
 * In `next.config.mjs`: `cacheHandlers: { remote: import.meta.resolve("lockstep/next") }`.
 *
 * @example
 * import { Redis } from "lockstep"
 * import * as Next from "lockstep/next"
 *
 * // the handler Next loads is `make()` over Redis from the environment; here, the in-memory store
 * const handler = Next.make({ layer: Redis.layerMemory })
 * const entry = { value: new Response("<p>report</p>").body!, tags: ["report"], stale: 0, timestamp: 0, expire: 60, revalidate: 2 }
 *
 * handler.set("report", Promise.resolve(entry))
 *   .then(() => handler.get("report", []))
 *   .then((found) => new Response(found!.value).text())
 *   .then((html) => {
 *     assert.strictEqual(html, "<p>report</p>")
 *     return handler.close()
 *   })
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Store from "./internal/store.js"
import * as Redis from "./Redis.js"

// ---------------------------------------------------------------------------------------------
// models

/**
 * An entry as Next hands it over and takes it back (Next's `CacheEntry`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheEntry {
  value: ReadableStream<Uint8Array>
  tags: Array<string>
  /** Seconds, for the client. */
  stale: number
  /** When the entry was created, in epoch milliseconds. */
  timestamp: number
  /** Seconds after `timestamp` past which Next treats the entry as a miss. */
  expire: number
  /** Seconds after `timestamp` past which Next serves the entry and re-renders it in the background. */
  revalidate: number
}

/**
 * Next's `CacheHandler` interface for `cacheHandlers`, with `close` for tests and scripts.
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheHandler {
  readonly get: (cacheKey: string, softTags: Array<string>) => Promise<CacheEntry | undefined>
  readonly set: (cacheKey: string, pendingEntry: Promise<CacheEntry>) => Promise<void>
  readonly refreshTags: () => Promise<void>
  readonly getExpiration: (tags: Array<string>) => Promise<number>
  readonly updateTags: (tags: Array<string>, durations?: { expire?: number }) => Promise<void>
  /** Ends the runtime and its connections. */
  readonly close: () => Promise<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HandlerOptions {
  /** The store (default `Redis.layerFromEnv`). */
  readonly layer?: Layer.Layer<Store.Redis, unknown> | undefined
  /** How long a cold request waits for another process's render before rendering itself (ms, default 10 000). */
  readonly waitMs?: number | undefined
  /** How long a claim holds the key for a render that never ends (ms, default 30 000). */
  readonly leaseMs?: number | undefined
  /** How often a waiting request looks for the render's commit (ms, default 50). */
  readonly pollMs?: number | undefined
}

// ---------------------------------------------------------------------------------------------
// records

/** What the store keeps of an entry: its bytes (base64) and Next's timings. */
interface Meta {
  readonly v: string
  readonly tags: ReadonlyArray<string>
  readonly stale: number
  readonly timestamp: number
  readonly expire: number
  readonly revalidate: number
}

interface Found {
  readonly stored: Store.Stored
  readonly meta: Meta
}

/** A tag's last revalidation (store clock): entries computed before `staleAt` are stale, before `expiredAt` gone. */
interface TagRecord {
  readonly staleAt: number
  readonly expiredAt: number
}

const entryKey = (cacheKey: string) => `next:${cacheKey}`
const tagKey = (tag: string) => `next-tag:${tag}`

const dayMs = 24 * 60 * 60 * 1000
/** Windows and lifetimes beyond a year are Next's "never": a year, so the store's arithmetic stays finite. */
const maxMs = 365 * dayMs
const tagWindowMs = maxMs

const toMs = (seconds: number, fallback: number): number =>
  Number.isFinite(seconds) && seconds > 0 ? Math.min(Math.round(seconds * 1000), maxMs) : fallback

/** How long an entry's records stay: its `expire` (Next treats it as a miss after that). */
const retainOf = (entry: { readonly expire: number; readonly revalidate: number }): number =>
  toMs(Math.max(entry.expire, entry.revalidate), dayMs)

const decode = (stored: Option.Option<Store.Stored>): Found | undefined => {
  if (Option.isNone(stored)) return undefined
  try {
    const meta = JSON.parse(stored.value.data) as Meta
    return typeof meta.v === "string" && Array.isArray(meta.tags) ? { stored: stored.value, meta } : undefined
  } catch {
    return undefined
  }
}

const toEntry = (meta: Meta, timings: { readonly timestamp: number; readonly revalidate: number }): CacheEntry => {
  const bytes = Buffer.from(meta.v, "base64")
  return {
    value: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(bytes))
        controller.close()
      }
    }),
    tags: [...meta.tags],
    stale: meta.stale,
    timestamp: timings.timestamp,
    expire: meta.expire,
    revalidate: timings.revalidate
  }
}

const readAll = async (stream: ReadableStream<Uint8Array>): Promise<Buffer> => {
  const chunks: Array<Uint8Array> = []
  const reader = stream.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return Buffer.concat(chunks)
    chunks.push(value)
  }
}

/** Where an entry stands for this request. */
type Standing = "fresh" | "stale" | "expired"

// ---------------------------------------------------------------------------------------------
// constructors

/**
 * A handler over its own runtime, built on first use.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: HandlerOptions = {}): CacheHandler => {
  const runtime = ManagedRuntime.make(options.layer ?? Redis.layerFromEnv)
  const waitMs = options.waitMs ?? 10_000
  const leaseMs = options.leaseMs ?? 30_000
  const pollMs = options.pollMs ?? 50
  /** The renders this process claimed, by cache key, until their `set`. */
  const claims = new Map<string, { readonly token: string; readonly fence: number; readonly now: number; readonly tagsWrittenAt: number }>()
  /** The latest time this process's `updateTags` stamped on a tag's record. */
  let tagsWrittenAt = Number.NEGATIVE_INFINITY
  /** The `set`s still reading their stream, by cache key: a `get` of the key waits for them. */
  const pending = new Map<string, Promise<void>>()

  const tagRecords = (store: Store.Store, tags: ReadonlyArray<string>) =>
    Effect.forEach(
      [...new Set(tags)],
      (tag) =>
        store.read(tagKey(tag)).pipe(Effect.map((r): TagRecord | undefined => {
          if (Option.isNone(r.stored)) return undefined
          try {
            return JSON.parse(r.stored.value.data) as TagRecord
          } catch {
            return undefined
          }
        })),
      { concurrency: "unbounded" }
    )

  const standing = (found: Found, mark: number, records: ReadonlyArray<TagRecord | undefined>, now: number): Standing => {
    const { computedAt } = found.stored
    if (records.some((r) => r !== undefined && r.expiredAt >= computedAt && r.expiredAt <= now)) return "expired"
    if (records.some((r) => r !== undefined && r.staleAt >= computedAt)) return "stale"
    if (found.stored.fence <= mark) return "stale"
    return found.stored.bucket >= Math.floor(now / found.stored.windowMs) ? "fresh" : "stale"
  }

  /** An entry as every process but the one re-rendering it serves it: fresh for its whole revalidate. */
  const asFresh = (found: Found, now: number) => toEntry(found.meta, { timestamp: now, revalidate: found.meta.revalidate })

  /**
   * Waits for another process's render of a cold key, until `deadline`; `undefined`: render here.
   * Any value newer than `after` (a fence) will do, even one whose window has just ended.
   */
  const awaitCommit = (
    store: Store.Store,
    key: string,
    softTags: ReadonlyArray<string>,
    after: number,
    deadline: number
  ) =>
    Effect.gen(function*() {
      for (;;) {
        yield* Effect.sleep(pollMs)
        const now = yield* Clock.currentTimeMillis
        const r = yield* store.read(key)
        const found = decode(r.stored)
        if (found && found.stored.fence > after) {
          const records = yield* tagRecords(store, [...found.meta.tags, ...softTags])
          if (standing(found, r.mark, records, now) !== "expired") return asFresh(found, now)
        }
        if (now >= deadline) return undefined
      }
    })

  const lookup = (cacheKey: string, softTags: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const store = yield* Store.Redis
      const key = entryKey(cacheKey)
      const r = yield* store.read(key)
      const now = yield* Clock.currentTimeMillis
      const found = decode(r.stored)
      const records = found ? yield* tagRecords(store, [...found.meta.tags, ...softTags]) : []
      const was = found ? standing(found, r.mark, records, now) : "expired"
      if (found && was === "fresh") return asFresh(found, now)
      const token = `${process.pid}:${randomUUID()}`
      const claim = yield* store.claim(key, {
        windowMs: found?.stored.windowMs ?? 1000,
        leaseMs,
        token,
        force: found !== undefined && records.some((t) => t !== undefined && t.staleAt >= found.stored.computedAt),
        // the key's records live as long as its entry: a claim that never commits leaves nothing for good
        retainMs: found ? retainOf(found.meta) : dayMs
      })
      const latest = decode(claim._tag === "Fresh" ? Option.some(claim.stored) : claim.stored)
      const latestStanding = latest ? standing(latest, claim.mark, records, claim.now) : "expired"
      switch (claim._tag) {
        case "Fresh":
          return asFresh(latest ?? found!, now)
        case "Acquired": {
          if (latest && latestStanding === "fresh") {
            // committed between our read and our claim: nothing to render
            yield* store.release(key, token)
            return asFresh(latest, now)
          }
          claims.set(cacheKey, { token, fence: claim.fence, now: claim.now, tagsWrittenAt })
          // a stale entry is served once more while Next re-renders it in the background
          return latest && latestStanding === "stale"
            ? toEntry(latest.meta, { timestamp: latest.meta.timestamp, revalidate: -1 })
            : undefined
        }
        case "Busy":
        case "Backoff": {
          if (latest && latestStanding === "stale") return asFresh(latest, now)
          return yield* awaitCommit(store, key, softTags, latest?.stored.fence ?? 0, now + Math.min(waitMs, claim.ttlMs))
        }
      }
    })

  const store = (cacheKey: string, bytes: Buffer, entry: CacheEntry) =>
    Effect.gen(function*() {
      const store = yield* Store.Redis
      const key = entryKey(cacheKey)
      const meta: Meta = {
        v: bytes.toString("base64"),
        tags: entry.tags,
        stale: entry.stale,
        timestamp: entry.timestamp,
        expire: entry.expire,
        revalidate: entry.revalidate
      }
      const data = JSON.stringify(meta)
      const windowMs = toMs(entry.revalidate, maxMs)
      const retainMs = retainOf(entry)
      const now = yield* Clock.currentTimeMillis
      const claim = claims.get(cacheKey)
      claims.delete(cacheKey)
      // a claim whose lease ended (its render never reached `set`) may be another process's now
      if (claim === undefined || claim.now + leaseMs <= now) {
        yield* store.set(key, { data, windowMs }, { retainMs })
        return
      }
      const bucket = Math.floor(claim.now / windowMs)
      // a render this process claimed after its own `updateTags` is newer than the records that
      // call wrote, even within the same millisecond
      const computedAt = Math.max(claim.now, claim.tagsWrittenAt + 1)
      const committed = yield* store.commit(
        key,
        { data, bucket, fence: claim.fence, windowMs, computedAt },
        claim.token,
        { retainMs, tags: entry.tags }
      )
      if (committed._tag === "Refused") yield* store.release(key, claim.token)
    })

  const run = <A>(effect: Effect.Effect<A, unknown, Store.Redis>, fallback: A): Promise<A> =>
    runtime.runPromiseExit(effect).then((exit) => (exit._tag === "Success" ? exit.value : fallback), () => fallback)

  return {
    get: async (cacheKey, softTags) => {
      const waiting = pending.get(cacheKey)
      if (waiting) await waiting
      return run(lookup(cacheKey, softTags), undefined)
    },
    set: async (cacheKey, pendingEntry) => {
      let done!: () => void
      const settled = new Promise<void>((resolve) => (done = resolve))
      pending.set(cacheKey, settled)
      try {
        const entry = await pendingEntry
        const bytes = await readAll(entry.value)
        await run(store(cacheKey, bytes, entry), undefined)
      } catch {
        // a failed render: the claim's lease lets another process take the key
      } finally {
        if (pending.get(cacheKey) === settled) pending.delete(cacheKey)
        done()
      }
    },
    refreshTags: async () => {},
    // the tags are checked in `get`, against the store's records
    getExpiration: async () => Infinity,
    updateTags: (tags, durations) =>
      run(
        Effect.gen(function*() {
          const store = yield* Store.Redis
          const now = yield* Clock.currentTimeMillis
          const expireMs = durations?.expire === undefined ? 0 : toMs(durations.expire, 0)
          const record: TagRecord = { staleAt: now, expiredAt: durations === undefined ? now : now + expireMs }
          tagsWrittenAt = Math.max(tagsWrittenAt, now)
          yield* Effect.forEach(
            tags,
            (tag) => store.set(tagKey(tag), { data: JSON.stringify(record), windowMs: tagWindowMs }, { retainMs: maxMs }),
            { concurrency: "unbounded", discard: true }
          )
        }),
        undefined
      ),
    close: () => runtime.dispose()
  }
}

/**
 * The handler Next loads from `cacheHandlers`: Redis from the environment (`REDIS_HOST`, …,
 * `TENANT`), or the in-memory store without `REDIS_HOST`.
 *
 * @since 0.1.0
 * @category handlers
 */
const handler: CacheHandler = make()

export default handler
