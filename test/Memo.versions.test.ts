/**
 * A key's version never goes back, whatever the store lost: invalidations, `set`s and
 * recomputes after a data loss (`FLUSHDB`, eviction, a restart without persistence, `retain`
 * lapsing) order above every version the processes held or heard of before it, and a process
 * that holds the window's value puts it back instead of the fleet recomputing it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, Schema, TestClock } from "effect"
import { Memo } from "lockstep"
import * as Testing from "lockstep/testing"

const W = 60_000
/** A real epoch, window-aligned: versions take the store's clock into account. */
const T0 = 1_700_000_040_000

const setup = (pods: number, options: { readonly retain?: number } = {}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const fleet = yield* Testing.fleet(pods)
    const producer = yield* Testing.producer((run) => Effect.succeed(run), { duration: "1 second" })
    const page = Memo.loader({
      key: "page",
      window: W,
      schema: Schema.Number,
      lookup: () => producer.effect,
      ...(options.retain === undefined ? {} : { retain: options.retain })
    })
    /** A request on pod `i`, let run to its end (a lookup takes a second). */
    const get = (i: number) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(fleet.pods[i]!.run(page.getWithInfo()))
        yield* TestClock.adjust(1_000)
        return yield* Fiber.join(fiber)
      })
    /** Asks every pod until the background refreshes settle, then answers what each says. */
    const settled = Effect.gen(function*() {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < pods; i++) yield* get(i)
      }
      return yield* Effect.forEach(fleet.pods, (_, i) => get(i))
    })
    return { fleet, page, producer, get, settled }
  })

describe("versions after the store loses data", () => {
  it.scoped("an invalidation after a data loss stops every hit with the invalidated value", () =>
    Effect.gen(function*() {
      const { fleet, get, page, producer } = yield* setup(2)
      expect(yield* get(0)).toMatchObject({ value: 1, cache: "miss" })
      expect(yield* get(1)).toMatchObject({ value: 1, cache: "hit" })
      yield* fleet.lose() // FLUSHDB or eviction: the subscriptions stay up
      yield* TestClock.adjust(1_000)
      yield* fleet.pods[0]!.run(page.invalidate())
      // no pod answers the invalidated value as a hit, the caller included
      for (const i of [0, 1]) {
        const info = yield* fleet.pods[i]!.run(page.getWithInfo())
        expect(info.value === 1 && info.cache === "hit", `pod ${i}: ${JSON.stringify(info)}`).toBe(false)
      }
      yield* TestClock.adjust(1_000)
      expect(yield* producer.runs).toBe(2)
      expect(yield* get(1)).toMatchObject({ value: 2, cache: "hit" })
      expect(yield* get(0)).toMatchObject({ value: 2, cache: "hit" })
    }))

  it.scoped("a set after a data loss is what every pod answers", () =>
    Effect.gen(function*() {
      const { fleet, get, page } = yield* setup(2)
      yield* get(0)
      // a few versions before the loss
      for (let i = 0; i < 2; i++) {
        yield* fleet.pods[0]!.run(page.invalidate())
        yield* get(0)
        yield* TestClock.adjust(1_000)
      }
      yield* get(1)
      yield* fleet.lose()
      yield* TestClock.adjust(1_000)
      expect(yield* fleet.pods[0]!.run(page.set(undefined, 100))).toMatchObject({ value: 100, cache: "hit" })
      expect(yield* get(0)).toMatchObject({ value: 100, cache: "hit" })
      expect(yield* get(1)).toMatchObject({ value: 100, cache: "hit" })
    }))

  it.scoped("a key whose records lapsed (retain) is fresh again after one recompute, not stale for as long as it was read", () =>
    Effect.gen(function*() {
      const { fleet, get, page, producer, settled } = yield* setup(2, { retain: W })
      yield* get(0)
      for (let i = 0; i < 4; i++) {
        yield* fleet.pods[0]!.run(page.invalidate())
        yield* get(0)
        yield* TestClock.adjust(1_000)
      }
      const before = yield* producer.runs
      // unread for longer than retain: its records go
      yield* TestClock.adjust(3 * W)
      expect(Option.isNone((yield* fleet.store.get("page")).stored)).toBe(true)
      const answers = yield* settled
      for (const info of answers) expect(info).toMatchObject({ value: before + 1, cache: "hit", stale: false })
      expect(yield* producer.runs).toBe(before + 1)
    }))

  it.scoped("after a restart without persistence, the fleet puts back the window's value it holds, once, instead of recomputing it", () =>
    Effect.gen(function*() {
      const { fleet, get, producer, settled } = yield* setup(3)
      yield* get(0)
      yield* get(1)
      yield* get(2)
      const before = Option.getOrThrow((yield* fleet.store.get("page")).stored)
      let commits = 0
      yield* fleet.store.subscribe({ onNotice: (n) => n._tag === "Committed" && commits++, onState: () => {} })
      yield* fleet.lose({ restart: true })
      yield* TestClock.adjust(1_000)
      const answers = yield* settled
      for (const info of answers) expect(info).toMatchObject({ value: 1, cache: "hit", stale: false })
      // no run in the restart's window, one write for the fleet, under a newer version
      expect(yield* producer.runs).toBe(1)
      expect(commits).toBe(1)
      const after = Option.getOrThrow((yield* fleet.store.get("page")).stored)
      expect(after.data).toBe(before.data)
      expect(after.fence).toBeGreaterThan(before.fence)
    }))
})
