/**
 * Faults of the lock holder, on a real redis-server and several pod processes: the pod that
 * holds the fleet lock is killed (`SIGKILL`), frozen past its lease (`SIGSTOP` … `SIGCONT`), or
 * shut down gracefully (`SIGTERM`) while it produces.
 */
import { afterEach, describe, expect, it } from "vitest"
import { sleep } from "./support/fleet.js"
import { type Bench, type BenchOptions, checkInvariants, note, startBench } from "./support/faults.js"

const CALLERS = 20

let bench: Bench | undefined
afterEach(async () => {
  await bench?.stop()
  bench = undefined
})

/** A warm fleet under load, and the first producer start of a later window: its holder. */
const holderOf = async (options: BenchOptions, loadMs: number) => {
  const b = bench = await startBench(options)
  await b.load({ callers: CALLERS, durationMs: 1000, pauseMs: 10 })
  const loading = b.load({ callers: CALLERS, durationMs: loadMs, pauseMs: 10 })
  const from = b.bucketOf(Date.now()) + 1
  const start = await b.fleet.next("start", { where: (m) => m.bucket >= from })
  const claim = b.fleet.of("claim").filter((m) => m.id === start.id && m.outcome === "acquired").pop()!
  expect(claim.bucket).toBe(start.bucket)
  return { b, loading, start, holder: b.fleet.pods[start.id]!, target: start.bucket, fence: claim.fence! }
}

const startsIn = (b: Bench, bucket: number) => b.fleet.of("start").filter((m) => m.bucket === bucket)

describe("faults: lock holder", () => {
  it("SIGKILLed mid-production: another pod takes over within lease + 1 s; ≤ 2 starts for the window", async () => {
    const LEASE = 1000
    const { b, loading, start, holder, target } = await holderOf({
      pods: 3,
      windowMs: 3000,
      producerMs: 800,
      settings: { lease: LEASE }
    }, 5000)
    await sleep(100)
    const killedAt = Date.now()
    holder.signal("SIGKILL")
    const takeover = await b.fleet.next("start", { where: (m) => m.bucket === target && m.id !== holder.id, timeoutMs: LEASE + 3000 })
    await loading
    const commits = b.fleet.of("commit", start.receivedAt).filter((m) => m.bucket === target && m.outcome === "committed")
    note("holder-sigkill", {
      takeoverMs: takeover.wallAt - killedAt,
      startsForWindow: startsIn(b, target).length,
      committedBy: commits.map((m) => m.id)
    })
    expect(takeover.wallAt - killedAt).toBeLessThanOrEqual(LEASE + 1000)
    expect(startsIn(b, target).length).toBeLessThanOrEqual(2)
    expect(commits.map((m) => m.id)).toEqual([takeover.id])
    expect(b.watch.samples.some((x) => x.bucket === target && JSON.parse(x.data).pod === takeover.id)).toBe(true)
    checkInvariants(b)
  })

  it("SIGSTOPped past its lease, then resumed: its late commit is refused; the store keeps the new holder's value", async () => {
    const LEASE = 1000
    const PRODUCER = 300 // ends before the first renewal is due, so on SIGCONT the producer wins
    const { b, loading, start, holder, target, fence } = await holderOf({
      pods: 3,
      windowMs: 3000,
      producerMs: PRODUCER,
      settings: { lease: LEASE }
    }, 6000)
    await sleep(Math.max(0, start.wallAt + 150 - Date.now()))
    const stoppedAt = Date.now()
    holder.signal("SIGSTOP")
    const taker = await b.fleet.next("commit", {
      where: (m) => m.bucket === target && m.id !== holder.id && m.outcome === "committed",
      timeoutMs: LEASE + 3000
    })
    const takerFence = taker.fence
    const resumedAt = Date.now()
    holder.signal("SIGCONT")
    const late = await b.fleet.next("commit", { where: (m) => m.id === holder.id && m.bucket === target, since: resumedAt })
    await loading
    const renewals = b.fleet.of("renew", resumedAt).filter((m) => m.id === holder.id)
    note("holder-sigstop", {
      stoppedMs: resumedAt - stoppedAt,
      holderFence: fence,
      takerFence,
      takeoverAfterStopMs: taker.wallAt - stoppedAt,
      lateCommit: late.outcome,
      holderRenewalsAfterResume: renewals.map((m) => m.outcome),
      startsForWindow: startsIn(b, target).length
    })
    expect(takerFence).toBeGreaterThan(fence)
    expect(late.withToken).toBe(true)
    expect(late.outcome).toBe("fenced")
    // the store holds the new holder's value for that window, and never the late one
    const stored = b.watch.samples.filter((x) => x.bucket === target)
    expect(stored.length).toBeGreaterThan(0)
    for (const x of stored) expect({ fence: x.fence, pod: JSON.parse(x.data).pod }).toEqual({ fence: takerFence, pod: taker.id })
    expect(startsIn(b, target).length).toBeLessThanOrEqual(2)
    checkInvariants(b)
  })

  it("SIGTERM: the pod closes its Memo scope, the lock is released, another pod takes over in < 1 s", async () => {
    const LEASE = 2500 // a takeover under 1 s can only come from the release
    const { b, loading, start, holder, target } = await holderOf({
      pods: 3,
      windowMs: 3000,
      producerMs: 1500,
      settings: { lease: LEASE }
    }, 5000)
    await sleep(200)
    const termAt = Date.now()
    holder.signal("SIGTERM")
    const takeover = await b.fleet.next("start", { where: (m) => m.bucket === target && m.id !== holder.id, timeoutMs: LEASE + 2000 })
    const exit = await holder.exited
    await loading
    const release = b.fleet.of("release", start.receivedAt).find((m) => m.id === holder.id)
    const closed = b.fleet.of("closed").find((m) => m.id === holder.id)
    note("holder-sigterm", {
      takeoverMs: takeover.wallAt - termAt,
      releasedAfterMs: release ? release.wallAt - termAt : null,
      closedAfterMs: closed ? closed.wallAt - termAt : null,
      exit,
      startsForWindow: startsIn(b, target).length
    })
    expect(release).toMatchObject({ ok: true, backoff: false })
    expect(closed).toBeDefined()
    expect(exit).toEqual({ code: 0, signal: null })
    expect(takeover.wallAt - termAt).toBeLessThan(1000)
    expect(startsIn(b, target).length).toBe(2)
    const commit = await b.fleet.next("commit", { where: (m) => m.bucket === target && m.id === takeover.id, since: takeover.receivedAt })
    expect(commit.outcome).toBe("committed")
    checkInvariants(b)
  })
})
