/**
 * `npm start`'s entry point (`app/main.ts`) as a process, on the embedded defaults (no Redis, no
 * MariaDB; a smaller synthetic ledger so that it starts at once): every page, drill-down page,
 * JSON twin and the inspector answer, with the security headers, and it stops on SIGTERM.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "../support/services.js"

const root = Path.resolve(import.meta.dirname, "../..")

describe("npm start on the embedded defaults", () => {
  let port: number
  let child: ReturnType<typeof spawn>
  let output = ""
  beforeAll(async () => {
    port = await freePort()
    // only what the test needs: the port, and a ledger small enough to generate at once
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", PORT: String(port), LEDGER_ROWS: "20000" }
    child = spawn(process.execPath, ["--import", "tsx", Path.join(root, "app/main.ts")], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    child.stdout!.on("data", (c: Buffer) => (output += c.toString()))
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()))
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`app/main.ts exited: ${output}`)
      const up = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)
      if (up) return
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`app/main.ts did not answer within 30 s: ${output}`)
  }, 40_000)
  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r))
      child.kill("SIGTERM")
      await exited
    }
  })

  it("serves every page, drill-down page, JSON twin and the inspector, with the security headers", async () => {
    const paths = [
      "/", "/api/dashboard", "/market", "/api/market", "/chestshop", "/api/chestshop", "/economy/health", "/api/economy/health",
      "/market/items/1", "/api/market/items/1", "/chestshop/shops/1", "/api/chestshop/shops/1", "/accounts/1", "/api/accounts/1",
      "/cache", "/api/cache", "/healthz", "/metrics"
    ]
    for (const path of paths) {
      const r = await fetch(`http://127.0.0.1:${port}${path}`)
      expect(r.status, path).toBe(200)
      expect(r.headers.get("content-security-policy"), path).toContain("frame-ancestors 'none'")
      expect(r.headers.get("x-content-type-options"), path).toBe("nosniff")
    }
    expect((await fetch(`http://127.0.0.1:${port}/accounts/100000000`)).status).toBe(404)
    // without ADMIN_TOKEN the admin actions are off
    const admin = await fetch(`http://127.0.0.1:${port}/api/cache/invalidate-tag`, { method: "POST", body: `{"tag":"pages"}` })
    expect(admin.status).toBe(403)
    const inspector = (await (await fetch(`http://127.0.0.1:${port}/api/cache`)).json()) as { store: string; admin: boolean; keys: Array<{ key: string }> }
    expect(inspector.store).toBe("memory")
    expect(inspector.admin).toBe(false)
    expect(inspector.keys.map((k) => k.key)).toContain("explorer:account:v1:1")
    expect(output).toContain("cache store: memory")
    expect(output).toContain("ledger: memory")
  })
})
