/**
 * First installs whatever the suite needs from Debian and is missing (`systemNeeds`: Redis,
 * MariaDB, Chromium), so that no test spends its own time limit on apt-get; then starts one
 * private redis-server and one MariaDB for the whole run, and bundles the child programs
 * (`./bundles.js`). Tests read their ports with
 * `inject("redisPort")` / `inject("mariadbPort")`; tests that need a server of their own (fault
 * injection, clusters) start it with `./services.js`.
 */
import type { TestProject } from "vitest/node"
import * as Fs from "node:fs"
import { buildBundles } from "./bundles.js"
import { ensureBinaries, startMariadb, startRedis, systemNeeds, type Server } from "./services.js"

let servers: Array<Server> = []
let bundles: string | undefined

export async function setup(project: TestProject) {
  const installStart = Date.now()
  ensureBinaries(systemNeeds)
  const installMs = Date.now() - installStart
  if (installMs > 1_000) console.log(`globalSetup: system packages installed in ${(installMs / 1000).toFixed(1)} s`)
  const [built, ...started] = await Promise.allSettled([buildBundles(), startRedis(), startMariadb()])
  if (built.status === "fulfilled") bundles = built.value
  servers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []))
  const failed = [built, ...started].find((s): s is PromiseRejectedResult => s.status === "rejected")
  if (failed) {
    await teardown()
    throw failed.reason
  }
  const [redis, mariadb] = servers
  project.provide("redisPort", redis!.port)
  project.provide("mariadbPort", mariadb!.port)
}

export async function teardown() {
  await Promise.all(servers.map((s) => s.stop()))
  servers = []
  if (bundles) Fs.rmSync(bundles, { recursive: true, force: true })
  bundles = undefined
}
