/**
 * The store contract: one suite that every `Redis` store must pass, the in-memory one included.
 * Test files call `contract(case)` for each store they stand up.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import { Redis } from "../../src/index.js"
import { freshTenant, type StoreCase } from "./stores.js"

const W = 60_000 // long enough that no test crosses a window by accident
const LEASE = 300

const stored = (bucket: number, fence: number, data = JSON.stringify({ n: bucket }), windowMs = W): Redis.Stored => ({
  data,
  bucket,
  fence,
  windowMs,
  computedAt: bucket * windowMs + 1
})

const acquire = (store: Redis.Store, key: string, token: string, force = false) =>
  Effect.flatMap(store.claim(key, { windowMs: W, leaseMs: LEASE, token, force }), (c) =>
    c._tag === "Acquired" ? Effect.succeed(c) : Effect.dieMessage(`expected Acquired, got ${c._tag}`))

export const contract = (c: StoreCase) =>
  describe(`Redis contract: ${c.name}`, () => {
    const withStore = <A, E>(f: (store: Redis.Store) => Effect.Effect<A, E>, tenant = freshTenant()) =>
      Effect.flatMap(Redis.Redis, f).pipe(Effect.provide(c.layer(tenant)), Effect.scoped)

    it.effect("an unknown key holds nothing", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const got = yield* store.get("nothing-here")
          expect(Option.isNone(got.stored)).toBe(true)
        })
      ))

    it.effect("the first claim acquires with fence 1 in the store's current window; others are busy", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          expect(a.fence).toBe(1)
          expect(a.bucket).toBe(Math.floor(a.now / W))
          const b = yield* store.claim("k", { windowMs: W, leaseMs: LEASE, token: "B", force: false })
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
          const commit = yield* store.commit("k", stored(a.bucket, a.fence), "A")
          expect(commit._tag).toBe("Committed")
          const got = yield* store.get("k")
          expect(Option.getOrThrow(got.stored)).toEqual(stored(a.bucket, a.fence))
          const again = yield* store.claim("k", { windowMs: W, leaseMs: LEASE, token: "B", force: false })
          expect(again._tag).toBe("Fresh")
          // the commit released the lock: a forced claim acquires at once, with the next fence
          const forced = yield* acquire(store, "k", "C", true)
          expect(forced.fence).toBe(2)
        })
      ))

    it.effect("a holder whose lease lapsed and was taken over cannot commit (fencing)", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          yield* c.advance(LEASE + 50)
          const b = yield* acquire(store, "k", "B")
          expect(b.fence).toBe(a.fence + 1)
          expect(yield* store.renew("k", "A", LEASE)).toBe(false)
          const late = yield* store.commit("k", stored(a.bucket, a.fence, "\"late\""), "A")
          expect(late).toMatchObject({ _tag: "Refused", reason: "fenced" })
          expect((yield* store.commit("k", stored(b.bucket, b.fence, "\"new\""), "B"))._tag).toBe("Committed")
          expect(Option.getOrThrow((yield* store.get("k")).stored).data).toBe("\"new\"")
        })
      ))

    it.effect("(bucket, fence) never goes backwards; an equal retry is accepted", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          const current = stored(a.bucket, a.fence)
          expect((yield* store.commit("k", current, "A"))._tag).toBe("Committed")
          expect((yield* store.commit("k", current, "A"))._tag).toBe("Committed")
          const older = yield* store.commit("k", stored(a.bucket - 1, 99), undefined)
          expect(older).toMatchObject({ _tag: "Refused", reason: "older" })
          if (older._tag === "Refused") expect(Option.getOrThrow(older.stored)).toEqual(current)
          const lowerFence = yield* store.commit("k", stored(a.bucket, 0), undefined)
          expect(lowerFence).toMatchObject({ _tag: "Refused", reason: "older" })
          expect(Option.getOrThrow((yield* store.get("k")).stored)).toEqual(current)
        })
      ))

    it.effect("nobody can write a window that has not begun on the store's clock", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const { now } = yield* store.get("k")
          const future = yield* store.commit("k", stored(Math.floor(now / W) + 60, 0), undefined)
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
          const other = yield* store.claim("k", { windowMs: W, leaseMs: LEASE, token: "B", force: false })
          expect(other._tag).toBe("Busy")
          expect(yield* store.renew("k", "B", LEASE)).toBe(false)
        })
      ))

    it.effect("a failed holder leaves a back-off marker that expires; a released lock frees at once", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* acquire(store, "k", "A")
          yield* store.release("k", "A", { baseMs: 200, maxMs: 1000 })
          const during = yield* store.claim("k", { windowMs: W, leaseMs: LEASE, token: "B", force: false })
          expect(during._tag).toBe("Backoff")
          yield* c.advance(260)
          yield* acquire(store, "k", "B")
          yield* store.release("k", "B")
          yield* acquire(store, "k", "C")
          // releasing a lock that is not ours does nothing
          yield* store.release("k", "B")
          expect((yield* store.claim("k", { windowMs: W, leaseMs: LEASE, token: "D", force: false }))._tag).toBe("Busy")
        })
      ))

    it.effect("back-off doubles with each failure across the fleet, up to its cap; a commit resets it", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const ttls: Array<number> = []
          for (const token of ["A", "B", "C", "D"]) {
            yield* acquire(store, "k", token)
            yield* store.release("k", token, { baseMs: 100, maxMs: 350 })
            const marker = yield* store.claim("k", { windowMs: W, leaseMs: LEASE, token: "probe", force: false })
            if (marker._tag !== "Backoff") return yield* Effect.dieMessage(`expected Backoff, got ${marker._tag}`)
            ttls.push(marker.ttlMs)
            yield* c.advance(marker.ttlMs + 20)
          }
          // 100, 200, 350 (capped), 350, read a little later than set (PTTL counts down)
          const expected = [100, 200, 350, 350]
          ttls.forEach((ttl, i) => {
            expect(ttl, `marker ${i + 1}`).toBeLessThanOrEqual(expected[i]!)
            expect(ttl, `marker ${i + 1}`).toBeGreaterThan(expected[i]! - 80)
          })
          const e = yield* acquire(store, "k", "E")
          yield* store.commit("k", stored(e.bucket, e.fence), "E")
          const f = yield* acquire(store, "k", "F", true)
          yield* store.release("k", "F", { baseMs: 100, maxMs: 350 })
          const after = yield* store.claim("k", { windowMs: W, leaseMs: LEASE, token: "probe", force: true })
          expect(after._tag === "Backoff" && after.ttlMs > 20 && after.ttlMs <= 100).toBe(true)
          expect(f.fence).toBe(e.fence + 1)
        })
      ))

    it.effect("a value stored under another window length is not fresh and may be replaced", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const a = yield* acquire(store, "k", "A")
          yield* store.commit("k", stored(a.bucket, a.fence), "A")
          const other = yield* store.claim("k", { windowMs: 1000, leaseMs: LEASE, token: "B", force: false })
          expect(other._tag).toBe("Acquired")
          if (other._tag !== "Acquired") return
          const commit = yield* store.commit("k", stored(other.bucket, other.fence, "\"short\"", 1000), "B")
          expect(commit._tag).toBe("Committed")
        })
      ))

    it.effect("tenants and keys never meet, whatever their text", () =>
      Effect.gen(function*() {
        const base = freshTenant("iso")
        const tenants = [base, `${base}:lockstep:{k}`, `${base}%3A`]
        const keys = ["k", "k}", "{k", "k}:v", "k:v", "k%7D", "k v", "ключ"]
        const layers = tenants.map((t) => c.layer(t))
        for (const [ti, layer] of layers.entries()) {
          yield* Effect.provide(
            Effect.flatMap(Redis.Redis, (store) =>
              Effect.forEach(keys, (key, ki) =>
                Effect.gen(function*() {
                  const claim = yield* acquire(store, key, "A")
                  yield* store.commit(key, stored(claim.bucket, claim.fence, JSON.stringify(`${ti}/${ki}`)), "A")
                }))),
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

    it.effect("an invalid tenant is a typed configuration error", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.provide(Redis.Redis, c.layer("")))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("TENANT")
      }))

    if (c.raw) {
      const raw = c.raw
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
              .exec()
          )
          yield* withStore((store) =>
            Effect.gen(function*() {
              expect(Option.isNone((yield* store.get("k")).stored)).toBe(true)
              const a = yield* acquire(store, "k", "A")
              expect(a.fence).toBe(1)
              expect((yield* store.commit("k", stored(a.bucket, a.fence), "A"))._tag).toBe("Committed")
              expect(Option.isSome((yield* store.get("k")).stored)).toBe(true)
              // a hash with fields that are not numbers is no record either
              yield* Effect.promise(() => client.hset(`${prefix}:v`, "b", "x"))
              expect(Option.isNone((yield* store.get("k")).stored)).toBe(true)
            }), tenant)
        }).pipe(Effect.scoped))

      it.effect("keys of one cache key share a hash tag; the value has no TTL", () =>
        Effect.gen(function*() {
          const tenant = freshTenant("layout")
          const client = raw()
          yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
          yield* withStore((store) =>
            Effect.gen(function*() {
              const a = yield* acquire(store, "page:dash", "A")
              yield* store.commit("page:dash", stored(a.bucket, a.fence), "A")
            }), tenant)
          const keys = (yield* Effect.promise(() => client.keys(`${tenant}:*`))).sort()
          expect(keys).toEqual([`${tenant}:lockstep:{page:dash}:f`, `${tenant}:lockstep:{page:dash}:v`])
          expect(yield* Effect.promise(() => client.pttl(`${tenant}:lockstep:{page:dash}:v`))).toBe(-1)
        }).pipe(Effect.scoped))
    }
  })

