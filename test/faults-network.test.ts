/**
 * Faults of the network between ONE pod and Redis, through the TCP proxy of `support/proxy.ts`
 * (the kernel here has no `netem`): 200 ms added each way, and a silent black hole (the
 * connection stays up, nothing gets through, no RST). The other pods talk to Redis directly.
 */
import { afterEach, describe, expect, it } from "vitest"
import { percentile, sleep } from "./support/fleet.js"
import { type Bench, checkInvariants, note, startBench, startsPerPodWindow, startsPerWindow } from "./support/faults.js"
import { type Proxy, startProxy } from "./support/proxy.js"

const CALLERS = 20
/** The pod behind the proxy. */
const CUT = 0

let bench: Bench | undefined
let proxy: Proxy | undefined
afterEach(async () => {
  await bench?.stop()
  bench = undefined
  await proxy?.close()
  proxy = undefined
})

describe("faults: one pod's network", () => {
  /** A fleet of 3 where pod `CUT` reaches Redis through a proxy, the others directly. */
  const setup = async (windowMs: number, producerMs: number) => {
    const b = bench = await startBench({
      pods: 3,
      windowMs,
      producerMs,
      prepare: async (redis) => {
        proxy = await startProxy({ targetPort: redis.port })
      },
      portOf: (id) => (id === CUT ? proxy!.port : undefined)
    })
    return { b, p: proxy! }
  }

  it("200 ms added each way for one pod: it serves from L1 at once, 0 errors; the others and the one-start-per-window promise unaffected", async () => {
    const WINDOW = 1000
    const { b, p } = await setup(WINDOW, 200)
    await b.load({ callers: CALLERS, durationMs: 1500, pauseMs: 10 })
    p.latency({ up: 200, down: 200 })
    const slowFrom = Date.now()
    const summaries = await b.load({ callers: CALLERS, durationMs: 7000, pauseMs: 10 })
    const slowUntil = Date.now()
    p.normal()

    const cut = summaries.find((s) => s.id === CUT)!
    const others = summaries.filter((s) => s.id !== CUT)
    const claimsOfCut = b.fleet.of("claim", slowFrom).filter((m) => m.id === CUT)
    const starts = startsPerWindow(b, slowFrom, slowUntil)
    const full = [...starts].filter(([w]) => w > b.bucketOf(slowFrom) && w < b.bucketOf(slowUntil))
    const lateness = Object.keys(cut.servedBuckets).length
    const cutLatencies = [...cut.latenciesMs].sort((x, y) => x - y)
    note("latency-one-pod", {
      proxiedBytes: p.forwarded(),
      cut: {
        calls: cut.calls,
        p99: percentile(cutLatencies, 99).toFixed(2),
        maxMs: cut.maxLatencyMs.toFixed(1),
        byCache: cut.byCache,
        windowsServed: lateness,
        claims: claimsOfCut.reduce<Record<string, number>>((o, m) => ({ ...o, [m.outcome]: (o[m.outcome] ?? 0) + 1 }), {}),
        starts: b.fleet.of("start", slowFrom).filter((m) => m.id === CUT).length
      },
      others: others.map((s) => ({ id: s.id, maxMs: s.maxLatencyMs.toFixed(1), windowsServed: Object.keys(s.servedBuckets).length })),
      startsPerWindow: [...starts.values()]
    })
    expect(p.forwarded().up).toBeGreaterThan(0)
    // the slow pod: no error, no call waited for Redis (its refreshes run in the background)
    expect(cut.errors, cut.firstError).toBe(0)
    expect(cut.byCache.miss ?? 0).toBe(0)
    expect(cut.maxLatencyMs).toBeLessThan(250)
    // no Redis call of the slow pod timed out (400 ms round trips, 500 ms command timeout)
    expect(claimsOfCut.filter((m) => m.outcome === "error")).toEqual([])
    // it follows the windows, a round trip or two behind
    expect(lateness).toBeGreaterThanOrEqual(6)
    // the fleet: one start per window, whoever leads
    expect(full.length).toBeGreaterThanOrEqual(5)
    for (const [w, n] of full) expect(n, `starts in window ${w}:\n${b.fleet.explain(w, WINDOW)}`).toBe(1)
    for (const s of others) {
      expect(s.maxLatencyMs).toBeLessThan(250)
      expect(Object.keys(s.servedBuckets).length).toBeGreaterThanOrEqual(6)
    }
    checkInvariants(b)
  })

  it("silent black hole for one pod (4 s): it serves its L1 with 0 errors, every call ends at once; the others unaffected; it rejoins after", async () => {
    const WINDOW = 1000
    const HOLE_MS = 4000
    const { b, p } = await setup(WINDOW, 200)
    await b.load({ callers: CALLERS, durationMs: 1500, pauseMs: 10 })
    // the heal is followed by 6 s of load: reconnect, breaker cooldown, and two full windows
    const loading = b.load({ callers: CALLERS, durationMs: HOLE_MS + 6500, pauseMs: 10 })
    // cut just after a window's commit, when no pod holds the lock: a holder cut off keeps it for
    // its lease, and the others wait that out (the lock holder scenarios' case, not this one's)
    const from = b.bucketOf(Date.now()) + 1
    await b.fleet.next("commit", { where: (m) => m.bucket >= from && m.outcome === "committed" })
    p.blackHole()
    const cutAt = Date.now()
    // the subscriber connection stays open but silent: its heartbeat finds out (≤ 2 s)
    await sleep(2500)
    const inHole = await b.fleet.stats()
    await sleep(HOLE_MS - 2500)
    const connectionsInHole = p.connections()
    const healedAt = Date.now()
    p.normal()
    const summaries = await loading

    const cut = summaries.find((s) => s.id === CUT)!
    const others = summaries.filter((s) => s.id !== CUT)
    const errorsOfCut = b.fleet.messages.filter((m) =>
      m.id === CUT && m.receivedAt >= cutAt && m.receivedAt < healedAt + 1000 &&
      ((m.type === "claim" || m.type === "commit") && m.outcome === "error")
    )
    const localOfCut = startsPerPodWindow(b, cutAt, healedAt)
    const othersStarts = new Map<number, number>()
    for (const m of b.fleet.of("start", cutAt)) {
      if (m.id !== CUT && m.receivedAt < healedAt) othersStarts.set(m.bucket, (othersStarts.get(m.bucket) ?? 0) + 1)
    }
    const settled = b.bucketOf(healedAt + 3000) + 1
    const resumed = [...startsPerWindow(b, healedAt)].filter(([w]) => w >= settled && w < b.bucketOf(Date.now()))
    const rejoined = b.fleet.of("claim", healedAt).find((m) => m.id === CUT && m.outcome !== "error")
    note("black-hole-one-pod", {
      holeMs: healedAt - cutAt,
      connectionsHeld: connectionsInHole,
      cut: {
        calls: cut.calls,
        maxMs: cut.maxLatencyMs.toFixed(1),
        byCache: cut.byCache,
        redisErrors: errorsOfCut.length,
        firstErrors: [...new Set(errorsOfCut.map((m) => ("error" in m ? m.error : "")))].slice(0, 3),
        localStarts: Object.fromEntries([...localOfCut].filter(([k]) => k.startsWith(`pod ${CUT} `))),
        firstClaimAfterHealMs: rejoined ? rejoined.wallAt - healedAt : null
      },
      subscriptionUpAfter2500ms: inHole.map((st) => `pod ${st.id}: ${st.metrics["lockstep_notice_subscription_up"] ?? "?"}`),
      othersStartsPerWindow: [...othersStarts.values()],
      startsAfterHeal: [...startsPerWindow(b, healedAt)].map(([w, n]) => `${w - b.bucketOf(healedAt)}:${n}`)
    })
    // the proxy held the connection: no reset, no close
    expect(connectionsInHole).toBeGreaterThan(0)
    // yet the cut pod no longer trusted its notices (so no L1 freshness), and the others did
    for (const st of inHole) expect(st.metrics["lockstep_notice_subscription_up"], `pod ${st.id}'s subscription`).toBe(st.id === CUT ? 0 : 1)
    // the cut pod answered every call at once from its L1, and saw no error
    expect(cut.errors, cut.firstError).toBe(0)
    expect(cut.byCache.miss ?? 0).toBe(0)
    expect(cut.maxLatencyMs).toBeLessThan(250)
    // it found out through timeouts, then produced on its own, at most once per window
    expect(errorsOfCut.length).toBeGreaterThan(0)
    for (const [k, n] of localOfCut) expect(n, k).toBeLessThanOrEqual(1)
    expect(Object.keys(cut.servedBuckets).length).toBeGreaterThanOrEqual(HOLE_MS / WINDOW + 3)
    // the others went on as before: one start per window among them
    expect(othersStarts.size).toBeGreaterThanOrEqual(HOLE_MS / WINDOW - 1)
    for (const [w, n] of othersStarts) expect(n, `starts of the others in window ${w}`).toBe(1)
    for (const s of others) expect(s.maxLatencyMs).toBeLessThan(250)
    // healed: the cut pod talks to Redis again, and the fleet is back to one start per window
    expect(rejoined, "the cut pod's first answered claim after the heal").toBeDefined()
    expect(resumed.length).toBeGreaterThan(0)
    for (const [w, n] of resumed) expect(n, `starts in window ${w}`).toBe(1)
    checkInvariants(b)
  })
})
