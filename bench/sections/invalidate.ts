/**
 * Section: invalidation latency on a fleet. A warm key on `pods` processes (`bench/pod.ts`,
 * watch protocol), each calling its `Memo.loader` continuously (one call per millisecond). One
 * pod (a different one each round) calls `loader.invalidate(k)`; the lookup answers a value no
 * other run answers. Measured from the moment `invalidate` returned: when each pod first answers
 * the new value, and when it last answered the old one. The pods report both over IPC.
 */
import type { BenchContext } from "../context.js"
import { sleep } from "../fixtures.js"
import { fmtCount, fmtMs, percentile, type Section, sorted, summarize } from "../stats.js"
import { Fleet } from "./fleet.js"
import { judge } from "../targets.js"

interface Round {
  readonly by: number
  /** Per pod: first new answer, last old answer, ms after `invalidate` returned. */
  readonly firstNewMs: ReadonlyArray<number>
  readonly lastOldMs: ReadonlyArray<number>
  readonly starts: number
  readonly firstStartMs: number
  readonly values: number
}

export const run = async (ctx: BenchContext): Promise<Section> => {
  const pods = ctx.smoke ? 2 : 4
  const rounds = ctx.smoke ? 3 : 30
  const producerMs = 50
  const everyMs = 1
  const key = `${ctx.runId}:invalidate`
  const t0 = performance.now()
  const fleet = await Fleet.spawn(pods, ctx.redis.port, ctx.signal)
  const spawnS = (performance.now() - t0) / 1000
  const out: Array<Round> = []
  try {
    await fleet.ask({ t: "watch-setup", namespace: `${ctx.runId}-inv`, key, windowMs: 3_600_000, producerMs }, "ready", ctx.signal, {
      timeoutMs: 20_000
    })
    await fleet.ask({ t: "loop", callers: 1, everyMs }, "ready", ctx.signal)
    await sleep(200)
    for (let r = 0; r < rounds + 1; r++) {
      ctx.signal.throwIfAborted()
      const by = r % pods
      const id = fleet.nextId()
      const changed = fleet.replies("changed", id, pods, ctx.signal, 10_000)
      const armed = fleet.replies("armed", id, pods, ctx.signal)
      for (let p = 0; p < pods; p++) fleet.send(p, { t: "arm", id })
      const olds = await armed
      if (new Set(olds.map((a) => a.value)).size !== 1) throw new Error(`pods serve different values before invalidation ${r}: ${olds.map((a) => a.value)}`)
      const startsBefore = fleet.starts.length
      const [inv] = await fleet.ask({ t: "invalidate" }, "invalidated", ctx.signal, { pods: [by] })
      const returnedAt = inv!.at
      const news = await changed
      await sleep(100) // a second start, if any, still counts
      const starts = fleet.starts.slice(startsBefore)
      const byPod = [...news].sort((a, b) => a.pod - b.pod)
      // round 0 warms code paths and is not counted
      if (r > 0) {
        out.push({
          by,
          firstNewMs: byPod.map((c) => c.firstNewAt - returnedAt),
          lastOldMs: byPod.map((c) => (Number.isFinite(c.lastOldAt) ? c.lastOldAt - returnedAt : Number.NaN)),
          starts: starts.length,
          firstStartMs: starts.length === 0 ? Number.NaN : Math.min(...starts.map((s) => s.at)) - returnedAt,
          values: new Set(news.map((c) => c.value)).size
        })
      }
      await sleep(50)
    }
    await fleet.ask({ t: "loop-stop" }, "ready", ctx.signal)
  } finally {
    await fleet.close()
  }

  const row = (what: string, xs: ReadonlyArray<number>) => {
    const s = sorted(xs.filter((x) => Number.isFinite(x)))
    return [what, fmtMs(percentile(s, 50)), fmtMs(percentile(s, 99)), fmtMs(s[0] ?? Number.NaN), fmtMs(s[s.length - 1] ?? Number.NaN), String(s.length)]
  }
  const allNew = out.map((r) => Math.max(...r.firstNewMs))
  const lastOld = out.map((r) => Math.max(...r.lastOldMs.filter((x) => Number.isFinite(x)), Number.NEGATIVE_INFINITY))
  const starts = summarize(out.map((r) => r.starts))
  const p99All = percentile(sorted(allNew), 99)
  return {
    id: "invalidate",
    title: `Invalidation latency (${pods} processes, a warm key, ${rounds} invalidations)`,
    setup: [
      `${pods} processes (\`bench/pod.ts\`) each run one lockstep \`Memo.loader\` on one redis-server and call \`get\` on a warm key`,
      `continuously (one call, then a ${everyMs} ms timer). One process, a different one each round, calls \`loader.invalidate(k)\`;`,
      `the lookup takes ${producerMs} ms and answers a value no other run answers. Every process reports over IPC its first answer`,
      "with the new value and its last answer with the old one; times are from the instant `invalidate` returned (the same",
      `machine's clock). ${rounds} invalidations, one unmeasured before them; 150 ms between them.`
    ].join(" "),
    tables: [{
      headers: ["from `invalidate`'s return until…", "p50", "p99", "min", "max", "samples"],
      rows: [
        row("every process serves the new value (the slowest process, per invalidation)", allNew),
        row("a process serves the new value (per process and invalidation)", out.flatMap((r) => r.firstNewMs)),
        row("the last answer with the old value, any process (per invalidation)", lastOld),
        row("the last answer with the old value (per process and invalidation)", out.flatMap((r) => r.lastOldMs)),
        row("the recompute starts (first producer start anywhere)", out.map((r) => r.firstStartMs)),
        ["for reference: the producer's own time", fmtMs(producerMs), fmtMs(producerMs), "", "", ""]
      ]
    }],
    targets: [
      judge("invalidate.starts", [starts.min, starts.max], { smoke: ctx.smoke, detail: `min and max over ${out.length} invalidations; median ${fmtCount(starts.median)}` }),
      {
        name: "every process serves the new value, p99 after the return, less the producer time",
        figure: fmtMs(p99All - producerMs),
        target: "for information",
        met: undefined
      }
    ],
    notes: [
      "Old answers after the return are the stale-while-revalidate answers while the recompute runs: the invalidated value stays last-known-good, served at once, until the new one commits.",
      `Distinct new values seen by the processes per invalidation: ${[...new Set(out.map((r) => r.values))].join(", ")} (1 = every process got the one recompute's value).`,
      `Spawning the ${pods} processes took ${spawnS.toFixed(1)} s.`
    ],
    data: { rounds: out }
  }
}
