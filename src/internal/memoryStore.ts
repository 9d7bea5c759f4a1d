/**
 * The fleet protocol on plain maps, for one process. It mirrors the Lua scripts step by step,
 * with `Clock` as the server's time, so `TestClock` drives leases, back-off markers and
 * `retain`. Notices are delivered synchronously to the tenant's subscribers.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Backoff from "./backoff.js"
import * as Keys from "./keys.js"
import { absentMarkMs } from "./store.js"
import type { Claim, Commit, Inspected, Notice, Read, Release, Store, Stored, Subscriber } from "./store.js"

interface Cell {
  readonly value: Stored | number | string | ReadonlySet<string>
  /** Epoch ms after which the cell is gone; `Infinity` for never. */
  readonly expiresAt: number
  /** For a record under a hashed key: the full key it belongs to. */
  readonly full?: string
  /** For a record: the cache key, the lookup's duration and the loader's tags, for inspectors. */
  readonly key?: string
  readonly durationMs?: number | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  /** The next window's value committed early, promoted to the record once its window begins. */
  readonly pending?: { readonly stored: Stored; readonly durationMs: number | undefined } | undefined
  /**
   * Values other versions of the loader (other schema identities) made for the record's own
   * version during a rolling deploy, by identity: each stands while the record is that version.
   */
  readonly beside?: ReadonlyMap<string, Stored> | undefined
}

/** A record written by another version of the loader ("" or none: every version's). */
const other = (r: Stored, schema: string | undefined) =>
  schema !== undefined && schema !== "" && r.schema !== undefined && r.schema !== schema

/** The state of one in-memory "server"; stores of several tenants (or simulated pods) may share one. */
export interface Server {
  readonly cells: Map<string, Cell>
  readonly subscribers: Map<string, Set<Subscriber>>
  sweepAfter: number
  /** `scan` cursors handed out (numbers, as Redis' are) and the record name each page ended at. */
  readonly cursors: Map<string, string>
  nextCursor: number
}

export const makeServer = (): Server => ({ cells: new Map(), subscribers: new Map(), sweepAfter: 1000, cursors: new Map(), nextCursor: 0 })

/** How many scan cursors a server remembers; an older one starts the walk again. */
const maxCursors = 10_000

/** Drops expired cells once as many operations have run as there are cells: O(1) amortised. */
const sweep = (server: Server, now: number) => {
  if (--server.sweepAfter > 0) return
  for (const [k, cell] of server.cells) if (cell.expiresAt <= now) server.cells.delete(k)
  server.sweepAfter = Math.max(1000, server.cells.size)
}

const utf8 = new TextEncoder()

const isRecord = (v: Cell["value"]): v is Stored => typeof v === "object" && !(v instanceof Set)

/** The store's clock in microseconds: the floor of every new version, as on Redis. */
const micros = (now: number) => Math.floor(now * 1000)

/**
 * A new version: above every one issued or written, and at least the store's clock in
 * microseconds, so that it is above every version issued before the key's records were lost.
 */
const nextVersion = (last: number, now: number) => Math.max(last + 1, micros(now))

export const make = (tenant: string, server: Server = makeServer()): Store => {
  const { cells } = server
  const prefix = Keys.tenantPrefix(tenant)

  const live = (k: string, now: number): Cell | undefined => {
    const cell = cells.get(k)
    if (cell !== undefined && cell.expiresAt <= now) {
      cells.delete(k)
      return undefined
    }
    return cell
  }
  const until = (now: number, ms: number) => (ms > 0 ? now + ms : Infinity)
  const num = (k: string, now: number): number | undefined => {
    const v = live(k, now)?.value
    return typeof v === "number" ? v : undefined
  }
  const str = (k: string, now: number): string | undefined => {
    const v = live(k, now)?.value
    return typeof v === "string" ? v : undefined
  }
  /** Promotes a value committed early once its window has begun, as every script does. */
  const promote = (k: string, now: number): Cell | undefined => {
    const cell = live(k, now)
    const p = cell?.pending
    if (cell === undefined || p === undefined || p.stored.bucket > Math.floor(now / p.stored.windowMs)) return cell
    const promoted: Cell = { ...cell, value: p.stored, durationMs: p.durationMs, pending: undefined }
    cells.set(k, promoted)
    return promoted
  }
  const pendingOf = (keys: Keys.Keys, now: number): Stored | undefined => {
    const cell = promote(keys.value, now)
    return cell !== undefined && (cell.full ?? "") === keys.full ? cell.pending?.stored : undefined
  }
  /** The value of version `schema` kept beside the record, while the record is the version it was made for. */
  const besideOf = (keys: Keys.Keys, r: Stored, schema: string, now: number): Stored | undefined => {
    const x = live(keys.value, now)?.beside?.get(schema)
    return x !== undefined && x.bucket === r.bucket && x.fence === r.fence ? x : undefined
  }
  const record = (keys: Keys.Keys, now: number): Stored | undefined => {
    const cell = promote(keys.value, now)
    if (cell === undefined || !isRecord(cell.value) || (cell.full ?? "") !== keys.full) return undefined
    // a window that has not begun cannot have been computed (the clock went back)
    return cell.value.bucket > Math.floor(now / cell.value.windowMs) ? undefined : cell.value
  }
  /** A key's counter or mark takes its record's lifetime: retained, or kept for ever. */
  const follow = (k: string, now: number, retainMs: number) => {
    const cell = live(k, now)
    if (cell !== undefined) cells.set(k, { ...cell, expiresAt: until(now, retainMs) })
  }
  const lastFence = (keys: Keys.Keys, r: Stored | undefined, now: number) =>
    Math.max(num(keys.fence, now) ?? 0, r?.fence ?? 0, pendingOf(keys, now)?.fence ?? 0)
  const markOf = (keys: Keys.Keys, now: number) => num(keys.mark, now) ?? -1
  /** A plain read, as Redis' `HMGET`: the mark as the record carries it, -1 without one. */
  const plainRead = (keys: Keys.Keys, now: number) => {
    const stored = record(keys, now)
    const pending = pendingOf(keys, now)
    return {
      mark: stored === undefined && pending === undefined ? -1 : markOf(keys, now),
      stored: Option.fromNullable(stored),
      pending: Option.fromNullable(pending)
    }
  }
  /**
   * The highest version issued or written: counter, record and mark (a mark more than a minute
   * ahead of the store's clock is foreign, repaired to the others), with the mark as it then is.
   */
  const lastVersion = (keys: Keys.Keys, r: Stored | undefined, now: number, retainMs: number) => {
    const last = lastFence(keys, r, now)
    let mark = markOf(keys, now)
    if (mark > Math.max(last, micros(now + 60_000))) {
      mark = last
      cells.set(keys.mark, { value: mark, expiresAt: until(now, retainMs) })
    }
    return { last: Math.max(last, mark), mark }
  }
  const notify = (notice: Notice) => {
    const subscribers = server.subscribers.get(tenant)
    if (subscribers) for (const s of [...subscribers]) s.onNotice(notice)
  }
  const write = (
    key: string,
    keys: Keys.Keys,
    value: Stored,
    now: number,
    details: { readonly retainMs: number; readonly durationMs?: number | undefined; readonly tags?: ReadonlyArray<string> | undefined }
  ) => {
    // a value committed early stays when it was claimed after this one (a higher fence)
    const p = live(keys.value, now)?.pending
    cells.set(keys.value, {
      value,
      ...(p !== undefined && p.stored.fence > value.fence ? { pending: p } : {}),
      expiresAt: until(now, details.retainMs),
      key,
      durationMs: details.durationMs,
      tags: details.tags,
      ...(keys.full ? { full: keys.full } : {})
    })
  }
  /** A notice's version and value. */
  const told = (key: string, value: Stored, mark: number) => ({
    key,
    bucket: value.bucket,
    fence: value.fence,
    windowMs: value.windowMs,
    computedAt: value.computedAt,
    mark,
    data: Option.some(value.data)
  })
  const committed = (key: string, value: Stored, mark: number) => notify({ _tag: "Committed", ...told(key, value, mark) })

  /** Runs one operation at the store's time, as one atomic step (a script on Redis). */
  const atomically = <A>(f: (now: number) => A) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      sweep(server, now)
      return f(now)
    })

  return {
    tenant,
    kind: "memory",
    health: Effect.succeed("closed"),
    get: (key) =>
      atomically((now): Read => {
        const keys = Keys.make(prefix, key)
        return { now, mark: markOf(keys, now), stored: Option.fromNullable(record(keys, now)) }
      }),
    read: (key) => atomically((now) => plainRead(Keys.make(prefix, key), now)),
    readMany: (many) => atomically((now) => many.map((key) => plainRead(Keys.make(prefix, key), now))),
    claim: (key, o) =>
      atomically((now): Claim => {
        const keys = Keys.make(prefix, key)
        const current = Math.floor(now / o.windowMs)
        // an early claim, for the next window: only while it has not begun
        const early = o.bucket === current + 1
        const bucket = early ? current + 1 : current
        const r = record(keys, now)
        const { last, mark } = lastVersion(keys, r, now, o.retainMs)
        const stored = Option.fromNullable(r)
        let alongside: Stored | undefined
        if (r && !o.force && r.windowMs === o.windowMs && r.bucket >= bucket && r.fence > mark) {
          if (!other(r, o.schema)) return { _tag: "Fresh", now, mark, stored: r }
          // another version's value: ours, kept beside it, or the lock under the record's version
          const x = besideOf(keys, r, o.schema!, now)
          if (x !== undefined) return { _tag: "Fresh", now, mark, stored: x }
          alongside = r
        }
        const p = early && !o.force ? pendingOf(keys, now) : undefined
        if (p && p.windowMs === o.windowMs && p.bucket >= bucket && p.fence > mark) return { _tag: "Fresh", now, mark, stored: p }
        const held = str(keys.lock, now)
        if (held !== undefined) {
          const ttlMs = live(keys.lock, now)!.expiresAt - now
          return held.startsWith("backoff:")
            ? { _tag: "Backoff", now, mark, stored, ttlMs }
            : { _tag: "Busy", now, mark, stored, ttlMs }
        }
        if (alongside !== undefined) {
          cells.set(keys.lock, { value: o.token, expiresAt: now + o.leaseMs })
          return { _tag: "Acquired", now, mark, stored, bucket: alongside.bucket, fence: alongside.fence }
        }
        const fence = nextVersion(last, now)
        // the counter of a key that has no value yet expires, whatever its retain
        cells.set(keys.fence, { value: fence, expiresAt: until(now, r !== undefined || o.retainMs > 0 ? o.retainMs : absentMarkMs) })
        cells.set(keys.lock, { value: o.token, expiresAt: now + o.leaseMs })
        return { _tag: "Acquired", now, mark, stored, bucket, fence }
      }),
    renew: (key, token, leaseMs) =>
      atomically((now) => {
        const keys = Keys.make(prefix, key)
        if (str(keys.lock, now) !== token) return false
        cells.set(keys.lock, { value: token, expiresAt: now + leaseMs })
        return true
      }),
    commit: (key, value, token, details) =>
      atomically((now): Commit => {
        const keys = Keys.make(prefix, key)
        const r = record(keys, now)
        const mark = markOf(keys, now)
        const stored = Option.fromNullable(r)
        const current = Math.floor(now / value.windowMs)
        // only a holder may commit ahead, and only for the next window
        if (value.bucket > current + 1 || (value.bucket > current && token === undefined)) {
          return { _tag: "Refused", reason: "future", now, mark, stored }
        }
        if (r && r.windowMs === value.windowMs && r.bucket === value.bucket && r.fence === value.fence && other(r, value.schema)) {
          // another version's record, of the version we made ours for: ours goes beside it
          const x = besideOf(keys, r, value.schema!, now)
          if (x === undefined || x.computedAt !== value.computedAt) {
            if (token === undefined || str(keys.lock, now) !== token) return { _tag: "Refused", reason: "fenced", now, mark, stored }
            const cell = live(keys.value, now)!
            cells.set(keys.value, {
              ...cell,
              beside: new Map([...(cell.beside ?? []), [value.schema!, value]]),
              expiresAt: details.retainMs > 0 ? until(now, details.retainMs) : cell.expiresAt
            })
          }
          if (token !== undefined && str(keys.lock, now) === token) cells.delete(keys.lock)
          committed(key, value, mark)
          return { _tag: "Committed", now, mark }
        }
        if (token !== undefined) {
          const last = num(keys.fence, now)
          // neither the counter our claim wrote nor our lock is left: the store lost the key's
          // records while we ran, and with them, maybe, a set or another claim that fenced us
          if (last === undefined ? str(keys.lock, now) !== token : value.fence < last) {
            return { _tag: "Refused", reason: "fenced", now, mark, stored }
          }
        }
        if (
          r && r.windowMs === value.windowMs &&
          (value.bucket < r.bucket || (value.bucket === r.bucket && value.fence < r.fence))
        ) {
          return { _tag: "Refused", reason: "older", now, mark, stored }
        }
        if (value.bucket > current) {
          // early: kept beside the current record until its window opens, then promoted
          const p = pendingOf(keys, now)
          if (p && p.windowMs === value.windowMs && (value.bucket < p.bucket || (value.bucket === p.bucket && value.fence < p.fence))) {
            return { _tag: "Refused", reason: "older", now, mark, stored }
          }
          const cell = live(keys.value, now)
          const base: Cell = r !== undefined && cell !== undefined
            ? cell
            : { value: 0, expiresAt: Infinity, key, ...(keys.full ? { full: keys.full } : {}) }
          cells.set(keys.value, {
            ...base,
            expiresAt: until(now, details.retainMs),
            pending: { stored: value, durationMs: details.durationMs }
          })
          cells.delete(keys.failures)
          follow(keys.fence, now, details.retainMs)
          follow(keys.mark, now, details.retainMs)
          if (str(keys.lock, now) === token) cells.delete(keys.lock)
          notify({ _tag: "Pending", ...told(key, value, mark), durationMs: Math.round(details.durationMs ?? 0) })
          return { _tag: "Committed", now, mark, pending: true }
        }
        write(key, keys, value, now, details)
        cells.delete(keys.failures)
        follow(keys.fence, now, details.retainMs)
        follow(keys.mark, now, details.retainMs)
        if (token !== undefined && str(keys.lock, now) === token) cells.delete(keys.lock)
        committed(key, value, mark)
        return { _tag: "Committed", now, mark }
      }),
    unchanged: (key, value, token, details) =>
      atomically((now): Commit => {
        const keys = Keys.make(prefix, key)
        const r = record(keys, now)
        const mark = markOf(keys, now)
        const stored = Option.fromNullable(r)
        if (value.bucket > Math.floor(now / value.windowMs)) return { _tag: "Refused", reason: "future", now, mark, stored }
        if (value.fence < (num(keys.fence, now) ?? 0)) return { _tag: "Refused", reason: "fenced", now, mark, stored }
        if (r === undefined || r.windowMs !== value.windowMs || r.bucket !== value.from.bucket || r.fence !== value.from.fence) {
          return { _tag: "Refused", reason: "changed", now, mark, stored }
        }
        if (value.bucket < r.bucket || (value.bucket === r.bucket && value.fence < r.fence)) {
          return { _tag: "Refused", reason: "older", now, mark, stored }
        }
        const cell = live(keys.value, now)!
        // the payload stays, and so does the identity of the schema that encoded it
        const next: Stored = { ...r, bucket: value.bucket, fence: value.fence, computedAt: value.computedAt }
        write(key, keys, next, now, { retainMs: details.retainMs, durationMs: details.durationMs ?? cell.durationMs, tags: cell.tags })
        cells.delete(keys.failures)
        follow(keys.fence, now, details.retainMs)
        follow(keys.mark, now, details.retainMs)
        if (str(keys.lock, now) === token) cells.delete(keys.lock)
        notify({
          _tag: "Committed",
          key,
          bucket: next.bucket,
          fence: next.fence,
          windowMs: next.windowMs,
          computedAt: next.computedAt,
          mark,
          data: Option.none(),
          from: value.from
        })
        return { _tag: "Committed", now, mark }
      }),
    purge: (key) =>
      atomically((now) => {
        const keys = Keys.make(prefix, key)
        const fence = nextVersion(lastVersion(keys, record(keys, now), now, absentMarkMs).last, now)
        cells.delete(keys.value)
        cells.delete(keys.lock)
        cells.delete(keys.failures)
        cells.set(keys.fence, { value: fence, expiresAt: now + absentMarkMs })
        cells.set(keys.mark, { value: fence, expiresAt: now + absentMarkMs })
        notify({ _tag: "Purged", key, fence })
        return { now, fence }
      }),
    release: (key, token, backoff) =>
      atomically((now): Release => {
        const keys = Keys.make(prefix, key)
        if (str(keys.lock, now) !== token) return { _tag: "Lost", now }
        const base = backoff === undefined ? 0 : Math.max(0, Math.round(backoff.baseMs))
        if (base === 0) {
          cells.delete(keys.lock)
          notify({ _tag: "Released", key })
          return { _tag: "Released", now }
        }
        const max = Math.max(1, Math.round(backoff!.maxMs))
        const n = (num(keys.failures, now) ?? 0) + 1
        const ms = Backoff.delay(n, base, max)
        cells.set(keys.failures, { value: n, expiresAt: now + Math.max(10 * max, 60_000) })
        cells.set(keys.lock, { value: `backoff:${token}`, expiresAt: now + ms })
        return { _tag: "Backoff", now, ms }
      }),
    invalidate: (key, options) =>
      atomically((now) => {
        const keys = Keys.make(prefix, key)
        const r = record(keys, now)
        const issued = num(keys.fence, now) !== undefined
        if (r === undefined && !issued) {
          if (options?.markAbsent === false) return { now, mark: Option.none() }
          // the store may have lost the key's records while processes hold its values, and a
          // value computed without the store (fence 0) may still be written back: the mark is the
          // store's clock, above every version issued before the loss; a commit gives the mark
          // the record's lifetime
          const mark = nextVersion(num(keys.mark, now) ?? 0, now)
          cells.set(keys.mark, { value: mark, expiresAt: now + absentMarkMs })
          notify({ _tag: "Invalidated", key, mark })
          return { now, mark: Option.some(mark) }
        }
        // the mark lives as long as the records do
        const expiresAt = live(keys.value, now)?.expiresAt ?? live(keys.fence, now)?.expiresAt ?? Infinity
        const last = lastVersion(keys, r, now, 0).last
        // a record but no fence counter: a value written back without a fence after the store
        // lost the key's records; versions issued before may be higher than any it holds
        const mark = issued ? last : nextVersion(last, now)
        cells.set(keys.mark, { value: mark, expiresAt })
        if ((num(keys.fence, now) ?? -1) < mark) cells.set(keys.fence, { value: mark, expiresAt })
        notify({ _tag: "Invalidated", key, mark })
        return { now, mark: Option.some(mark) }
      }),
    tag: (key, tags, { retainMs }) =>
      atomically((now) => {
        for (const tag of tags) {
          const name = Keys.tagKey(prefix, tag)
          const current = live(name, now)?.value
          const members = new Set(current instanceof Set ? current : [])
          members.add(key)
          // the set lives as long as its longest-lived member may
          const before = current instanceof Set ? live(name, now)!.expiresAt : now
          cells.set(name, { value: members, expiresAt: Math.max(before, until(now, retainMs)) })
        }
      }),
    tagged: (tag) =>
      atomically((now) => {
        const members = live(Keys.tagKey(prefix, tag), now)?.value
        return members instanceof Set ? [...members] : []
      }),
    untag: (tag, keys) =>
      atomically((now) => {
        const name = Keys.tagKey(prefix, tag)
        const cell = live(name, now)
        if (cell === undefined || !(cell.value instanceof Set)) return
        const members = new Set(cell.value)
        for (const key of keys) members.delete(key)
        if (members.size === 0) cells.delete(name)
        else cells.set(name, { ...cell, value: members })
      }),
    set: (key, value, { retainMs }) =>
      atomically((now) => {
        const keys = Keys.make(prefix, key)
        const bucket = Math.floor(now / value.windowMs)
        const { last, mark } = lastVersion(keys, record(keys, now), now, retainMs)
        const fence = nextVersion(last, now)
        const stored: Stored = {
          data: value.data,
          bucket,
          fence,
          windowMs: value.windowMs,
          computedAt: now,
          ...(value.schema === undefined || value.schema === "" ? {} : { schema: value.schema })
        }
        cells.set(keys.fence, { value: fence, expiresAt: until(now, retainMs) })
        write(key, keys, stored, now, { retainMs })
        cells.delete(keys.failures)
        follow(keys.mark, now, retainMs)
        committed(key, stored, mark)
        return { now, mark, bucket, fence }
      }),
    scan: ({ count, cursor }) =>
      atomically((now) => {
        // records in the order of their names; a cursor stands for the last name listed, so a
        // key present for the whole walk is listed whatever expires or is added meanwhile
        const head = `${prefix}:lockstep:{`
        const after = cursor === undefined ? undefined : server.cursors.get(cursor)
        const names: Array<string> = []
        for (const [name, cell] of cells) {
          if (!name.startsWith(head) || !name.endsWith("}:v") || cell.key === undefined || cell.expiresAt <= now) continue
          if (after !== undefined && name <= after) continue
          names.push(name)
        }
        names.sort()
        const page = names.slice(0, count)
        const keys: Array<Inspected> = page.map((name) => {
          const cell = cells.get(name)!
          const k = Keys.make(prefix, cell.key!)
          const r = record(k, now)
          const lock = str(k.lock, now)
          const ttlMs = lock === undefined ? 0 : live(k.lock, now)!.expiresAt - now
          return {
            key: cell.key!,
            mark: markOf(k, now),
            stored: r === undefined ? Option.none() : Option.some({
              bucket: r.bucket,
              fence: r.fence,
              windowMs: r.windowMs,
              computedAt: r.computedAt,
              size: utf8.encode(r.data).length,
              durationMs: Option.fromNullable(cell.durationMs),
              tags: cell.tags ?? []
            }),
            lock: lock !== undefined && !lock.startsWith("backoff:") ? Option.some({ holder: lock, ttlMs }) : Option.none(),
            backoffMs: lock !== undefined && lock.startsWith("backoff:") ? Option.some(ttlMs) : Option.none()
          }
        })
        if (names.length <= page.length) return { now, keys, cursor: Option.none() }
        const next = String(++server.nextCursor)
        server.cursors.set(next, page[page.length - 1]!)
        if (server.cursors.size > maxCursors) server.cursors.delete(server.cursors.keys().next().value!)
        return { now, keys, cursor: Option.some(next) }
      }),
    subscribe: (subscriber) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let set = server.subscribers.get(tenant)
          if (set === undefined) server.subscribers.set(tenant, set = new Set())
          set.add(subscriber)
          subscriber.onState("up")
        }),
        () => Effect.sync(() => server.subscribers.get(tenant)?.delete(subscriber))
      )
  }
}
