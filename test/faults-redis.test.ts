/**
 * Faults of the shared store, on a real redis-server and several pod processes: Redis frozen
 * (`SIGSTOP`), Redis killed and restarted empty, `CLIENT PAUSE` and `CLIENT KILL` mid-commit.
 * Pods report every producer start, claim and commit over IPC; the stored `(bucket, fence)` is
 * watched from this process.
 */
import { afterEach, describe, expect, it } from "vitest"
import { percentile, sleep } from "./support/fleet.js"
import { type Bench, checkInvariants, note, startBench, startsPerPodWindow, startsPerWindow } from "./support/faults.js"
import { startRedis } from "./support/services.js"

const CALLERS = 20

let bench: Bench | undefined
afterEach(async () => {
  await bench?.stop()
  bench = undefined
})

describe("faults: Redis", () => {
  it("frozen (SIGSTOP) for 3 s: every call ends at once from L1, 0 errors, single-flight resumes after SIGCONT", async () => {
    const WINDOW = 1000
    const b = bench = await startBench({
      pods: 3,
      windowMs: WINDOW,
      producerMs: 200,
      // a lease well past the window: a lock orphaned by the freeze would show as windows without a start
      settings: { lease: 3000 }
    })
    await b.load({ callers: CALLERS, durationMs: 2500, pauseMs: 10 })

    let frozenStats: Awaited<ReturnType<typeof b.fleet.stats>> = []
    const frozenAt = Date.now()
    process.kill(b.redis.pid, "SIGSTOP")
    const [during] = await Promise.all([
      b.load({ callers: CALLERS, durationMs: 3000, pauseMs: 10 }),
      sleep(1500).then(async () => {
        const stats = await b.fleet.stats()
        frozenStats = stats
      })
    ])
    const endStats = await b.fleet.stats()
    const breaker = `lockstep_redis_breaker_state{tenant=${b.tenant}}`
    const redisErrors = (m: Record<string, number>) =>
      Object.entries(m).filter(([k]) => k.startsWith("lockstep_redis_errors_total")).reduce((n, [, v]) => n + v, 0)
    note("redis-frozen", {
      breakerAfter1500ms: frozenStats.map((s) => s.metrics[breaker] ?? 0),
      breakerAtEnd: endStats.map((s) => s.metrics[breaker] ?? 0),
      redisErrorsAtEnd: endStats.map((s) => redisErrors(s.metrics))
    })
    // the freeze is visible to an operator: Redis errors counted, the breaker opened
    for (const s of endStats) expect(redisErrors(s.metrics), `pod ${s.id} Redis errors`).toBeGreaterThan(0)
    expect(endStats.some((s) => s.metrics[breaker] === 2), "a breaker open").toBe(true)
    const resumedAt = Date.now()
    process.kill(b.redis.pid, "SIGCONT")
    const after = await b.load({ callers: CALLERS, durationMs: 4000, pauseMs: 10 })

    // every call during the freeze was answered from L1 at once
    const latencies = during!.flatMap((s) => s.latenciesMs).sort((x, y) => x - y)
    const maxLatency = Math.max(...during!.map((s) => s.maxLatencyMs))
    const calls = during!.reduce((n, s) => n + s.calls, 0)
    note("redis-frozen", {
      frozenMs: resumedAt - frozenAt,
      callsWhileFrozen: calls,
      p50: percentile(latencies, 50).toFixed(2),
      p99: percentile(latencies, 99).toFixed(2),
      maxMs: maxLatency.toFixed(1),
      byCache: during!.map((s) => s.byCache)
    })
    expect(calls).toBeGreaterThan(3 * CALLERS * 50)
    for (const s of during!) expect(s.byCache.miss ?? 0, `pod ${s.id} waited for a producer`).toBe(0)
    expect(percentile(latencies, 99)).toBeLessThan(20)
    expect(maxLatency).toBeLessThan(250) // not one call waited for Redis, let alone timed out

    // while frozen: at most one local run per pod per window
    const frozenStarts = startsPerPodWindow(b, frozenAt, resumedAt)
    note("redis-frozen", { localStartsWhileFrozen: Object.fromEntries(frozenStarts) })
    for (const [k, n] of frozenStarts) expect(n, k).toBeLessThanOrEqual(1)

    // after SIGCONT: the first window that begins 1 s later, and every one after, has one start
    const firstSingle = b.bucketOf(resumedAt + 1000) + 1
    const lastFull = b.bucketOf(Date.now()) - 1
    const resumed = startsPerWindow(b, resumedAt)
    note("redis-frozen", {
      startsAfterResume: Object.fromEntries([...resumed].map(([w, n]) => [w - b.bucketOf(resumedAt), n])),
      firstAcquiredAfterResumeMs: (b.fleet.of("claim", resumedAt).find((m) => m.outcome === "acquired")?.wallAt ?? NaN) - resumedAt
    })
    expect(lastFull).toBeGreaterThanOrEqual(firstSingle + 1)
    for (let w = firstSingle; w <= lastFull; w++) expect(resumed.get(w), `starts in window ${w}`).toBe(1)
    const stats = await b.fleet.stats()
    for (const s of stats) expect(s.metrics[breaker] ?? 0, `pod ${s.id} breaker closed again`).toBe(0)
    for (const s of after) expect(Object.keys(s.servedBuckets).length).toBeGreaterThanOrEqual(3)
    checkInvariants(b)
  })

  it("killed and restarted empty: pods keep serving, ≤ 1 local run per pod per window, a newer value lands after the restart", async () => {
    const WINDOW = 1000
    const b = bench = await startBench({
      pods: 3,
      windowMs: WINDOW,
      producerMs: 200,
      settings: { lease: 1500, degradedAfter: 200 }
    })
    await b.load({ callers: CALLERS, durationMs: 2500, pauseMs: 10 })
    const before = b.watch.latest()!

    const killedAt = Date.now()
    b.redis.process.kill("SIGKILL")
    await new Promise((r) => b.redis.process.once("exit", r))
    const down = b.load({ callers: CALLERS, durationMs: 9000, pauseMs: 10 })
    await sleep(3500)
    const port = b.port
    b.redis = await startRedis({ port })
    const restartedAt = Date.now()
    await down

    const localWhileDown = startsPerPodWindow(b, killedAt, restartedAt)
    note("redis-restart", {
      downMs: restartedAt - killedAt,
      localStartsWhileDown: Object.fromEntries(localWhileDown)
    })
    for (const [k, n] of localWhileDown) expect(n, k).toBeLessThanOrEqual(1)
    // each pod kept producing on its own while Redis was gone
    for (const p of b.fleet.pods) expect([...localWhileDown.keys()].filter((k) => k.startsWith(`pod ${p.id} `)).length).toBeGreaterThanOrEqual(2)

    // after the restart, the empty store got values newer than the one it lost, and the first
    // arrived as a write-back of a value produced without Redis, or as a normal commit
    const afterRestart = b.watch.samples.filter((s) => s.at >= restartedAt)
    const writeBacks = b.fleet.of("commit", restartedAt).filter((m) => !m.withToken && m.outcome === "committed")
    note("redis-restart", {
      before: [before.bucket - b.bucketOf(killedAt), before.fence],
      firstAfterRestartMs: afterRestart[0] ? afterRestart[0].at - restartedAt : null,
      writeBacksLanded: writeBacks.length,
      startsAfterRestart: Object.fromEntries([...startsPerWindow(b, restartedAt)].map(([w, n]) => [w - b.bucketOf(restartedAt), n]))
    })
    // a pod offers its local value back until that value's window ends; once Redis answers its
    // probe, the fleet claims and commits as usual, so which one lands first depends on where in
    // the window the restart falls: either way the store holds a newer value than it lost
    expect(afterRestart.length).toBeGreaterThan(0)
    expect(afterRestart[0]!.bucket).toBeGreaterThan(before.bucket)
    expect(afterRestart[0]!.at - restartedAt).toBeLessThan(4000) // reconnect (≤ 2 s) + a window + the producer
    // the fleet is back to one start per window once every pod has reconnected (ioredis retries
    // at most 2 s apart) and its breaker has closed (1 s)
    const settled = b.bucketOf(restartedAt + 3000) + 1
    const resumed = [...startsPerWindow(b, restartedAt)].filter(([w]) => w >= settled)
    expect(resumed.length).toBeGreaterThan(0)
    for (const [w, n] of resumed) expect(n, `starts in window ${w}`).toBe(1)
    checkInvariants(b)
  })
  /**
   * A holder's commit reaches Redis while writes are paused: the pause begins while its producer
   * runs and ends only once it has finished, so the commit is held by construction, and the
   * test checks that it was (sent during the pause, answered after it). With `kill`, every
   * pod's connection is then killed while the commit still waits, so Redis drops it unexecuted.
   */
  const midCommit = async (scenario: string, kill: boolean) => {
    // the holder's value lands within its window: after the kill, its retries open its breaker,
    // and the write-back after the cooldown comes about 2.4 s after the pause (up to 2.8 s on a
    // loaded machine); once the next window has a value, it would be refused as older
    const WINDOW = 3000
    const PRODUCER = 600
    const b = bench = await startBench({
      pods: 3,
      windowMs: WINDOW,
      producerMs: PRODUCER,
      settings: { lease: 2000 }
    })
    await b.load({ callers: CALLERS, durationMs: 1000, pauseMs: 10 })
    const loading = b.load({ callers: CALLERS, durationMs: 6000, pauseMs: 10 })
    // the first producer start of a later window: its holder commits once its producer ends
    const from = b.bucketOf(Date.now()) + 1
    const start = await b.fleet.next("start", { where: (m) => m.bucket >= from })
    const holder = start.id
    const target = start.bucket
    const claim = b.fleet.of("claim").filter((m) => m.id === holder && m.outcome === "acquired").pop()!
    // paused with a bound well past the producer, ended by hand below (UNPAUSE)
    await b.watch.client.call("CLIENT", "PAUSE", "5000", "WRITE")
    const pausedAt = Date.now()
    await b.fleet.next("finish", { where: (m) => m.id === holder && m.bucket === target, since: start.receivedAt })
    // the commit is sent right after the producer's finish: it now waits in Redis
    await b.fleet.waitFor(() => b.fleet.of("commit", start.receivedAt).length > 0 || Date.now() > pausedAt + 2000, 3000, "a commit sent")
    await sleep(200)
    const heldAt = Date.now()
    if (kill) {
      const killed = await b.watch.client.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
      note(scenario, { connectionsKilled: killed })
    }
    await b.watch.client.call("CLIENT", "UNPAUSE")
    const unpausedAt = Date.now()
    await loading
    await sleep(300)

    const commits = b.fleet.of("commit", start.receivedAt).filter((m) => m.bucket === target)
    const stored = b.watch.samples.filter((x) => x.bucket === target)
    note(scenario, {
      holder,
      claimedFence: claim.fence,
      pausedMs: { fromStart: pausedAt - start.wallAt, held: heldAt - pausedAt, unpaused: unpausedAt - pausedAt },
      commitsForWindow: commits.map((m) => `pod ${m.id} ${m.withToken ? "holder" : "write-back"} (${m.bucket - target}, ${m.fence}): ${m.outcome}${m.error ? ` (${m.error})` : ""}, sent ${m.sentAt - pausedAt} ms, answered ${m.wallAt - pausedAt} ms after the pause`),
      storedForWindow: stored.map((x) => `(${x.fence}) ${x.data}`),
      startsPerWindow: Object.fromEntries([...startsPerWindow(b, start.receivedAt - 1000)].map(([w, n]) => [w - target, n]))
    })
    // the fault landed on the holder's commit: its first one was sent while writes were paused
    // (before the kill), and got no answer before the pause ended (it timed out, or was answered
    // after)
    expect(claim.bucket).toBe(target)
    const held = commits.filter((m) => m.id === holder && m.withToken).sort((x, y) => x.sentAt - y.sentAt)[0]
    expect(held, "the holder's commit").toBeDefined()
    expect(held!.sentAt, "the holder's commit was sent while writes were paused").toBeGreaterThanOrEqual(pausedAt)
    expect(held!.sentAt, "the holder's commit was sent before the pause ended").toBeLessThan(heldAt)
    expect(held!.outcome === "error" || held!.wallAt >= unpausedAt - 5, `the holder's commit was answered while writes were paused: ${held!.outcome} ${held!.wallAt - pausedAt} ms after the pause began`).toBe(true)
    // not lost: the holder's value is what the store ends up holding for that window
    const last = stored[stored.length - 1]
    expect(last && { fence: last.fence, pod: JSON.parse(last.data).pod }, "stored for the window").toEqual({ fence: claim.fence, pod: holder })
    expect(commits.some((m) => m.id === holder && m.outcome === "committed")).toBe(true)
    // not duplicated: one leader run for the window; a pod that lost Redis meanwhile may have
    // produced on its own (≤ 1 each), but its value never replaced the holder's
    const starts = b.fleet.of("start").filter((m) => m.bucket === target)
    expect(starts.filter((m) => m.id === holder)).toHaveLength(1)
    expect(new Set(starts.map((m) => m.id)).size).toBe(starts.length)
    for (const m of commits) if (m.id !== holder) expect(m.withToken, `pod ${m.id} committed as a holder`).toBe(false)
    expect(stored.filter((x) => JSON.parse(x.data).pod === holder).every((x) => x.fence === claim.fence)).toBe(true)
    checkInvariants(b)
  }

  it("CLIENT PAUSE mid-commit: the delayed commit lands once, nothing lost, no regression", () => midCommit("client-pause", false))

  it("CLIENT KILL mid-commit (the commit is dropped unexecuted): the holder's value still lands, once", () =>
    midCommit("client-kill", true))
})
