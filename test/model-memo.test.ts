/**
 * The memo model: random sequences of requests (pod i, key k; through `get` or the batch path,
 * `getMany`), clock advances, invalidations, `set`s (during outages too), lookups that fail or
 * hang, data losses of the store (with and without a restart that drops the subscriptions), and
 * pod crashes, restarts, disconnects, reconnects and clock skews,
 * run on `Testing.fleet` under `TestClock`, checked against the fleet's promises:
 *
 * 1. **Starts.** Lookup starts under the fleet lock (by a pod that reaches the store), per key and
 *    window of the store's clock: at most 1, plus one for each fault that permits another:
 *    - an invalidation of the key in that window (its one recompute);
 *    - a run of that window that failed (after its back-off marker) or hung (stopped at
 *      `maxRun`, which leaves a marker too);
 *    - a crash, restart or disconnect of a pod while it ran the key's lookup for that window (its
 *      lease lapses and another pod takes over).
 *    So one fault of those kinds in a window allows 2 (DESIGN's "≤ 2 under holder crash / Redis
 *    loss"), none allows 1. A pod cut off from the store runs on its own, at most once per key and
 *    window (2 when its clock is skewed: its windows are not the store's), plus one per such run
 *    that failed or hung.
 * 2. **Never older.** A pod (one process incarnation) never answers a key with an older
 *    `(bucket, fence)` than an answer it gave before this request came.
 * 3. **No wait once a value exists.** A request is answered without any virtual time passing
 *    (`Testing.instantly`) when its pod already answered the key (it is in L1), or when the pod
 *    reaches the store, the store holds a value, and no earlier request of the pod for that key is
 *    still waiting (a request that joins a cold wait shares its fate).
 * 4. **No old hit after an invalidation or a set.** Once `invalidate(k)` or `set(k)` has returned
 *    (the in-memory store tells the fleet synchronously), no pod that was connected then, started
 *    later or reconnected since, answers `hit` with a value whose lookup started before it,
 *    whatever the store lost meanwhile. A data loss permits one more start per key in its window
 *    (and in the next one, when an early run had computed or was computing it: docs/early-runs.md).
 * 5. **Errors only when cold.** A request fails only when it had to wait (3 does not apply), and
 *    then with the lookup's own error or `MaxRunExceeded`; at the end, with every pod reconnected
 *    and lookups working again, every request has been answered.
 * 7. **An invalidation recomputes.** Without faults, a lookup starts for the first request after
 *    an invalidation (or once the run in flight ends).
 * 6. **Fresh again once the faults are over.** Then, asked again on a live pod, every key the
 *    scenario used answers a hit within about a window: an invalidated value was recomputed, a
 *    back-off ended, a lapsed lease was taken over.
 *
 * The fence of each run is known without looking inside the engine: the test watches the claims
 * the pods make on the shared store, and a lookup under the lock starts right after its claim
 * acquired, so its fence is the key's latest acquired one; every commit notice checks that
 * bookkeeping (a mismatch fails the run).
 */
import { Cause, Context, Data, Duration, Effect, Exit, Fiber, Logger, LogLevel, Option, Schema, type Scope, TestClock, TestContext } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "@effect/vitest"
import { Memo, type Redis } from "../src/index.js"
import * as Keys from "../src/internal/keys.js"
import * as Testing from "../src/Testing.js"
import * as Model from "./support/model.js"

const W = 10_000
/**
 * Where the runs start on the clock: a real epoch, window-aligned. (A clock before 1970 is
 * covered by its own regression test below.)
 */
const T0 = 1_700_000_000_000
/** How long a lookup takes (virtual time). */
const D = 1_000
const SETTINGS = {
  lease: Duration.seconds(3),
  pollInterval: Duration.millis(200),
  redisRetry: Duration.millis(250),
  failureBackoff: Duration.millis(500),
  maxFailureBackoff: Duration.seconds(2),
  degradedAfter: Duration.seconds(1),
  maxRun: Duration.seconds(4)
} satisfies Partial<Memo.Settings>
const MAX_RUN_MS = 4_000
const LEASE_MS = 3_000

type LookupMode = "ok" | "fail" | "hang"

interface Run {
  readonly run: number
  readonly key: number
  readonly pod: number
  readonly incarnation: number
  /** The store's (true) clock at the start, and its window. */
  readonly at: number
  readonly bucket: number
  /** Started by a pod that reached the store (under the lock), or on its own. */
  readonly leader: boolean
  /** The leader's fence (the n-th start under the lock); 0 for a run on its own. */
  readonly fence: number
  readonly mode: LookupMode
  readonly skewed: boolean
  readonly seq: number
  outcome: "running" | "ok" | "failed" | "interrupted"
  /** A value written by `set` rather than a lookup: its fence is learnt from its commit. */
  readonly set?: boolean
  /** Made by a pod of the next release (`deploy`), whose schema differs; absent: the first. */
  readonly release?: 2
}

interface Incarnation {
  readonly id: number
  readonly pod: number
  readonly bootSeq: number
  /** It ran a lookup on its own with a skewed clock: its L1 may hold a value "from the future" that the clock's correction drops. */
  aheadRisk: boolean
}

interface Request {
  readonly id: number
  readonly pod: number
  readonly incarnation: number
  readonly key: number
  readonly startSeq: number
  readonly at: number
  readonly expectInstant: boolean
  readonly why: string
  endSeq?: number
  /** The store's window when the answer came. */
  endBucket?: number
  exit?: Exit.Exit<Memo.Info<{ readonly key: number; readonly run: number }>, unknown>
}

interface Invalidation {
  readonly key: number
  readonly pod: number
  readonly callSeq: number
  readonly returnSeq: number
  readonly bucket: number
  /** Incarnations connected when it returned. */
  readonly covered: ReadonlySet<number>
  /** The store held nothing of the key (no record, no fence issued): there was nothing to mark. */
  readonly absent: boolean
  /** A lookup of the key was running (somewhere) when it came. */
  readonly runInFlight: boolean
  /** A `set` rather than an invalidation: it too makes every value computed before it old. */
  readonly set?: boolean
}

/** The world the lookups see: which pod runs them, what they should do, what they did. */
interface World {
  readonly trueNow: () => number
  readonly pods: ReadonlyArray<Testing.Pod>
  readonly incarnationOf: Array<Incarnation>
  readonly skews: Array<number>
  readonly modes: Map<number, LookupMode>
  readonly runs: Array<Run>
  /** Starts under the lock, per key. */
  readonly leaders: Map<number, number>
  /** The fence of the latest acquired claim, per cache key (observed on the shared store). */
  readonly acquired: Map<string, number>
  /** The window that claim was for: the next one for an early run (`keepWarm`). */
  readonly acquiredBucket: Map<string, number>
  readonly next: () => number
  readonly log: Array<string>
  /** Pods that run the next release (`deploy`). */
  readonly nextRelease: Set<number>
}

class Caller extends Context.Tag("model/Caller")<Caller, { readonly world: World; readonly pod: number }>() {}

class LookupFailed extends Data.TaggedError("LookupFailed")<{ readonly run: number }> {}

const Value = Schema.Struct({ key: Schema.Number, run: Schema.Number })
type Value = typeof Value.Type

/** A stored or notified payload as the model's value, `None` for a foreign one. */
const decodeValue = Schema.decodeUnknownOption(Schema.parseJson(Value))

/** The lookup of the first release (`release` 1) or of the next one (`nextLoader`). */
const lookupOf = (release: 1 | 2) => (k: number): Effect.Effect<Value, LookupFailed, Caller> =>
  Effect.flatMap(Effect.all([Caller, Effect.option(Effect.currentSpan)]), ([{ pod, world }, span]) =>
    Effect.suspend(() => {
      const at = world.trueNow()
      // the engine says how it runs the lookup (`lockstep.mode` of its span): under the lock, or
      // on its own (the store unreachable, or a cold key backing off after another pod's failure)
      const mode_ = Option.flatMap(span, (s) => Option.fromNullable(s.attributes.get("lockstep.mode")))
      const leader = Option.match(mode_, { onNone: () => world.pods[pod]!.status === "up", onSome: (m) => m === "leader" })
      // the claim that took the lock is the key's latest acquired one: nobody else can acquire
      // while we hold it (an earlier one may have been orphaned by a crash before its lookup began)
      const fence = leader ? world.acquired.get(loader.keyOf(k)) ?? -1 : 0
      if (leader) world.leaders.set(k, (world.leaders.get(k) ?? 0) + 1)
      const mode = world.modes.get(k) ?? "ok"
      const incarnation = world.incarnationOf[pod]!
      const run: Run = {
        run: world.runs.length + 1,
        key: k,
        pod,
        incarnation: incarnation.id,
        at,
        // an early run is the next window's
        bucket: leader ? world.acquiredBucket.get(loader.keyOf(k)) ?? Math.floor(at / W) : Math.floor(at / W),
        leader,
        fence,
        mode,
        skewed: world.skews[pod] !== 0,
        seq: world.next(),
        outcome: "running",
        ...(release === 2 ? { release } : {})
      }
      world.runs.push(run)
      if (!leader && run.skewed) incarnation.aheadRisk = true
      world.log.push(`  t=${at - T0} run ${run.run} of key ${k} starts on pod ${pod} (${leader ? `leader, fence ${fence}` : "on its own"}, ${mode})`)
      const body: Effect.Effect<Value, LookupFailed> = mode === "ok"
        ? Effect.succeed({ key: k, run: run.run })
        : mode === "fail"
        ? Effect.fail(new LookupFailed({ run: run.run }))
        : Effect.never
      return Effect.zipRight(Effect.sleep(D), body).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            run.outcome = Exit.isSuccess(exit) ? "ok" : Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "failed"
            world.log.push(`  t=${world.trueNow() - T0} run ${run.run} ends: ${run.outcome}`)
          })
        )
      )
    }))

const lookup = lookupOf(1)

const loader = Memo.loader({ key: (k: number) => `key:${k}`, window: W, schema: Value, lookup })

/**
 * The same loader in the next release, whose stored shape changed: a pod runs it after `deploy`.
 * (The first release's schema ignores the field it adds, so each can read the other's values; the
 * schema identities still tell them apart.)
 */
const nextLoader = Memo.loader({
  key: (k: number) => `key:${k}`,
  window: W,
  schema: Schema.Struct({ key: Schema.Number, run: Schema.Number, release: Schema.Literal(2) }),
  lookup: (k: number) => Effect.map(lookupOf(2)(k), (v) => ({ ...v, release: 2 as const }))
})

/** The loader a pod runs: the first release's, or the next one's once it was deployed to it. */
const loaderOf = (world: World, pod: number): typeof loader =>
  world.nextRelease.has(pod) ? (nextLoader as unknown as typeof loader) : loader

// ---------------------------------------------------------------------------------------------
// scenarios

type Step =
  /** `many`: through `getManyWithInfo` (the key twice), the batch path, rather than `getWithInfo`. */
  | { readonly s: "request"; readonly pod: number; readonly key: number; readonly n: number; readonly many: boolean }
  | { readonly s: "advance"; readonly ms: number }
  | { readonly s: "invalidate"; readonly pod: number; readonly key: number }
  | { readonly s: "mode"; readonly key: number; readonly mode: LookupMode }
  | { readonly s: "crash"; readonly pod: number }
  | { readonly s: "restart"; readonly pod: number }
  | { readonly s: "disconnect"; readonly pod: number }
  | { readonly s: "reconnect"; readonly pod: number }
  | { readonly s: "skew"; readonly pod: number; readonly ms: number }
  /** The store loses every record; `restart`: every pod's notice subscription drops and comes back too. */
  | { readonly s: "lose"; readonly restart: boolean }
  | { readonly s: "set"; readonly pod: number; readonly key: number }
  /** `Memo.keepWarm` on the pod for the key, with early runs (a lead of 2 s, twice a lookup) or not. */
  | { readonly s: "keepWarm"; readonly pod: number; readonly key: number; readonly early: boolean }
  | ForeignStep

// ---------------------------------------------------------------------------------------------
// foreign records, retain lapses and a rolling deploy: their steps (run by `foreignStep` in
// `runScenario`)

/**
 * What may be found under a key's value record that no process of this release wrote:
 * - `wrongType`: not a record at all (a string, as a hand edit or another program leaves);
 * - `future`: a record stamped a thousand windows ahead (a clock far ahead, a restore);
 * - `undecodable`: a record of the current window whose value does not decode, written through
 *   the protocol (a forced claim and a commit) by another deployment that shares the tenant;
 * - `otherVersion`: the same, with another schema identity: another version of the loader
 *   during a rolling deploy.
 */
type ForeignKind = "wrongType" | "future" | "undecodable" | "otherVersion"

type ForeignStep =
  | { readonly s: "foreign"; readonly key: number; readonly kind: ForeignKind }
  /** A rolling deploy reaches the pod: it restarts running the next release (`nextLoader`). */
  | { readonly s: "deploy"; readonly pod: number }
  /** The key's records expire (value, fence counter, mark, failures), as `retain` lapsing would. */
  | { readonly s: "lapse"; readonly key: number }

const foreignStep_: fc.Arbitrary<ForeignStep> = fc.oneof(
  fc.record({
    s: fc.constant("foreign" as const),
    key: fc.nat({ max: 1 }),
    kind: fc.constantFrom<ForeignKind>("wrongType", "future", "undecodable", "otherVersion")
  }),
  fc.record({ s: fc.constant("lapse" as const), key: fc.nat({ max: 1 }) }),
  fc.record({ s: fc.constant("deploy" as const), pod: fc.nat({ max: 3 }) })
)

/** `base`'s steps with, now and then, a foreign record or a retain lapse. */
const withForeign = (base: fc.Arbitrary<Step>): fc.Arbitrary<Step> =>
  fc.oneof({ weight: 12, arbitrary: base }, { weight: 2, arbitrary: foreignStep_ })

const podIndex = fc.nat({ max: 3 })
const keyIndex = fc.nat({ max: 1 })
const advance = fc.record({ s: fc.constant("advance" as const), ms: fc.constantFrom(10, 60, 300, 1_000, 1_000, 3_000, 6_000) })
const request = fc.record({
  s: fc.constant("request" as const),
  pod: podIndex,
  key: keyIndex,
  n: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 3 }) }),
  many: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
})
const invalidate = fc.record({ s: fc.constant("invalidate" as const), pod: podIndex, key: keyIndex })
const keepWarm = fc.record({ s: fc.constant("keepWarm" as const), pod: podIndex, key: keyIndex, early: fc.boolean() })

const set = fc.record({ s: fc.constant("set" as const), pod: podIndex, key: keyIndex })

const faultFreeStep: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: request },
  { weight: 5, arbitrary: advance },
  { weight: 1, arbitrary: invalidate },
  { weight: 1, arbitrary: set },
  { weight: 1, arbitrary: keepWarm }
)

const faultyStep: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: request },
  { weight: 6, arbitrary: advance },
  { weight: 1, arbitrary: invalidate },
  { weight: 1, arbitrary: keepWarm },
  { weight: 2, arbitrary: fc.record({ s: fc.constant("mode" as const), key: keyIndex, mode: fc.constantFrom<LookupMode>("ok", "ok", "fail", "hang") }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("crash" as const), pod: podIndex }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("restart" as const), pod: podIndex }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("disconnect" as const), pod: podIndex }) },
  { weight: 2, arbitrary: fc.record({ s: fc.constant("reconnect" as const), pod: podIndex }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("skew" as const), pod: podIndex, ms: fc.constantFrom(-12_000, -4_000, -300, 0, 0, 300, 4_000, 12_000) }) },
  { weight: 1, arbitrary: set },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("lose" as const), restart: fc.boolean() }) }
)

interface Scenario {
  readonly pods: number
  readonly steps: ReadonlyArray<Step>
}

const scenario = (step: fc.Arbitrary<Step>, maxLength: number): fc.Arbitrary<Scenario> =>
  fc.record({ pods: fc.integer({ min: 2, max: 4 }), steps: fc.array(step, { minLength: 1, maxLength, size: "max" }) })

// ---------------------------------------------------------------------------------------------
// running one

const waitedMessage = "the effect waited for virtual time"

const version = (r: Request, runs: ReadonlyArray<Run>) => {
  const info = (r.exit as Exit.Success<Memo.Info<Value>, unknown>).value
  return { bucket: info.bucket, fence: runs[info.value.run - 1]!.fence }
}
/** How a key-window of the next release's runs is told apart from the first release's. */
const release2 = " (next release)"

const older = (a: { bucket: number; fence: number }, b: { bucket: number; fence: number }) =>
  a.bucket < b.bucket || (a.bucket === b.bucket && a.fence < b.fence)

const runScenario = (s: Scenario, faults: boolean): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const fleet = yield* Effect.orDie(Testing.fleet(s.pods, SETTINGS))
    const clock = yield* Effect.clock
    let seq = 0
    const world: World = {
      trueNow: () => clock.unsafeCurrentTimeMillis(),
      pods: fleet.pods,
      incarnationOf: fleet.pods.map((_, pod) => ({ id: pod, pod, bootSeq: 0, aheadRisk: false })),
      skews: fleet.pods.map(() => 0),
      modes: new Map(),
      runs: [],
      leaders: new Map(),
      acquired: new Map(),
      acquiredBucket: new Map(),
      next: () => ++seq,
      log: [],
      nextRelease: new Set()
    }
    let incarnations = s.pods
    let losses = 0
    /** When each incarnation reconnected to the store (and so resubscribed to its notices). */
    const reconnects: Array<{ readonly incarnation: number; readonly seq: number }> = []
    const requests: Array<Request> = []
    const invalidations: Array<Invalidation> = []
    /** Per key and window: what permits another start under the lock. */
    const allowances = new Map<string, Array<string>>()
    const allow = (key: number, bucket: number, why: string) => {
      const k = `${key}@${bucket}`
      allowances.set(k, [...(allowances.get(k) ?? []), why])
    }
    /** Per key and window of one release (a key of `leaderStarts`): what permits that release another start. */
    const releaseAllowances = new Map<string, Array<string>>()
    const bookkeeping: Array<string> = []
    /** When each key's record was last written, and its lock last taken (a retain lapse: `foreignStep`). */
    const lastWrite = new Map<string, number>()
    const lastClaim = new Map<string, number>()
    /** Keys some pod keeps warm with early runs. */
    const warmedEarly = new Set<number>()

    // every commit (the fleet's and write-backs) tells which run it holds and with which fence
    yield* fleet.store.subscribe({
      onNotice: (n) => {
        // every write of the key's records (a commit, a set, an invalidation's mark, a purge)
        if (n._tag !== "Released") lastWrite.set(n.key, world.trueNow())
        if ((n._tag !== "Committed" && n._tag !== "Pending") || Option.isNone(n.data)) return
        if (n._tag === "Pending") tally(faults, "early commits")
        // a foreign record written through the protocol (`foreignStep`) is no run of the model's
        const decoded = decodeValue(n.data.value)
        if (Option.isNone(decoded)) return
        const { run } = decoded.value
        const r = world.runs[run - 1]
        // a set learns its fence from its commit
        if (r?.set === true && r.fence === 0) (r as { fence: number }).fence = n.fence
        // a value put back into a store that lost it, under a newer fence
        const restored = r !== undefined && losses > 0 && n.fence > r.fence
        if (r === undefined || (r.fence !== n.fence && !restored) || (r.leader && r.bucket !== n.bucket && !restored)) {
          bookkeeping.push(`commit of run ${run} with (${n.bucket}, ${n.fence}); the model has ${JSON.stringify(r)}`)
        }
        world.log.push(`  t=${world.trueNow() - T0} committed run ${run} as (${n.bucket}, ${n.fence})${n._tag === "Pending" ? " early" : ""}, mark ${n.mark}`)
      },
      onState: () => {}
    })

    // the fleet's pods call the shared store's methods as they find them: watch its claims
    const claim = fleet.store.claim
    ;(fleet.store as { claim: Redis.Store["claim"] }).claim = (key, options) =>
      Effect.tap(claim(key, options), (c) => {
        if (c._tag === "Acquired") {
          lastClaim.set(key, world.trueNow())
          world.acquired.set(key, c.fence)
          world.acquiredBucket.set(key, c.bucket)
        }
      })

    const keyName = (k: number) => loader.keyOf(k)
    /** The schema identity each release writes its values with, as learnt from the store. */
    const identities = new Map<1 | 2, string>()
    const served = (inc: number, key: number) =>
      requests.filter((r) => r.incarnation === inc && r.key === key && r.exit !== undefined && Exit.isSuccess(r.exit))
    const finish = (r: Request) => (exit: Exit.Exit<Memo.Info<Value>, unknown>) => {
      r.endSeq = world.next()
      r.endBucket = Math.floor(world.trueNow() / W)
      r.exit = exit
      world.log.push(`  t=${world.trueNow() - T0} request ${r.id} (pod ${r.pod}, key ${r.key}) → ${
        Exit.isSuccess(exit) ? `run ${exit.value.value.run} (${exit.value.cache}, bucket ${exit.value.bucket})` : Cause.pretty(exit.cause).split("\n")[0]
      }`)
    }

    const doRequest = (pod: number, key: number, many: boolean) =>
      Effect.gen(function*() {
        const p = fleet.pods[pod]!
        if (p.status === "crashed") return
        const inc = world.incarnationOf[pod]!
        const knows = served(inc.id, key).length > 0 && !inc.aheadRisk
        const stored = yield* Effect.orDie(fleet.store.get(keyName(key)))
        // a value this release can read (not a foreign record: `foreignStep`), written by a pod of
        // the same release (its schema identity, learnt from the records of its runs)
        const readable = Option.filter(stored.stored, (v) => v.windowMs === W && Option.isSome(decodeValue(v.data)))
        if (Option.isSome(readable) && readable.value.schema !== undefined) {
          const writer = world.runs[Option.getOrThrow(decodeValue(readable.value.data)).run - 1]
          if (writer !== undefined) identities.set(writer.release ?? 1, readable.value.schema)
        }
        const inStore = Option.exists(readable, (v) => v.schema === undefined || v.schema === identities.get(world.nextRelease.has(pod) ? 2 : 1))
        const joins = requests.some((r) => r.incarnation === inc.id && r.key === key && r.exit === undefined)
        const expectInstant = knows || (p.status === "up" && inStore && !joins)
        const r: Request = {
          id: requests.length + 1,
          pod,
          incarnation: inc.id,
          key,
          startSeq: world.next(),
          at: world.trueNow(),
          expectInstant,
          why: knows ? "the pod answered the key before" : expectInstant ? "the store holds a value" : "cold"
        }
        requests.push(r)
        const get = many ? Effect.map(loaderOf(world, pod).getManyWithInfo([key, key]), (infos) => infos[0]!) : loaderOf(world, pod).getWithInfo(key)
        const effect = p.run(Effect.provideService(get, Caller, { world, pod }))
        world.log.push(`t=${r.at - T0} request ${r.id} on pod ${pod} (${p.status}) for key ${key}: expected ${expectInstant ? `at once (${r.why})` : "to wait"}`)
        if (expectInstant) {
          finish(r)(yield* Effect.exit(Testing.instantly(effect)))
        } else {
          const fiber = yield* Effect.fork(effect)
          fiber.addObserver(finish(r))
        }
      })

    /** A pod's lookups under the lock that a fault now orphans: each permits one more start. */
    const orphan = (pod: number, why: string) => {
      const inc = world.incarnationOf[pod]!.id
      for (const r of world.runs) {
        if (r.incarnation === inc && r.leader && r.outcome === "running") allow(r.key, r.bucket, `${why} of pod ${pod} during run ${r.run}`)
      }
    }

    /** When each incarnation started. */
    const bootSeqs = new Map<number, number>()
    const reboot = (pod: number) => {
      const next: Incarnation = { id: incarnations++, pod, bootSeq: world.next(), aheadRisk: false }
      world.incarnationOf[pod] = next
      bootSeqs.set(next.id, next.bootSeq)
    }

    // -------------------------------------------------------------------------------------------
    // foreign records, retain lapses and a rolling deploy: what they do, and the starts they permit

    const recordsOf = (key: number) => Keys.make(Keys.tenantPrefix(fleet.store.tenant), keyName(key))
    const foreignStep = (step: ForeignStep) =>
      Effect.gen(function*() {
        const now = world.trueNow()
        const bucket = Math.floor(now / W)
        if (step.s === "deploy") {
          const pod = step.pod % s.pods
          if (world.nextRelease.has(pod)) return
          // without other faults, a deploy waits for the pod's runs to end (as a drained pod's
          // shutdown would), rather than leave a lock to lapse
          const inc = world.incarnationOf[pod]!.id
          if (!faults && world.runs.some((r) => r.incarnation === inc && r.outcome === "running")) {
            world.log.push(`t=${now - T0} pod ${pod} is not deployed yet: it runs a lookup`)
            return
          }
          if (fleet.pods[pod]!.status !== "crashed") orphan(pod, "a deploy")
          world.log.push(`t=${now - T0} pod ${pod} restarts on the next release`)
          yield* fleet.pods[pod]!.restart
          reboot(pod)
          world.nextRelease.add(pod)
          tally(faults, "deploys")
          return
        }
        const names = recordsOf(step.key)
        if (step.s === "lapse") {
          // as with the least retain there is (a window): the record, its mark, failures and fence
          // counter expire together a window after the key was last written (a commit, a set, an
          // invalidation's mark) or claimed (a claim gives the counter the record's lifetime); the
          // lock has a lease of its own, and stays
          const since = (m: Map<string, number>) => now - (m.get(keyName(step.key)) ?? -Infinity)
          if (since(lastWrite) < W || since(lastClaim) < W) {
            world.log.push(`t=${now - T0} key ${step.key} was written or claimed less than a window ago: nothing of it expires`)
            return
          }
          for (const name of [names.value, names.mark, names.failures, names.fence]) fleet.server.cells.delete(name)
          world.log.push(`t=${now - T0} key ${step.key}'s records expire (retain lapsed)`)
          tally(faults, "retain lapses")
          losses++
          allow(step.key, bucket, "a retain lapse")
          // a value computed early for the next window went with the record
          if (warmedEarly.has(step.key)) allow(step.key, bucket + 1, "a retain lapse after an early run")
          return
        }
        if (step.kind === "wrongType" || step.kind === "future") {
          fleet.server.cells.set(
            names.value,
            step.kind === "wrongType"
              ? { value: "not a record", expiresAt: Infinity, key: keyName(step.key) }
              : {
                value: { data: JSON.stringify({ key: step.key, run: 0 }), bucket: bucket + 1_000, fence: 1, windowMs: W, computedAt: now },
                expiresAt: Infinity,
                key: keyName(step.key)
              }
          )
        } else {
          // through the protocol, as another deployment would: a forced claim, then a commit
          const token = `foreign-${world.next()}`
          const c = yield* Effect.orDie(fleet.store.claim(keyName(step.key), { windowMs: W, leaseMs: LEASE_MS, token, force: true, retainMs: 0 }))
          if (c._tag !== "Acquired") {
            world.log.push(`t=${now - T0} no foreign ${step.kind} record for key ${step.key}: its lock is held`)
            return
          }
          yield* Effect.orDie(fleet.store.commit(keyName(step.key), {
            data: JSON.stringify("not a value"),
            bucket: c.bucket,
            fence: c.fence,
            windowMs: W,
            computedAt: now,
            ...(step.kind === "otherVersion" ? { schema: "another-version" } : {})
          }, token, { retainMs: 0 }))
        }
        world.log.push(`t=${now - T0} a foreign record (${step.kind}) under key ${step.key}`)
        tally(faults, `foreign records ${step.kind}`)
        // as far as the protocol can tell, the key's value record is gone or replaced: a pod that
        // holds the window's value may put it back, and the window may cost one more start
        losses++
        allow(step.key, bucket, `a foreign record (${step.kind})`)
        // a value computed early for the next window went with the record it replaced
        if (warmedEarly.has(step.key)) allow(step.key, bucket + 1, `a foreign record (${step.kind}) after an early run`)
      })

    for (const step of s.steps) {
      switch (step.s) {
        case "request":
          for (let i = 0; i < step.n; i++) yield* doRequest(step.pod % s.pods, step.key, step.many)
          break
        case "advance":
          world.log.push(`advance ${step.ms} ms`)
          yield* TestClock.adjust(step.ms)
          break
        case "invalidate": {
          const pod = step.pod % s.pods
          const p = fleet.pods[pod]!
          if (p.status === "crashed") break
          const before = yield* Effect.orDie(fleet.store.get(keyName(step.key)))
          const absent = Option.isNone(before.stored) && !world.acquired.has(keyName(step.key))
          const callSeq = world.next()
          const exit = yield* Effect.exit(p.run(loader.invalidate(step.key)))
          world.log.push(`t=${world.trueNow() - T0} invalidate key ${step.key} on pod ${pod}: ${Exit.isSuccess(exit) ? "done" : "failed"}`)
          if (Exit.isSuccess(exit)) {
            const bucket = Math.floor(world.trueNow() / W)
            invalidations.push({
              key: step.key,
              pod,
              callSeq,
              returnSeq: world.next(),
              bucket,
              covered: new Set(fleet.pods.flatMap((q, i) => (q.status === "up" ? [world.incarnationOf[i]!.id] : []))),
              absent,
              runInFlight: world.runs.some((r) => r.key === step.key && r.outcome === "running")
            })
            allow(step.key, bucket, "an invalidation")
            // a value computed early for the next window is stale when it opens: one recompute there
            if (warmedEarly.has(step.key)) allow(step.key, bucket + 1, "an invalidation after an early run")
          }
          break
        }
        case "keepWarm": {
          const pod = step.pod % s.pods
          const p = fleet.pods[pod]!
          if (p.status === "crashed") break
          if (step.early) warmedEarly.add(step.key)
          world.log.push(`t=${world.trueNow() - T0} keepWarm key ${step.key} on pod ${pod}${step.early ? ", early" : ""}`)
          yield* p.run(Effect.provideService(Memo.keepWarm(loaderOf(world, pod), step.key, { lead: step.early ? "2 seconds" : false }), Caller, { world, pod }))
          break
        }
        case "mode":
          world.modes.set(step.key, step.mode)
          world.log.push(`lookups of key ${step.key} from now on: ${step.mode}`)
          break
        case "crash": {
          const pod = step.pod % s.pods
          if (fleet.pods[pod]!.status === "crashed") break
          orphan(pod, "a crash")
          world.log.push(`t=${world.trueNow() - T0} crash pod ${pod}`)
          yield* fleet.pods[pod]!.crash
          break
        }
        case "restart": {
          const pod = step.pod % s.pods
          if (fleet.pods[pod]!.status !== "crashed") orphan(pod, "a restart")
          world.log.push(`t=${world.trueNow() - T0} restart pod ${pod}`)
          yield* fleet.pods[pod]!.restart
          reboot(pod)
          break
        }
        case "disconnect": {
          const pod = step.pod % s.pods
          if (fleet.pods[pod]!.status !== "up") break
          orphan(pod, "a disconnect")
          world.log.push(`t=${world.trueNow() - T0} disconnect pod ${pod}`)
          yield* fleet.pods[pod]!.disconnect
          break
        }
        case "reconnect": {
          const pod = step.pod % s.pods
          world.log.push(`t=${world.trueNow() - T0} reconnect pod ${pod}`)
          if (fleet.pods[pod]!.status === "disconnected") reconnects.push({ incarnation: world.incarnationOf[pod]!.id, seq: world.next() })
          yield* fleet.pods[pod]!.reconnect
          break
        }
        case "lose": {
          losses++
          world.log.push(`t=${world.trueNow() - T0} the store loses every record${step.restart ? " (a restart: subscriptions drop)" : ""}`)
          yield* fleet.lose({ restart: step.restart })
          // a key no pod holds the window's value of is computed again; a run in flight lost its lock
          const bucket = Math.floor(world.trueNow() / W)
          for (const key of [0, 1]) {
            allow(key, bucket, "a data loss")
            // an early run of the next window (committed beside the record, or still running) went
            // with the records too: that window's value is computed again after its boundary
            if (world.runs.some((r) => r.key === key && r.leader && r.bucket > bucket)) allow(key, bucket + 1, "a data loss after an early run")
          }
          break
        }
        case "set": {
          const pod = step.pod % s.pods
          const p = fleet.pods[pod]!
          if (p.status === "crashed") break
          const callSeq = world.next()
          const at = world.trueNow()
          const run: Run = {
            run: world.runs.length + 1,
            key: step.key,
            pod,
            incarnation: world.incarnationOf[pod]!.id,
            at,
            bucket: Math.floor(at / W),
            leader: false,
            fence: 0,
            mode: "ok",
            skewed: world.skews[pod] !== 0,
            seq: world.next(),
            outcome: "ok",
            set: true,
            ...(world.nextRelease.has(pod) ? { release: 2 as const } : {})
          }
          world.runs.push(run)
          const value = world.nextRelease.has(pod) ? { key: step.key, run: run.run, release: 2 } : { key: step.key, run: run.run }
          const exit = yield* Effect.exit(p.run(loaderOf(world, pod).set(step.key, value)))
          world.log.push(`t=${at - T0} set key ${step.key} on pod ${pod} (${p.status}) to run ${run.run}: ${Exit.isSuccess(exit) ? "done" : "failed"}`)
          if (Exit.isFailure(exit)) {
            run.outcome = "failed"
            break
          }
          invalidations.push({
            key: step.key,
            pod,
            callSeq,
            returnSeq: world.next(),
            bucket: Math.floor(world.trueNow() / W),
            covered: new Set(fleet.pods.flatMap((q, i) => (q.status === "up" ? [world.incarnationOf[i]!.id] : []))),
            absent: false,
            runInFlight: world.runs.some((r) => r.key === step.key && r.outcome === "running"),
            set: true
          })
          // a value computed early for the next window is older than the set: dropped, as after an
          // invalidation, and computed again when its window opens
          if (warmedEarly.has(step.key)) allow(step.key, Math.floor(world.trueNow() / W) + 1, "a set after an early run")
          // during a rolling deploy, the other release's value of this window (beside the record, or
          // being computed) is older than the set, which it cannot read: that release runs once more
          // (docs/versions.md)
          const other = world.nextRelease.has(pod) ? undefined : 2
          if (world.runs.some((r) => r.key === step.key && r.leader && r.bucket === run.bucket && r.release === other)) {
            const k = `${step.key}@${run.bucket}${other === 2 ? release2 : ""}`
            releaseAllowances.set(k, [...(releaseAllowances.get(k) ?? []), `a set from the other release on pod ${pod}`])
          }
          break
        }
        case "foreign":
        case "lapse":
        case "deploy":
          yield* foreignStep(step)
          break
        case "skew": {
          const pod = step.pod % s.pods
          world.skews[pod] = step.ms
          world.log.push(`t=${world.trueNow() - T0} pod ${pod}'s clock ${step.ms} ms off`)
          yield* fleet.pods[pod]!.setClockSkew(step.ms)
          break
        }
      }
    }

    // the end: everyone back, lookups working: every request gets its answer
    world.log.push(`t=${world.trueNow() - T0} end: every pod reconnected, lookups ok`)
    world.modes.clear()
    for (const p of fleet.pods) yield* p.reconnect
    // a hung run ends at maxRun, a lapsed lease is taken over, a back-off ends, a cold wait is answered
    const settle = Effect.gen(function*() {
      for (let waited = 0; waited < MAX_RUN_MS + LEASE_MS + W + 1_000 && requests.some((r) => r.exit === undefined); waited += 500) {
        yield* TestClock.adjust(500)
      }
    })
    yield* settle
    // 6. once the faults are over, every key the scenario asked for becomes fresh (an invalidated
    // value is recomputed, a back-off ends, a taken-over lease lands): asked again and again
    // on a live pod, within a window it answers a hit
    const converged = new Map<number, boolean>()
    const asked = [...new Set(requests.map((r) => r.key))]
    if (asked.length > 0 && fleet.pods.every((p) => p.status === "crashed")) {
      yield* fleet.pods[0]!.restart
      reboot(0)
    }
    const live = fleet.pods.findIndex((p) => p.status !== "crashed")
    for (const key of asked) {
      converged.set(key, false)
      for (let i = 0; i < 30 && !converged.get(key); i++) {
        const before = requests.length
        yield* doRequest(live, key, i % 2 === 1)
        yield* settle
        const last = requests[before]
        if (last?.exit !== undefined && Exit.isSuccess(last.exit) && last.exit.value.cache === "hit") converged.set(key, true)
        else yield* TestClock.adjust(500)
      }
    }

    // ---------------------------------------------------------------------------------------
    // the promises
    const violations: Array<string> = [...bookkeeping.map((b) => `bookkeeping: ${b}`)]
    for (const [key, fresh] of converged) if (!fresh) violations.push(`key ${key} never answered a hit again once the faults were over`)
    // 7. without faults, an invalidation's recompute starts with the next request (or once a run
    // in flight ends): by the lookup's duration and a poll after it
    if (!faults) {
      const end = world.trueNow()
      for (const inv of invalidations) {
        if (inv.set === true) continue
        const next = requests.find((r) => r.key === inv.key && r.startSeq > inv.returnSeq)
        if (next === undefined || next.at + D + 400 > end) continue
        // a set since stored the window's value: nothing is left to recompute
        if (invalidations.some((o) => o.set === true && o.key === inv.key && o.callSeq > inv.returnSeq)) continue
        const recompute = world.runs.find((r) => r.key === inv.key && r.leader && r.seq > inv.callSeq && r.at <= next.at + D + 400)
        if (recompute === undefined) {
          violations.push(`no recompute of key ${inv.key} within ${D + 400} ms of request ${next.id}, the first after its invalidation on pod ${inv.pod}`)
        }
      }
    }

    // 1. starts
    const leaderStarts = new Map<string, Array<Run>>()
    const ownStarts = new Map<string, Array<Run>>()
    for (const r of world.runs) {
      if (r.set === true) continue
      const into = r.leader ? leaderStarts : ownStarts
      // each release of the loader runs once per window (a rolling deploy: `deploy`)
      const k = r.leader ? `${r.key}@${r.bucket}${r.release === 2 ? release2 : ""}` : `${r.incarnation}/${r.key}@${r.bucket}`
      into.set(k, [...(into.get(k) ?? []), r])
      if (r.leader && (r.outcome === "failed" || r.mode === "hang")) allow(r.key, r.bucket, `run ${r.run} ${r.mode === "hang" ? "hung" : "failed"}`)
    }
    for (const [k, runs] of leaderStarts) {
      const extra = [...(allowances.get(k.replace(release2, "")) ?? []), ...(releaseAllowances.get(k) ?? [])]
      if (runs.length > 1 + extra.length) {
        violations.push(`key@window ${k}: ${runs.length} starts under the lock (runs ${runs.map((r) => r.run).join(", ")}); allowed 1 + ${extra.length} (${extra.join("; ") || "no fault"})`)
      }
    }
    for (const [k, runs] of ownStarts) {
      const allowed = (runs.some((r) => r.skewed) ? 2 : 1) + runs.filter((r) => r.outcome === "failed" || r.mode === "hang").length
      if (runs.length > allowed) violations.push(`incarnation/key@window ${k}: ${runs.length} runs on its own (runs ${runs.map((r) => r.run).join(", ")}); allowed ${allowed}`)
    }
    if (!faults && ownStarts.size > 0) violations.push(`runs on their own without any fault: ${[...ownStarts.keys()].join(", ")}`)

    const answered = requests.filter((r) => r.exit !== undefined && Exit.isSuccess(r.exit))
    // a value no lookup of the model made is a foreign record answered as a value
    for (const r of answered) {
      const run = (r.exit as Exit.Success<Memo.Info<Value>, unknown>).value.value.run
      if (world.runs[run - 1] === undefined) violations.push(`request ${r.id} on pod ${r.pod} answered a foreign record (run ${run})`)
    }
    const ok = answered.filter((r) => world.runs[(r.exit as Exit.Success<Memo.Info<Value>, unknown>).value.value.run - 1] !== undefined)
    for (const b of ok) {
      const vb = version(b, world.runs)
      const info = (b.exit as Exit.Success<Memo.Info<Value>, unknown>).value
      // 2. never older than an answer the same process gave before this request came
      for (const a of ok) {
        if (a.incarnation !== b.incarnation || a.key !== b.key || a.endSeq! >= b.startSeq) continue
        const va = version(a, world.runs)
        // a value "from the future" (made on its own by a pod whose clock was ahead) goes once
        // the store corrects the clock: serving the real window after it is by design
        if (va.bucket > a.endBucket!) continue
        if (older(vb, va)) {
          violations.push(`request ${b.id} on pod ${b.pod} answered (${vb.bucket}, ${vb.fence}), older than request ${a.id}'s (${va.bucket}, ${va.fence}) before it`)
        }
      }
      // 4. no old hit after an invalidation
      if (info.cache === "hit") {
        const run = world.runs[info.value.run - 1]!
        for (const inv of invalidations) {
          if (inv.key !== b.key || inv.returnSeq >= b.startSeq) continue
          // a pod cut off when it returned hears of it once it reconnects (it resubscribes)
          const covered = inv.covered.has(b.incarnation) || (bootSeqs.get(b.incarnation) ?? 0) > inv.returnSeq ||
            reconnects.some((c) => c.incarnation === b.incarnation && c.seq > inv.returnSeq && c.seq < b.startSeq)
          if (covered && run.seq < inv.callSeq) {
            violations.push(`request ${b.id} on pod ${b.pod} answered hit with run ${run.run}, which started before the ${inv.set === true ? "set" : "invalidation"} of key ${b.key} on pod ${inv.pod}`)
          }
        }
      }
    }
    // 3 and 5: waits and errors
    for (const r of requests) {
      if (r.exit === undefined) {
        violations.push(`request ${r.id} on pod ${r.pod} for key ${r.key} was never answered`)
        continue
      }
      if (Exit.isSuccess(r.exit)) continue
      const cause = r.exit.cause
      if (String(Cause.squash(cause)).includes(waitedMessage)) {
        violations.push(`request ${r.id} on pod ${r.pod} for key ${r.key} waited though ${r.why}`)
        continue
      }
      if (Cause.isInterruptedOnly(cause)) continue // its pod crashed or restarted
      const error = Cause.squash(cause)
      const expected = error instanceof LookupFailed || error instanceof Memo.MaxRunExceeded || String(error).includes("has crashed")
      if (r.expectInstant || !expected) violations.push(`request ${r.id} on pod ${r.pod} for key ${r.key} failed (${r.why}): ${String(error)}`)
    }

    for (const r of requests) {
      const kind = r.exit === undefined ? "pending" : Exit.isSuccess(r.exit) ? r.exit.value.cache : "error"
      tally(faults, `requests ${kind}`)
      if (r.expectInstant) tally(faults, "requests checked to be instant")
    }
    for (const r of world.runs) tally(faults, `runs ${r.leader ? "under the lock" : "on their own"} ${r.outcome}`)
    tally(faults, "invalidations", invalidations.length)
    for (const [k, runs] of leaderStarts) {
      if (runs.length > 1) tally(faults, `key-windows with ${runs.length} starts (${(allowances.get(k.replace(release2, "")) ?? []).length} allowed extra)`)
    }
    for (const step of s.steps) tally(faults, `steps ${step.s}`)

    if (violations.length > 0) {
      throw new Error(`${violations.join("\n")}\n\ntrace:\n${world.log.join("\n")}`)
    }
  })

/** What the runs exercised, printed after each property: a model that checks nothing would show here. */
const tallies = { true: new Map<string, number>(), false: new Map<string, number>() }
const tally = (faults: boolean, what: string, n = 1) => {
  const m = tallies[`${faults}`]
  m.set(what, (m.get(what) ?? 0) + n)
}
const printTallies = (faults: boolean) =>
  console.log(`model-memo (${faults ? "faults" : "fault-free"}): ${JSON.stringify(Object.fromEntries([...tallies[`${faults}`]].sort()))}`)

const property = (faults: boolean) => async (s: Scenario) => {
  const started = performance.now()
  const exit = await Effect.runPromiseExit(
    runScenario(s, faults).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None), Effect.provide(TestContext.TestContext))
  )
  const ms = performance.now() - started
  if (process.env.LOCKSTEP_MODEL_SLOW && ms > Number(process.env.LOCKSTEP_MODEL_SLOW)) console.log(`slow run ${Math.round(ms)} ms: ${JSON.stringify(s)}`)
  if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
}

describe("model: a fleet of Memo runtimes under TestClock", () => {
  const faultFree = Model.parameters<[Scenario]>(40)
  it(`without faults: ≤ 1 start per key and window (+1 per invalidation), never older, no wait once a value exists, no old hit (${faultFree.numRuns} runs, seed ${faultFree.seed})`, async () => {
    await fc.assert(fc.asyncProperty(scenario(faultFreeStep, 40), property(false)), faultFree)
    printTallies(false)
  }, Model.budget(faultFree, 100))

  const warm = Model.parameters<[Scenario]>(30)
  it(`with keepWarm's early runs: the same promises, an early run counting as its window's, an invalidation after it costing one recompute (${warm.numRuns} runs, seed ${warm.seed})`, async () => {
    // every pod keeps both keys warm from the start, then requests, invalidations and time
    const warmed = scenario(fc.oneof({ weight: 8, arbitrary: request }, { weight: 6, arbitrary: advance }, { weight: 2, arbitrary: invalidate }), 40)
      .map((s): Scenario => ({
        ...s,
        steps: [
          ...Array.from({ length: s.pods }, (_, pod) => [0, 1].map((key): Step => ({ s: "keepWarm", pod, key, early: true }))).flat(),
          ...s.steps
        ]
      }))
    await fc.assert(fc.asyncProperty(warmed, property(false)), warm)
    printTallies(false)
  }, Model.budget(warm, 100))

  const faulty = Model.parameters<[Scenario]>(60)
  it(`with failures, hangs, crashes, restarts, disconnects and skews: the starts each fault permits, and the same promises (${faulty.numRuns} runs, seed ${faulty.seed})`, async () => {
    await fc.assert(fc.asyncProperty(scenario(faultyStep, 50), property(true)), faulty)
    printTallies(true)
  }, Model.budget(faulty, 100))
})

describe("model: foreign records and retain lapses", () => {
  const clean = Model.parameters<[Scenario]>(30)
  it(`without other faults: a foreign record or a lapse costs at most one start in its window, never a foreign answer, no old hit (${clean.numRuns} runs, seed ${clean.seed})`, async () => {
    await fc.assert(fc.asyncProperty(scenario(withForeign(faultFreeStep), 40), property(false)), clean)
    printTallies(false)
  }, Model.budget(clean, 100))

  const faulty = Model.parameters<[Scenario]>(30)
  it(`with the other faults too (${faulty.numRuns} runs, seed ${faulty.seed})`, async () => {
    await fc.assert(fc.asyncProperty(scenario(withForeign(faultyStep), 50), property(true)), faulty)
    printTallies(true)
  }, Model.budget(faulty, 100))
})

// ---------------------------------------------------------------------------------------------
// purge and Memo.unchanged

/**
 * The second model: requests (`get` or `getMany`), clock advances, invalidations, `purge` and
 * `Memo.purgeTag` (often while a lookup runs: a lookup takes `D`), and lookups that answer
 * `Memo.unchanged` (with a previous value, and without one: cold or just purged), on a fleet
 * without faults. Checked:
 *
 * P1. **Purged for good.** Once `purge` (or `purgeTag`) returned, no request that starts after it
 *     answers a value whose lookup started before the purge began, on any pod: neither a value
 *     stored or held in L1, nor the result of a lookup that was running during the purge, nor a
 *     previous value handed to a later lookup that answers `unchanged`.
 * P2. **`peek` answers none everywhere** when the purge returns.
 * P3. **The next request is cold**: the first request after a purge that is answered waited for
 *     a lookup (when nothing of the key was in flight then), and lookups start at most once per
 *     key and window for the fleet, plus one for each purge, invalidation and failed lookup of
 *     that window.
 * U1. **Unchanged without a previous value is a typed error**: a lookup that answered
 *     `unchanged` with none fails the request it ran for with `UnchangedWithoutPrevious`, a
 *     request fails with it only after such a lookup, and no request fails in any other way.
 * U2. **Unchanged with a previous value commits it as this window's**: the first request that
 *     starts after that lookup ended, in its window, with no invalidation or purge between,
 *     answers the previous value, as a `hit` of that window.
 */
interface PurgeRun {
  readonly run: number
  readonly key: number
  readonly pod: number
  readonly leader: boolean
  readonly seq: number
  readonly bucket: number
  /** The run whose value the lookup was handed as its previous one. */
  readonly previous: number | undefined
  readonly unchanged: boolean
  endSeq?: number
  outcome: "running" | "ok" | "failed" | "interrupted"
}

interface PurgeWorld {
  readonly trueNow: () => number
  readonly runs: Array<PurgeRun>
  /** Keys whose lookups answer `Memo.unchanged` from now on. */
  readonly unchanged: Set<number>
  readonly next: () => number
  readonly log: Array<string>
}

class PurgeCaller extends Context.Tag("model/PurgeCaller")<PurgeCaller, { readonly world: PurgeWorld; readonly pod: number }>() {}

const purgeLookup = (k: number, previous: Option.Option<Memo.Info<Value>>) =>
  Effect.flatMap(Effect.all([PurgeCaller, Effect.option(Effect.currentSpan)]), ([{ pod, world }, span]) =>
    Effect.suspend(() => {
      const at = world.trueNow()
      // under the fleet lock, or on its own (a cold key backing off after another pod's failure)
      const leader = Option.match(Option.flatMap(span, (sp) => Option.fromNullable(sp.attributes.get("lockstep.mode"))), {
        onNone: () => true,
        onSome: (m) => m === "leader"
      })
      const run: PurgeRun = {
        run: world.runs.length + 1,
        key: k,
        pod,
        leader,
        seq: world.next(),
        bucket: Math.floor(at / W),
        previous: Option.getOrUndefined(Option.map(previous, (p) => p.value.run)),
        unchanged: world.unchanged.has(k),
        outcome: "running"
      }
      world.runs.push(run)
      world.log.push(
        `  t=${at - T0} run ${run.run} of key ${k} starts on pod ${pod} (${leader ? "leader" : "on its own"}, previous: run ${run.previous ?? "none"}${run.unchanged ? ", answers unchanged" : ""})`
      )
      const body: Effect.Effect<Value | Memo.Unchanged> = run.unchanged ? Effect.succeed(Memo.unchanged) : Effect.succeed({ key: k, run: run.run })
      return Effect.zipRight(Effect.sleep(D), body).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            run.endSeq = world.next()
            run.outcome = Exit.isSuccess(exit) ? "ok" : Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "failed"
            world.log.push(`  t=${world.trueNow() - T0} run ${run.run} ends: ${run.outcome}`)
          })
        )
      )
    }))

const purgeTagName = "model"
const purged = Memo.loader({ key: (k: number) => `purge:${k}`, window: W, schema: Value, lookup: purgeLookup, tags: [purgeTagName] })

type PurgeStep =
  | { readonly s: "request"; readonly pod: number; readonly key: number; readonly many: boolean }
  | { readonly s: "advance"; readonly ms: number }
  | { readonly s: "invalidate"; readonly pod: number; readonly key: number }
  | { readonly s: "purge"; readonly pod: number; readonly key: number }
  | { readonly s: "purgeTag"; readonly pod: number }
  | { readonly s: "unchanged"; readonly key: number; readonly on: boolean }

const purgeStep: fc.Arbitrary<PurgeStep> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ s: fc.constant("request" as const), pod: podIndex, key: keyIndex, many: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ s: fc.constant("advance" as const), ms: fc.constantFrom(10, 300, 600, 1_000, 3_000, 6_000) }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("invalidate" as const), pod: podIndex, key: keyIndex }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("purge" as const), pod: podIndex, key: keyIndex }) },
  { weight: 1, arbitrary: fc.record({ s: fc.constant("purgeTag" as const), pod: podIndex }) },
  // mostly on: a key answers unchanged over a previous value once it has one
  { weight: 2, arbitrary: fc.record({ s: fc.constant("unchanged" as const), key: keyIndex, on: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) }) }
)

interface PurgeRequest {
  readonly id: number
  readonly pod: number
  readonly key: number
  readonly startSeq: number
  readonly at: number
  readonly bucket: number
  endSeq?: number
  endAt?: number
  exit?: Exit.Exit<Memo.Info<Value>, unknown>
}

interface Mark {
  readonly kind: "purge" | "invalidate"
  readonly key: number
  readonly callSeq: number
  readonly returnSeq: number
  readonly bucket: number
}

const runPurgeScenario = (pods: number, steps: ReadonlyArray<PurgeStep>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const fleet = yield* Effect.orDie(Testing.fleet(pods, SETTINGS))
    const clock = yield* Effect.clock
    let seq = 0
    const world: PurgeWorld = { trueNow: () => clock.unsafeCurrentTimeMillis(), runs: [], unchanged: new Set(), next: () => ++seq, log: [] }
    const requests: Array<PurgeRequest> = []
    const marks: Array<Mark> = []
    const violations: Array<string> = []

    const request = (pod: number, key: number, many: boolean) =>
      Effect.gen(function*() {
        const at = world.trueNow()
        const r: PurgeRequest = { id: requests.length + 1, pod, key, startSeq: world.next(), at, bucket: Math.floor(at / W) }
        requests.push(r)
        world.log.push(`t=${world.trueNow() - T0} request ${r.id} on pod ${pod} for key ${key}${many ? " (getMany)" : ""}`)
        const get = many ? Effect.map(purged.getManyWithInfo([key, key]), (infos) => infos[0]!) : purged.getWithInfo(key)
        const fiber = yield* Effect.fork(fleet.pods[pod]!.run(Effect.provideService(get, PurgeCaller, { world, pod })))
        fiber.addObserver((exit) => {
          r.endSeq = world.next()
          r.endAt = world.trueNow()
          r.exit = exit
          world.log.push(`  t=${world.trueNow() - T0} request ${r.id} → ${
            Exit.isSuccess(exit) ? `run ${exit.value.value.run} (${exit.value.cache}, bucket ${exit.value.bucket})` : Cause.pretty(exit.cause).split("\n")[0]
          }`)
        })
        yield* Effect.yieldNow()
      })

    const purge = (pod: number, keys: ReadonlyArray<number>, effect: Effect.Effect<unknown, unknown, Memo.Memo>, what: string) =>
      Effect.gen(function*() {
        const callSeq = world.next()
        const exit = yield* Effect.exit(fleet.pods[pod]!.run(effect))
        world.log.push(`t=${world.trueNow() - T0} ${what} on pod ${pod}: ${Exit.isSuccess(exit) ? "done" : "failed"}`)
        if (Exit.isFailure(exit)) return violations.push(`${what} on pod ${pod} failed: ${Cause.pretty(exit.cause)}`)
        const returnSeq = world.next()
        for (const key of keys) {
          marks.push({ kind: "purge", key, callSeq, returnSeq, bucket: Math.floor(world.trueNow() / W) })
          // P2: peek answers none everywhere
          for (const p of fleet.pods) {
            const peeked = yield* p.run(purged.peek(key))
            if (Option.isSome(peeked)) violations.push(`after ${what} (pod ${pod}), pod ${p.index} peeks key ${key} as run ${peeked.value.value.run}`)
          }
        }
      })

    for (const step of steps) {
      switch (step.s) {
        case "request":
          yield* request(step.pod % pods, step.key, step.many)
          break
        case "advance":
          world.log.push(`advance ${step.ms} ms`)
          yield* TestClock.adjust(step.ms)
          break
        case "invalidate": {
          const callSeq = world.next()
          yield* Effect.orDie(fleet.pods[step.pod % pods]!.run(purged.invalidate(step.key)))
          world.log.push(`t=${world.trueNow() - T0} invalidate key ${step.key}`)
          marks.push({ kind: "invalidate", key: step.key, callSeq, returnSeq: world.next(), bucket: Math.floor(world.trueNow() / W) })
          break
        }
        case "purge":
          yield* purge(step.pod % pods, [step.key], purged.purge(step.key), `purge of key ${step.key}`)
          break
        case "purgeTag":
          yield* purge(step.pod % pods, [0, 1], Memo.purgeTag(purgeTagName), `purgeTag`)
          break
        case "unchanged":
          if (step.on) world.unchanged.add(step.key)
          else world.unchanged.delete(step.key)
          world.log.push(`lookups of key ${step.key} from now on answer ${step.on ? "unchanged" : "their own value"}`)
          break
      }
    }
    // the end: lookups answer values again, every request gets its answer
    world.unchanged.clear()
    for (let waited = 0; waited < 3 * W && requests.some((r) => r.exit === undefined); waited += 500) yield* TestClock.adjust(500)

    const runOf = (n: number) => world.runs[n - 1]!
    for (const r of requests) {
      if (r.exit === undefined) {
        violations.push(`request ${r.id} was never answered`)
        continue
      }
      if (Exit.isFailure(r.exit)) {
        // U1: the only error is a lookup's unchanged without a previous value (its own, or the
        // one whose back-off it met), typed
        const error = Cause.squash(r.exit.cause)
        if (!(error instanceof Memo.UnchangedWithoutPrevious)) violations.push(`request ${r.id} failed: ${String(error)}`)
        else if (!world.runs.some((run) => run.key === r.key && run.unchanged && run.previous === undefined && run.seq < r.endSeq!)) {
          violations.push(`request ${r.id} failed with UnchangedWithoutPrevious, but no lookup of key ${r.key} answered unchanged without a previous value`)
        }
        continue
      }
      const info = r.exit.value
      // P1: nothing from before a purge that returned before the request began
      for (const m of marks) {
        if (m.kind !== "purge" || m.key !== r.key || m.returnSeq >= r.startSeq) continue
        if (runOf(info.value.run).seq < m.callSeq) {
          violations.push(`request ${r.id} (pod ${r.pod}) answered run ${info.value.run}, whose lookup started before the purge of key ${r.key}`)
        }
      }
    }
    // U1: a lookup that answered unchanged without a previous value failed the request that
    // waited for it on its own pod (one on another pod may run the key itself after the failure)
    for (const run of world.runs) {
      if (!run.unchanged || run.previous !== undefined || run.endSeq === undefined) continue
      const own = requests.find((r) => r.key === run.key && r.pod === run.pod && r.startSeq < run.seq && r.endSeq === run.endSeq! + 1)
      if (own?.exit !== undefined && Exit.isSuccess(own.exit)) {
        violations.push(`request ${own.id} waited on run ${run.run} (unchanged without a previous value) and answered run ${own.exit.value.value.run}`)
      }
      tally(false, `purge model: unchanged without a previous value answered to its own request${own === undefined ? " (none found)" : ""}`)
    }
    // P3: with nothing of the key in flight when the purge came (a waiter's or a refresh's lookup
    // may start again after it), the first answered request after it waited for a lookup
    for (const m of marks) {
      if (m.kind !== "purge") continue
      const inFlight = requests.some((r) => r.key === m.key && r.startSeq < m.callSeq && (r.endSeq === undefined || r.endSeq > m.callSeq)) ||
        world.runs.some((run) => run.key === m.key && run.seq < m.callSeq && (run.endSeq === undefined || run.endSeq > m.callSeq)) ||
        // a stale answer's refresh that had not ended: it goes on, and its lookup (after the purge) may make the value
        requests.some((r) =>
          r.key === m.key && r.endSeq !== undefined && r.endSeq < m.callSeq && r.exit !== undefined && Exit.isSuccess(r.exit) && r.exit.value.cache === "stale" &&
          !world.runs.some((run) => run.key === m.key && run.seq > r.startSeq && run.endSeq !== undefined && run.endSeq < m.callSeq)
        )
      if (inFlight) continue
      const first = requests.filter((r) => r.key === m.key && r.startSeq > m.returnSeq && r.exit !== undefined && Exit.isSuccess(r.exit))
        .sort((a, b) => a.startSeq - b.startSeq)[0]
      if (first !== undefined && first.endAt! <= first.at) {
        violations.push(`request ${first.id}, the first answered after the purge of key ${m.key}, was answered at once: not cold`)
      }
    }
    // P3: starts under the lock per key and window; a pod's runs on its own, at most one per key
    // and window plus one per failure
    const starts = new Map<string, number>()
    for (const run of world.runs) if (run.leader) starts.set(`${run.key}@${run.bucket}`, (starts.get(`${run.key}@${run.bucket}`) ?? 0) + 1)
    const own = new Map<string, Array<PurgeRun>>()
    for (const run of world.runs) if (!run.leader) own.set(`${run.pod}/${run.key}@${run.bucket}`, [...(own.get(`${run.pod}/${run.key}@${run.bucket}`) ?? []), run])
    for (const [k, runs] of own) {
      const allowed = 1 + runs.filter((run) => run.outcome === "failed" || (run.unchanged && run.previous === undefined)).length
      if (runs.length > allowed) violations.push(`pod/key@window ${k}: ${runs.length} lookups on its own, allowed ${allowed}`)
    }
    for (const [k, n] of starts) {
      const [key, bucket] = k.split("@").map(Number) as [number, number]
      // a lookup that failed, or answered unchanged without a previous value (a failure), leaves a back-off
      const allowed = 1 + marks.filter((m) => m.key === key && m.bucket === bucket).length +
        world.runs.filter((run) => run.leader && run.key === key && run.bucket === bucket && (run.outcome === "failed" || (run.unchanged && run.previous === undefined))).length
      if (n > allowed) violations.push(`key@window ${k}: ${n} lookups started, allowed ${allowed}`)
    }
    // U2: an unchanged commit is the previous value, as this window's
    for (const run of world.runs) {
      if (!run.unchanged || run.previous === undefined || run.outcome !== "ok") continue
      const next = requests.filter((r) => r.key === run.key && r.startSeq > run.endSeq! && r.bucket === run.bucket && r.exit !== undefined)
        .sort((a, b) => a.startSeq - b.startSeq)[0]
      if (next === undefined || marks.some((m) => m.key === run.key && m.callSeq > run.seq && m.callSeq < next.startSeq)) continue
      if (world.runs.some((o) => o.key === run.key && o.seq > run.seq && o.seq < next.startSeq)) continue
      const exit = next.exit!
      tally(false, "purge model: unchanged commits checked")
      if (Exit.isFailure(exit) || exit.value.value.run !== run.previous || exit.value.bucket !== run.bucket || exit.value.cache !== "hit") {
        violations.push(`request ${next.id}, after run ${run.run} answered unchanged over run ${run.previous}, answered ${
          Exit.isSuccess(exit) ? `run ${exit.value.value.run} (${exit.value.cache}, bucket ${exit.value.bucket})` : "an error"
        } instead of run ${run.previous} as a hit of bucket ${run.bucket}`)
      }
    }

    for (const r of requests) tally(false, `purge model: requests ${r.exit === undefined ? "pending" : Exit.isSuccess(r.exit) ? r.exit.value.cache : "error"}`)
    for (const run of world.runs) {
      tally(false, `purge model: runs ${run.leader ? "" : "on their own "}${run.unchanged ? (run.previous === undefined ? "unchanged without previous" : "unchanged") : "with a value"} ${run.outcome}`)
    }
    for (const m of marks) {
      const during = world.runs.some((run) => run.key === m.key && run.seq < m.callSeq && (run.endSeq === undefined || run.endSeq > m.callSeq))
      tally(false, `purge model: ${m.kind}s${during ? " during a lookup" : ""}`)
    }
    if (violations.length > 0) throw new Error(`${violations.join("\n")}\n\ntrace:\n${world.log.join("\n")}`)
  })

describe("model: purge and Memo.unchanged on a fleet of Memo runtimes under TestClock", () => {
  const parameters = Model.parameters<[{ readonly pods: number; readonly steps: ReadonlyArray<PurgeStep> }]>(40)
  it(`purged values never come back, peek is none everywhere, the next request is cold and runs once; unchanged commits the previous value or is a typed error without one (${parameters.numRuns} runs, seed ${parameters.seed})`, async () => {
    // both keys have a value first, so that lookups answering unchanged mostly have a previous one
    const warm: ReadonlyArray<PurgeStep> = [
      { s: "request", pod: 0, key: 0, many: false },
      { s: "request", pod: 1, key: 1, many: true },
      { s: "advance", ms: 1_000 }
    ]
    const scenarios = fc.record({ pods: fc.integer({ min: 2, max: 4 }), steps: fc.array(purgeStep, { minLength: 1, maxLength: 40, size: "max" }) })
      .map((s) => ({ ...s, steps: [...warm, ...s.steps] }))
    await fc.assert(
      fc.asyncProperty(scenarios, async (s) => {
        const exit = await Effect.runPromiseExit(
          runPurgeScenario(s.pods, s.steps).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None), Effect.provide(TestContext.TestContext))
        )
        if (Exit.isFailure(exit)) throw Cause.squash(exit.cause)
      }),
      parameters
    )
    printTallies(false)
  }, Model.budget(parameters, 100))
})

/** Defects the model found, each a regression test with its shrunk counterexample. */
describe("model: defects it found", () => {
  /**
   * Shrunk counterexample of the purge model (seed 20240613, 40 runs): request on pod 0 (cold, run
   * 1); invalidate (or let the window pass); request on pod 0 → run 1, stale, and a refresh starts;
   * purge (or `purgeTag`, from either pod) while that refresh runs; request on pod 0 → run 1 again,
   * stale: the purged value came back. The refresh's run had already answered its first answer
   * (the stale value) and the new request joined that run. A purge now detaches such a run: the
   * next request starts a run of its own and waits for a value made after the purge.
   */
  it.effect("a request after a purge does not join a refresh that already answered the purged value", () =>
    Effect.forEach(
      [
        [{ s: "invalidate", pod: 0, key: 1 }, { s: "request", pod: 0, key: 1, many: false }, { s: "purge", pod: 0, key: 1 }],
        [{ s: "advance", ms: W }, { s: "request", pod: 0, key: 1, many: false }, { s: "purge", pod: 1, key: 1 }],
        [{ s: "advance", ms: W }, { s: "request", pod: 0, key: 1, many: true }, { s: "purgeTag", pod: 0 }]
      ] satisfies ReadonlyArray<ReadonlyArray<PurgeStep>>,
      (middle) =>
        runPurgeScenario(2, [
          { s: "request", pod: 0, key: 1, many: false },
          { s: "advance", ms: 1_000 },
          ...middle,
          { s: "request", pod: 0, key: 1, many: false }
        ]).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None), Effect.provide(TestContext.TestContext)),
      { discard: true }
    ))

  /**
   * Shrunk counterexample (seed 20240613, 100 runs): 2 pods; disconnect pod 1; request on pod 1
   * (cold: its lookup starts on its own at 500 ms); advance 1 s; reconnect pod 1; invalidate on pod
   * 0; advance 3 s; request on pod 0 → `hit` with the value whose lookup started before the
   * invalidation. The store held nothing of the key (no record, no fence issued), so `invalidate`
   * answered "absent" and set no mark; pod 1's write-back (fence 0) then landed with mark -1, which
   * makes it fresh. DESIGN: "a lookup that started before the invalidation can't make its result
   * fresh".
   */
  it.scoped("an invalidation of a key the store holds nothing of yet keeps a value computed before it from being fresh", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2, SETTINGS)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      const lookup = yield* Testing.producer((run) => Effect.succeed(run), { duration: "1 second" })
      const page = Memo.loader({ key: "absent", window: W, schema: Schema.Number, lookup: () => lookup.effect })
      yield* b.disconnect
      const cold = yield* Effect.fork(b.run(page.get()))
      yield* TestClock.adjust("1 second") // b's own lookup started (after its cold retries)
      expect((yield* lookup.stats).startedAt).toEqual([T0 + 500])
      yield* b.reconnect
      yield* a.run(page.invalidate()) // nothing stored yet: nothing to mark
      yield* TestClock.adjust("3 seconds") // b's value is written back
      expect(yield* Fiber.join(cold)).toBe(1)
      const info = yield* Testing.instantly(a.run(page.getWithInfo()))
      expect(info.value).toBe(1)
      // it was answered as a hit: the value computed before the invalidation was fresh
      expect(info.cache).not.toBe("hit")
    }))

  /**
   * Shrunk counterexamples (seed 20240613): 2 pods; request on pod 0 (cold: run 1 starts);
   * advance 10 ms; invalidate on pod 0 (run 1 in flight, so its value will be stale); request on
   * pod 0 (it joins the cold wait); advance 3 s → both requests answered with run 1 (as `miss`,
   * `stale: true`) at 1 s, and no lookup starts until the next request, 2 s later. The same with
   * a warm key (200 runs): the request after an invalidation that lands during a refresh gets
   * the stale value at once, but its recompute is the refresh already running, whose value is
   * invalidated too. The worker's commit comes back `Committed` with the invalidation's mark: it
   * publishes its value as not fresh and ends, instead of going on to this window's value.
   * DESIGN: "the next request anywhere gets the stale value at once and exactly one recompute
   * runs fleet-wide".
   */
  it.scoped("an invalidation during a cold run is followed by a recompute without another request", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const fleet = yield* Testing.fleet(2, SETTINGS)
      const [a] = fleet.pods as [Testing.Pod, Testing.Pod]
      const lookup = yield* Testing.producer((run) => Effect.succeed(run), { duration: "1 second" })
      const page = Memo.loader({ key: "cold", window: W, schema: Schema.Number, lookup: () => lookup.effect })
      const first = yield* Effect.fork(a.run(page.getWithInfo()))
      yield* TestClock.adjust("10 millis")
      yield* a.run(page.invalidate())
      const second = yield* Effect.fork(a.run(page.getWithInfo()))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(first)).toMatchObject({ value: 1, stale: true })
      expect(yield* Fiber.join(second)).toMatchObject({ value: 1, stale: true, cache: "miss" })
      yield* TestClock.adjust("1 second")
      // before the fix nothing recomputed the invalidated value until another request came
      expect((yield* lookup.stats).startedAt).toEqual([T0, T0 + 1_000])
    }))

  /**
   * Shrunk counterexample (seed 20240613, 30 runs, before runs started at a real epoch): 2 pods;
   * request on pod 0 (commits run 1 at 1 s); advance 3 s; invalidate on pod 0; request on pod 1
   * (stale: run 1; run 2 starts); pod 1's clock 12 s behind; request on pod 1 → `hit` with run 1.
   * L1 marks an entry it does not trust with `freshThrough: -1`, and the hit test in `Memo.ts`
   * compares it with the current bucket, which is -1 on a clock that reads -9 s. Only a clock
   * before 1970 meets it, i.e. under `TestClock` (which starts at 0) with a negative skew:
   * `lockstep/testing` users can, production cannot.
   */
  it.scoped("an entry L1 does not trust is no hit, even on a clock that reads before 1970", () =>
    Effect.gen(function*() {
      const fleet = yield* Testing.fleet(2, SETTINGS)
      const [a, b] = fleet.pods as [Testing.Pod, Testing.Pod]
      const lookup = yield* Testing.producer((run) => Effect.succeed(run), { duration: "1 second" })
      const page = Memo.loader({ key: "negative", window: W, schema: Schema.Number, lookup: () => lookup.effect })
      const cold = yield* Effect.fork(a.run(page.get()))
      yield* TestClock.adjust("3 seconds")
      expect(yield* Fiber.join(cold)).toBe(1)
      yield* a.run(page.invalidate())
      expect(yield* Testing.instantly(b.run(page.getWithInfo()))).toMatchObject({ value: 1, cache: "stale" })
      yield* b.setClockSkew(-12_000)
      const info = yield* Testing.instantly(b.run(page.getWithInfo()))
      expect(info.value).toBe(1)
      // before the fix the invalidated value was answered as a hit
      expect(info.cache).not.toBe("hit")
    }))

  /**
   * Counterexample: 2 pods; request on pod 0 (cold: run 1 starts); advance 10 ms; set on pod 0;
   * the store loses every record; advance 1 s (run 1 commits); restart pod 1; request on pod 1 →
   * `hit` with run 1, which started before the set. The loss took the fence counter that fenced
   * run 1 along with the set's record, so its commit landed. Replayed through the model's checks.
   */
  it("a lookup that started before a set the store then lost does not land as a hit", async () => {
    await property(true)({
      pods: 2,
      steps: [
        { s: "request", pod: 0, key: 0, n: 1, many: false },
        { s: "advance", ms: 10 },
        { s: "set", pod: 0, key: 0 },
        { s: "lose", restart: false },
        { s: "advance", ms: 1_000 },
        { s: "restart", pod: 1 },
        { s: "request", pod: 1, key: 0, n: 1, many: false },
        { s: "advance", ms: 1_000 }
      ]
    })
  })
})
