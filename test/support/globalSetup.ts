/**
 * First installs whatever the suite needs from Debian and is missing (`systemNeeds`: Redis,
 * MariaDB, Chromium), so that no test spends its own time limit on apt-get; then starts one
 * private redis-server and one MariaDB for the whole run, and bundles the child programs
 * (`./bundles.js`). Tests read their ports with `inject("redisPort")` / `inject("mariadbPort")`;
 * tests that need a server of their own (fault injection, clusters) start it with
 * `./services.js`.
 *
 * vitest calls `setup` once per project (the root one included): the first call starts
 * everything, the others share it, and the last `teardown` stops it.
 */
import type { TestProject } from "vitest/node"
import * as Fs from "node:fs"
import { buildBundles } from "./bundles.js"
import { ensureBinaries, startMariadb, startRedis, systemNeeds, type Server } from "./services.js"

interface Shared {
  readonly redis: Server
  readonly mariadb: Server
  readonly bundles: string
}

const start = async (): Promise<Shared> => {
  const installStart = Date.now()
  ensureBinaries(systemNeeds)
  const installMs = Date.now() - installStart
  if (installMs > 1_000) console.log(`globalSetup: system packages installed in ${(installMs / 1000).toFixed(1)} s`)
  const [built, redis, mariadb] = await Promise.allSettled([buildBundles(), startRedis(), startMariadb()])
  if (built.status === "fulfilled" && redis.status === "fulfilled" && mariadb.status === "fulfilled") {
    return { bundles: built.value, redis: redis.value, mariadb: mariadb.value }
  }
  await stop({
    bundles: built.status === "fulfilled" ? built.value : undefined,
    servers: [redis, mariadb].flatMap((s) => (s.status === "fulfilled" ? [s.value] : []))
  })
  throw [built, redis, mariadb].find((s): s is PromiseRejectedResult => s.status === "rejected")!.reason
}

const stop = async (what: { readonly bundles: string | undefined; readonly servers: ReadonlyArray<Server> }) => {
  await Promise.all(what.servers.map((s) => s.stop()))
  if (what.bundles) Fs.rmSync(what.bundles, { recursive: true, force: true })
}

/** On `globalThis`: each project loads this module anew. */
const state = ((globalThis as { [key: symbol]: unknown })[Symbol.for("lockstep/globalSetup")] ??= { users: 0 }) as {
  users: number
  shared?: Promise<Shared> | undefined
}

export async function setup(project: TestProject) {
  state.users++
  state.shared ??= start()
  const { redis, mariadb } = await state.shared
  project.provide("redisPort", redis.port)
  project.provide("mariadbPort", mariadb.port)
}

export async function teardown() {
  if (--state.users > 0 || state.shared === undefined) return
  const done = state.shared
  state.shared = undefined
  const s = await done.catch(() => undefined)
  if (s) await stop({ bundles: s.bundles, servers: [s.redis, s.mariadb] })
}
