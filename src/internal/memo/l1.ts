/**
 * The process's view of values: the bounded L1 map, and what it has heard of newer versions.
 *
 * - `publish` never lets a key go back to an older `(bucket, fence)` of the same window length.
 * - An entry may answer hits up to `freshThrough`; that is its bucket when the store said it is
 *   the latest value, or -1 when it is not trusted: invalidated, superseded by a newer commit
 *   heard of, or learnt while the notice subscription was down (a notice may have been missed).
 * - Versions heard from notices are kept in a second bounded map, so that a reply that was on
 *   its way when the notice arrived cannot make an older value fresh again.
 */
import type { Info } from "../../Memo.js"
import * as Metrics from "../../Metrics.js"

/** How a stored value is decoded: kept with entries so a notice's value can be read. */
export type Decode = (data: string) => { readonly ok: true; readonly value: unknown } | { readonly ok: false }

/** Answers by kind for one key in this process. */
export interface Served {
  readonly hit: number
  readonly stale: number
  readonly miss: number
}

export interface Entry {
  /*
   * The fields a fresh hit reads come first, in the order it reads them: an entry is about 140
   * bytes, and with 10 000 keys it is rarely in the CPU cache, so the hit touches one or two
   * cache lines of it instead of three. Every literal below keeps this order (V8 lays fields out
   * in the order a literal gives them).
   */
  /**
   * The next window's value, committed early: it takes the entry's place once its window has
   * begun (`promote`), with no store call. Dropped when a value with a higher fence is published
   * or heard of, as the store drops it.
   */
  next: Entry | undefined
  readonly windowMs: number
  /** The bucket this entry answers hits in (its own, when trusted); `untrusted` when it answers none. */
  readonly freshThrough: number
  /** This process's answers for the key, carried across its entries (fields, not an object: the hit path is hot). */
  hits: number
  readonly value: unknown
  /** The Promise facade's hit answer: an already-resolved promise of the value, made once per entry. */
  resolved: Promise<unknown> | undefined
  readonly bucket: number
  readonly fence: number
  readonly computedAt: number
  readonly decode: Decode
  stales: number
  misses: number
  /** No background refresh before this instant (back-off, Redis unreachable), on the runtime's clock. */
  retryAt: number
  /** Lookup failures in a row while the store was unreachable, which size the local back-off. */
  localFailures: number
}

/** A value about to be published, and whether the store vouched for it being the latest. */
export interface Candidate {
  readonly value: unknown
  readonly bucket: number
  readonly fence: number
  readonly computedAt: number
  readonly windowMs: number
  readonly decode: Decode
  /** The store said it is the latest value of its window (a `Fresh` claim, our own commit). */
  readonly latest: boolean
  /** The key's invalidation mark in that same answer. */
  readonly mark: number
  /**
   * Computed by this process while the store was unreachable: nobody vouched for it, so it
   * answers no hit until the store confirms it (a claim or read that finds it the latest).
   */
  readonly local?: boolean
}

interface Heard {
  readonly windowMs: number
  readonly bucket: number
  readonly fence: number
  readonly mark: number
  /** The fence of the key's last purge (-1: none heard): no value at or below it is kept. */
  readonly purged: number
}

export interface L1 {
  readonly entries: Map<string, Entry>
  readonly publish: (key: string, candidate: Candidate) => Entry
  /**
   * Keeps a value committed early for the next window beside the key's entry (nothing when no
   * entry of its window length is held: the store is asked at the boundary).
   */
  readonly publishPending: (key: string, candidate: Candidate) => void
  /** The key's entry, its early value in its place when the window `bucket` has reached it. */
  readonly promote: (key: string, bucket: number) => Entry | undefined
  /** Takes hit answers away from the key's entry (and its early value, unless `pendingToo` is false). */
  readonly distrust: (key: string, pendingToo?: boolean) => void
  /** Notices may have been missed: no entry answers hits until the store confirms it again. */
  readonly setTrusted: (trusted: boolean) => void
  readonly trusted: () => boolean
  /** A commit heard of: entries older than it are no longer the latest. */
  readonly heardCommit: (key: string, windowMs: number, bucket: number, fence: number, mark: number) => void
  /** An invalidation heard of: entries with a fence at or below `mark` are stale. */
  readonly heardInvalidation: (key: string, mark: number) => void
  /**
   * A purge heard of: the key's entry goes, and no value with a fence at or below `fence` is
   * kept again (a reply or a run that was on its way when the purge came).
   */
  readonly heardPurge: (key: string, fence: number) => void
  /** The fence of the key's last purge heard of, or -1. */
  readonly purgedThrough: (key: string) => number
  /** The clock was corrected: entries of windows that have not begun go (a value made while ahead). */
  readonly dropAhead: (nowMs: number) => void
  readonly setRetry: (key: string, at: number) => void
  /**
   * The key's entry when it may be put back into a store that lost it: the store once vouched
   * for it (a fence of its own), it is of `bucket`, and nothing heard says it is invalidated or
   * superseded.
   */
  readonly restorable: (key: string, windowMs: number, bucket: number) => Entry | undefined
  /** How many versions it remembers having heard of (bounded like the entries). */
  readonly heardSize: () => number
}

/**
 * The `freshThrough` of an entry that answers no hit: below every bucket, those of a clock
 * before 1970 included.
 */
export const Untrusted = Number.NEGATIVE_INFINITY

export const isTrusted = (e: Entry): boolean => e.freshThrough !== Untrusted

/**
 * Whether an entry answers a hit in the window `bucket`: trusted, and of that window or the next
 * (this process's clock may be a little behind the store's, within the skew it does not correct).
 * An entry further ahead means our clock went back: the store is asked.
 */
export const isHit = (entry: Entry, bucket: number): boolean => {
  const ahead = entry.freshThrough - bucket
  return ahead === 0 || ahead === 1
}

/** An unnamed loader's hit count. */
export const countL1: () => void = Metrics.requestsCounter([Metrics.label("result", "l1")])

/**
 * The fresh-hit path, shared by `Memo` and the Promise facade: the entry of `key` when it
 * answers a hit at `now` (the store's clock) for a loader of `windowMs`, counted as one.
 */
export const hit = (
  l1: L1,
  key: string,
  windowMs: number,
  now: number,
  storeNow: number,
  count: () => void = countL1
): Entry | undefined => {
  let held = l1.entries.get(key)
  // the next window's value, committed early, takes over at the store's boundary
  if (held?.next !== undefined) held = l1.promote(key, Math.floor(storeNow / windowMs))
  if (held === undefined || held.windowMs !== windowMs) return undefined
  const ahead = held.freshThrough - Math.floor(now / windowMs)
  if (ahead !== 0 && ahead !== 1) return undefined
  count()
  held.hits++
  return held
}

/** What an answer tells of the key's next value. */
export interface Expect {
  /** The next window's value is (or will be) computed before its boundary. */
  readonly early: boolean
  /** The key's measured run time (0 before any). */
  readonly runMs: number
}

/** An entry as a loader answers it at `now` (the store's clock). */
export const info = <A>(entry: Entry, cache: "hit" | "stale" | "miss", now: number, next: Expect): Info<A> => {
  const bucket = Math.floor(now / entry.windowMs)
  const stale = !isHit(entry, bucket)
  const nextBoundary = (Math.max(bucket, entry.bucket) + 1) * entry.windowMs
  return {
    value: entry.value as A,
    bucket: entry.bucket,
    computedAt: entry.computedAt,
    stale,
    nextBoundary,
    cache: cache === "hit" && stale ? "stale" : cache,
    windowMs: entry.windowMs,
    serverNow: now,
    nextValueAt: stale ? now + next.runMs : nextBoundary + (next.early ? 0 : next.runMs)
  }
}

/** The entry's answer counts, as inspectors show them. */
export const served = (e: Entry): Served => ({ hit: e.hits, stale: e.stales, miss: e.misses })

const newer = (a: { bucket: number; fence: number }, b: { bucket: number; fence: number }) =>
  a.bucket > b.bucket || (a.bucket === b.bucket && a.fence > b.fence)

export const make = (capacity: number): L1 => {
  const entries = new Map<string, Entry>()
  const heard = new Map<string, Heard>()
  let trusted = true

  const remember = (key: string, h: Heard) => {
    heard.delete(key)
    heard.set(key, h)
    if (heard.size > capacity) heard.delete(heard.keys().next().value!)
  }

  const replace = (key: string, entry: Entry) => {
    entries.delete(key)
    entries.set(key, entry)
    if (entries.size > capacity) entries.delete(entries.keys().next().value!)
    Metrics.l1Entries.unsafeUpdate(entries.size, [])
  }

  // the counters move with the entry: the untrusted copy replaces it
  const untrusted = (e: Entry): Entry => (isTrusted(e) ? { ...e, freshThrough: Untrusted } : e)

  const isLatest = (key: string, c: Candidate) => {
    let h = heard.get(key)
    if (c.mark > (h?.mark ?? -1)) {
      // an answer's mark is an invalidation heard of, as much as a notice's
      h = { windowMs: h?.windowMs ?? 0, bucket: h?.bucket ?? -1, fence: h?.fence ?? -1, mark: c.mark, purged: h?.purged ?? -1 }
      remember(key, h)
    }
    // a value made without the store is trusted only once the store confirms it: an
    // invalidation the outage hid may have come after it
    return c.latest && trusted && c.local !== true && c.fence > c.mark &&
      (h === undefined || (c.fence > h.mark && (h.windowMs !== c.windowMs || !newer(h, c))))
  }

  const publish = (key: string, c: Candidate): Entry => {
    const current = entries.get(key)
    const sameWindow = current !== undefined && current.windowMs === c.windowMs
    if (sameWindow && newer(current, c)) return current
    const latest = isLatest(key, c)
    // purged: the value answers the request it was on its way to, and is not kept
    const purged = heard.get(key)?.purged ?? -1
    const gone = c.fence <= purged && c.local !== true
    const equal = sameWindow && current.bucket === c.bucket && current.fence === c.fence
    const pending = sameWindow ? current.next : undefined
    const entry: Entry = {
      // an early value stays only while it is ahead of this one and was claimed after it
      next: pending !== undefined && newer(pending, c) && pending.fence > c.fence ? pending : undefined,
      windowMs: c.windowMs,
      freshThrough: latest ? c.bucket : Untrusted,
      hits: current?.hits ?? 0,
      value: c.value,
      resolved: undefined,
      bucket: c.bucket,
      fence: c.fence,
      computedAt: c.computedAt,
      decode: c.decode,
      stales: current?.stales ?? 0,
      misses: current?.misses ?? 0,
      // the same value again keeps its back-off; a newer one is a success
      retryAt: equal ? current.retryAt : 0,
      localFailures: equal ? current.localFailures : 0
    }
    if (gone) return { ...entry, freshThrough: Untrusted }
    replace(key, entry)
    return entry
  }

  const publishPending = (key: string, c: Candidate) => {
    const current = entries.get(key)
    if (current === undefined || current.windowMs !== c.windowMs || !newer(c, current)) return
    if (current.next !== undefined && !newer(c, current.next)) return
    current.next = {
      next: undefined,
      windowMs: c.windowMs,
      freshThrough: isLatest(key, c) ? c.bucket : Untrusted,
      hits: 0,
      value: c.value,
      resolved: undefined,
      bucket: c.bucket,
      fence: c.fence,
      computedAt: c.computedAt,
      decode: c.decode,
      stales: 0,
      misses: 0,
      retryAt: 0,
      localFailures: 0
    }
  }

  const promote = (key: string, bucket: number): Entry | undefined => {
    const e = entries.get(key)
    const n = e?.next
    if (e === undefined || n === undefined || n.bucket > bucket) return e
    const promoted: Entry = { ...n, hits: e.hits, stales: e.stales, misses: e.misses }
    replace(key, promoted)
    return promoted
  }

  const distrust = (key: string, pendingToo = true) => {
    const e = entries.get(key)
    if (e === undefined) return
    const next = e.next !== undefined && pendingToo ? untrusted(e.next) : e.next
    if (isTrusted(e)) entries.set(key, { ...untrusted(e), next })
    else e.next = next
  }

  return {
    entries,
    publish,
    publishPending,
    promote,
    distrust,
    trusted: () => trusted,
    setTrusted: (next) => {
      if (!next) for (const key of [...entries.keys()]) distrust(key)
      trusted = next
    },
    heardCommit: (key, windowMs, bucket, fence, mark) => {
      const h = heard.get(key)
      const version = { bucket, fence }
      if (h === undefined || h.windowMs !== windowMs || newer(version, h) || mark > h.mark) {
        const keep = h !== undefined && h.windowMs === windowMs && newer(h, version)
        remember(key, {
          windowMs,
          ...(keep ? { bucket: h.bucket, fence: h.fence } : version),
          mark: Math.max(mark, h?.mark ?? -1),
          purged: h?.purged ?? -1
        })
      }
      const e = entries.get(key)
      if (e !== undefined && e.windowMs === windowMs && newer(version, e)) distrust(key, false)
      // the store keeps an early value only when it was claimed after what was written since
      const n = entries.get(key)
      if (n?.next !== undefined && n.windowMs === windowMs && fence >= n.next.fence && !(bucket === n.next.bucket && fence === n.next.fence)) {
        n.next = undefined
      }
    },
    heardInvalidation: (key, mark) => {
      const h = heard.get(key)
      if (h === undefined || mark > h.mark) {
        remember(key, { windowMs: h?.windowMs ?? 0, bucket: h?.bucket ?? -1, fence: h?.fence ?? -1, mark, purged: h?.purged ?? -1 })
      }
      const e = entries.get(key)
      if (e !== undefined && e.fence <= mark) distrust(key, false)
      const n = entries.get(key)?.next
      if (n !== undefined && n.fence <= mark) entries.get(key)!.next = untrusted(n)
    },
    heardPurge: (key, fence) => {
      const h = heard.get(key)
      if (h === undefined || fence > h.purged) {
        remember(key, {
          windowMs: h?.windowMs ?? 0,
          bucket: h?.bucket ?? -1,
          fence: h?.fence ?? -1,
          mark: Math.max(fence, h?.mark ?? -1),
          purged: fence
        })
      }
      const e = entries.get(key)
      if (e !== undefined && (e.fence <= fence || e.fence === 0)) {
        entries.delete(key)
        Metrics.l1Entries.unsafeUpdate(entries.size, [])
      }
    },
    purgedThrough: (key) => heard.get(key)?.purged ?? -1,
    dropAhead: (nowMs) => {
      for (const [key, e] of entries) if (e.bucket > Math.floor(nowMs / e.windowMs)) entries.delete(key)
      Metrics.l1Entries.unsafeUpdate(entries.size, [])
    },
    setRetry: (key, at) => {
      const e = entries.get(key)
      if (e !== undefined) e.retryAt = at
    },
    restorable: (key, windowMs, bucket) => {
      const e = entries.get(key)
      if (e === undefined || e.windowMs !== windowMs || e.bucket !== bucket || e.fence <= 0) return undefined
      const h = heard.get(key)
      if (h !== undefined && (e.fence <= h.mark || (h.windowMs === windowMs && newer(h, e)))) return undefined
      return e
    },
    heardSize: () => heard.size
  }
}
