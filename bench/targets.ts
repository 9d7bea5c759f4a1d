/**
 * The benchmark's targets, in one place. Each is a comparison with a baseline measured in the
 * same run (a floor, a peer, the producer's own time, a count), never with a figure from another
 * run. Sections judge their figures with `judge`; the run's summary (`summary`) lists every
 * target, met, missed or not run, and is the block that docs/benchmarks.md quotes.
 */
import type { Target } from "./stats.js"

export type Op = "≥" | "≤" | "="

export interface Spec {
  /** The section that measures it (`--only=<section>`). */
  readonly section: string
  /** What is compared, with what (the baseline is measured in the same run). */
  readonly what: string
  readonly op: Op
  /** The bound; a function of the section's scale (processes, keys) where the bound depends on it. */
  readonly bound: number | ((scale: number) => number)
  /** How the bound reads when it depends on the scale. */
  readonly boundText?: string
  readonly unit: "×" | "ms" | "count" | "%"
  /** Where to look when it is missed (no figures: they are in the run's results). */
  readonly whenMissed?: string
}

/** Ratios are per-round ratios (the median of them), both figures taken moments apart. */
export const targets = {
  "l1.floor.1": {
    section: "l1",
    what: "L1 hit, 1 key (`memo` built once, `Runtime.runPromise` per call): calls/s ÷ `Effect.runPromise(Effect.sync(map.get))`'s",
    op: "≥",
    bound: 0.8,
    unit: "×"
  },
  "l1.floor.10000": {
    section: "l1",
    what: "L1 hit, 10 000 keys (`memo` built once per key): calls/s ÷ `Effect.runPromise(Effect.sync(map.get))`'s",
    op: "≥",
    bound: 0.8,
    unit: "×",
    whenMissed:
      "A hit is one effect object (the request, holding its loader's data) whose `commit` answers an `Exit`: two run-loop steps where the floor's `Effect.sync` is one. Beyond the floor it reads the `Clock` (`Date.now`, about 40 ns), L1's entry beside the value (about 15 ns with 10 000 keys) and counts the hit, against about 2 µs per `runPromise`; the rest is cold memory, per key: `npx tsx bench/diagnose-l1.ts --shape=memo` (CPU time) puts the hit at 0.88× the floor, and variants that skip the count or the clock but hold a closure per key at 0.78–0.81×; `--profile=shipped` profiles the hit."
  },
  "l1.bentocache.10000": {
    section: "l1",
    what: "L1 hit, 10 000 keys: lockstep calls/s ÷ bentocache's",
    op: "≥",
    bound: 2,
    unit: "×"
  },
  "facade.lru.1": {
    section: "l1",
    what: "`lockstep/promise` hit, 1 key (keyed loader, key built per call): calls/s ÷ lru-cache `fetch`'s, its key built the same way",
    op: "≥",
    bound: 0.5,
    unit: "×"
  },
  "facade.lru.10000": {
    section: "l1",
    what: "`lockstep/promise` hit, 10 000 keys (keyed loader, key built per call): calls/s ÷ lru-cache `fetch`'s, its key built the same way",
    op: "≥",
    bound: 0.5,
    unit: "×"
  },
  "keyed.cache.10000": {
    section: "keyed",
    what: "Keyed loader hit, 10 000 keys, `ManagedRuntime.runPromise` per call: calls/s ÷ Effect `Cache.get`'s on the same runtime",
    op: "≥",
    bound: 1.5,
    unit: "×",
    whenMissed:
      "No hit costs less than the floor (one `runPromise` of one map lookup on the same runtime), and Effect's `Cache.get` runs at 0.6–0.8× the floor here, so 1.5× needs `Cache.get` at or below two thirds of the hit: `npx tsx bench/diagnose-l1.ts --shape=keyed` (CPU time: the hit 0.96×, `Cache.get` 0.76× the floor)."
  },
  "keyed.floor.10000": {
    section: "keyed",
    what: "Keyed loader hit, 10 000 keys: calls/s ÷ `ManagedRuntime.runPromise(Effect.sync(() => map.get(key(id))))`'s",
    op: "≥",
    bound: 0.9,
    unit: "×",
    whenMissed:
      "Beyond the floor a hit reads the `Clock` (`Date.now`, about 40 ns), L1's entry beside the value and counts the hit, and takes two run-loop steps to the floor's one, against about 3 µs per `ManagedRuntime.runPromise` (hashing the key built per call costs both about 100 ns): `npx tsx bench/diagnose-l1.ts --shape=keyed` (CPU time: the hit at 0.96× the floor) leaves each out in turn, none gaining more than the few percent rounds differ by on this shared machine, and `--profile=shipped` profiles the hit."
  },
  "keyed.memo.10000": {
    section: "keyed",
    what: "`Memo.memo` built per call, 10 000 keys: time per hit ÷ the keyed loader's",
    op: "≤",
    bound: 1.5,
    unit: "×"
  },
  "l2.sequential": {
    section: "l2",
    what: "L2 read (value in Redis, L1 empty), sequential: time per read ÷ ioredis `GET` + `JSON.parse`'s",
    op: "≤",
    bound: 1.3,
    unit: "×",
    whenMissed:
      "What the read adds to the floor, layer by layer (`npx tsx bench/diagnose-l2.ts --rounds=7`, 600 sequential reads a round, medians, 2 shared cores): the floor 30 µs a read (19 µs of CPU); `HMGET` of the record (value, window, fence, mark, schema identity and the early value, 14 fields) + `JSON.parse` 43 µs, so the record alone is 1.4× before lockstep runs a line (ioredis decodes a 14-field reply field by field; a record packed into one string would change every script and the records the previous release wrote); the floor inside `ManagedRuntime.runPromise` 44 µs; `store.read` 45 µs; + the value's decode 53 µs (a check compiled from the Schema after `JSON.parse`; Schema's own decode made it 64 µs); `memo` 78 µs (64 µs of CPU): the request's fiber, the run's registration and the new L1 entry, whose value stays in the heap (the garbage collector leads the profile of lockstep alone). Each command's `write` to the socket costs the process about 20 µs here, more while the other core is busy (`writeUtf8String` in `npx tsx bench/main.ts --only=l2 --cpu-prof`, section \"lockstep alone\")."
  },
  "l2.concurrent": {
    section: "l2",
    what: "L2 read, 100 concurrent callers: time per read ÷ ioredis `GET` + `JSON.parse`'s",
    op: "≤",
    bound: 2,
    unit: "×",
    whenMissed:
      "With 100 callers (`npx tsx bench/diagnose-l2.ts --rounds=7 --concurrency=100 --reads=1000`, medians): the floor 24 µs a read (19 µs of CPU), the record's `HMGET` + `JSON.parse` 31 µs, the floor inside `ManagedRuntime.runPromise` 34 µs, `store.read` 45 µs (breaker, `tryPromise`, the record's checks), + the value's JSON check 50 µs, `memo` 69 µs (52 µs of CPU): each read still has its own fiber, its run's registration and an L1 entry whose value the garbage collector then moves; every guarantee's check is a few comparisons on the record (`npx tsx bench/main.ts --only=l2 --cpu-prof`, section \"lockstep alone\")."
  },
  "cold.overhead": {
    section: "cold",
    what: "Cold key, 1 000 callers in one process (Redis): longest wait − the producer's time",
    op: "≤",
    bound: 5,
    unit: "ms",
    whenMissed:
      "The lookup may start only once the store has answered the claim (one start per window for the fleet), and that reply is handled only when the loop that fires the 1 000 calls has finished: `npx tsx bench/diagnose-cold.ts` (11 rounds, medians) has the launch at 3.6 ms, lockstep's lookup starting at 4.6 ms, where Effect's `Cache` starts its own inside the first caller (0.2 ms) and so overlaps the launch with the producer; over the in-memory store lockstep's starts at 3.0 ms, its lookup being a fiber of the run that starts once the launch yields. From the lookup's end, the first answer comes after 8.1 ms (memory store 6.2, `Cache` 6.1): the lookup's fiber joins the run, which answers the waiting requests before it commits, then each of the 1 000 callers' fibers resumes, as `Cache`'s do. `npx tsx bench/main.ts --only=cold --cpu-prof` profiles lockstep alone."
  },
  "cold.vs-cache": {
    section: "cold",
    what: "Cold key, 1 000 callers in one process: lockstep's (longest wait − producer) ÷ Effect `Cache`'s",
    op: "≤",
    bound: 1,
    unit: "×",
    whenMissed:
      "`Cache` starts its lookup in its first caller and answers its callers from the same single-flight, with no store to ask: lockstep pays the launch of the burst (3.6 ms for 1 000 calls) before its claim's reply can be handled, which only a lookup started before the store answers would save, and that would break one start per window for the fleet. `npx tsx bench/diagnose-cold.ts` shows the phases of both."
  },
  "cold.starts": {
    section: "cold",
    what: "Cold key, 1 000 callers in one process: producer starts per key",
    op: "=",
    bound: 1,
    unit: "count"
  },
  "fleet.large.starts": {
    section: "fleet",
    what: "Cold key, 8 processes × 200 callers: producer starts per burst",
    op: "=",
    bound: 1,
    unit: "count"
  },
  "fleet.large.overhead": {
    section: "fleet",
    what: "Cold key, 8 processes × 200 callers: longest wait − the producer's time",
    op: "≤",
    bound: 15,
    unit: "ms",
    whenMissed:
      "The time is CPU, not the protocol: each pod sends its read and claim with its first callers, the leader commits right after its lookup, and a pod acts on the commit notice as soon as it runs; but each pod starts one `ManagedRuntime.runPromise` fiber per caller in one synchronous loop (the leader handles its claim's reply only after it) and resumes them all on the commit, where the baseline's callers share one promise; eight such pods on two shared cores queue for a core at both moments, and more so on a loaded machine. `BENCH_TIMELINE=/tmp/tl npx tsx bench/main.ts --only=fleet --no-write`, then `npx tsx bench/timeline.ts /tmp/tl cold-8x200-0.lockstep`, shows each step per pod with the CPU it used; add `--cpu-prof`, then `npx tsx bench/timeline.ts /tmp/tl 'cold-8x200-.*[.]lockstep[.]' --profile=bench/results/profiles/fleet-children` cuts the pods' profiles to those bursts: Effect's fiber runtime, not lockstep's code, takes most of it."
  },
  "fleet.large.vs-setnx": {
    section: "fleet",
    what: "Cold key, 8 × 200: lockstep's longest wait ÷ the `SET NX PX` + 5 ms poll baseline's",
    op: "≤",
    bound: 1,
    unit: "×",
    whenMissed: "As for `fleet.large.overhead`: the baseline answers its callers with one shared promise, lockstep resumes one fiber per caller in every pod at once."
  },
  "fleet.small.starts": {
    section: "fleet",
    what: "Cold key, 4 processes × 250 callers: producer starts per burst",
    op: "=",
    bound: 1,
    unit: "count"
  },
  "fleet.small.overhead": {
    section: "fleet",
    what: "Cold key, 4 processes × 250 callers: longest wait − the producer's time",
    op: "≤",
    bound: 10,
    unit: "ms",
    whenMissed: "As for `fleet.large.overhead`, on four pods: `npx tsx bench/timeline.ts /tmp/tl cold-4x250-0.lockstep`."
  },
  "fleet.small.vs-setnx": {
    section: "fleet",
    what: "Cold key, 4 × 250: lockstep's longest wait ÷ the `SET NX PX` + 5 ms poll baseline's",
    op: "≤",
    bound: 1,
    unit: "×",
    whenMissed: "As for `fleet.large.overhead`."
  },
  "rollover.starts": {
    section: "rollover",
    what: "Warm key, consecutive window rollovers on the fleet: producer starts per window",
    op: "=",
    bound: 1,
    unit: "count",
    whenMissed:
      "A defect, not a cost: 0 means no pod started the window's run (the section's table gives the starts of every window; `test/Memo.rollover.test.ts` covers a pod whose clock crosses the boundary first), 2 means the fleet lock let two runs through (`test/fleet.test.ts`)."
  },
  "stale.p50": {
    section: "stale",
    what: "Stale answers while a refresh runs: p50 ÷ the hit p50",
    op: "≤",
    bound: 1.5,
    unit: "×",
    whenMissed:
      "A stale answer while its key's run is under way is answered inline, as a hit is, plus its two metrics (requests by result, the stale value's age): at about 2 µs a request, one busy moment of the other core moves a percentile. `npx tsx bench/main.ts --only=stale --cpu-prof` profiles it."
  },
  "stale.p99": {
    section: "stale",
    what: "Stale answers while a refresh runs: p99 ÷ the hit p99",
    op: "≤",
    bound: 3,
    unit: "×"
  },
  "early.fresh": {
    section: "early",
    what: "`keepWarm` with early runs: fresh answers in a window's first second",
    op: "≥",
    bound: 99,
    unit: "%"
  },
  "invalidate.starts": {
    section: "invalidate",
    what: "Invalidation of a warm key on 4 processes: producer starts per invalidation",
    op: "=",
    bound: 1,
    unit: "count"
  },
  "commands.sent": {
    section: "commands",
    what: "Warm key under load, nothing invalidated: Redis commands the processes sent per key per window (`INFO commandstats`, split by `MONITOR`)",
    op: "≤",
    bound: (pods) => pods + 2,
    boundText: "processes + 2",
    unit: "count",
    whenMissed: "The table by command says which command is over; a read by a process whose clock reaches the boundary before the store's is the usual one."
  },
  "batch.sequential": {
    section: "batch",
    what: "`getMany` of 100 keys in Redis (L1 empty): time ÷ 100 `get`s one after another",
    op: "≤",
    bound: 0.2,
    unit: "×",
    whenMissed:
      "The baseline is lockstep's own L2 `get`, which got cheaper (100 of them took 14.6 ms at 08f2f90, when this ratio was 0.14×, and take 4–7 ms now). `getMany` costs 12–15 µs a key: one pipeline, but ioredis still builds a `Command` per `HMGET` and decodes 14 reply fields per key, and the garbage collector takes about a sixth of the process (`node --cpu-prof --import tsx` on a loop of `getMany` over fresh runtimes). A script returning every record in one reply would save the `Command`s, not the decoding."
  },
  "batch.cold": {
    section: "batch",
    what: "A cold `getMany` of 100 keys on 4 processes at once: keys looked up",
    op: "=",
    bound: (n) => n,
    boundText: "the keys",
    unit: "count"
  },
  "http.throughput": {
    section: "http",
    what: "HTTP, warm `/api/dashboard`: requests/s ÷ `/healthz`'s on the same server",
    op: "≥",
    bound: 0.9,
    unit: "×",
    whenMissed:
      "Neither route's cost is lockstep's: in `npx tsx bench/main.ts --only=http --cpu-prof` (the explorer processes' profiles added up), lockstep's `src/` takes 0.5 % of their CPU, Effect 17.8 %, Node's sockets and HTTP 59.8 %, and `/healthz` itself runs at about a fifth of a bare `node:http` server (the section's table). autocannon loads the same two cores: the figure moves by about a tenth between runs of the same sources (the results files in `bench/results/` of one day show it), more than lockstep's whole share."
  },
  "http.p99": {
    section: "http",
    what: "HTTP, warm `/api/dashboard`: p99 latency ÷ `/healthz`'s",
    op: "≤",
    bound: 1.5,
    unit: "×"
  },
  "http.cold.runs": {
    section: "http",
    what: "HTTP, 500 requests on 4 cold explorer processes: aggregate runs",
    op: "=",
    bound: 1,
    unit: "count"
  },
  "http.cold.errors": {
    section: "http",
    what: "HTTP, 500 requests on 4 cold explorer processes: errors",
    op: "=",
    bound: 0,
    unit: "count"
  }
} as const satisfies Record<string, Spec>

export type TargetId = keyof typeof targets

export const targetIds = Object.keys(targets) as ReadonlyArray<TargetId>

const fmtValue = (unit: Spec["unit"], x: number): string => {
  if (!Number.isFinite(x)) return "–"
  switch (unit) {
    case "×":
      return `${x.toFixed(2)}×`
    case "ms":
      return `${x.toFixed(1)} ms`
    case "%":
      return `${x.toFixed(1)} %`
    case "count":
      return Number.isInteger(x) ? String(x) : x.toFixed(1)
  }
}

const holds = (op: Op, x: number, bound: number) => (op === "≥" ? x >= bound : op === "≤" ? x <= bound : x === bound)

/** The bound as text: `≤ 1.30×`, `≤ 6 (processes + 2)`. */
export const boundOf = (id: TargetId, scale?: number): string => {
  const spec: Spec = targets[id]
  if (typeof spec.bound === "function") {
    return scale === undefined ? `${spec.op} ${spec.boundText}` : `${spec.op} ${fmtValue(spec.unit, spec.bound(scale))} (${spec.boundText})`
  }
  return `${spec.op} ${fmtValue(spec.unit, spec.bound)}`
}

/**
 * A target's verdict: every value (one per round where the target holds for each, as producer
 * starts) against the bound. `scale` is the section's size where the bound depends on it;
 * `smoke` runs give no verdict (their figures mean nothing).
 */
export const judge = (
  id: TargetId,
  value: number | ReadonlyArray<number>,
  options: { readonly scale?: number; readonly smoke?: boolean; readonly detail?: string } = {}
): Target => {
  const spec: Spec = targets[id]
  const values = typeof value === "number" ? [value] : value
  const bound = typeof spec.bound === "function" ? spec.bound(options.scale ?? Number.NaN) : spec.bound
  const figure = values.map((x) => fmtValue(spec.unit, x)).join(", ")
  return {
    id,
    name: options.detail === undefined ? spec.what : `${spec.what} (${options.detail})`,
    figure,
    target: boundOf(id, options.scale),
    met: options.smoke === true ? undefined : values.length > 0 && values.every((x) => holds(spec.op, x, bound))
  }
}

// ---------------------------------------------------------------------------------------------
// the run's summary: the block docs/benchmarks.md quotes

export const begin = "<!-- bench:summary:begin (written by `npm run bench` from its results; `npm run bench:docs` copies it; do not edit) -->"
export const end = "<!-- bench:summary:end -->"

export interface Provenance {
  /** The commit checked out (full hash). */
  readonly commit: string
  /** `sha256:` of src/ and bench/ as measured (see `provenance.ts`). */
  readonly sources: string
  /** The measured sources differ from the commit's. */
  readonly dirty: boolean
  readonly started: Date
  readonly command: string
  readonly machine: string
}

export interface Judged {
  readonly section: string
  readonly targets: ReadonlyArray<Target>
}

const escapeCell = (s: string) => s.replace(/\|/g, "\\|")

/**
 * Every target of `targets`, in order: its figure and verdict from the run, or why it has none
 * (its section was not run, or failed). What a missed target's spec says follows the table.
 */
export const summary = (p: Provenance, judged: ReadonlyArray<Judged>, failed: ReadonlyArray<string>): string => {
  const byId = new Map<string, Target>()
  for (const s of judged) for (const t of s.targets) if (t.id !== undefined) byId.set(t.id, t)
  const ran = new Set(judged.map((s) => s.section))
  const rows = targetIds.map((id) => {
    const spec: Spec = targets[id]
    const t = byId.get(id)
    const verdict = t !== undefined
      ? (t.met === undefined ? "no verdict" : t.met ? "met" : "**missed**")
      : failed.includes(spec.section)
      ? "section failed"
      : ran.has(spec.section)
      ? "not measured"
      : "not run"
    return `| \`${id}\` | ${escapeCell(t?.name ?? spec.what)} | ${escapeCell(t?.target ?? boundOf(id))} | ${escapeCell(t?.figure ?? "–")} | ${verdict} |`
  })
  const missed = targetIds.filter((id) => byId.get(id)?.met === false)
  const met = targetIds.filter((id) => byId.get(id)?.met === true)
  const notes = missed.flatMap((id) => {
    const spec: Spec = targets[id]
    return spec.whenMissed === undefined ? [] : [`- \`${id}\`: ${spec.whenMissed}`]
  })
  return [
    begin,
    "",
    `Run: \`${p.command}\`, ${p.started.toISOString().slice(0, 16).replace("T", " ")} UTC, commit \`${p.commit}\`${p.dirty ? " plus uncommitted changes" : ""}, sources \`${p.sources}\` (src/ and bench/). ${p.machine}`,
    "",
    `Targets met: ${met.length} of ${targetIds.length}; missed: ${missed.length}; without a figure: ${targetIds.length - met.length - missed.length}.`,
    "",
    "| id | compared | target | figure (median) | verdict |",
    "|---|---|---|---|---|",
    ...rows,
    ...(notes.length === 0 ? [] : ["", "Where to look for the misses:", "", ...notes]),
    "",
    end
  ].join("\n")
}

/** The summary block in a text (a results file, the page), markers included; `undefined` when absent. */
export const blockOf = (text: string): string | undefined => {
  const i = text.indexOf(begin)
  const j = text.indexOf(end)
  if (i < 0 || j < i || text.indexOf(begin, i + 1) >= 0) return undefined
  return text.slice(i, j + end.length)
}

/** The commit, sources hash and dirtiness a block names. */
export const provenanceOf = (block: string): { readonly commit: string; readonly sources: string; readonly dirty: boolean } | undefined => {
  const m = block.match(/commit `([0-9a-f]{40})`( plus uncommitted changes)?, sources `(sha256:[0-9a-f]+)`/)
  return m === null ? undefined : { commit: m[1]!, dirty: m[2] !== undefined, sources: m[3]! }
}
