/**
 * Rounds, statistics and markdown tables. Implementations are measured in interleaved rounds
 * (the order rotates every round) so that noise on a small, shared machine hits all of them
 * alike; tables show the median of the rounds, their min–max, and the median of the per-round
 * ratios to the baseline (a ratio of two figures taken moments apart is steadier than either).
 */

export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly n: number
}

export const sorted = (xs: ReadonlyArray<number>): Array<number> => [...xs].sort((a, b) => a - b)

/** Nearest-rank percentile of an already sorted array; `p` in [0, 100]. */
export const percentile = (sortedXs: ReadonlyArray<number>, p: number): number => {
  if (sortedXs.length === 0) return NaN
  const rank = Math.min(sortedXs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedXs.length) - 1))
  return sortedXs[rank]!
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = sorted(xs)
  if (s.length === 0) return NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export const summarize = (xs: ReadonlyArray<number>): Summary => {
  const s = sorted(xs)
  return { median: median(s), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, n: s.length }
}

/** Per-round ratios `a[i] / b[i]`, summarised. */
export const ratios = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): Summary =>
  summarize(a.map((x, i) => x / b[i]!).filter((x) => Number.isFinite(x)))

/**
 * Runs `measure` for every implementation in `rounds` rounds, rotating the order each round.
 * Returns the figures per implementation name, in round order.
 */
export const interleave = async <I extends { readonly name: string }>(
  impls: ReadonlyArray<I>,
  rounds: number,
  measure: (impl: I, round: number) => Promise<number>,
  signal?: AbortSignal
): Promise<Map<string, Array<number>>> => {
  const out = new Map<string, Array<number>>(impls.map((i) => [i.name, []]))
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < impls.length; j++) {
      signal?.throwIfAborted()
      const impl = impls[(j + r) % impls.length]!
      out.get(impl.name)!.push(await measure(impl, r))
    }
  }
  return out
}

/** A runner of one awaited `call(items[i])` after another, cycling over `items`. */
export const cycling = <I>(name: string, items: ReadonlyArray<I>, call: (item: I) => Promise<unknown>) => {
  let i = 0
  return {
    name,
    step: async (n: number) => {
      for (let j = 0; j < n; j++) {
        blackhole.value = await call(items[i]!)
        i = i + 1 === items.length ? 0 : i + 1
      }
    }
  }
}

/** A stopwatch: started when called, it answers the milliseconds since. */
export type Stopwatch = () => () => number

/** Wall time. */
export const wallTime: Stopwatch = () => {
  const start = performance.now()
  return () => performance.now() - start
}

/** This process's CPU time (user + system): on a shared machine, less of other processes' load. */
export const cpuTime: Stopwatch = () => {
  const start = process.cpuUsage()
  return () => {
    const used = process.cpuUsage(start)
    return (used.user + used.system) / 1000
  }
}

/**
 * Calls `step` back to back for at least `ms` milliseconds, in chunks of `chunk` calls so that the
 * clock is read rarely. Returns calls per second. The event loop turns between chunks, as it does
 * between a server's requests: hits that resolve at once would otherwise starve I/O and timers
 * (a cache's own pings and notices) for whole rounds.
 */
export const throughput = async (
  ms: number,
  chunk: number,
  step: (n: number) => Promise<void> | void,
  stopwatch: Stopwatch = wallTime
): Promise<number> => {
  let calls = 0
  const elapsedMs = stopwatch()
  let elapsed = 0
  do {
    await new Promise<void>((resolve) => setImmediate(resolve))
    await step(chunk)
    calls += chunk
    elapsed = elapsedMs()
  } while (elapsed < ms)
  return (calls * 1000) / elapsed
}

// ---------------------------------------------------------------------------------------------
// formatting

export const fmtOps = (x: number): string =>
  !Number.isFinite(x)
    ? "–"
    : x >= 1e6
    ? `${(x / 1e6).toFixed(2)} M`
    : x >= 1e3
    ? `${(x / 1e3).toFixed(1)} k`
    : x.toFixed(0)

export const fmtMs = (x: number): string =>
  !Number.isFinite(x) ? "–" : x >= 100 ? `${x.toFixed(0)} ms` : x >= 1 ? `${x.toFixed(1)} ms` : `${(x * 1000).toFixed(1)} µs`

export const fmtRatio = (x: number): string => (!Number.isFinite(x) ? "–" : `${x.toFixed(2)}×`)

export const fmtCount = (x: number): string => (!Number.isFinite(x) ? "–" : Number.isInteger(x) ? String(x) : x.toFixed(1))

/** `median (min–max)` cells. */
export const cell = (s: Summary, fmt: (x: number) => string): [string, string] => [
  fmt(s.median),
  s.n <= 1 ? "–" : `${fmt(s.min)} – ${fmt(s.max)}`
]

// ---------------------------------------------------------------------------------------------
// sections

export interface Table {
  readonly caption?: string
  readonly headers: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

export interface Target {
  /** The target's id in `targets.ts`; none for a comparison shown for information. */
  readonly id?: string
  readonly name: string
  readonly figure: string
  readonly target: string
  /** `undefined`: a comparison shown for information, not one of the targets. */
  readonly met: boolean | undefined
}

export interface Section {
  readonly id: string
  readonly title: string
  readonly setup: string
  readonly tables: ReadonlyArray<Table>
  readonly targets: ReadonlyArray<Target>
  readonly notes: ReadonlyArray<string>
  /** Raw figures, for tests and for whoever wants to dig. */
  readonly data: Record<string, unknown>
}

export const renderTable = (t: Table): string => {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? "").length)))
  const numeric = t.headers.map((_, i) => i > 0 && t.rows.every((r) => /^[\d.,–\s-]*[\d–]/.test(r[i] ?? "") || r[i] === "–"))
  const line = (cells: ReadonlyArray<string>) =>
    "| " + cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ") + " |"
  const rule = "|" + widths.map((w, i) => (numeric[i] ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|") + "|"
  return [t.caption ? `${t.caption}\n` : "", line(t.headers), rule, ...t.rows.map(line)].filter((x) => x !== "").join("\n")
}

export const renderSection = (s: Section): string => {
  const parts = [`## ${s.title}`, "", s.setup, ""]
  for (const t of s.tables) parts.push(renderTable(t), "")
  if (s.targets.length > 0) {
    parts.push("Targets:", "")
    for (const t of s.targets) {
      parts.push(
        t.met === undefined
          ? `- ${t.name}: ${t.figure} (${t.target})`
          : `- ${t.name}: ${t.figure} (target ${t.target}): ${t.met ? "met" : "**missed**"}`
      )
    }
    parts.push("")
  }
  for (const n of s.notes) parts.push(`- ${n}`)
  if (s.notes.length > 0) parts.push("")
  return parts.join("\n")
}

/** Where measured loops put their results, so that no engine can drop the calls. */
export const blackhole: { value: unknown } = { value: undefined }
