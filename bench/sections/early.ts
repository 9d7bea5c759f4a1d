/**
 * Section: early runs. A key kept warm by `Memo.keepWarm` over the bench's redis-server, its
 * lookup taking `producerMs`; requests one every 10 ms during the first second of each window.
 * Figure: the share of fresh answers (`stale: false`) in that second, with early runs (`lead:
 * "auto"`, the default: the next window's value computed before its boundary) and without
 * (`lead: false`: computed at the boundary, the window opening on the previous value). The
 * runs per window show that early runs do not add any.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Memo, Redis } from "../../src/index.js"
import type { BenchContext } from "../context.js"
import { sleep } from "../fixtures.js"
import type { Section } from "../stats.js"
import { judge } from "../targets.js"

interface Measured {
  /** Fresh answers, and all answers, in the first second of each measured window. */
  readonly fresh: number
  readonly total: number
  /** Lookup starts per measured window (those within half a window of its boundary). */
  readonly perWindow: ReadonlyArray<number>
}

const measure = async (ctx: BenchContext, lead: "auto" | false, windowMs: number, producerMs: number, windows: number): Promise<Measured> => {
  const starts: Array<number> = []
  let run = 0
  const loader = Memo.loader({
    key: `${ctx.runId}:early:${lead === false ? "off" : "auto"}`,
    window: windowMs,
    schema: Schema.Number,
    lookup: () =>
      Effect.promise(async () => {
        starts.push(Date.now())
        await sleep(producerMs)
        return ++run
      })
  })
  const store = Redis.layer({ redis: { host: ctx.redis.host, port: ctx.redis.port }, tenant: `${ctx.runId}-early` })
  const runtime = ManagedRuntime.make(Memo.layer.pipe(Layer.provide(store)))
  try {
    // keep-warm lives until the runtime closes; its first run measures the lookup
    await runtime.runPromise(Effect.forkDaemon(Effect.scoped(Effect.zipRight(Memo.keepWarm(loader, undefined, { lead }), Effect.never))))
    const untilBoundary = () => windowMs - (Date.now() % windowMs)
    await sleep(untilBoundary() + windowMs) // past start-up: a whole window measured the lookup
    let fresh = 0
    let total = 0
    const first = Math.floor(Date.now() / windowMs) + 1
    for (let w = 0; w < windows; w++) {
      ctx.signal.throwIfAborted()
      await sleep(untilBoundary())
      const end = Date.now() + Math.min(1_000, windowMs / 2)
      while (Date.now() < end) {
        const info = await runtime.runPromise(loader.getWithInfo())
        total++
        if (!info.stale) fresh++
        await sleep(10)
      }
    }
    // a start counts for the window whose boundary is nearest (a lead is at most half a window)
    const perWindow = Array.from({ length: windows }, (_, i) => {
      const boundary = (first + i) * windowMs
      return starts.filter((t) => t >= boundary - windowMs / 2 && t < boundary + windowMs / 2).length
    })
    return { fresh, total, perWindow }
  } finally {
    await runtime.dispose()
  }
}

export const run = async (ctx: BenchContext): Promise<Section> => {
  const windowMs = ctx.smoke ? 1_000 : 2_000
  const producerMs = ctx.smoke ? 150 : 500
  const windows = ctx.smoke ? 1 : Math.max(5, ctx.rounds)
  const on = await measure(ctx, "auto", windowMs, producerMs, windows)
  const off = await measure(ctx, false, windowMs, producerMs, windows)
  const pct = (m: Measured) => (m.total === 0 ? "–" : `${(100 * m.fresh / m.total).toFixed(1)} %`)
  const runs = (m: Measured) => m.perWindow.join(", ")
  const share = (m: Measured) => (m.total === 0 ? 0 : m.fresh / m.total)
  return {
    id: "early",
    title: "Early runs: fresh answers as a window opens",
    setup: `lockstep over redis-server, one key kept warm, a ${producerMs} ms lookup, ${windowMs / 1000} s windows; ` +
      `a request every 10 ms in the first ${Math.min(1_000, windowMs / 2) / 1000} s of ${windows} windows, with and without early runs.`,
    tables: [{
      headers: ["keepWarm", "fresh answers in the window's first second", "requests", "lookup starts per window"],
      rows: [
        ["early runs (`lead: \"auto\"`)", pct(on), String(on.total), runs(on)],
        ["at the boundary (`lead: false`)", pct(off), String(off.total), runs(off)]
      ]
    }],
    targets: [judge("early.fresh", 100 * share(on), { smoke: ctx.smoke })],
    notes: [
      "Without early runs the window opens on the previous value (stale) for as long as the lookup takes; with them the value was committed before the boundary and every process switches to it at the boundary."
    ],
    data: { on, off }
  }
}
