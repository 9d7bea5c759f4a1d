/**
 * `lockstep/next` in the real thing: the fixture app (`test/next/`) built with `next build` and
 * started as two `next start` processes on one private redis-server. Each render of a cached
 * function appends a line to a counter file, so the test counts the fleet's renders per window.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Redis as IORedis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildFixture, bundleHandler, type NextServer, startNext } from "./support/next.js"
import { type RedisServer, startRedis } from "./support/services.js"

/** How long a render of the 2-second page takes (the tagged page's takes 200 ms). */
const renderMs = 1_000
const taggedMs = 200
const windowMs = 2_000

let redis: RedisServer
let servers: Array<NextServer> = []
let counter: string

interface Run {
  readonly name: string
  readonly at: number
  readonly pid: number
}

const runs = (name: string): Array<Run> =>
  Fs.readFileSync(counter, "utf8").split("\n").filter(Boolean).map((line) => {
    const [n, at, pid] = line.split(" ")
    return { name: n!, at: Number(at), pid: Number(pid) }
  }).filter((r) => r.name === name)

/** One request: its render's id (`run=…;` in the page) and how long it took, whole body read. */
const request = async (url: string) => {
  const start = performance.now()
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) })
  const body = await res.text()
  const ms = performance.now() - start
  return { status: res.status, run: /run=([^;<]+);/.exec(body)?.[1], ms }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  const handler = bundleHandler()
  const built = buildFixture(handler)
  console.log(`next fixture: ${built === 0 ? "build cached" : `built in ${built.toFixed(1)} s`}`)
  redis = await startRedis()
  counter = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "lockstep-next-")), "runs")
  Fs.writeFileSync(counter, "")
  const env = {
    LOCKSTEP_NEXT_HANDLER: handler,
    COUNTER_FILE: counter,
    RENDER_MS: String(renderMs),
    REDIS_HOST: "127.0.0.1",
    REDIS_PORT: String(redis.port),
    TENANT: `next-${process.pid}`
  }
  servers = await Promise.all([startNext(env), startNext(env)])
}, 180_000)

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  await redis?.stop()
})

describe("lockstep/next with two next start processes", () => {
  it("renders at most once per window for the fleet, and no request waits on a warm page", async () => {
    const [a, b] = servers.map((s) => `${s.url}/`)
    // cold: concurrent requests to both processes, one render
    const cold = await Promise.all([a, b, a, b].map((u) => request(u!)))
    expect(cold.every((r) => r.status === 200 && r.run !== undefined)).toBe(true)
    expect(new Set(cold.map((r) => r.run)).size).toBe(1)
    expect(runs("report")).toHaveLength(1)
    // warm: four concurrent requests every 100 ms for three windows and a half
    const started = Date.now()
    const warm: Array<{ readonly ms: number; readonly run: string | undefined }> = []
    while (Date.now() - started < 3.5 * windowMs) {
      const round = Promise.all([a, b, a, b].map((u) => request(u!)))
      await sleep(100)
      warm.push(...(await round))
    }
    const all = runs("report")
    const perWindow = new Map<number, number>()
    for (const r of all) perWindow.set(Math.floor(r.at / windowMs), (perWindow.get(Math.floor(r.at / windowMs)) ?? 0) + 1)
    const slowest = Math.max(...warm.map((r) => r.ms))
    console.log(
      `next fleet: ${all.length} renders in ${perWindow.size} windows (${[...perWindow.values()].join(", ")}), ` +
        `${warm.length} warm requests, slowest ${slowest.toFixed(0)} ms, renders by ${new Set(all.map((r) => r.pid)).size} processes`
    )
    expect(Math.max(...perWindow.values())).toBe(1)
    // the page was re-rendered as windows passed (not served forever from the first render)
    expect(all.length).toBeGreaterThanOrEqual(3)
    expect(new Set(warm.map((r) => r.run)).size).toBeGreaterThanOrEqual(3)
    // a warm page never waits for a render
    expect(slowest).toBeLessThan(renderMs)
    // one runtime per process, not a connection per request: at most two connections each
    const admin = new IORedis({ port: redis.port, host: "127.0.0.1", lazyConnect: true })
    await admin.connect()
    const self = await admin.client("ID")
    const clients = String(await admin.client("LIST")).split("\n").filter((l) => l.startsWith("id=") && !l.startsWith(`id=${self} `))
    await admin.quit()
    console.log(`next fleet: ${clients.length} Redis connections for 2 processes`)
    expect(clients.length).toBeGreaterThan(0)
    expect(clients.length).toBeLessThanOrEqual(4)
  })

  it("revalidateTag on one process: the other serves the new render within a second, one run", async () => {
    const [a, b] = servers.map((s) => s.url)
    const first = await Promise.all([request(`${a}/tagged`), request(`${b}/tagged`)])
    expect(first[0]!.run).toBe(first[1]!.run)
    const before = runs("tagged").length
    const res = await fetch(`${a}/revalidate`, { method: "POST" })
    expect(res.status).toBe(200)
    const revalidated = Date.now()
    let seen: string | undefined
    while (Date.now() - revalidated < 1_000) {
      const rs = await Promise.all([request(`${b}/tagged`), request(`${b}/tagged`), request(`${a}/tagged`)])
      const fresh = rs.find((r) => r.run !== first[0]!.run)
      if (fresh) {
        seen = fresh.run
        break
      }
      await sleep(50)
    }
    const after = Date.now() - revalidated
    console.log(`next revalidateTag: new render served after ${after} ms`)
    expect(seen).toBeDefined()
    // B serves it too
    expect((await request(`${b}/tagged`)).run).toBe(seen)
    await sleep(taggedMs)
    expect(runs("tagged").length - before).toBe(1)
  })

  it("Redis frozen (no answer at all): pages render locally within the command timeout, none hangs", async () => {
    process.kill(redis.pid, "SIGSTOP")
    try {
      const start = Date.now()
      const rs = await Promise.all(servers.flatMap((s) => [request(`${s.url}/`), request(`${s.url}/tagged`)]))
      const slowest = Math.max(...rs.map((r) => r.ms))
      console.log(`next with Redis frozen: ${rs.length} requests in ${Date.now() - start} ms, slowest ${slowest.toFixed(0)} ms`)
      expect(rs.every((r) => r.status === 200 && r.run !== undefined)).toBe(true)
      // a read given up after REDIS_COMMAND_TIMEOUT (500 ms), then a local render
      expect(slowest).toBeLessThan(renderMs + 2_000)
    } finally {
      process.kill(redis.pid, "SIGCONT")
    }
  })

  it("Redis stopped: pages still render and every request ends", async () => {
    await redis.kill()
    const start = Date.now()
    const rs = await Promise.all(servers.flatMap((s) => [request(`${s.url}/`), request(`${s.url}/tagged`), request(`${s.url}/`)]))
    const slowest = Math.max(...rs.map((r) => r.ms))
    console.log(`next without Redis: ${rs.length} requests in ${Date.now() - start} ms, slowest ${slowest.toFixed(0)} ms`)
    expect(rs.every((r) => r.status === 200 && r.run !== undefined)).toBe(true)
    // and no shutdown hangs on the connections
    const exits = await Promise.all(servers.map((s) => s.stop()))
    console.log(`next start processes exited in ${exits.join(", ")} ms after SIGTERM`)
    expect(Math.max(...exits)).toBeLessThan(5_000)
  })
})
