/**
 * Batch reads, under `TestClock` on the in-memory store and `Testing.fleet`: `getMany` answers
 * L1 inline and every other key from one store round trip, looks the keys with no value up
 * together (`lookupMany`, in chunks), keeps one run per key per window for the fleet however
 * batches overlap, and fails only the keys of a `lookupMany` that failed or miscounted.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Data, Effect, Exit, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Memo, Redis } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as SpyStore from "./support/spy.js"

const W = 10_000

class Down extends Data.TaggedError("Down")<{}> {}

const Row = Schema.Struct({ id: Schema.Number, run: Schema.Number })

/**
 * Rows whose `lookupMany` records every call; `run` counts the calls (one per value's call), and
 * `answer` may change what a call answers.
 */
const makeRows = (options: {
  readonly many?: boolean
  readonly batchSize?: number
  readonly answer?: (ids: ReadonlyArray<number>, call: number) => Effect.Effect<ReadonlyArray<{ id: number; run: number }>, Down>
} = {}) =>
  Effect.sync(() => {
    const calls: Array<ReadonlyArray<number>> = []
    const single: Array<number> = []
    let running = 0
    let maxRunning = 0
    const rows = Memo.loader({
      key: (id: number) => `row:${id}`,
      window: W,
      schema: Row,
      batchSize: options.batchSize,
      lookup: (id: number) =>
        Effect.gen(function*() {
          single.push(id)
          maxRunning = Math.max(maxRunning, ++running)
          yield* Effect.sleep(100)
          running--
          return { id, run: 0 }
        }),
      lookupMany: options.many === false ? undefined : (ids: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          calls.push(ids)
          yield* Effect.sleep(100)
          return yield* (options.answer?.(ids, calls.length) ?? Effect.succeed(ids.map((id) => ({ id, run: calls.length }))))
        })
    })
    return { rows, calls, single, maxRunning: () => maxRunning }
  })

const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("getMany", () => {
  it.effect("cold keys go to one lookupMany call; answers follow the order of ids, duplicates included; then L1 answers inline", () =>
    Effect.gen(function*() {
      const { calls, rows } = yield* makeRows()
      const got = yield* Effect.fork(rows.getMany([3, 1, 2, 1]))
      yield* TestClock.adjust(100)
      expect(yield* Fiber.join(got)).toEqual([{ id: 3, run: 1 }, { id: 1, run: 1 }, { id: 2, run: 1 }, { id: 1, run: 1 }])
      expect(calls).toEqual([[3, 1, 2]])
      const infos = yield* Testing.instantly(rows.getManyWithInfo([2, 3]))
      expect(infos.map((i) => [i.value.id, i.cache, i.stale])).toEqual([[2, "hit", false], [3, "hit", false]])
      expect(yield* Testing.instantly(rows.get(1))).toEqual({ id: 1, run: 1 })
      expectTypeOf(rows.getMany).returns.toEqualTypeOf<Effect.Effect<Array<typeof Row.Type>, Down | Memo.LookupManyMismatch, Memo.Memo>>()
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("keys not in L1 are read from the store in one round trip; fresh ones need nothing more", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const { rows } = yield* makeRows()
      const first = yield* SpyStore.layer(server)
      const warm = yield* Effect.fork(rows.getMany(ids(1, 100)).pipe(Effect.provide(Memo.layer.pipe(Layer.provide(first.layer)))))
      yield* TestClock.adjust(100)
      yield* Fiber.join(warm)
      // another process, its L1 empty, over the same store
      const second = yield* SpyStore.layer(server)
      const got = yield* Testing.instantly(rows.getManyWithInfo(ids(1, 100)).pipe(Effect.provide(Memo.layer.pipe(Layer.provide(second.layer)))))
      expect(got.map((i) => i.value.id)).toEqual(ids(1, 100))
      expect(got.every((i) => i.cache === "hit")).toBe(true)
      expect(second.spy.calls.readMany).toBe(1)
      expect(second.spy.calls.read + second.spy.calls.get + second.spy.calls.claim + second.spy.calls.commit).toBe(0)
    }))

  it.effect("stale values are answered at once and refreshed together in the background", () =>
    Effect.gen(function*() {
      const { calls, rows } = yield* makeRows()
      yield* Effect.fork(rows.getMany(ids(1, 5)))
      yield* TestClock.adjust(100)
      yield* TestClock.adjust(W)
      const stale = yield* Testing.instantly(rows.getManyWithInfo(ids(1, 5)))
      expect(stale.map((i) => [i.value.run, i.cache])).toEqual(ids(1, 5).map(() => [1, "stale"]))
      yield* TestClock.adjust(100)
      expect(calls).toEqual([ids(1, 5), ids(1, 5)])
      expect((yield* Testing.instantly(rows.getMany(ids(1, 5)))).map((r) => r.run)).toEqual([2, 2, 2, 2, 2])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("claimed keys are looked up in chunks of batchSize", () =>
    Effect.gen(function*() {
      const { calls, rows } = yield* makeRows({ batchSize: 40 })
      const got = yield* Effect.fork(rows.getMany(ids(1, 100)))
      yield* TestClock.adjust(1_000)
      expect((yield* Fiber.join(got)).map((r) => r.id)).toEqual(ids(1, 100))
      expect(calls.map((c) => c.length)).toEqual([40, 40, 20])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("without lookupMany, the claimed keys run lookup at most 16 at a time", () =>
    Effect.gen(function*() {
      const { maxRunning, rows, single } = yield* makeRows({ many: false })
      const got = yield* Effect.fork(rows.getMany(ids(1, 40)))
      yield* TestClock.adjust(1_000)
      expect((yield* Fiber.join(got)).map((r) => r.id)).toEqual(ids(1, 40))
      expect([...single].sort((a, b) => a - b)).toEqual(ids(1, 40))
      expect(maxRunning()).toBe(16)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a lookupMany that answers another number of values fails its keys with LookupManyMismatch; stale values are still served", () =>
    Effect.gen(function*() {
      let short = false
      const { rows } = yield* makeRows({
        answer: (asked, call) => Effect.succeed((short ? asked.slice(1) : asked).map((id) => ({ id, run: call })))
      })
      yield* Effect.fork(rows.getMany([1, 2]))
      yield* TestClock.adjust(100)
      short = true
      yield* TestClock.adjust(W)
      const cold = yield* Effect.fork(Effect.exit(rows.getMany([1, 3, 4])))
      yield* TestClock.adjust(100)
      const exit = yield* Fiber.join(cold)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(exit)
      expect(error).toBeInstanceOf(Memo.LookupManyMismatch)
      expect(error).toMatchObject({ asked: 3, answered: 2 })
      // key 1 was stale: served, and still there
      expect((yield* Testing.instantly(rows.getManyWithInfo([1, 2]))).map((i) => [i.value.run, i.cache])).toEqual([[1, "stale"], [1, "stale"]])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a failing lookupMany fails its cold keys and serves the stale ones, as get does", () =>
    Effect.gen(function*() {
      let failing = false
      const { rows } = yield* makeRows({ answer: (asked, call) => failing ? Effect.fail(new Down()) : Effect.succeed(asked.map((id) => ({ id, run: call }))) })
      yield* Effect.fork(rows.getMany([1]))
      yield* TestClock.adjust(100)
      failing = true
      yield* TestClock.adjust(W)
      expect(yield* Testing.instantly(rows.getMany([1]))).toEqual([{ id: 1, run: 1 }])
      const cold = yield* Effect.fork(Effect.flip(rows.getMany([1, 2])))
      yield* TestClock.adjust(100)
      expect(yield* Fiber.join(cold)).toEqual(new Down())
      expect(yield* Testing.instantly(rows.get(1))).toEqual({ id: 1, run: 1 })
      // while key 2 backs off, a cold request for it fails at once with that failure, as get's does
      expect(yield* Effect.flip(Testing.instantly(rows.getMany([2])))).toEqual(new Down())
    }).pipe(Effect.provide(Testing.layer)))
})

describe("getMany on a fleet", () => {
  it.scoped("a process that goes down while its batch runs shuts down: nothing it started holds its scope open", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2, { maxRun: "1 minute" })
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      const hanging = Memo.loader({ key: (id: number) => `hang:${id}`, window: W, schema: Row, lookup: () => Effect.never })
      yield* Effect.fork(a.run(hanging.getMany(ids(1, 20))))
      yield* TestClock.adjust(200) // the batch's lookupMany runs, and hangs
      const crashed = yield* Effect.fork(a.crash)
      yield* TestClock.adjust(0)
      expect(crashed.unsafePoll()).not.toBeNull()
      expect(a.status).toBe("crashed")
      // its locks lapse; the other pod takes the keys over
      expect(b.status).toBe("up")
    }), 10_000)


  it.scoped("overlapping batches on several pods at once: every key is looked up once, and every pod answers every key", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(4)
      const { calls, rows } = yield* makeRows()
      const batches = [ids(1, 60), ids(40, 100), ids(1, 100), ids(20, 80)]
      const all = yield* Effect.fork(Effect.forEach(fleet.pods, (pod, i) => pod.run(rows.getMany(batches[i]!)), { concurrency: "unbounded" }))
      yield* TestClock.adjust(2_000)
      const answers = yield* Fiber.join(all)
      answers.forEach((rowsOf, i) => expect(rowsOf.map((r) => r.id)).toEqual(batches[i]))
      const looked = calls.flat()
      expect(looked.length).toBe(100)
      expect(new Set(looked).size).toBe(100)
      for (const pod of fleet.pods) {
        const values = yield* Testing.instantly(pod.run(rows.getMany(ids(1, 100))))
        expect(values.map((r) => r.id)).toEqual(ids(1, 100))
      }
      expect(Option.isSome((yield* fleet.store.get("row:100")).stored)).toBe(true)
    }))
})
