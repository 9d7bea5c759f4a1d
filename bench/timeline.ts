/**
 * Where a fleet burst's time goes: with `BENCH_TIMELINE=<dir>`, each pod of `bench/pod.ts` records
 * one timeline per burst (what its Redis connections sent and received for the burst's key, the
 * notices it heard, lockstep's spans, its callers' answers) and writes it to
 * `<dir>/<key>.<impl>.pod<N>.json`; `npx tsx bench/timeline.ts <dir> [key]` merges a burst's pods into one
 * timeline, in ms from the burst's instant (the machine's wall clock, so pods line up).
 *
 *   BENCH_TIMELINE=/tmp/tl npx tsx bench/main.ts --only=fleet --rounds=5 --no-write
 *   npx tsx bench/timeline.ts /tmp/tl cold-8x200-0.lockstep
 *
 * With `--cpu-prof` too, the pods' profiles cut to the bursts whose file names match a pattern:
 *
 *   npx tsx bench/timeline.ts /tmp/tl 'cold-8x200-.*[.]lockstep[.]' --profile=bench/results/profiles/fleet-children
 *
 * Instrumentation only: it patches ioredis's `sendCommand` and `emit` in the pod, and adds a
 * tracer to lockstep's runtime there; the library is untouched.
 */
import { createHash } from "node:crypto"
import { PerformanceObserver } from "node:perf_hooks"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Tracer from "effect/Tracer"
import { Redis as IORedis } from "ioredis"
import * as Scripts from "../src/internal/redis/scripts.js"
import { type CpuProfile, summarize } from "./profile.js"

export interface Event {
  /** ms from the burst's instant. */
  readonly t: number
  readonly what: string
}

/** Wall clock with sub-millisecond precision, comparable across the machine's processes. */
export const wallNow = () => performance.timeOrigin + performance.now()

const dir = process.env.BENCH_TIMELINE
export const enabled = dir !== undefined && dir !== ""

interface Recording {
  readonly key: string
  readonly impl: string
  readonly at: number
  /** The burst's instant on the monotonic clock V8's profiles use (µs). */
  readonly atUs: number
  readonly events: Array<Event>
}

let current: Recording | undefined

export const record = (what: string) => {
  if (current !== undefined) current.events.push({ t: wallNow() - current.at, what })
}

const scriptNames = new Map<string, string>(
  Object.entries(Scripts.all).map(([name, lua]) => [createHash("sha1").update(lua).digest("hex"), name])
)

const describe = (name: string, args: ReadonlyArray<unknown>): string => {
  if (name === "evalsha") return `script ${scriptNames.get(String(args[0])) ?? String(args[0]).slice(0, 8)}`
  if (name === "eval") return "eval"
  return name
}

const mentions = (args: ReadonlyArray<unknown>, key: string) =>
  args.some((a) => (typeof a === "string" ? a.includes(key) : Buffer.isBuffer(a) ? a.includes(key) : false))

let installed = false

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
let cpuAtBegin = 0

/** Records `what` with the CPU time the process used since the burst's recording began. */
export const recordCpu = (what: string) => {
  if (current !== undefined) record(`${what} (cpu ${(cpuMs() - cpuAtBegin).toFixed(1)} ms)`)
}

/** Patches ioredis in this process so that commands and messages about the recorded key are timed. */
export const install = () => {
  if (!enabled || installed) return
  installed = true
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (current !== undefined) {
        current.events.push({ t: e.startTime + performance.timeOrigin - current.at, what: `gc ${e.duration.toFixed(1)} ms` })
      }
    }
  }).observe({ entryTypes: ["gc"] })
  const proto = IORedis.prototype as unknown as {
    sendCommand: (command: { name: string; args: Array<unknown>; promise: Promise<unknown> }, ...rest: Array<unknown>) => unknown
    emit: (event: string, ...args: Array<unknown>) => boolean
  }
  const sendCommand = proto.sendCommand
  proto.sendCommand = function(command, ...rest) {
    const rec = current
    if (rec !== undefined && mentions(command.args, rec.key)) {
      const what = describe(command.name, command.args)
      record(`sent ${what}`)
      command.promise.then(
        (reply) => record(`answered ${what}${Array.isArray(reply) && typeof reply[0] === "string" ? ` (${reply[0]})` : ""}`),
        (e) => record(`failed ${what}: ${e instanceof Error ? e.message : String(e)}`)
      )
    }
    return sendCommand.call(this, command, ...rest)
  }
  const emit = proto.emit
  proto.emit = function(event, ...args) {
    const rec = current
    if (rec !== undefined && (event === "messageBuffer" || event === "message")) {
      const message = args[1]
      if ((Buffer.isBuffer(message) || typeof message === "string") && message.includes(rec.key)) {
        record(`heard ${event} ${String(message).slice(0, 2)} (${message.length} bytes)`)
        const r = emit.call(this, event, ...args)
        record(`handled ${event}`)
        return r
      }
    }
    return emit.call(this, event, ...args)
  }
}

/** Effect's own tracer, which `Effect.withSpan` uses when none is set. */
const native: Tracer.Tracer = Effect.runSync(Effect.tracer)

/** A tracer that times lockstep's spans (they carry `lockstep.key`). */
export const tracerLayer: Layer.Layer<never> = Layer.setTracer(Tracer.make({
  span: (name, parent, context, links, startTime, kind, options) => {
    const span = native.span(name, parent, context, links, startTime, kind, options)
    record(`span ${name} start`)
    const end = span.end.bind(span)
    span.end = (endTime: bigint, exit: Exit.Exit<unknown, unknown>) => {
      record(`span ${name} end`)
      end(endTime, exit)
    }
    return span
  },
  context: (f) => f()
}))

/** Starts recording a burst (ends any other). */
export const begin = (impl: string, key: string, at: number) => {
  if (!enabled) return
  current = { key, impl, at, atUs: Number(process.hrtime.bigint() / 1000n) - (wallNow() - at) * 1000, events: [] }
  cpuAtBegin = cpuMs()
}

/** Writes the burst's timeline after `lingerMs` (commits and notices that come after the last answer). */
export const end = (pod: number, lingerMs = 400) => {
  const rec = current
  if (rec === undefined || dir === undefined) return
  setTimeout(() => {
    if (current === rec) current = undefined
    Fs.mkdirSync(dir, { recursive: true })
    Fs.writeFileSync(Path.join(dir, `${rec.key}.${rec.impl}.pod${pod}.json`), JSON.stringify({ pod, impl: rec.impl, atUs: rec.atUs, events: rec.events }))
  }, lingerMs)
}

// ---------------------------------------------------------------------------------------------
// the report

const fmt = (t: number) => t.toFixed(1).padStart(7)

const main = (dir: string, key: string | undefined) => {
  const files = Fs.readdirSync(dir).filter((f) => f.endsWith(".json") && (key === undefined || f.startsWith(`${key}.`)))
  const byKey = new Map<string, Array<{ pod: number; impl: string; events: Array<Event> }>>()
  for (const f of files) {
    const k = f.slice(0, f.lastIndexOf(".pod"))
    const list = byKey.get(k) ?? []
    list.push(JSON.parse(Fs.readFileSync(Path.join(dir, f), "utf8")))
    byKey.set(k, list)
  }
  for (const [k, pods] of [...byKey].sort()) {
    console.log(`\n## ${k} (${pods[0]!.impl}, ${pods.length} pods)`)
    const all = pods.flatMap((p) => p.events.map((e) => ({ ...e, pod: p.pod })))
    all.sort((a, b) => a.t - b.t)
    // callers' answers are many: one line per pod for the first and the last
    let shown = 0
    for (const e of all) {
      if (e.what === "answer") continue
      console.log(`${fmt(e.t)} pod${e.pod} ${e.what}`)
      if (++shown > 400) break
    }
    for (const p of pods.sort((a, b) => a.pod - b.pod)) {
      const answers = p.events.filter((e) => e.what === "answer").map((e) => e.t)
      const fired = p.events.find((e) => e.what.startsWith("fired"))?.t ?? Number.NaN
      const launched = p.events.find((e) => e.what.startsWith("launched"))?.t ?? Number.NaN
      if (answers.length === 0) continue
      console.log(
        `pod${p.pod}: fired ${fmt(fired)} launched ${fmt(launched)} answers ${answers.length}: first ${fmt(Math.min(...answers))} last ${fmt(Math.max(...answers))}`
      )
    }
  }
}

/**
 * `--profile=<dir of pod-N-*.cpuprofile>`: the pods' CPU profiles (`--cpu-prof`) cut to the
 * recorded bursts whose file names match `pattern` (a regular expression, e.g.
 * `cold-8x200-.*\.lockstep\.`), from each pod's firing to its last answer, added up.
 */
const sliced = (dir: string, prefix: string, profiles: string) => {
  const out = Fs.mkdtempSync(Path.join(Os.tmpdir(), "timeline-"))
  const files = Fs.readdirSync(profiles).filter((f) => f.endsWith(".cpuprofile"))
  const written: Array<string> = []
  for (const f of files) {
    const pod = Number(f.match(/^pod-(\d+)-/)?.[1])
    const windows = Fs.readdirSync(dir)
      .filter((t) => new RegExp(prefix).test(t) && t.endsWith(`.pod${pod}.json`))
      .map((t) => JSON.parse(Fs.readFileSync(Path.join(dir, t), "utf8")) as { atUs: number; events: Array<Event> })
      .map((r) => {
        const fired = r.events.find((e) => e.what.startsWith("fired"))?.t ?? 0
        const last = r.events.find((e) => e.what.startsWith("all answered"))?.t ?? fired
        return [r.atUs + fired * 1000, r.atUs + last * 1000] as const
      })
    const p = JSON.parse(Fs.readFileSync(Path.join(profiles, f), "utf8")) as CpuProfile
    const samples: Array<number> = []
    const deltas: Array<number> = [0]
    let t = p.startTime
    const ds = p.timeDeltas ?? []
    const ss = p.samples ?? []
    for (let i = 0; i < ss.length; i++) {
      t += ds[i] ?? 0
      if (windows.some(([a, b]) => t >= a && t <= b)) {
        samples.push(ss[i]!)
        deltas.push(ds[i + 1] ?? ds[i] ?? 0)
      }
    }
    const file = Path.join(out, f)
    Fs.writeFileSync(file, JSON.stringify({ ...p, samples, timeDeltas: deltas }))
    written.push(file)
  }
  console.log(summarize(`${prefix}* bursts, ${written.length} pods, from each pod's firing to its last answer`, written, 30))
}

// run as a script, not imported (a bundled pod's own URL is its entry point's too)
if (Path.basename(process.argv[1] ?? "") === "timeline.ts" && import.meta.url === `file://${process.argv[1]}`) {
  const profile = process.argv.find((a) => a.startsWith("--profile="))?.slice("--profile=".length)
  const [dir, key] = process.argv.slice(2).filter((a) => !a.startsWith("--"))
  if (profile !== undefined) sliced(dir ?? "/tmp/timeline", key ?? "cold-", profile)
  else main(dir ?? "/tmp/timeline", key)
}
