/**
 * One private redis-server and one MariaDB for the whole run. Tests read their ports with
 * `inject("redisPort")` / `inject("mariadbPort")`; tests that need a server of their own (fault
 * injection, clusters) start it with `./services.js`.
 */
import type { TestProject } from "vitest/node"
import { startMariadb, startRedis, type Server } from "./services.js"

let servers: Array<Server> = []

export async function setup(project: TestProject) {
  const started = await Promise.allSettled([startRedis(), startMariadb()])
  servers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []))
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected")
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
}
