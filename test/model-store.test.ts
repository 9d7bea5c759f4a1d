/**
 * The store differential: random sequences of the fleet protocol's operations (claim, renew,
 * commit, unchanged, release with and without back-off, invalidate, purge, set, get, readMany,
 * tag, tagged, scan) run on the
 * in-memory store and on the suite's real redis-server (or Valkey) must give the same replies,
 * and publish the same notices. fast-check shrinks a difference to a short sequence.
 *
 * Keys and tenants are text of any UTF-16 code units (lone surrogates, escapes, separators) and
 * keys long enough to be hashed. Windows are 6 and 24 hours, so no run crosses a boundary (a run
 * close to one waits for it first).
 *
 * Time. The in-memory store reads `Clock` (here `TestClock`), Redis its own `TIME`. Two
 * properties:
 * - untimed: every lifetime (leases, back-off, retain) is 10 s or more, far longer than a run;
 *   `TestClock` stands still, Redis' clock runs on by the run's few milliseconds;
 * - timed: time moves in steps of Q = 100 ms, at the same instants on both (`TestClock.setTime`,
 *   and a real sleep until that instant before Redis' operations), and every lifetime is an odd
 *   number of half steps (150, 350, 450 ms), so that no expiry falls near an instant at which the
 *   stores are asked: leases lapse, back-off markers end and retained records go on both sides
 *   alike. A run whose Redis operations lagged more than Q/2 behind their instant (a loaded
 *   machine) proves nothing either way and is discarded (`fc.pre`).
 *
 * What may legitimately differ is compared loosely: the stores' `now`, what is left of a lock or
 * a marker (PTTL counts down in real time) and `computedAt` of a `set` (the store's now) within a
 * tolerance; a notice's value, which Redis leaves out above 16 KiB. Everything else must be equal.
 *
 * `LOCKSTEP_MODEL_MEMORY_STORE=<path>` (a module exporting `make(tenant)`, e.g. a copy of
 * `src/internal/memoryStore.ts` with a deliberate bug) checks the checker: the property must fail.
 */
import { Cause, Effect, Either, Exit, Option, type Scope, TestClock, TestContext } from "effect"
import * as fc from "fast-check"
import { Redis as IORedis } from "ioredis"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { Redis } from "../src/index.js"
import * as Keys from "../src/internal/keys.js"
import * as Model from "./support/model.js"

const WINDOWS = [21_600_000, 86_400_000] as const
const TOKENS = ["A", "B", "C"] as const
/**
 * Tags by the retain of the keys they are given to: a tag shared by keys kept forever and keys
 * retained loses the former on Redis (a known difference, see the failing tests below).
 */
const TAGS_BY_RETAIN = [["red", "blue\uD800"], ["{x}:y", "green"]] as const
const TAGS = TAGS_BY_RETAIN.flat()
const Q = 100
const BIG = JSON.stringify("x".repeat(17_000)) // past the 16 KiB a notice carries

interface Lifetimes {
  readonly leases: readonly [number, number]
  readonly backoffs: readonly [Redis.Backoff, Redis.Backoff]
  readonly retains: readonly [number, number]
}

const UNTIMED: Lifetimes = {
  leases: [30_000, 90_000],
  backoffs: [{ baseMs: 10_000, maxMs: 35_000 }, { baseMs: 20_000, maxMs: 20_000 }],
  retains: [0, 600_000]
}

/** Odd multiples of Q/2; a back-off that doubles would land on whole steps, so these do not. */
const TIMED: Lifetimes = {
  leases: [150, 350],
  backoffs: [{ baseMs: 150, maxMs: 150 }, { baseMs: 350, maxMs: 350 }],
  retains: [0, 450]
}

/** A page of `scan` (the type is not exported by `Redis`). */
type Scanned = Effect.Effect.Success<ReturnType<Redis.Store["scan"]>>

type Op =
  | {
    readonly op: "claim"
    readonly key: number
    readonly token: number
    readonly win: number
    readonly lease: number
    readonly force: boolean
    /** An early claim, for the next window (a holder's commit for it is then kept as pending). */
    readonly early: boolean
  }
  | { readonly op: "read"; readonly key: number }
  | { readonly op: "renew"; readonly key: number; readonly token: number; readonly lease: number }
  | {
    readonly op: "commit"
    readonly key: number
    /** `null`: without a token (a value made while Redis was unreachable, offered back). */
    readonly token: number | null
    /** Relative to the current window. */
    readonly bucket: number
    /** `null`: the fence of the key's last acquired claim. */
    readonly fence: number | null
    readonly win: number
    readonly data: string
    readonly durationMs: number | null
    readonly tags: ReadonlyArray<number>
  }
  | {
    readonly op: "unchanged"
    readonly key: number
    readonly token: number
    /** Relative to the current window. */
    readonly bucket: number
    /** `null`: the fence of the key's last acquired claim. */
    readonly fence: number | null
    readonly win: number
    /** `last`: the version last written (what the store should hold); `other`: one it does not. */
    readonly from: "last" | "other"
  }
  | { readonly op: "purge"; readonly key: number }
  | { readonly op: "readMany" }
  | { readonly op: "release"; readonly key: number; readonly token: number; readonly backoff: number | null }
  | { readonly op: "invalidate"; readonly key: number }
  | { readonly op: "set"; readonly key: number; readonly win: number; readonly data: string }
  | { readonly op: "get"; readonly key: number }
  | { readonly op: "tag"; readonly key: number; readonly tags: ReadonlyArray<number> }
  | { readonly op: "tagged"; readonly tag: string }
  | { readonly op: "scan" }
  | { readonly op: "advance"; readonly ticks: number }
  /** The server loses every record of the tenant (a restart without persistence, `FLUSHDB`). */
  | { readonly op: "lose" }

const keyIndex = fc.nat({ max: 2 })
/** A token; `TOKENS.length` stands for the token of the key's latest acquired claim (the holder, if any). */
const token = fc.oneof({ weight: 2, arbitrary: fc.nat({ max: TOKENS.length - 1 }) }, { weight: 3, arbitrary: fc.constant(TOKENS.length) })
const win = fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) })
const pair = fc.nat({ max: 1 })
const data = fc.oneof({ weight: 12, arbitrary: Model.text(8).map((s) => JSON.stringify(s)) }, { weight: 1, arbitrary: fc.constant(BIG) })
/** Which of the two tags of the key's retain class. */
const tags = fc.subarray([0, 1])

const opArb = (timed: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant("claim" as const), key: keyIndex, token, win, lease: pair, force: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }), early: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("read" as const), key: keyIndex }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("renew" as const), key: keyIndex, token, lease: pair }) },
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant("commit" as const),
        key: keyIndex,
        token: fc.oneof({ weight: 4, arbitrary: token }, { weight: 1, arbitrary: fc.constant(null) }),
        bucket: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-2, -1, 1) }),
        fence: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: fc.nat({ max: 6 }) }),
        win,
        data,
        durationMs: fc.option(fc.nat({ max: 5000 })),
        tags
      })
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant("unchanged" as const),
        key: keyIndex,
        token,
        bucket: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-1, 1) }),
        fence: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat({ max: 6 }) }),
        win,
        from: fc.oneof({ weight: 4, arbitrary: fc.constant("last" as const) }, { weight: 1, arbitrary: fc.constant("other" as const) })
      })
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("purge" as const), key: keyIndex }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("readMany" as const) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("release" as const), key: keyIndex, token, backoff: fc.option(pair) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("invalidate" as const), key: keyIndex }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("set" as const), key: keyIndex, win, data }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("get" as const), key: keyIndex }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("tag" as const), key: keyIndex, tags }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("tagged" as const), tag: fc.constantFrom(...TAGS) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("scan" as const) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("lose" as const) }) },
    ...(timed ? [{ weight: 4, arbitrary: fc.record({ op: fc.constant("advance" as const), ticks: fc.integer({ min: 1, max: 3 }) }) }] : [])
  )

const scenario = (timed: boolean) =>
  fc.record({
    tenant: Model.tenant,
    keys: Model.keys,
    /**
     * Each key's retain (index into the lifetimes), the same for every operation on it, as a
     * loader's is: mixing them shows known differences (see the failing tests below).
     */
    retains: fc.tuple(pair, pair, pair),
    ops: fc.array(opArb(timed), { minLength: 1, maxLength: timed ? 30 : 40, size: "max" })
  })

type Scenario = {
  readonly tenant: string
  readonly keys: ReadonlyArray<string>
  readonly retains: readonly [number, number, number]
  readonly ops: ReadonlyArray<Op>
}

// ---------------------------------------------------------------------------------------------
// replies, normalised

/** Fields that count real time on Redis: compared within a tolerance. */
const APPROX = new Set(["now", "ttlMs", "computedAt", "backoffMs"])

/** A reply as plain data, with its time-like numbers set aside (by path) for a loose comparison. */
/**
 * Versions (fences, marks) take each store's clock into account, so they are compared by name:
 * each one above `VERSION_FLOOR` is named by when its store first showed it for its key (`v1`,
 * `v2`, …), and the two stores must show the same names in the same places; `versionOrder` then
 * checks that the names of each key sort the same way on both.
 */
const VERSION = new Set(["fence", "mark"])
const VERSION_FLOOR = 1_000_000_000
type Versions = Map<number, string>
/** One store's version names, by key (a reply without a key of its own is the operation's). */
interface VersionBook {
  readonly byKey: Map<string, Versions>
  readonly key: string
}
const newBook = (): VersionBook => ({ byKey: new Map(), key: "" })
const versionName = (book: VersionBook, v: number) => {
  let versions = book.byKey.get(book.key)
  if (versions === undefined) book.byKey.set(book.key, versions = new Map())
  let name = versions.get(v)
  if (name === undefined) versions.set(v, name = `v${versions.size + 1}`)
  return name
}
const versionOrder = (book: VersionBook) =>
  [...book.byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, versions]) =>
    `${JSON.stringify(key)}: ${[...versions].sort(([a], [b]) => a - b).map(([, name]) => name).join(" ")}`
  ).join("; ")

const normalise = (x: unknown, path: string, approx: Array<readonly [string, number]>, book: VersionBook = newBook()): unknown => {
  if (Option.isOption(x)) return Option.isSome(x) ? { some: normalise(x.value, `${path}.some`, approx, book) } : "none"
  if (Either.isEither(x)) return Either.isRight(x) ? { ok: normalise(x.right, path, approx, book) } : { error: (x.left as Redis.RedisError).reason }
  if (Array.isArray(x)) return x.map((v, i) => normalise(v, `${path}[${i}]`, approx, book))
  if (typeof x === "object" && x !== null) {
    const out: Record<string, unknown> = {}
    const own = "key" in x && typeof x.key === "string" ? { byKey: book.byKey, key: x.key } : book
    // the same fields in the same order, whatever order each store builds them in
    for (const [k, v] of Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (VERSION.has(k) && typeof v === "number" && v > VERSION_FLOOR) {
        out[k] = versionName(own, v)
      } else if (VERSION.has(k) && Option.isOption(v) && Option.isSome(v) && typeof v.value === "number" && v.value > VERSION_FLOOR) {
        out[k] = { some: versionName(own, v.value) }
      } else if (APPROX.has(k) && typeof v === "number") {
        approx.push([`${path}.${k}`, v])
        out[k] = "≈"
      } else if (APPROX.has(k) && Option.isOption(v) && Option.isSome(v) && typeof v.value === "number") {
        approx.push([`${path}.${k}`, v.value])
        out[k] = { some: "≈" }
      } else {
        out[k] = normalise(v, `${path}.${k}`, approx, own)
      }
    }
    return out
  }
  return x
}

const show = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === "string" && v.length > 80 ? `${v.slice(0, 40)}…(${v.length})` : v))

/** `undefined` when equal (loose on time), else what differs. */
const difference = (
  memory: unknown,
  redis: unknown,
  tolerance: number,
  versions: { readonly memory: Map<string, Versions>; readonly redis: Map<string, Versions> } = { memory: new Map(), redis: new Map() },
  key = ""
): string | undefined => {
  const ma: Array<readonly [string, number]> = []
  const ra: Array<readonly [string, number]> = []
  const books = { memory: { byKey: versions.memory, key }, redis: { byKey: versions.redis, key } }
  const m = show(normalise(memory, "", ma, books.memory))
  const r = show(normalise(redis, "", ra, books.redis))
  if (m !== r) return `memory ${m}\n   redis ${r}`
  const mo = versionOrder(books.memory)
  const ro = versionOrder(books.redis)
  if (mo !== ro) return `versions order differently: memory ${mo}, redis ${ro}`
  for (let i = 0; i < ma.length; i++) {
    const [path, a] = ma[i]!
    const b = ra[i]![1]
    if (Math.abs(a - b) > tolerance) return `${path}: memory ${a}, redis ${b} (tolerance ${tolerance} ms)`
  }
  return undefined
}

/**
 * A key's version never goes back, whatever the store lost: a new fence (a claim that acquires,
 * a `set`) is above every version the store showed for the key before, and so is an
 * invalidation's mark (or equal: nothing new issued since). `undefined` when that holds; the
 * versions of the reply are then remembered.
 */
const goesBack = (highest: Map<string, number>, key: string, op: Op["op"], reply: Either.Either<unknown, Redis.RedisError>): string | undefined => {
  if (Either.isLeft(reply) || typeof reply.right !== "object" || reply.right === null) return undefined
  const before = highest.get(key) ?? -1
  const r = reply.right as Record<string, unknown>
  const seen: Array<number> = []
  let problem: string | undefined
  if (op === "claim" && r._tag === "Acquired" && typeof r.fence === "number") {
    if (r.fence <= before) problem = `fence ${r.fence}, not above ${before}`
  }
  if (op === "set" && typeof r.fence === "number" && r.fence <= before) problem = `fence ${r.fence}, not above ${before}`
  if (op === "invalidate" && Option.isOption(r.mark) && Option.isSome(r.mark) && typeof r.mark.value === "number" && r.mark.value < before) {
    problem = `mark ${r.mark.value}, below ${before}`
  }
  for (const v of [r.fence, r.mark, Option.isOption(r.mark) ? Option.getOrUndefined(r.mark) : undefined]) if (typeof v === "number") seen.push(v)
  if (Option.isOption(r.stored) && Option.isSome(r.stored)) seen.push((r.stored.value as Redis.Stored).fence)
  else if (typeof r.stored === "object" && r.stored !== null && "fence" in r.stored) seen.push((r.stored as Redis.Stored).fence)
  highest.set(key, Math.max(before, ...seen))
  return problem
}

/** A notice as both stores must publish it; Redis leaves a value above 16 KiB out. */
const noticeView = (n: Redis.Notice, side: "memory" | "redis"): Redis.Notice =>
  side === "memory" && (n._tag === "Committed" || n._tag === "Pending") && Option.isSome(n.data) && n.data.value.length > 16_384 ? { ...n, data: Option.none() } : n

// ---------------------------------------------------------------------------------------------
// running a scenario on both stores

let client: IORedis
beforeAll(() => {
  client = new IORedis({ host: "127.0.0.1", port: inject("redisPort"), ...Redis.failFastOptions(5_000) })
  client.on("error", () => {})
})
afterAll(async () => {
  await client?.quit()
})

/** A memory store over a server of its own, so that a run can make it lose its data. */
type MakeMemory = (tenant: string, server: Redis.MemoryServer) => Redis.Store
const memoryStore: Promise<MakeMemory> = (async () => {
  const path = process.env.LOCKSTEP_MODEL_MEMORY_STORE
  if (!path) return (tenant: string, server: Redis.MemoryServer) => Effect.runSync(Redis.makeMemory({ tenant, server }))
  const module = await import(Path.resolve(path)) as { make: MakeMemory }
  console.log(`model-store: memory store from ${path}`)
  return module.make
})()

const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((r) => setTimeout(r, Math.max(0, ms))))

/** Waits, if needed, so that the next `marginMs` hold no 6-hour boundary (every window's). */
const awayFromBoundaries = (marginMs: number) =>
  Effect.suspend(() => {
    const untilBoundary = WINDOWS[0] - (Date.now() % WINDOWS[0])
    return untilBoundary > marginMs ? Effect.void : realSleep(untilBoundary + 50)
  })

class Inconclusive extends Error {}

const run = (s: Scenario, timed: boolean, makeMemory: MakeMemory): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const life = timed ? TIMED : UNTIMED
    const tenant = Model.uniqueTenant(s.tenant)
    const server = Redis.makeMemoryServer()
    const memory = makeMemory(tenant, server)
    const redis = Redis.fromClient(client, { tenant, breakerThreshold: 1_000_000 })
    const keyOf = (i: number) => s.keys[i % s.keys.length]!
    const retainClass = (i: number) => s.retains[i % s.keys.length]!
    const retainOf = (i: number) => life.retains[retainClass(i)]!
    const tagsOf = (i: number, which: ReadonlyArray<number>) => which.map((t) => TAGS_BY_RETAIN[retainClass(i)]![t]!)
    /** Every Redis key a run may write. */
    const names = () => {
      const prefix = Keys.tenantPrefix(tenant)
      return [
        ...s.keys.flatMap((k) => {
          const n = Keys.make(prefix, k)
          return [n.value, n.lock, n.fence, n.failures, n.mark]
        }),
        ...TAGS.map((t) => Keys.tagKey(prefix, t))
      ]
    }
    yield* Effect.addFinalizer(() => Effect.promise(() => client.del(...names()).catch(() => 0)))

    // notices, from the start: Redis' arrive on a connection of their own
    const heard = { memory: [] as Array<Redis.Notice>, redis: [] as Array<Redis.Notice> }
    let redisUp = false
    yield* memory.subscribe({ onNotice: (n) => heard.memory.push(n), onState: () => {} })
    yield* redis.subscribe({ onNotice: (n) => heard.redis.push(n), onState: (st) => (redisUp = st === "up") })
    for (let i = 0; i < 500 && !redisUp; i++) yield* realSleep(5)
    if (!redisUp) throw new Error("the Redis subscription did not come up")

    const ticksTotal = s.ops.reduce((n, o) => n + (o.op === "advance" ? o.ticks : 0), 0)
    yield* awayFromBoundaries(60_000 + ticksTotal * Q)
    const base = timed ? Math.ceil((Date.now() + 20) / Q) * Q : Date.now()
    yield* realSleep(base - Date.now())
    yield* TestClock.setTime(base)
    let ticks = 0
    /** How late Redis' operations ran after their instant, at most (timed: must stay under Q/2). */
    let lag = 0
    const virtualNow = () => base + ticks * Q
    const tolerance = () => (timed ? Q / 2 : Date.now() - base + 10)
    /** The fence of each key's latest acquired claim, on each store (versions take its clock in). */
    const claimedOn = new Map<Redis.Store, Map<number, number>>([[memory, new Map()], [redis, new Map()]])
    const versions = { memory: new Map<string, Versions>(), redis: new Map<string, Versions>() }
    /** The highest version each store showed for each key, across data losses. */
    const highest = { memory: new Map<string, number>(), redis: new Map<string, number>() }
    const holders = new Map<number, string>()
    /** The version each key's last accepted write gave it, on each store. */
    const writtenOn = new Map<Redis.Store, Map<number, { readonly bucket: number; readonly fence: number }>>([[memory, new Map()], [redis, new Map()]])
    const tokenOf = (key: number, t: number) => TOKENS[t] ?? holders.get(key % s.keys.length) ?? TOKENS[0]

    const perform = (store: Redis.Store, op: Op): Effect.Effect<unknown, Redis.RedisError> => {
      switch (op.op) {
        case "claim":
          return store.claim(keyOf(op.key), {
            windowMs: WINDOWS[op.win]!,
            leaseMs: life.leases[op.lease]!,
            token: tokenOf(op.key, op.token),
            force: op.force,
            retainMs: retainOf(op.key),
            bucket: op.early ? Math.floor(virtualNow() / WINDOWS[op.win]!) + 1 : undefined
          })
        case "read":
          return store.read(keyOf(op.key))
        case "renew":
          return store.renew(keyOf(op.key), tokenOf(op.key, op.token), life.leases[op.lease]!)
        case "commit": {
          const windowMs = WINDOWS[op.win]!
          const value: Redis.Stored = {
            data: op.data,
            bucket: Math.floor(virtualNow() / windowMs) + op.bucket,
            fence: op.fence ?? claimedOn.get(store)!.get(op.key % s.keys.length) ?? 0,
            windowMs,
            computedAt: virtualNow() - 1
          }
          return store.commit(keyOf(op.key), value, op.token === null ? undefined : tokenOf(op.key, op.token), {
            retainMs: retainOf(op.key),
            durationMs: op.durationMs ?? undefined,
            tags: tagsOf(op.key, op.tags)
          })
        }
        case "unchanged": {
          const windowMs = WINDOWS[op.win]!
          const last = writtenOn.get(store)!.get(op.key % s.keys.length) ?? { bucket: 0, fence: 0 }
          return store.unchanged(keyOf(op.key), {
            bucket: Math.floor(virtualNow() / windowMs) + op.bucket,
            fence: op.fence ?? claimedOn.get(store)!.get(op.key % s.keys.length) ?? 0,
            windowMs,
            computedAt: virtualNow() - 1,
            from: op.from === "last" ? last : { bucket: last.bucket, fence: last.fence + 1 }
          }, tokenOf(op.key, op.token), { retainMs: retainOf(op.key), durationMs: 7 })
        }
        case "purge":
          return store.purge(keyOf(op.key))
        case "readMany":
          return store.readMany(s.keys)
        case "release":
          return store.release(keyOf(op.key), tokenOf(op.key, op.token), op.backoff === null ? undefined : life.backoffs[op.backoff]!)
        case "invalidate":
          return store.invalidate(keyOf(op.key))
        case "set":
          return store.set(keyOf(op.key), { data: op.data, windowMs: WINDOWS[op.win]! }, { retainMs: retainOf(op.key) })
        case "get":
          return store.get(keyOf(op.key))
        case "tag":
          return Effect.asVoid(store.tag(keyOf(op.key), tagsOf(op.key, op.tags), { retainMs: retainOf(op.key) }))
        case "tagged":
          return Effect.map(store.tagged(op.tag), (ks) => [...ks].sort())
        case "scan":
          return Effect.gen(function*() {
            const all: Array<Scanned["keys"][number]> = []
            let cursor: string | undefined = undefined
            let first: number | undefined
            for (let page = 0; page < 10_000; page++) {
              const got: Scanned = yield* store.scan({ cursor, count: 1000 })
              first ??= got.now
              all.push(...got.keys)
              cursor = Option.getOrUndefined(got.cursor)
              if (cursor === undefined) break
            }
            // `size` is the payload's UTF-8 bytes on Redis and its UTF-16 code units in memory (a
            // known difference, see the failing test below): compared there, not here
            const keys = all.map((k) => ({ ...k, stored: Option.map(k.stored, ({ size: _size, ...rest }) => rest) }))
            return { now: first, keys: keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) }
          })
        case "advance":
        case "lose":
          return Effect.void
      }
    }

    const log: Array<string> = []
    for (const [i, op] of s.ops.entries()) {
      if (op.op === "lose") {
        server.cells.clear()
        yield* Effect.promise(() => client.del(...names()))
        // a loss takes time (a restart, a FLUSHDB): the memory store's clock moves on too
        yield* TestClock.adjust(1)
        log.push(`#${i} lose every record`)
        continue
      }
      if (op.op === "advance") {
        ticks += op.ticks
        yield* TestClock.setTime(virtualNow())
        yield* realSleep(virtualNow() - Date.now())
        log.push(`#${i} advance ${op.ticks * Q} ms`)
        continue
      }
      const m = yield* Effect.either(perform(memory, op))
      const r = yield* Effect.either(perform(redis, op))
      lag = Math.max(lag, Date.now() - virtualNow())
      for (const [store, reply] of [[memory, m], [redis, r]] as const) {
        if ((op.op === "commit" || op.op === "unchanged") && Either.isRight(reply) && (reply.right as Redis.Commit)._tag === "Committed") {
          writtenOn.get(store)!.set(op.key % s.keys.length, {
            bucket: Math.floor(virtualNow() / WINDOWS[op.win]!) + op.bucket,
            fence: op.fence ?? claimedOn.get(store)!.get(op.key % s.keys.length) ?? 0
          })
        }
        if (op.op === "set" && Either.isRight(reply)) {
          const w = reply.right as { readonly bucket: number; readonly fence: number }
          writtenOn.get(store)!.set(op.key % s.keys.length, { bucket: w.bucket, fence: w.fence })
        }
      }
      if (op.op === "claim" && Either.isRight(m) && (m.right as Redis.Claim)._tag === "Acquired") {
        claimedOn.get(memory)!.set(op.key % s.keys.length, (m.right as Extract<Redis.Claim, { _tag: "Acquired" }>).fence)
        holders.set(op.key % s.keys.length, tokenOf(op.key, op.token))
      }
      if (op.op === "claim" && Either.isRight(r) && (r.right as Redis.Claim)._tag === "Acquired") {
        claimedOn.get(redis)!.set(op.key % s.keys.length, (r.right as Extract<Redis.Claim, { _tag: "Acquired" }>).fence)
      }
      log.push(`#${i} ${show(op)} → ${show(normalise(m, "", []))}`)
      tally(timed, `${op.op} ${outcome(m)}`)
      for (const [side, reply] of [["memory", m], ["redis", r]] as const) {
        const wentBack = "key" in op ? goesBack(highest[side], keyOf(op.key), op.op, reply) : undefined
        if (wentBack !== undefined) {
          throw new Error(`a version went back on ${side} at operation #${i} ${op.op}: ${wentBack}\nafter:\n${log.join("\n")}`)
        }
      }
      // readMany answers for every key: each compared with its own key's versions
      const diff = op.op === "readMany" && Either.isRight(m) && Either.isRight(r)
        ? (m.right as ReadonlyArray<unknown>).map((x, j) => difference(x, (r.right as ReadonlyArray<unknown>)[j], tolerance(), versions, s.keys[j]!))
          .find((d) => d !== undefined)
        : difference(m, r, tolerance(), versions, "key" in op ? keyOf(op.key) : "")
      if (diff !== undefined) {
        if (timed && lag >= Q / 2 - 5) throw new Inconclusive(`Redis lagged ${lag} ms behind the steps`)
        throw new Error(`the stores differ at operation #${i} ${op.op} (key ${JSON.stringify(keyOf("key" in op ? op.key : 0))}):\n   ${diff}\nafter:\n${log.join("\n")}`)
      }
    }
    // the notices, in order, once Redis' have all arrived
    for (let i = 0; i < 400 && heard.redis.length < heard.memory.length; i++) yield* realSleep(5)
    yield* realSleep(5) // and any extra one
    const diff = difference(heard.memory.map((n) => noticeView(n, "memory")), heard.redis.map((n) => noticeView(n, "redis")), tolerance(), versions)
    if (diff !== undefined) {
      if (timed && lag >= Q / 2 - 5) throw new Inconclusive(`Redis lagged ${lag} ms behind the steps`)
      throw new Error(`the stores published different notices:\n   ${diff}\nafter:\n${log.join("\n")}`)
    }
    if (timed && lag >= Q / 2 - 5) throw new Inconclusive(`Redis lagged ${lag} ms behind the steps`)
  })

/** What the runs exercised (replies by kind), printed after each property. */
const tallies = { true: new Map<string, number>(), false: new Map<string, number>() }
const tally = (timed: boolean, what: string) => {
  const m = tallies[`${timed}`]
  m.set(what, (m.get(what) ?? 0) + 1)
}
const outcome = (reply: Either.Either<unknown, Redis.RedisError>): string => {
  if (Either.isLeft(reply)) return `error ${reply.left.reason}`
  const r = reply.right as { _tag?: string; reason?: string; mark?: unknown; stored?: unknown }
  if (typeof r === "boolean") return String(r)
  if (r?._tag !== undefined) return r.reason ? `${r._tag} ${r.reason}` : r._tag
  if (r !== null && typeof r === "object" && "stored" in r) return Option.isOption(r.stored) && Option.isSome(r.stored) ? "found" : "nothing"
  if (r !== null && typeof r === "object" && "mark" in r && Option.isOption(r.mark)) return Option.isSome(r.mark) ? "marked" : "absent"
  return "ok"
}
const printTallies = (timed: boolean) =>
  console.log(`model-store (${timed ? "timed" : "untimed"}): ${JSON.stringify(Object.fromEntries([...tallies[`${timed}`]].sort()))}`)

const property = (timed: boolean) => async (s: Scenario) => {
  const makeMemory = await memoryStore
  const exit = await Effect.runPromiseExit(run(s, timed, makeMemory).pipe(Effect.scoped, Effect.provide(TestContext.TestContext)))
  if (Exit.isSuccess(exit)) return
  const error = Cause.squash(exit.cause)
  // a run Redis could not keep the pace of says nothing: fast-check skips it
  fc.pre(!(error instanceof Inconclusive))
  throw error
}

describe("model: the in-memory store against redis-server", () => {
  const untimed = Model.parameters<[Scenario]>(100)
  it(`same replies and notices, lifetimes longer than a run (${untimed.numRuns} runs, seed ${untimed.seed})`, async () => {
    await fc.assert(fc.asyncProperty(scenario(false), property(false)), untimed)
    printTallies(false)
  }, Model.budget(untimed, 60))

  const timed = Model.parameters<[Scenario]>(12, 0.1)
  it(`same replies and notices as leases lapse, markers end and records expire (${timed.numRuns} runs, seed ${timed.seed})`, async () => {
    await fc.assert(fc.asyncProperty(scenario(true), property(true)), timed)
    printTallies(true)
  }, Model.budget(timed, 1500))
})

/**
 * Differences between the two stores found while building this model, outside the domain the
 * properties above draw from (there each key keeps one retain, as a loader does): each a
 * regression test.
 */
describe("model: differences it found between the stores", () => {
  const stores = (tenant: string): ReadonlyArray<readonly [string, Redis.Store]> => [
    ["memory", Effect.runSync(Redis.makeMemory({ tenant }))],
    ["redis", Redis.fromClient(client, { tenant })]
  ]
  /** Real time for Redis, the same on `TestClock` for the in-memory store. */
  const pass = (ms: number) => Effect.zipRight(realSleep(ms), TestClock.adjust(ms))
  const onBoth = <A>(f: (store: Redis.Store) => Effect.Effect<A, Redis.RedisError>) =>
    Effect.runPromise(
      Effect.forEach(stores(Model.uniqueTenant("known")), ([name, store]) =>
        Effect.map(Effect.zipRight(TestClock.setTime(Date.now()), f(store)), (a) => [name, a] as const)).pipe(
          Effect.provide(TestContext.TestContext)
        )
    ).then((pairs) => Object.fromEntries(pairs))

  /** The inspector's `size`: UTF-8 bytes on Redis (Lua's `#`), UTF-16 code units in memory. */
  it("scan reports the same size for a payload that is not ASCII", async () => {
    const sizes = await onBoth((store) =>
      Effect.gen(function*() {
        const c = yield* store.claim("k", { windowMs: WINDOWS[0], leaseMs: 10_000, token: "A", force: false, retainMs: 0 })
        if (c._tag !== "Acquired") return -1
        yield* store.commit("k", { data: JSON.stringify("é"), bucket: c.bucket, fence: c.fence, windowMs: WINDOWS[0], computedAt: 1 }, "A", { retainMs: 0 })
        const page = yield* store.scan({ count: 1000 })
        return Option.getOrThrow(page.keys[0]!.stored).size
      })
    )
    expect(sizes).toEqual({ memory: 4, redis: 4 }) // was: memory 3, redis 4
  })

  /**
   * A tag set lives as long as one of its keys' `retain` says: on Redis the first retained key's
   * `PEXPIRE` (a key kept forever added later does not clear it), in memory the latest tagger's.
   * Either way a key kept forever drops out of a tag it shares with a retained key, and
   * `invalidateTag` misses it.
   */
  it("a key kept forever stays in its tag when a retained key shares it", async () => {
    const found = await onBoth((store) =>
      Effect.gen(function*() {
        yield* store.tag("kept", ["shared"], { retainMs: 0 })
        yield* store.tag("retained", ["shared"], { retainMs: 300 })
        yield* store.tag("kept", ["shared"], { retainMs: 0 })
        yield* store.tag("kept", ["shared2"], { retainMs: 0 })
        yield* store.tag("retained", ["shared2"], { retainMs: 300 })
        yield* pass(500)
        return [(yield* store.tagged("shared")).includes("kept"), (yield* store.tagged("shared2")).includes("kept")]
      })
    )
    expect(found).toEqual({ memory: [true, true], redis: [true, true] }) // was: memory [true, false], redis [false, false]
  })

  /**
   * The invalidation mark takes the record's lifetime, but Redis' script reads `PTTL` -1 (no
   * lifetime) as "no record" and takes the fence counter's instead: when `retain` changed between
   * a claim and the commit, the mark goes before the record, and the invalidated value is fresh
   * again. The in-memory store keeps the mark with the record.
   */
  it("an invalidation lasts as long as the value it marks", async () => {
    const marks = await onBoth((store) =>
      Effect.gen(function*() {
        const c = yield* store.claim("k", { windowMs: WINDOWS[0], leaseMs: 10_000, token: "A", force: false, retainMs: 300 })
        if (c._tag !== "Acquired") return "not acquired"
        yield* store.commit("k", { data: "1", bucket: c.bucket, fence: c.fence, windowMs: WINDOWS[0], computedAt: 1 }, "A", { retainMs: 0 })
        yield* store.invalidate("k")
        yield* pass(500)
        const read = yield* store.get("k")
        const again = yield* store.claim("k", { windowMs: WINDOWS[0], leaseMs: 10_000, token: "B", force: false, retainMs: 0 })
        const marked = read.mark === c.fence ? "the value's fence" : String(read.mark)
        return `${Option.isSome(read.stored) ? "value kept" : "value gone"}, mark ${marked}, next claim ${again._tag}`
      })
    )
    // was: redis "value kept, mark -1, next claim Fresh"
    const expected = "value kept, mark the value's fence, next claim Acquired"
    expect(marks).toEqual({ memory: expected, redis: expected })
  })
})
