/**
 * The store contract: one suite that every `Redis` store must pass, the in-memory one included.
 * Test files call `contract(case)` for each store they stand up.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema, type Scope } from "effect"
import { Memo, Redis } from "../../src/index.js"
import { absentMarkMs } from "../../src/internal/store.js"
import { freshTenant, type StoreCase } from "./stores.js"

const W = 60_000 // long enough that no test crosses a window by accident
const LEASE = 300
const forever = { retainMs: 0 }

const stored = (bucket: number, fence: number, data = JSON.stringify({ n: bucket }), windowMs = W): Redis.Stored => ({
  data,
  bucket,
  fence,
  windowMs,
  computedAt: bucket * windowMs + 1
})

/** A page of `scan` (the type is not exported by `Redis`). */
type Scanned = Effect.Effect.Success<ReturnType<Redis.Store["scan"]>>

const claimOf = (store: Redis.Store, key: string, token: string, force = false, retainMs = 0) =>
  store.claim(key, { windowMs: W, leaseMs: LEASE, token, force, retainMs })

const acquire = (store: Redis.Store, key: string, token: string, force = false, retainMs = 0) =>
  Effect.flatMap(claimOf(store, key, token, force, retainMs), (c) =>
    c._tag === "Acquired" ? Effect.succeed(c) : Effect.dieMessage(`expected Acquired, got ${c._tag}`))

/** Claims, commits a value and answers its record. */
const put = (store: Redis.Store, key: string, data = "1") =>
  Effect.gen(function*() {
    const a = yield* acquire(store, key, "put")
    const value = stored(a.bucket, a.fence, data)
    expect((yield* store.commit(key, value, "put", forever))._tag).toBe("Committed")
    return value
  })

/** Collects the notices a store delivers while `body` runs (and a little after, for Redis). */
const noticesDuring = <A, E>(store: Redis.Store, c: StoreCase, body: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const notices: Array<Redis.Notice> = []
    const states: Array<string> = []
    yield* store.subscribe({ onNotice: (n) => notices.push(n), onState: (s) => states.push(s) })
    yield* c.settle(() => states.includes("up"))
    const result = yield* body
    return { result, notices, states, settle: (n: number) => c.settle(() => notices.length >= n) }
  })

export const contract = (c: StoreCase) =>
  describe(`Redis contract: ${c.name}`, () => {
    const withStore = <A, E>(f: (store: Redis.Store) => Effect.Effect<A, E, Scope.Scope>, tenant = freshTenant()) =>
      Effect.flatMap(Redis.Redis, f).pipe(Effect.provide(c.layer(tenant)), Effect.scoped)

    it.effect("an unknown key holds nothing", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const got = yield* store.get("nothing-here")
          expect(Option.isNone(got.stored)).toBe(true)
          expect(got.mark).toBe(-1)
        })
      ))

    it.effect("the first claim acquires a fence in the store's current window; others are busy", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          expect(a.fence).toBeGreaterThanOrEqual(1)
          expect(Number.isSafeInteger(a.fence)).toBe(true)
          expect(a.bucket).toBe(Math.floor(a.now / W))
          const b = yield* claimOf(store, "k", "B")
          expect(b._tag).toBe("Busy")
          if (b._tag === "Busy") {
            expect(b.ttlMs).toBeGreaterThan(0)
            expect(b.ttlMs).toBeLessThanOrEqual(LEASE)
          }
        })
      ))

    it.effect("a committed value is fresh for the rest of its window, and claims then take no lock", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          const commit = yield* store.commit("k", stored(a.bucket, a.fence), "A", forever)
          expect(commit._tag).toBe("Committed")
          const got = yield* store.get("k")
          expect(Option.getOrThrow(got.stored)).toEqual(stored(a.bucket, a.fence))
          const again = yield* claimOf(store, "k", "B")
          expect(again._tag).toBe("Fresh")
          // the commit released the lock: a forced claim acquires at once, with a newer fence
          const forced = yield* acquire(store, "k", "C", true)
          expect(forced.fence).toBeGreaterThan(a.fence)
        })
      ))

    it.effect("a holder whose lease lapsed and was taken over cannot commit (fencing)", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          yield* c.advance(LEASE + 50)
          const b = yield* acquire(store, "k", "B")
          expect(b.fence).toBeGreaterThan(a.fence)
          expect(yield* store.renew("k", "A", LEASE)).toBe(false)
          const late = yield* store.commit("k", stored(a.bucket, a.fence, "\"late\""), "A", forever)
          expect(late).toMatchObject({ _tag: "Refused", reason: "fenced" })
          expect((yield* store.commit("k", stored(b.bucket, b.fence, "\"new\""), "B", forever))._tag).toBe("Committed")
          expect(Option.getOrThrow((yield* store.get("k")).stored).data).toBe("\"new\"")
        })
      ))

    it.effect("(bucket, fence) never goes backwards; an equal retry is accepted", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          const current = stored(a.bucket, a.fence)
          expect((yield* store.commit("k", current, "A", forever))._tag).toBe("Committed")
          expect((yield* store.commit("k", current, "A", forever))._tag).toBe("Committed")
          const older = yield* store.commit("k", stored(a.bucket - 1, 99), undefined, forever)
          expect(older).toMatchObject({ _tag: "Refused", reason: "older" })
          if (older._tag === "Refused") expect(Option.getOrThrow(older.stored)).toEqual(current)
          const lowerFence = yield* store.commit("k", stored(a.bucket, 0), undefined, forever)
          expect(lowerFence).toMatchObject({ _tag: "Refused", reason: "older" })
          expect(Option.getOrThrow((yield* store.get("k")).stored)).toEqual(current)
        })
      ))

    it.effect("nobody can write a window that has not begun on the store's clock", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const { now } = yield* store.get("k")
          const future = yield* store.commit("k", stored(Math.floor(now / W) + 60, 0), undefined, forever)
          expect(future).toMatchObject({ _tag: "Refused", reason: "future" })
          expect(Option.isNone((yield* store.get("k")).stored)).toBe(true)
        })
      ))

    it.effect("renewal keeps the lease alive past its first term", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* acquire(store, "k", "A")
          for (let i = 0; i < 4; i++) {
            yield* c.advance(LEASE / 2)
            expect(yield* store.renew("k", "A", LEASE)).toBe(true)
          }
          const other = yield* claimOf(store, "k", "B")
          expect(other._tag).toBe("Busy")
          expect(yield* store.renew("k", "B", LEASE)).toBe(false)
        })
      ))

    it.effect("a failed holder leaves a back-off marker that expires; a released lock frees at once", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* acquire(store, "k", "A")
          const marked = yield* store.release("k", "A", { baseMs: 200, maxMs: 1000 })
          expect(marked).toMatchObject({ _tag: "Backoff", ms: 200 })
          const during = yield* claimOf(store, "k", "B")
          expect(during._tag).toBe("Backoff")
          yield* c.advance(260)
          yield* acquire(store, "k", "B")
          expect((yield* store.release("k", "B"))._tag).toBe("Released")
          yield* acquire(store, "k", "C")
          // releasing a lock that is not ours does nothing
          expect((yield* store.release("k", "B"))._tag).toBe("Lost")
          expect((yield* claimOf(store, "k", "D"))._tag).toBe("Busy")
        })
      ))

    it.effect("back-off doubles with each failure across the fleet, up to its cap; a commit resets it", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const ttls: Array<number> = []
          const replies: Array<number> = []
          for (const token of ["A", "B", "C", "D"]) {
            yield* acquire(store, "k", token)
            const released = yield* store.release("k", token, { baseMs: 100, maxMs: 350 })
            if (released._tag === "Backoff") replies.push(released.ms)
            const marker = yield* claimOf(store, "k", "probe")
            if (marker._tag !== "Backoff") return yield* Effect.dieMessage(`expected Backoff, got ${marker._tag}`)
            ttls.push(marker.ttlMs)
            yield* c.advance(marker.ttlMs + 20)
          }
          // the release says how long (the one formula, in the store); PTTL counts down from it
          const expected = [100, 200, 350, 350]
          expect(replies).toEqual(expected)
          ttls.forEach((ttl, i) => {
            expect(ttl, `marker ${i + 1}`).toBeLessThanOrEqual(expected[i]!)
            expect(ttl, `marker ${i + 1}`).toBeGreaterThan(expected[i]! - 80)
          })
          const e = yield* acquire(store, "k", "E")
          yield* store.commit("k", stored(e.bucket, e.fence), "E", forever)
          const f = yield* acquire(store, "k", "F", true)
          expect(yield* store.release("k", "F", { baseMs: 100, maxMs: 350 })).toMatchObject({ _tag: "Backoff", ms: 100 })
          expect(f.fence).toBeGreaterThan(e.fence)
        })
      ))

    it.effect("a value stored under another window length is not fresh and may be replaced", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          yield* store.commit("k", stored(a.bucket, a.fence), "A", forever)
          const other = yield* store.claim("k", { windowMs: 1000, leaseMs: LEASE, token: "B", force: false, retainMs: 0 })
          expect(other._tag).toBe("Acquired")
          if (other._tag !== "Acquired") return
          const commit = yield* store.commit("k", stored(other.bucket, other.fence, "\"short\"", 1000), "B", forever)
          expect(commit._tag).toBe("Committed")
        })
      ))

    it.effect("invalidation keeps the value but makes it stale; the next claim recomputes with a newer fence", () =>
      withStore((store) =>
        Effect.gen(function*() {
          expect(Option.isNone((yield* store.invalidate("nothing", { markAbsent: false })).mark)).toBe(true)
          const before = yield* put(store, "k", "\"before\"")
          const inv = yield* store.invalidate("k")
          expect(inv.mark).toEqual(Option.some(before.fence))
          const read = yield* store.get("k")
          expect(read.mark).toBe(before.fence)
          expect(Option.getOrThrow(read.stored).data).toBe("\"before\"")
          const claim = yield* claimOf(store, "k", "A")
          expect(claim._tag).toBe("Acquired") // not fresh any more, though of this window
          if (claim._tag !== "Acquired") return
          expect(claim.fence).toBeGreaterThan(before.fence)
          expect(Option.getOrThrow(claim.stored).data).toBe("\"before\"")
          yield* store.commit("k", stored(claim.bucket, claim.fence, "\"after\""), "A", forever)
          expect((yield* claimOf(store, "k", "B"))._tag).toBe("Fresh")
        })
      ))

    it.effect("invalidating a key with nothing stored keeps a value written back later stale", () =>
      withStore((store) =>
        Effect.gen(function*() {
          // a value computed without the store (fence 0) before the invalidation
          const bucket = Math.floor((yield* store.get("k")).now / W)
          const mark = Option.getOrThrow((yield* store.invalidate("k")).mark)
          expect(mark).toBeGreaterThanOrEqual(0)
          expect((yield* store.get("k")).mark).toBe(mark)
          expect((yield* store.commit("k", stored(bucket, 0), undefined, forever))._tag).toBe("Committed")
          const read = yield* store.get("k")
          expect(Option.getOrThrow(read.stored).fence).toBe(0)
          expect(read.mark).toBe(mark) // fence 0 is not above it: stale
          expect((yield* claimOf(store, "k", "A"))._tag).toBe("Acquired")
        })
      ))

    it.effect("a lookup that started before an invalidation may store its value, but not as fresh", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* put(store, "k")
          const running = yield* acquire(store, "k", "A", true)
          const inv = yield* store.invalidate("k")
          expect(inv.mark).toEqual(Option.some(running.fence))
          const commit = yield* store.commit("k", stored(running.bucket, running.fence, "\"late\""), "A", forever)
          expect(commit).toMatchObject({ _tag: "Committed", mark: running.fence })
          const next = yield* claimOf(store, "k", "B")
          expect(next._tag).toBe("Acquired")
        })
      ))

    it.effect("set stores the current window's value with a new fence; a running lookup's commit is then fenced", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const running = yield* acquire(store, "k", "A")
          const written = yield* store.set("k", { data: "\"set\"", windowMs: W }, forever)
          expect(written.fence).toBeGreaterThan(running.fence)
          expect(written.bucket).toBe(Math.floor(written.now / W))
          expect((yield* claimOf(store, "k", "B"))._tag).toBe("Fresh")
          const late = yield* store.commit("k", stored(running.bucket, running.fence), "A", forever)
          expect(late).toMatchObject({ _tag: "Refused", reason: "fenced" })
          expect(Option.getOrThrow((yield* store.get("k")).stored)).toMatchObject({ data: "\"set\"", fence: written.fence })
          // after an invalidation, set is fresh again
          yield* store.invalidate("k")
          yield* store.set("k", { data: "\"again\"", windowMs: W }, forever)
          expect((yield* claimOf(store, "k", "C"))._tag).toBe("Fresh")
        })
      ))

    it.effect("readMany answers what read answers, key by key, in the order asked (hashed keys and keys of many slots included)", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const long = "k".repeat(300)
          const keys = ["a", "nothing", long, "b", "a"]
          yield* put(store, "a", "\"A\"")
          yield* put(store, long, "\"long\"")
          yield* put(store, "b", "\"B\"")
          yield* store.invalidate("b")
          const many = yield* store.readMany(keys)
          const one = yield* Effect.forEach(keys, (k) => store.read(k))
          expect(many).toEqual(one)
          expect(many.map((r) => Option.map(r.stored, (s) => s.data))).toEqual([
            Option.some("\"A\""),
            Option.none(),
            Option.some("\"long\""),
            Option.some("\"B\""),
            Option.some("\"A\"")
          ])
          expect(many[3]!.mark).toBeGreaterThan(-1)
          expect(yield* store.readMany([])).toEqual([])
        })
      ))

    it.effect("unchanged gives the stored record a new version without its payload, as a commit would, and tells the fleet", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const { notices, result, settle } = yield* noticesDuring(store, c, Effect.gen(function*() {
            const first = yield* put(store, "k", "\"payload\"")
            yield* store.invalidate("k")
            const next = yield* acquire(store, "k", "B")
            const version = { bucket: next.bucket, fence: next.fence, windowMs: W, computedAt: next.now }
            // a version of another record, or an older fence, is not taken
            const other = yield* store.unchanged("k", { ...version, from: { bucket: first.bucket, fence: first.fence + 5 } }, "B", forever)
            expect(other).toMatchObject({ _tag: "Refused", reason: "changed" })
            expect(Option.getOrThrow(other._tag === "Refused" ? other.stored : Option.none())).toMatchObject({ data: "\"payload\"" })
            const stale = yield* store.unchanged("k", { ...version, fence: first.fence, from: first }, "B", forever)
            expect(stale).toMatchObject({ _tag: "Refused", reason: "fenced" })
            expect(yield* store.unchanged("k", { ...version, from: first }, "B", forever)).toMatchObject({ _tag: "Committed", mark: first.fence })
            return { first, next }
          }))
          const { first, next } = result
          const now = Option.getOrThrow((yield* store.get("k")).stored)
          expect(now).toEqual({ data: "\"payload\"", bucket: next.bucket, fence: next.fence, windowMs: W, computedAt: next.now })
          // fresh, and the lock was released
          expect((yield* claimOf(store, "k", "C"))._tag).toBe("Fresh")
          yield* settle(3)
          const last = notices[notices.length - 1]!
          expect(last).toMatchObject({ _tag: "Committed", key: "k", fence: next.fence, data: Option.none(), from: { bucket: first.bucket, fence: first.fence } })
          // a record that is gone cannot stand: the caller must send the value whole
          yield* store.purge("k")
          const after = yield* acquire(store, "k", "D")
          const gone = yield* store.unchanged("k", { bucket: after.bucket, fence: after.fence, windowMs: W, computedAt: after.now, from: next }, "D", forever)
          expect(gone).toMatchObject({ _tag: "Refused", reason: "changed", stored: Option.none() })
        })
      ))

    it.effect("purge removes the record and the lock, fences a running lookup, and the next claim is cold with a newer fence", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const { notices, result: purged, settle } = yield* noticesDuring(store, c, Effect.gen(function*() {
            yield* put(store, "k")
            const running = yield* acquire(store, "k", "A", true)
            const purged = yield* store.purge("k")
            expect(purged.fence).toBeGreaterThan(running.fence)
            expect(Option.isNone((yield* store.get("k")).stored)).toBe(true)
            expect(yield* store.renew("k", "A", LEASE)).toBe(false)
            const late = yield* store.commit("k", stored(running.bucket, running.fence, "\"late\""), "A", forever)
            expect(late).toMatchObject({ _tag: "Refused", reason: "fenced" })
            expect(Option.isNone((yield* store.get("k")).stored)).toBe(true)
            return purged
          }))
          const next = yield* acquire(store, "k", "B")
          expect(next.fence).toBeGreaterThan(purged.fence)
          expect(Option.isNone(next.stored)).toBe(true)
          expect((yield* store.commit("k", stored(next.bucket, next.fence), "B", forever))._tag).toBe("Committed")
          expect((yield* claimOf(store, "k", "C"))._tag).toBe("Fresh")
          yield* settle(2)
          expect(notices.filter((n) => n._tag === "Purged")).toEqual([{ _tag: "Purged", key: "k", fence: purged.fence }])
          // purging a key that holds nothing is harmless, and fences still go up
          expect((yield* store.purge("never")).fence).toBeGreaterThan(0)
        })
      ))

    it.effect("tags find the keys they were given to", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.tag("a", ["red", "big"], forever)
          yield* store.tag("b", ["red"], forever)
          yield* store.tag("c\uD800", ["red"], forever)
          expect([...(yield* store.tagged("red"))].sort()).toEqual(["a", "b", "c\uD800"].sort())
          expect(yield* store.tagged("big")).toEqual(["a"])
          expect(yield* store.tagged("none")).toEqual([])
        })
      ))

    it.effect("untag takes keys out of a tag's set, and only those", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.tag("a", ["red"], forever)
          yield* store.tag("b\uD800", ["red"], forever)
          yield* store.untag("red", ["a", "not a member"])
          expect(yield* store.tagged("red")).toEqual(["b\uD800"])
          yield* store.untag("red", ["b\uD800"])
          expect(yield* store.tagged("red")).toEqual([])
          yield* store.untag("none", [])
        })
      ))

    describe("early commits (the next window's value, before its boundary)", () => {
      const PW = 1_000
      const early = (store: Redis.Store, key: string, token: string, bucket: number) =>
        store.claim(key, { windowMs: PW, leaseMs: 5_000, token, force: false, retainMs: 0, bucket })
      const at = (bucket: number, fence: number, data: string) =>
        ({ data, bucket, fence, windowMs: PW, computedAt: bucket * PW - 100 }) satisfies Redis.Stored
      /** A window with at least 600 ms left, its current value committed; answers its bucket. */
      const begin = (store: Redis.Store, key: string) =>
        Effect.gen(function*() {
          const { now } = yield* store.get(key)
          const left = (Math.floor(now / PW) + 1) * PW - now
          if (left < 600) yield* c.advance(left + 20)
          const a = yield* store.claim(key, { windowMs: PW, leaseMs: 5_000, token: "cur", force: false, retainMs: 0 })
          if (a._tag !== "Acquired") return yield* Effect.dieMessage(`expected Acquired, got ${a._tag}`)
          expect((yield* store.commit(key, at(a.bucket, a.fence, "\"current\""), "cur", forever))._tag).toBe("Committed")
          return a.bucket
        })
      const untilBoundary = (store: Redis.Store, key: string) =>
        Effect.flatMap(store.get(key), ({ now }) => c.advance((Math.floor(now / PW) + 1) * PW - now + 20))

      it.effect("the current value answers until the next window opens by the store's clock, then the early one, with no new run", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const n = yield* begin(store, "k")
            const claimed = yield* early(store, "k", "E", n + 1)
            if (claimed._tag !== "Acquired") return yield* Effect.dieMessage(claimed._tag)
            expect(claimed.bucket).toBe(n + 1)
            const f = claimed.fence
            const commit = yield* store.commit("k", at(n + 1, f, "\"next\""), "E", { retainMs: 0, durationMs: 321 })
            expect(commit).toMatchObject({ _tag: "Committed", pending: true })
            // before the boundary: the current value, fresh; the early one waits beside it
            expect(Option.getOrThrow((yield* store.get("k")).stored).data).toBe("\"current\"")
            const read = yield* store.read("k")
            expect(Option.getOrThrow(read.stored).data).toBe("\"current\"")
            expect(Option.getOrThrow(read.pending)).toMatchObject({ bucket: n + 1, fence: f, data: "\"next\"" })
            const now = yield* store.claim("k", { windowMs: PW, leaseMs: 5_000, token: "Y", force: false, retainMs: 0 })
            expect(now).toMatchObject({ _tag: "Fresh", stored: { bucket: n, data: "\"current\"" } })
            // another process's early claim finds it done
            expect(yield* early(store, "k", "Z", n + 1)).toMatchObject({ _tag: "Fresh", stored: { bucket: n + 1, fence: f } })
            yield* untilBoundary(store, "k")
            expect(Option.getOrThrow((yield* store.get("k")).stored)).toMatchObject({ bucket: n + 1, fence: f, data: "\"next\"" })
            const after = yield* store.claim("k", { windowMs: PW, leaseMs: 5_000, token: "W", force: false, retainMs: 0 })
            expect(after).toMatchObject({ _tag: "Fresh", stored: { bucket: n + 1, fence: f } })
            const plain = yield* store.read("k")
            expect(Option.getOrThrow(plain.stored).bucket).toBe(n + 1)
            expect(Option.isNone(plain.pending)).toBe(true)
          })
        ))

      it.effect("an invalidation after an early commit makes that value stale when its window opens", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const n = yield* begin(store, "k")
            const claimed = yield* early(store, "k", "E", n + 1)
            if (claimed._tag !== "Acquired") return yield* Effect.dieMessage(claimed._tag)
            yield* store.commit("k", at(n + 1, claimed.fence, "\"next\""), "E", forever)
            const inv = yield* store.invalidate("k")
            expect(Option.getOrThrow(inv.mark)).toBeGreaterThanOrEqual(claimed.fence)
            const again = yield* early(store, "k", "Z", n + 1)
            expect(again).toMatchObject({ _tag: "Acquired", bucket: n + 1 })
            if (again._tag === "Acquired") expect(again.fence).toBeGreaterThan(Option.getOrThrow(inv.mark))
            yield* store.release("k", "Z")
            yield* untilBoundary(store, "k")
            const after = yield* store.claim("k", { windowMs: PW, leaseMs: 5_000, token: "W", force: false, retainMs: 0 })
            // kept as last-known-good, stale: the window's run happens
            expect(after).toMatchObject({ _tag: "Acquired", bucket: n + 1, stored: Option.some({ bucket: n + 1, data: "\"next\"" }) })
          })
        ))

      it.effect("only a holder commits ahead, one window at most; fencing, set and later windows apply as to any commit", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const n = yield* begin(store, "k")
            expect(yield* store.commit("k", at(n + 1, 0, "1"), undefined, forever)).toMatchObject({ _tag: "Refused", reason: "future" })
            const claimed = yield* early(store, "k", "E", n + 1)
            if (claimed._tag !== "Acquired") return yield* Effect.dieMessage(claimed._tag)
            expect(yield* store.commit("k", at(n + 2, claimed.fence, "1"), "E", forever)).toMatchObject({ _tag: "Refused", reason: "future" })
            // a claim for a window further ahead claims the current one
            yield* store.release("k", "E")
            expect(yield* early(store, "k", "F", n + 5)).toMatchObject({ _tag: "Fresh", stored: { bucket: n } })
            const second = yield* early(store, "k", "G", n + 1)
            if (second._tag !== "Acquired") return yield* Effect.dieMessage(second._tag)
            expect(yield* store.commit("k", at(n + 1, claimed.fence, "1"), "E", forever)).toMatchObject({ _tag: "Refused", reason: "fenced" })
            yield* store.commit("k", at(n + 1, second.fence, "\"early\""), "G", forever)
            // a set after it is newer: the early value goes, and the next window runs again
            yield* store.set("k", { data: "\"set\"", windowMs: PW }, forever)
            expect(Option.isNone((yield* store.read("k")).pending)).toBe(true)
            yield* untilBoundary(store, "k")
            const after = yield* store.claim("k", { windowMs: PW, leaseMs: 5_000, token: "W", force: false, retainMs: 0 })
            expect(after).toMatchObject({ _tag: "Acquired", bucket: n + 1, stored: Option.some({ bucket: n, data: "\"set\"" }) })
          })
        ))

      it.effect("an early commit is noticed as pending, with its lookup's duration", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const { notices, settle } = yield* noticesDuring(store, c, Effect.gen(function*() {
              const n = yield* begin(store, "k")
              const claimed = yield* early(store, "k", "E", n + 1)
              if (claimed._tag !== "Acquired") return yield* Effect.dieMessage(claimed._tag)
              yield* store.commit("k", at(n + 1, claimed.fence, "\"next\""), "E", { retainMs: 0, durationMs: 250 })
              return n
            }))
            yield* settle(2)
            expect(notices.map((x) => x._tag)).toEqual(["Committed", "Pending"])
            expect(notices[1]).toMatchObject({ _tag: "Pending", key: "k", windowMs: PW, durationMs: 250, data: Option.some("\"next\"") })
            expect((notices[1] as { fence: number }).fence).toBeGreaterThan((notices[0] as { fence: number }).fence)
          })
        ))
    })

    it.effect("commits, sets and invalidations are noticed by subscribers, with versions", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const { notices, settle } = yield* noticesDuring(store, c, Effect.gen(function*() {
            const v = yield* put(store, "k", "\"v\"")
            yield* store.invalidate("k")
            yield* store.set("k", { data: "\"s\"", windowMs: W }, forever)
            return v
          }))
          yield* settle(3)
          expect(notices.map((n) => n._tag)).toEqual(["Committed", "Invalidated", "Committed"])
          const v = notices[0] as Extract<Redis.Notice, { _tag: "Committed" }>
          expect(notices[0]).toMatchObject({ _tag: "Committed", key: "k", windowMs: W, data: Option.some("\"v\"") })
          expect(notices[1]).toMatchObject({ _tag: "Invalidated", key: "k", mark: v.fence })
          expect(notices[2]).toMatchObject({ _tag: "Committed", key: "k", mark: v.fence, data: Option.some("\"s\"") })
          expect((notices[2] as typeof v).fence).toBeGreaterThan(v.fence)
        })
      ))

    it.effect("a released lock is noticed, so that waiters claim at once; a back-off marker is not", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const { notices, settle } = yield* noticesDuring(store, c, Effect.gen(function*() {
            yield* acquire(store, "free", "A")
            expect((yield* store.release("free", "A"))._tag).toBe("Released")
            yield* acquire(store, "failing", "B")
            expect((yield* store.release("failing", "B", { baseMs: 1_000, maxMs: 1_000 }))._tag).toBe("Backoff")
            yield* put(store, "after")
          }))
          yield* settle(2)
          expect(notices.map((n) => [n._tag, n.key])).toEqual([["Released", "free"], ["Committed", "after"]])
        })
      ))

    it.effect("tenants never see each other's notices", () =>
      Effect.gen(function*() {
        const base = freshTenant("bus")
        const heard: Record<string, Array<string>> = { a: [], b: [] }
        for (const name of ["a", "b"] as const) {
          yield* Effect.flatMap(Redis.Redis, (store) =>
            store.subscribe({ onNotice: (n) => heard[name]!.push(n.key), onState: () => {} })).pipe(Effect.provide(c.layer(`${base}-${name}`)))
        }
        yield* c.advance(50)
        yield* Effect.flatMap(Redis.Redis, (store) => put(store, "shared")).pipe(Effect.provide(c.layer(`${base}-a`)))
        yield* c.settle(() => heard.a!.length > 0)
        yield* c.advance(50)
        expect(heard).toEqual({ a: ["shared"], b: [] })
      }).pipe(Effect.scoped))

    it.effect("tenants and keys never meet, whatever their text, lone surrogates included", () =>
      Effect.gen(function*() {
        const base = freshTenant("iso")
        const tenants = [base, `${base}:lockstep:{k}`, `${base}%3A`, `${base}\uD800`, `${base}\uDBFF`, `${base}\uFFFD`]
        const long = "x".repeat(300)
        const keys = [
          "k", "k}", "{k", "k}:v", "k:v", "k%7D", "k v", "ключ", "",
          "report:\uD83D", "report:\uD83C", "report:\uFFFD", "\uDC00a", "%u0041", "%h00", "%",
          long, `${long}y`
        ]
        const layers = tenants.map((t) => c.layer(t))
        for (const [ti, layer] of layers.entries()) {
          yield* Effect.provide(
            Effect.flatMap(Redis.Redis, (store) =>
              Effect.forEach(keys, (key, ki) => put(store, key, JSON.stringify(`${ti}/${ki}`)))),
            layer
          )
        }
        for (const [ti, layer] of layers.entries()) {
          const seen = yield* Effect.provide(
            Effect.flatMap(Redis.Redis, (store) =>
              Effect.forEach(keys, (key) => Effect.map(store.get(key), (g) => Option.getOrThrow(g.stored).data))),
            layer
          )
          expect(seen).toEqual(keys.map((_, ki) => JSON.stringify(`${ti}/${ki}`)))
        }
      }).pipe(Effect.scoped))

    it.effect("retain drops a key's records once they are not refreshed for that long", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A", false, 400)
          yield* store.commit("k", stored(a.bucket, a.fence), "A", { retainMs: 400 })
          yield* store.invalidate("k")
          yield* c.advance(200)
          expect(Option.isSome((yield* store.get("k")).stored)).toBe(true)
          yield* c.advance(300)
          const gone = yield* store.get("k")
          expect(Option.isNone(gone.stored)).toBe(true)
          expect(gone.mark).toBe(-1) // the mark went with the record
          // yet processes may still hold the old value, or have heard of its mark: a new
          // version orders above both
          expect((yield* acquire(store, "k", "B")).fence).toBeGreaterThan(a.fence)
        })
      ))

    it.effect("after the store loses a key's records, its versions still never go back", () =>
      Effect.gen(function*() {
        const tenant = freshTenant("lost")
        yield* withStore((store) =>
          Effect.gen(function*() {
            // versions that processes hold or heard of before the loss
            const v = yield* put(store, "k")
            const heard = Option.getOrThrow((yield* store.invalidate("k")).mark)
            const again = yield* acquire(store, "k", "A")
            yield* store.commit("k", stored(again.bucket, again.fence), "A", forever)
            const before = Math.max(v.fence, heard, again.fence)
            yield* c.lose(tenant)
            yield* c.advance(5)
            // an invalidation of the emptied key marks every one of them stale, and says so
            const { notices, result } = yield* noticesDuring(store, c, store.invalidate("k"))
            const mark = Option.getOrThrow(result.mark)
            expect((yield* store.get("k")).mark).toBe(mark)
            expect(mark).toBeGreaterThan(before)
            // (on a Cluster, a notice published before the subscription may still arrive first)
            yield* c.settle(() => notices.some((n) => n._tag === "Invalidated" && n.mark === mark))
            expect(notices).toContainEqual({ _tag: "Invalidated", key: "k", mark })
            // the next claim's fence is above the mark, so its value is fresh again
            const next = yield* acquire(store, "k", "B")
            expect(next.fence).toBeGreaterThan(mark)
            yield* store.commit("k", stored(next.bucket, next.fence), "B", forever)
            expect((yield* claimOf(store, "k", "C"))._tag).toBe("Fresh")
            // a set after another loss is newer than everything before it too
            yield* c.lose(tenant)
            yield* c.advance(5)
            const written = yield* store.set("k", { data: "\"set\"", windowMs: W }, forever)
            expect(written.fence).toBeGreaterThan(next.fence)
            expect(Number.isSafeInteger(written.fence)).toBe(true)
          }), tenant)
      }))

    it.effect("scan lists every key of the tenant in bounded pages, with records, locks and back-off", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const long = "long:".repeat(60)
          for (let i = 0; i < 25; i++) {
            const a = yield* acquire(store, `k${i}`, "A")
            yield* store.commit(`k${i}`, stored(a.bucket, a.fence, "\"12345\""), "A", { retainMs: 0, durationMs: 40 + i, tags: i === 0 ? ["red"] : [] })
          }
          yield* put(store, long)
          yield* put(store, "locked")
          yield* acquire(store, "locked", "holder-1", true)
          yield* put(store, "failing")
          yield* acquire(store, "failing", "B", true)
          yield* store.release("failing", "B", { baseMs: 5_000, maxMs: 5_000 })
          const seen = new Map<string, Scanned["keys"][number]>()
          let cursor: string | undefined = undefined
          let pages = 0
          do {
            const page: Scanned = yield* store.scan({ cursor, count: 7 })
            pages++
            expect(page.keys.length).toBeLessThanOrEqual(30)
            for (const k of page.keys) seen.set(k.key, k)
            cursor = Option.getOrUndefined(page.cursor)
            // other tenants' keys on a shared server make pages that hold none of ours: SCAN
            // visits every key once, so the walk ends, however many there are
          } while (cursor !== undefined && pages < 1_000_000)
          expect(cursor).toBeUndefined()
          expect(pages).toBeGreaterThan(1)
          expect(seen.size).toBe(28)
          expect(Option.getOrThrow(seen.get("k3")!.stored)).toMatchObject({ size: 7, durationMs: Option.some(43), windowMs: W })
          expect(Option.getOrThrow(seen.get("k0")!.stored).tags).toEqual(["red"])
          expect(Option.isSome(seen.get(long)!.stored)).toBe(true)
          expect(Option.getOrThrow(seen.get("locked")!.lock)).toMatchObject({ holder: "holder-1" })
          expect(Option.getOrThrow(seen.get("locked")!.lock).ttlMs).toBeLessThanOrEqual(LEASE)
          expect(Option.getOrThrow(seen.get("failing")!.backoffMs)).toBeGreaterThan(4_000)
          expect(Option.isNone(seen.get("k1")!.lock)).toBe(true)
        })
      ))

    it.effect("an invalid tenant is a typed configuration error", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.provide(Redis.Redis, c.layer("")))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("TENANT")
      }))

    it.effect("after a data loss, a value written back without a fence and then invalidated is marked above every version before the loss", () =>
      Effect.gen(function*() {
        const tenant = freshTenant("lostwb")
        yield* withStore((store) =>
          Effect.gen(function*() {
            const before = yield* store.set("k", { data: "\"set\"", windowMs: W }, forever)
            yield* c.lose(tenant)
            yield* c.advance(5)
            // a process that computed a value without the store offers it back (fence 0)
            expect((yield* store.commit("k", stored(before.bucket, 0), undefined, forever))._tag).toBe("Committed")
            const mark = Option.getOrThrow((yield* store.invalidate("k")).mark)
            expect(mark).toBeGreaterThan(before.fence)
            expect((yield* acquire(store, "k", "A")).fence).toBeGreaterThan(mark)
          }), tenant)
      }))

    it.effect("scan lists every key present for the whole walk, though earlier records expire between pages", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const kept = ["b1", "b2", "b3", "b4", "b5"]
          for (const [key, retainMs] of [["a0", 300], ["a1", 300], ...kept.map((k) => [k, 0] as const)] as const) {
            const a = yield* acquire(store, key, "A", false, retainMs)
            yield* store.commit(key, stored(a.bucket, a.fence), "A", { retainMs })
          }
          const seen = new Set<string>()
          let cursor: string | undefined = undefined
          let pages = 0
          do {
            const page: Scanned = yield* store.scan({ cursor, count: 2 })
            for (const k of page.keys) seen.add(k.key)
            cursor = Option.getOrUndefined(page.cursor)
            // after the first page, the retained records expire
            if (pages++ === 0) yield* c.advance(400)
          } while (cursor !== undefined && pages < 1_000_000)
          for (const key of kept) expect(seen.has(key), key).toBe(true)
        })
      ))

    it.effect("scan takes a fractional count as a whole one", () =>
      withStore((store) =>
        Effect.gen(function*() {
          for (const key of ["k1", "k2", "k3", "k4"]) yield* put(store, key)
          const page = yield* store.scan({ count: 2.5 })
          expect(page.keys.length).toBeLessThanOrEqual(4)
          expect(yield* store.health).toBe("closed")
        })
      ))

    it.effect("the records of a key that never had a value expire; a value's are kept as retain says", () =>
      Effect.gen(function*() {
        const tenant = freshTenant("novalue")
        yield* withStore((store) =>
          Effect.gen(function*() {
            // a lookup that fails: claim, then a back-off marker
            yield* acquire(store, "failing", "A")
            yield* store.release("failing", "A", { baseMs: 100, maxMs: 100 })
            yield* put(store, "valued")
            const fences = { failing: `${tenant}:lockstep:{failing}:f`, valued: `${tenant}:lockstep:{valued}:f` }
            if (c.raw !== undefined) {
              const client = c.raw()
              const [failing, valued] = yield* Effect.promise(() =>
                Promise.all([client.pttl(fences.failing), client.pttl(fences.valued)]).finally(() => client.quit())
              )
              expect(failing).toBeGreaterThan(0)
              expect(failing).toBeLessThanOrEqual(absentMarkMs)
              expect(valued).toBe(-1) // kept for ever, as its record
            } else if (c.live !== undefined) {
              yield* c.advance(absentMarkMs + 1)
              const left = yield* c.live(tenant)
              expect(left.filter((name) => name.includes("{failing}"))).toEqual([])
              expect(left.some((name) => name.includes("{valued}"))).toBe(true)
            }
          }), tenant)
      }))

    it.effect("reads do not extend retain: only a commit, a write-back or a set does", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A", false, 400)
          yield* store.commit("k", stored(a.bucket, a.fence), "A", { retainMs: 400 })
          yield* c.advance(250)
          // every way a process reads it, the fresh claim included
          expect(Option.isSome((yield* store.get("k")).stored)).toBe(true)
          expect(Option.isSome((yield* store.read("k")).stored)).toBe(true)
          expect((yield* claimOf(store, "k", "B", false, 400))._tag).toBe("Fresh")
          yield* c.advance(250)
          expect(Option.isNone((yield* store.get("k")).stored)).toBe(true)
        })
      ))

    if (c.raw) {
      const raw = c.raw
      it.effect("a plain read of a value key that holds another type answers nothing, and is no fault", () =>
        Effect.gen(function*() {
          const tenant = freshTenant("wrongtype")
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          const keys = ["a", "b", "c", "d"]
          yield* Effect.promise(() => Promise.all(keys.map((k) => client.set(`${tenant}:lockstep:{${k}}:v`, "foreign"))))
          yield* withStore((store) =>
            Effect.gen(function*() {
              for (let round = 0; round < 3; round++) {
                for (const k of keys) expect(yield* store.read(k)).toMatchObject({ mark: -1, stored: Option.none() })
              }
              // data never trips the breaker
              expect(yield* store.health).toBe("closed")
              const a = yield* acquire(store, "a", "A")
              expect((yield* store.commit("a", stored(a.bucket, a.fence), "A", forever))._tag).toBe("Committed")
              expect(Option.isSome((yield* store.read("a")).stored)).toBe(true)
            }), tenant)
        }).pipe(Effect.scoped))

      it.live("a record stamped in a window that has not begun is never served, and never holds back the real value", () =>
        Effect.gen(function*() {
          const tenant = freshTenant("future")
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          const [seconds] = yield* Effect.promise(() => client.time())
          const future = Math.floor(Number(seconds) * 1000 / W) + 5
          yield* Effect.promise(() =>
            client.hset(`${tenant}:lockstep:{k}:v`, { b: String(future), f: "1", w: String(W), t: "1", d: JSON.stringify("foreign") })
          )
          let runs = 0
          const page = Memo.loader({
            key: "k",
            window: W,
            schema: Schema.String,
            lookup: () => Effect.sync(() => `run ${++runs}`)
          })
          const answers = yield* Effect.gen(function*() {
            const first = yield* page.getWithInfo()
            const second = yield* page.getWithInfo()
            return [first, second]
          }).pipe(Effect.provide(Memo.layerWith({}).pipe(Layer.provide(c.layer(tenant)))))
          expect(answers[0]).toMatchObject({ value: "run 1", cache: "miss" })
          expect(answers[1]).toMatchObject({ value: "run 1", cache: "hit" })
          expect(runs).toBe(1)
        }).pipe(Effect.scoped))
      it.effect("foreign or corrupt data under the cache's keys reads as a miss and is replaced", () =>
        Effect.gen(function*() {
          const tenant = freshTenant("corrupt")
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          const prefix = `${tenant}:lockstep:{k}`
          yield* Effect.promise(() =>
            client.multi()
              .set(`${prefix}:v`, "not a hash")
              .hset(`${prefix}:l`, "x", "1")
              .set(`${prefix}:f`, "banana")
              .set(`${prefix}:i`, "also banana")
              .exec()
          )
          yield* withStore((store) =>
            Effect.gen(function*() {
              expect(yield* store.get("k")).toMatchObject({ mark: -1, stored: Option.none() })
              const a = yield* acquire(store, "k", "A")
              expect(a.fence).toBeGreaterThanOrEqual(1)
              expect((yield* store.commit("k", stored(a.bucket, a.fence), "A", forever))._tag).toBe("Committed")
              expect(Option.isSome((yield* store.get("k")).stored)).toBe(true)
              // a hash with fields that are not numbers is no record either
              yield* Effect.promise(() => client.hset(`${prefix}:v`, "b", "x"))
              expect(Option.isNone((yield* store.get("k")).stored)).toBe(true)
            }), tenant)
        }).pipe(Effect.scoped))

      it.effect("fractional, infinite or NaN numbers never pass for a record or a fence, and fences keep increasing", () =>
        Effect.gen(function*() {
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          const variants: ReadonlyArray<readonly [string, (prefix: string) => Promise<unknown>]> = [
            ["fence counter 7.5", (p) => client.set(`${p}:f`, "7.5")],
            ["record fence 7.5", (p) => client.hset(`${p}:v`, { b: "0", f: "7.5", w: String(W), t: "1", d: "1" })],
            ["record t inf", (p) => client.hset(`${p}:v`, { b: "0", f: "3", w: String(W), t: "inf", d: "1" })],
            ["record t nan", (p) => client.hset(`${p}:v`, { b: "0", f: "3", w: String(W), t: "nan", d: "1" })],
            ["record b 1e400", (p) => client.hset(`${p}:v`, { b: "1e400", f: "3", w: String(W), t: "1", d: "1" })],
            ["mark 1e15", (p) => client.set(`${p}:i`, "1e15")]
          ]
          for (const [name, plant] of variants) {
            const tenant = freshTenant("fraction")
            yield* Effect.promise(() => plant(`${tenant}:lockstep:{k}`))
            yield* withStore((store) =>
              Effect.gen(function*() {
                // whatever was planted, the store answers (no Protocol error) and the key works
                const first = yield* store.get("k")
                expect(first.stored.pipe(Option.map((s) => Number.isSafeInteger(s.fence)), Option.getOrElse(() => true)), name).toBe(true)
                const a = yield* acquire(store, "k", "A")
                expect(Number.isSafeInteger(a.fence), `${name}: fence ${a.fence}`).toBe(true)
                expect(a.fence, name).toBeGreaterThanOrEqual(1)
                expect((yield* store.commit("k", stored(a.bucket, a.fence), "A", forever))._tag, name).toBe("Committed")
                expect((yield* claimOf(store, "k", "B"))._tag, name).toBe("Fresh")
                const b = yield* acquire(store, "k", "C", true)
                expect(b.fence, name).toBeGreaterThan(a.fence)
              }), tenant)
            if (name === "fence counter 7.5") {
              const f = yield* Effect.promise(() => client.get(`${tenant}:lockstep:{k}:f`))
              expect(Number.isSafeInteger(Number(f)), `counter ${f}`).toBe(true)
              expect(Number(f)).toBeGreaterThanOrEqual(9) // rounded up to 8, then two claims
            }
          }
        }).pipe(Effect.scoped))

      it.effect("a lock without a lifetime gets one: the key is free again within a lease", () =>
        Effect.gen(function*() {
          const tenant = freshTenant("persisted")
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          yield* Effect.promise(() => client.set(`${tenant}:lockstep:{k}:l`, "someone-else"))
          yield* withStore((store) =>
            Effect.gen(function*() {
              const busy = yield* claimOf(store, "k", "A")
              expect(busy).toMatchObject({ _tag: "Busy", ttlMs: LEASE })
              const pttl = yield* Effect.promise(() => client.pttl(`${tenant}:lockstep:{k}:l`))
              expect(pttl).toBeGreaterThan(0)
              expect(pttl).toBeLessThanOrEqual(LEASE)
              yield* c.advance(LEASE + 50)
              yield* acquire(store, "k", "A")
            }), tenant)
        }).pipe(Effect.scoped))

      it.effect("a hashed key's record carries its full key; another key's record under that name is a miss", () =>
        Effect.gen(function*() {
          const tenant = freshTenant("hashed")
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          const long = "k".repeat(400)
          yield* withStore((store) => put(store, long, "\"mine\""), tenant)
          const names = (yield* Effect.promise(() => client.keys(`${tenant}:*`))).sort()
          expect(names.every((n) => n.length < 160), names.join()).toBe(true)
          const value = names.find((n) => n.endsWith(":v"))!
          expect(yield* Effect.promise(() => client.hget(value, "k"))).toBe(long)
          yield* Effect.promise(() => client.hset(value, "k", `${long}!`))
          yield* withStore((store) =>
            Effect.gen(function*() {
              expect(Option.isNone((yield* store.get(long)).stored)).toBe(true)
            }), tenant)
        }).pipe(Effect.scoped))

      it.effect("keys of one cache key share a hash tag; the value has no TTL unless retained", () =>
        Effect.gen(function*() {
          const tenant = freshTenant("layout")
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          yield* withStore((store) =>
            Effect.gen(function*() {
              yield* put(store, "page:dash")
              yield* store.invalidate("page:dash")
            }), tenant)
          const keys = (yield* Effect.promise(() => client.keys(`${tenant}:*`))).sort()
          expect(keys).toEqual([`${tenant}:lockstep:{page:dash}:f`, `${tenant}:lockstep:{page:dash}:i`, `${tenant}:lockstep:{page:dash}:v`])
          for (const k of keys) expect(yield* Effect.promise(() => client.pttl(k)), k).toBe(-1)
        }).pipe(Effect.scoped))
    }
  })
