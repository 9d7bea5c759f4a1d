/**
 * Section 3: stale serving. Per round and implementation: latencies of hits on a fresh value,
 * then, once the value has gone stale and a 500 ms producer is recomputing it, latencies of the
 * requests served meanwhile. Each implementation is compared with its own hit latency.
 *
 * Requests are spaced by `setImmediate`, as requests arriving from the network would be, so that
 * timers and Redis replies (the refresh) make progress between them.
 */
import type { BenchContext } from "../context.js"
import { type Dashboard, keysOf, producer, sleep, tick } from "../fixtures.js"
import { type Cache, implNames, makers } from "../impls.js"
import { cell, fmtMs, fmtRatio, interleave, percentile, ratios, type Section, sorted, summarize } from "../stats.js"
import { judge } from "../targets.js"

interface Sample {
  readonly hit: { readonly p50: number; readonly p99: number; readonly n: number }
  readonly stale: { readonly p50: number; readonly p99: number; readonly n: number }
  /** Producer starts during the stale phase (1 expected: the refresh). */
  readonly starts: number
}

/** Latencies (ms) of calls issued one per event-loop turn for `ms`. */
const sample = async (call: () => Promise<unknown>, ms: number, into: Array<number>) => {
  const end = performance.now() + ms
  while (performance.now() < end) {
    await tick()
    const t0 = performance.now()
    await call()
    into.push(performance.now() - t0)
  }
}

const pcts = (xs: ReadonlyArray<number>) => {
  const s = sorted(xs)
  return { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length }
}

export const run = async (ctx: BenchContext): Promise<Section> => {
  const producerMs = ctx.smoke ? 150 : 500
  const phaseMs = ctx.smoke ? 60 : 250 // < producerMs: every stale sample is taken while it runs
  const windowMs = ctx.smoke ? 400 : 1_000
  const rounds = ctx.smoke ? ctx.rounds : 5 // each round waits for a TTL: five keep it within a minute
  let starts = 0
  /** The `volume` of the value the latest refresh produces: tells a served value's version. */
  let latest = -1
  const produce = producer(producerMs, (_, value) => {
    starts++
    latest = value.volume
  })
  const caches = new Map<string, Cache>()
  const calls = new Map<string, () => Promise<unknown>>()
  const impls = implNames.map((name) => ({ name }))
  try {
    for (const name of implNames) {
      const cache = await makers[name]({
        redis: ctx.redis,
        namespace: `${ctx.runId}-stale-${name}`,
        windowMs,
        produce,
        acdStorage: "memory"
      })
      caches.set(name, cache)
      const call = cache.bind(keysOf(`${ctx.runId}:stale:${name}`, 1))
      calls.set(name, () => call(0))
    }
    // cold start, outside the measurements
    await Promise.all([...calls.values()].map((c) => c()))
    await sleep(producerMs + 50)

    const samples = new Map<string, Array<Sample>>(implNames.map((n) => [n, []]))
    await interleave(impls, rounds, async ({ name }) => {
      const call = calls.get(name)!
      // keep calling until the value goes stale and a refresh starts (bounded by the TTL)
      const before = starts
      let giveUp = performance.now() + windowMs + 2_500
      while (starts === before && performance.now() < giveUp) {
        ctx.signal.throwIfAborted()
        await sleep(5)
        await call()
      }
      const stale: Array<number> = []
      await sample(call, phaseMs, stale)
      const during = starts - before
      // wait until the refreshed value is the one served, then measure hits on it
      giveUp = performance.now() + producerMs + 2_000
      while (((await call()) as Dashboard).volume !== latest && performance.now() < giveUp) await sleep(2)
      const hits: Array<number> = []
      await sample(call, phaseMs, hits)
      samples.get(name)!.push({ hit: pcts(hits), stale: pcts(stale), starts: during })
      return 0
    }, ctx.signal)

    const rows: Array<Array<string>> = []
    const targets = []
    for (const name of implNames) {
      const xs = samples.get(name)!
      for (const p of ["p50", "p99"] as const) {
        const hit = xs.map((x) => x.hit[p])
        const stale = xs.map((x) => x.stale[p])
        const r = ratios(stale, hit)
        rows.push([name, p, ...cell(summarize(hit), fmtMs), ...cell(summarize(stale), fmtMs), fmtRatio(r.median)])
        if (name === "lockstep") {
          targets.push(judge(p === "p50" ? "stale.p50" : "stale.p99", r.median, { smoke: ctx.smoke }))
        }
      }
    }
    const startsRow = implNames.map((n) => `${n} ${summarize(samples.get(n)!.map((x) => x.starts)).median}`).join(", ")
    const sampleCounts = implNames.map((n) => `${n} ${Math.round(summarize(samples.get(n)!.map((x) => x.stale.n)).median)}`).join(", ")
    return {
      id: "stale",
      title: "3. Stale serving while a 500 ms producer recomputes",
      setup: [
        `Per round and implementation: once the value goes stale (lockstep: the ${windowMs} ms window rolls over; peers: their`,
        `${windowMs} ms TTL expires) and the first request starts a ${producerMs} ms refresh, ${phaseMs} ms of requests served`,
        `while it runs; then, as soon as the refreshed value is served, ${phaseMs} ms of hits on it. Requests one per event-loop turn.`,
        `${rounds} interleaved rounds; each figure is the median over rounds of that round's percentile; ratio = median of`,
        "per-round stale/hit ratios. Stale serving: bentocache `grace` + `timeout: 0`; cache-manager `refreshThreshold`",
        "(refresh-ahead, its nearest feature); lru-cache `allowStale`; async-cache-dedupe `stale` (whole seconds)."
      ].join(" "),
      tables: [{
        headers: ["implementation", "pct", "hit (median)", "hit min – max", "stale (median)", "stale min – max", "stale / hit"],
        rows
      }],
      targets,
      notes: [
        `Producer starts per stale phase (median): ${startsRow}.`,
        `Requests sampled per stale phase (median): ${sampleCounts}.`
      ],
      data: Object.fromEntries(samples)
    }
  } finally {
    await Promise.allSettled([...caches.values()].map((c) => c.close()))
  }
}
