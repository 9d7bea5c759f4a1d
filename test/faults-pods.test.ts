/**
 * Faults inside the pods, on a real redis-server (or Valkey) and pod processes: a lock holder
 * whose event loop stalls past its lease (a synchronous busy loop in the producer), a pod's
 * clock stepping backwards at run time, and a cold start of 50 keys on 8 pods at once.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Loaded, sleep, watchStore } from "./support/fleet.js"
import { type Bench, checkInvariants, note, startBench, startsPerWindow } from "./support/faults.js"

const CALLERS = 20

let bench: Bench | undefined
afterEach(async () => {
  await bench?.stop()
  bench = undefined
})

describe("faults: pods", () => {
  it("a holder's event loop stalls past its lease (busy loop of lease + 1 s): another pod takes over; the stalled holder's late commit is refused", async () => {
    const LEASE = 1000
    const PRODUCER = 300
    const STALL_MS = LEASE + 1000
    const b = bench = await startBench({ pods: 3, windowMs: 3000, producerMs: PRODUCER, settings: { lease: LEASE } })
    await b.load({ callers: CALLERS, durationMs: 1000, pauseMs: 10 })
    const loading = b.load({ callers: CALLERS, durationMs: 7000, pauseMs: 10 })
    const from = b.bucketOf(Date.now()) + 1
    const start = await b.fleet.next("start", { where: (m) => m.bucket >= from })
    const holder = b.fleet.pods[start.id]!
    const target = start.bucket
    const claim = b.fleet.of("claim").filter((m) => m.id === holder.id && m.outcome === "acquired").pop()!
    // the holder's producer ends with the stall, past its sleep: it holds the lock, stops renewing
    holder.send({ type: "stallNextRun", ms: STALL_MS })
    const stalledAt = start.wallAt + PRODUCER
    const taker = await b.fleet.next("start", { where: (m) => m.bucket === target && m.id !== holder.id, timeoutMs: STALL_MS + 3000 })
    const takerClaim = b.fleet.of("claim").filter((m) => m.id === taker.id && m.outcome === "acquired").pop()!
    const finish = await b.fleet.next("finish", { where: (m) => m.id === holder.id && m.bucket === target, since: start.receivedAt })
    const late = await b.fleet.next("commit", { where: (m) => m.id === holder.id && m.bucket === target, since: start.receivedAt }).catch(() => undefined)
    const summaries = await loading

    const renewals = b.fleet.of("renew", finish.receivedAt).filter((m) => m.id === holder.id)
    const stored = b.watch.samples.filter((x) => x.bucket === target)
    const held = summaries.find((s) => s.id === holder.id)
    note("holder-stall", {
      stalledMs: finish.wallAt - stalledAt,
      holderFence: claim.fence,
      takerFence: takerClaim.fence,
      takeoverAfterStallMs: taker.wallAt - stalledAt,
      takeoverAfterClaimMs: taker.wallAt - claim.wallAt,
      lateCommit: late ? late.outcome : "none",
      holderRenewalsAfterStall: renewals.map((m) => m.outcome),
      storedForWindow: stored.map((x) => `(${x.fence}) pod ${JSON.parse(x.data).pod}`),
      startsForWindow: b.fleet.of("start").filter((m) => m.bucket === target).length,
      stalledPodMaxLatencyMs: held ? Math.round(held.maxLatencyMs) : null
    })
    expect(finish.wallAt - stalledAt).toBeGreaterThanOrEqual(STALL_MS - 50)
    // the lock lapsed a lease after the holder's claim (its last renewal), and another pod took it
    expect(taker.wallAt - claim.wallAt).toBeLessThanOrEqual(LEASE + 1000)
    expect(takerClaim.fence).toBeGreaterThan(claim.fence!)
    // the stalled holder, awake, finished its run and tried to commit: refused by the fence
    expect(late, "the stalled holder's commit").toBeDefined()
    expect(late!.withToken).toBe(true)
    expect(late!.outcome).toBe("fenced")
    // the store held the taker's value for that window, never the late one
    expect(stored.length).toBeGreaterThan(0)
    for (const x of stored) expect({ fence: x.fence, pod: JSON.parse(x.data).pod }).toEqual({ fence: takerClaim.fence, pod: taker.id })
    expect(b.fleet.of("start").filter((m) => m.bucket === target).length).toBe(2)
    checkInvariants(b)
  })

  /**
   * After its clock steps back 5 s, the pod's L1 value (of the real current window) is 5 windows
   * "ahead" of the pod's clock. An entry more than one window ahead is no hit (the clock went
   * back): the pod asks Redis, gets its `TIME` and corrects its clock. (Before that fix every
   * request was a fresh hit for 5 s, 1 to 5 windows behind Redis.)
   */
  it("a pod's clock steps back 5 s at run time: it keeps following Redis' windows, one start per window, nothing served older", async () => {
    const WINDOW = 1000
    const STEP_MS = -5000
    const STEPPED = 1
    const b = bench = await startBench({ pods: 3, windowMs: WINDOW, producerMs: 200 })
    await b.load({ callers: CALLERS, durationMs: 1500, pauseMs: 10 })
    // step while the pod is idle: once this window's value has landed and every poll for it
    // has ended (a claim in flight would bring Redis' time back at once)
    const loading = b.load({ callers: CALLERS, durationMs: 1500, pauseMs: 10 })
    const from = b.bucketOf(Date.now()) + 1
    await b.fleet.next("commit", { where: (m) => m.bucket >= from && m.outcome === "committed" })
    await sleep(300)
    b.fleet.pods[STEPPED]!.send({ type: "clockStep", ms: STEP_MS })
    await b.fleet.next("stepped", { where: (m) => m.id === STEPPED, since: 0 })
    const steppedAt = Date.now()
    await loading
    // one-second loads, so that the windows the stepped pod served can be placed in time
    const slices: Array<{ readonly at: number; readonly summaries: ReadonlyArray<Loaded> }> = []
    for (let i = 0; i < 7; i++) {
      const at = Date.now()
      slices.push({ at, summaries: await b.load({ callers: CALLERS, durationMs: WINDOW, pauseMs: 10 }) })
    }
    // per slice: how many windows behind the real one the stepped pod's newest value was
    const behind = slices.map(({ at, summaries }) => {
      const s = summaries.find((x) => x.id === STEPPED)!
      return b.bucketOf(at + WINDOW) - Math.max(...Object.keys(s.servedBuckets).map(Number))
    })
    const othersBehind = slices.map(({ at, summaries }) =>
      Math.max(...summaries.filter((x) => x.id !== STEPPED).map((s) => b.bucketOf(at + WINDOW) - Math.max(...Object.keys(s.servedBuckets).map(Number))))
    )
    const starts = startsPerWindow(b, steppedAt)
    const full = [...starts].filter(([w]) => w > b.bucketOf(steppedAt) && w < b.bucketOf(Date.now()))
    const claimsOfStepped = b.fleet.of("claim", steppedAt).filter((m) => m.id === STEPPED)
    note("clock-step-back", {
      stepMs: STEP_MS,
      windowsBehindPerSecond: behind,
      othersWindowsBehindPerSecond: othersBehind,
      steppedPodClaimsFirstAfterMs: claimsOfStepped[0] ? claimsOfStepped[0].wallAt - steppedAt : null,
      steppedPodByCache: slices.map(({ summaries }) => summaries.find((x) => x.id === STEPPED)!.byCache),
      startsPerWindow: [...starts.values()],
      startsByStepped: b.fleet.of("start", steppedAt).filter((m) => m.id === STEPPED).length
    })
    // the fleet's promise holds whatever one clock does
    expect(full.length).toBeGreaterThanOrEqual(5)
    for (const [w, n] of full) expect(n, `starts in window ${w}`).toBe(1)
    // nothing stored for a window that has not begun (by the machine's and Redis' clock)
    for (const x of b.watch.samples) expect(x.bucket).toBeLessThanOrEqual(b.bucketOf(x.at))
    checkInvariants(b)
    // Redis decides the window: the stepped pod follows it like the others, a window behind at most
    for (const n of behind) expect(n, `windows behind per second: ${JSON.stringify(behind)}`).toBeLessThanOrEqual(1)
  })

  it("50 cold keys × 8 pods at once: exactly one start per key per window, 0 errors, every key served", async () => {
    const KEYS = 50
    const PODS = 8
    const WINDOW = 3000
    const b = bench = await startBench({
      pods: PODS,
      windowMs: WINDOW,
      producerMs: 300,
      watchKey: "aggregate-0",
      // 8 pods polling 50 keys: count the polls, do not report each one to this process. On two
      // loaded cores a pod's event loop can lag past the default 500 ms command timeout, and a
      // claim that times out runs the lookup locally: that is the degraded path, not this one
      overrides: () => ({ reportBusyClaims: false, env: { REDIS_COMMAND_TIMEOUT: "5 seconds" } })
    })
    // more keys watched from outside than the bench's own
    const watches = [1, 2, 3, 4].map((i) => watchStore({ port: b.port, tenant: b.tenant, key: `aggregate-${i}`, windowMs: WINDOW, intervalMs: 50 }))
    // warm the pods' code paths on another key first: on two cores, 8 processes compiling while
    // they serve a cold burst stall their event loops past the 500 ms command timeout
    await b.load({ callers: 5, durationMs: 1000, pauseMs: 10 })
    const startedAt = Date.now()
    // caller i starts at key i: every pod asks for every key in the same instant
    const summaries = await b.load({ callers: KEYS, durationMs: 2 * WINDOW + 1500, pauseMs: 20, keys: KEYS })
    const perKey = new Map([...b.fleet.startsPerKeyAndClaimedBucket()].filter(([k]) => k !== b.key))
    // each start of a cold key, as a leader's (after an acquired claim) or a local one (after a
    // claim that failed: Redis did not answer within the command timeout)
    const runs = new Map<string, Array<{ readonly pod: number; readonly leader: boolean }>>()
    const lastClaim = new Map<string, { readonly acquired: boolean; readonly bucket: number }>()
    for (const m of b.fleet.messages) {
      if (m.receivedAt < startedAt || !("key" in m) || m.key === b.key) continue
      if (m.type === "claim" && (m.outcome === "acquired" || m.outcome === "error")) {
        lastClaim.set(`${m.id} ${m.key}`, { acquired: m.outcome === "acquired", bucket: m.bucket ?? m.wallAt })
      }
      if (m.type === "start") {
        const claim = lastClaim.get(`${m.id} ${m.key}`)
        lastClaim.delete(`${m.id} ${m.key}`)
        const leader = claim?.acquired === true
        const k = `${m.key} ${leader ? claim.bucket : m.bucket}`
        runs.set(k, [...(runs.get(k) ?? []), { pod: m.id, leader }])
      }
    }
    const affected = [...runs].filter(([, r]) => r.some((x) => !x.leader))
    const counts = [...perKey.values()].flatMap((m) => [...m.values()])
    const histogram = counts.reduce<Record<number, number>>((o, n) => ({ ...o, [n]: (o[n] ?? 0) + 1 }), {})
    const coldStarts = b.fleet.of("start", startedAt).filter((m) => m.wallAt < startedAt + WINDOW)
    const firstAnswers = summaries.map((s) => Math.round(s.maxLatencyByCache["miss"] ?? 0))
    note("cold-keys", {
      keys: KEYS,
      pods: PODS,
      keysStarted: perKey.size,
      keyWindows: counts.length,
      startsPerKeyWindow: histogram,
      keyWindowsWithLocalRuns: affected.length,
      coldStartsByPod: Object.fromEntries(Array.from({ length: PODS }, (_, id) => [id, coldStarts.filter((m) => m.id === id).length])),
      slowestColdWaitMsByPod: firstAnswers,
      calls: summaries.reduce((n, s) => n + s.calls, 0),
      claims: summaries.reduce<Record<string, number>>((o, s) => {
        for (const [k, n] of Object.entries(s.claims)) o[k] = (o[k] ?? 0) + n
        return o
      }, {}),
      errors: summaries.reduce((n, s) => n + s.errors, 0)
    })
    /** What the pods reported about one key, from the window before `w` on. */
    const explainKey = (key: string, w: number) =>
      b.fleet.messages
        .filter((m) => "key" in m && m.key === key && "wallAt" in m && m.wallAt >= (w - 1) * WINDOW && m.wallAt < (w + 2) * WINDOW)
        .map((m) => {
          const { type, id, wallAt, key: _key, receivedAt: _r, ...rest } = m as Extract<typeof m, { wallAt: number; key: string }>
          return `${wallAt - w * WINDOW}ms pod ${id} ${type} ${JSON.stringify(rest)}`
        })
        .join("\n")
    expect(summaries).toHaveLength(PODS)
    expect(perKey.size).toBe(KEYS)
    // exactly one start per key and window, a leader's (after an acquired claim)
    for (const [k, r] of runs) {
      const [key, w] = [k.slice(0, k.lastIndexOf(" ")), Number(k.slice(k.lastIndexOf(" ") + 1))]
      const why = `starts of ${key} in window ${w}: ${JSON.stringify(r)}\n${explainKey(key, w)}`
      expect(r.map((x) => x.leader), why).toEqual([true])
    }
    expect([...counts].filter((n) => n !== 1), "key windows with other than one start").toEqual([])
    // every key got at least the cold window and the next one
    expect(counts.length).toBeGreaterThanOrEqual(2 * KEYS)
    for (const s of summaries) {
      expect(Object.keys(s.windowsByKey).length, `pod ${s.id}: keys served`).toBe(KEYS)
      expect(s.errors, s.firstError).toBe(0)
    }
    for (const w of watches) await w.stop()
    for (const w of watches) {
      expect(w.samples.length).toBeGreaterThan(0)
      expect(w.decreases()).toEqual([])
    }
    checkInvariants(b)
  })
})
