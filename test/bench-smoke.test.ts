/**
 * A tiny run of every benchmark section: checks the harness (runs complete, producer starts are
 * counted, tables are rendered), never the figures. The benchmark itself is `npm run bench`.
 *
 * Since no figure is checked, the file runs among the shared files, beside others: its sections
 * use a redis-server of their own (the commands section resets and counts the server's command
 * statistics), and each has the benchmark's own budget (60 to 150 s), a guard against a hang with
 * room for a loaded machine (the HTTP section, 15 s on an idle one, took over 50 s on a machine
 * loaded 10 times past its cores).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { shutdown } from "../bench/children.js"
import { runBench, type SectionId } from "../bench/main.js"
import { renderSection, type Section } from "../bench/stats.js"
import { begin, targetIds, targets } from "../bench/targets.js"
import { type RedisServer, startRedis } from "./support/services.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const impls = ["lockstep", "bentocache", "cache-manager", "lru-cache", "async-cache-dedupe"]

let redis: RedisServer | undefined

const smoke = async (id: SectionId): Promise<Section> => {
  const result = await runBench({
    smoke: true,
    only: [id],
    rounds: 1,
    redisPort: redis!.port,
    mysqlPort: inject("mariadbPort"),
    log: () => {}
  })
  expect(result.failures).toEqual([])
  expect(result.sections).toHaveLength(1)
  const section = result.sections[0]!
  const markdown = renderSection(section)
  expect(markdown).toContain(`## ${section.title}`)
  expect(markdown).toMatch(/\n\|[-:|]+\|\n/) // a markdown table rule
  expect(result.markdown).toContain("Machine:")
  // the section judges exactly the targets bench/targets.ts gives it, and the summary lists them all
  const judged = section.targets.flatMap((t) => (t.id === undefined ? [] : [t.id]))
  expect(new Set(judged)).toEqual(new Set(targetIds.filter((t) => targets[t].section === id)))
  expect(result.summary).toContain(begin)
  for (const t of targetIds) expect(result.summary).toContain(`\`${t}\``)
  return section
}

const rowsOf = (s: Section) => s.tables.flatMap((t) => t.rows.map((r) => r[0]!))

describe("bench smoke", { timeout: 180_000 }, () => {
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await shutdown()
    await redis?.stop()
  })

  it("l1: every implementation measured against the floors", async () => {
    const s = await smoke("l1")
    for (const name of [...impls.filter((n) => n !== "lockstep"), "floor: `map.get`", "lockstep/promise `get`"]) expect(rowsOf(s)).toContain(name)
    expect(s.targets.length).toBeGreaterThan(0)
    expect(s.targets.map((t) => t.id)).toEqual(expect.arrayContaining(["l1.floor.1", "l1.floor.10000", "l1.bentocache.10000", "facade.lru.1", "facade.lru.10000"]))
  })

  it("keyed: a keyed loader's hits against the floor, Effect's Cache and Memo.memo built per call, for 1 key and many", async () => {
    const s = await smoke("keyed")
    expect(s.tables).toHaveLength(2)
    for (const t of s.tables) expect(t.rows.map((r) => r[0])).toHaveLength(6)
    const data = s.data as Record<string, Record<string, ReadonlyArray<number>>>
    expect(Object.keys(data)).toHaveLength(2)
    for (const ops of Object.values(data)) {
      expect(Object.keys(ops)).toHaveLength(6)
      for (const samples of Object.values(ops)) expect(samples.length > 0 && samples.every((x) => x > 0)).toBe(true)
    }
    expect(s.targets.flatMap((t) => (t.id === undefined ? [] : [t.id]))).toEqual(["keyed.cache.10000", "keyed.floor.10000", "keyed.memo.10000"])
  })

  it("l2: reads from Redis through each shared tier", async () => {
    const s = await smoke("l2")
    expect(rowsOf(s)).toContain("lockstep")
    expect(s.tables).toHaveLength(2)
  })

  it("batch: getMany against gets, a cold getMany on 4 processes, and unchanged's bytes", async () => {
    const s = await smoke("batch")
    const data = s.data as {
      readonly times: Record<"many" | "sequential" | "concurrent", Array<number>>
      readonly cold: {
        readonly processes: number
        readonly lookedUp: number
        readonly calls: number
        readonly perProcess: ReadonlyArray<{ readonly pod: number; readonly byLookupMany: number; readonly single: number }>
      }
      readonly fullBytes: number
      readonly unchangedBytes: number
    }
    for (const name of ["many", "sequential", "concurrent"] as const) expect(data.times[name].length).toBeGreaterThan(0)
    // each key once for the fleet, whichever process ran it; every process reported
    expect(data.cold.lookedUp).toBe(100)
    expect(data.cold.perProcess.map((p) => p.pod)).toEqual([0, 1, 2, 3])
    expect(data.cold.calls).toBeGreaterThan(0)
    expect(data.fullBytes).toBeGreaterThan(0)
    expect(data.unchangedBytes).toBeGreaterThan(0)
    expect(s.tables).toHaveLength(3)
  })

  it("cold: a one-process stampede against Effect's Cache", async () => {
    const s = await smoke("cold")
    expect(rowsOf(s)).toContain("Effect `Cache.get` (in-process)")
    expect(rowsOf(s)).toContain("lockstep `loader.get`, `Redis.layer`")
  })

  it("stale: a refresh starts during each stale phase", async () => {
    const s = await smoke("stale")
    const data = s.data as Record<string, Array<{ starts: number; stale: { n: number } }>>
    for (const name of impls) {
      expect(data[name]!.length).toBeGreaterThan(0)
      expect(data[name]![0]!.starts).toBeGreaterThanOrEqual(1)
      expect(data[name]![0]!.stale.n).toBeGreaterThan(0)
    }
  })

  it("early: fresh answers as a window opens, with and without early runs", async () => {
    const s = await smoke("early")
    const data = s.data as Record<"on" | "off", { fresh: number; total: number; perWindow: Array<number> }>
    for (const m of [data.on, data.off]) {
      expect(m.total).toBeGreaterThan(0)
      expect(m.perWindow).toHaveLength(1)
    }
    expect(rowsOf(s)).toHaveLength(2)
  })

  it("fleet: producer starts are counted outside the pods; lockstep side by side with the SET NX PX baseline, two shapes", async () => {
    const s = await smoke("fleet")
    const data = s.data as Record<string, Array<{ starts: number; totalMs: number }>>
    for (const name of impls) {
      expect(data[name]![0]!.starts).toBeGreaterThanOrEqual(1)
      expect(data[name]![0]!.totalMs).toBeGreaterThan(0)
    }
    const side = s.tables[0]!.rows
    expect(side.map((r) => r[1])).toContain("lockstep")
    expect(side.length).toBe(4)
    expect(s.data["set-nx-px"]).toBeDefined()
  })

  it("invalidate: every pod reports the new value after an invalidation", async () => {
    const s = await smoke("invalidate")
    const rounds = (s.data as { rounds: Array<{ firstNewMs: Array<number>; starts: number }> }).rounds
    expect(rounds.length).toBeGreaterThan(0)
    for (const r of rounds) {
      expect(r.firstNewMs.every((x) => Number.isFinite(x))).toBe(true)
      expect(r.starts).toBeGreaterThanOrEqual(1)
    }
  })

  it("commands: the server's command counts, split into sent and script-called", async () => {
    const s = await smoke("commands")
    const data = s.data as { fleet: Record<string, number>; fleetSent: Record<string, number> }
    expect(Object.values(data.fleet).reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    expect(Object.keys(data.fleetSent).length).toBeGreaterThan(0)
  })

  it("rollover: starts are attributed to windows", async () => {
    const s = await smoke("rollover")
    const data = s.data as Record<string, { perWindow: Array<number> }>
    for (const name of impls) expect(data[name]!.perWindow).toHaveLength(2)
    expect(data.lockstep!.perWindow.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1)
  })

  it.skipIf(!Fs.existsSync(Path.join(root, "app/main.ts")))("http: the explorer under autocannon, and a cold fleet burst", async () => {
    const s = await smoke("http")
    expect(s.tables.length).toBeGreaterThanOrEqual(2)
  })
})
