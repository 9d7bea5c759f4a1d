/**
 * Private Redis topologies on loopback for the scale-out tests: a Redis Cluster of primaries
 * (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`), and a primary with a
 * replica watched by three sentinels. Whoever starts one stops it; a start that fails half-way
 * stops what it had started before it throws.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Redis as IORedis } from "ioredis"
import { onFreePort, serverBinaries, startRedis, type Server } from "./services.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it holds; throws with `what` (and the last error) after `timeoutMs`. */
const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (e) {
      last = e
    }
    await sleep(100)
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last instanceof Error ? ` (last error: ${last.message})` : ""}`)
}

/** One command on a short-lived connection (no retries, so a dead server fails at once). */
export const command = async (port: number, name: string, ...args: Array<string | number>): Promise<unknown> => {
  const client = new IORedis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: 2_000 })
  client.on("error", () => {})
  try {
    await client.connect()
    return await client.call(name, ...args)
  } finally {
    client.disconnect()
  }
}

const info = async (port: number, ...args: Array<string>) => String(await command(port, ...(args as [string, ...Array<string>])))

const stopAll = async (servers: ReadonlyArray<{ readonly stop: () => Promise<void> }>) => {
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)))
}

// ---------------------------------------------------------------------------------------------
// cluster

export interface RedisCluster {
  readonly nodes: ReadonlyArray<Server>
  readonly ports: ReadonlyArray<number>
  /** `127.0.0.1:P1,127.0.0.1:P2,…`, as `REDIS_CLUSTER_NODES` wants it. */
  readonly nodeList: string
  readonly stop: () => Promise<void>
}

/**
 * `primaries` cluster-enabled redis-servers (no replicas), joined with `redis-cli --cluster
 * create` and ready (`cluster_state:ok` on every node). Bus ports are chosen explicitly
 * (`--cluster-port`): the default `port + 10000` may be taken or out of range.
 */
export const startCluster = async (primaries = 3): Promise<RedisCluster> => {
  const { cli } = serverBinaries()
  const nodes: Array<Server> = []
  try {
    for (let i = 0; i < primaries; i++) {
      nodes.push(
        await onFreePort((busPort) =>
          startRedis({
            extra: [
              "--cluster-enabled", "yes",
              // relative to --dir, the node's private folder
              "--cluster-config-file", "nodes.conf",
              "--cluster-port", String(busPort),
              "--cluster-node-timeout", "2000",
              "--cluster-require-full-coverage", "yes"
            ]
          })
        )
      )
    }
    const ports = nodes.map((n) => n.port)
    await new Promise<void>((resolve, reject) =>
      execFile(
        cli,
        ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"],
        { timeout: 30_000 },
        (error, stdout, stderr) => (error ? reject(new Error(`redis-cli --cluster create failed: ${error.message}\n${stdout}\n${stderr}`)) : resolve())
      )
    )
    for (const port of ports) {
      await until(`cluster node ${port} to report cluster_state:ok`, async () =>
        (await info(port, "CLUSTER", "INFO")).includes("cluster_state:ok") &&
        // every node knows every other one, so redirections agree wherever a client lands
        String(await command(port, "CLUSTER", "NODES")).trim().split("\n").length === primaries, 20_000)
    }
    return {
      nodes,
      ports,
      nodeList: ports.map((p) => `127.0.0.1:${p}`).join(","),
      stop: () => stopAll(nodes)
    }
  } catch (e) {
    await stopAll(nodes)
    throw e
  }
}

// ---------------------------------------------------------------------------------------------
// sentinel

export interface SentinelSet {
  /** The name the sentinels monitor the primary under. */
  readonly name: string
  readonly primary: Server
  readonly replica: Server
  readonly sentinels: ReadonlyArray<Server>
  /** `127.0.0.1:S1,127.0.0.1:S2,…`, as `REDIS_SENTINELS` wants it. */
  readonly sentinelList: string
  /** The port of the primary the sentinels currently announce. */
  readonly currentPrimary: () => Promise<number>
  readonly stop: () => Promise<void>
}

/**
 * A sentinel: `redis-server <conf> --sentinel` (Debian's `redis-sentinel` is the same binary
 * under another name, in a package of its own whose install starts a system-wide sentinel;
 * `redis-server` already has it). The config file is the sentinel's own: it rewrites it.
 */
const startSentinel = (options: Parameters<typeof startSentinelOn>[1]): Promise<Server> =>
  onFreePort((port) => startSentinelOn(port, options))

const startSentinelOn = async (port: number, options: {
  readonly name: string
  readonly primaryPort: number
  readonly quorum: number
  readonly downAfterMs: number
  readonly failoverTimeoutMs: number
}): Promise<Server> => {
  const { server: bin } = serverBinaries()
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "lockstep-sentinel-"))
  const conf = Path.join(dir, "sentinel.conf")
  Fs.writeFileSync(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      "daemonize no",
      "loglevel warning",
      `sentinel monitor ${options.name} 127.0.0.1 ${options.primaryPort} ${options.quorum}`,
      `sentinel down-after-milliseconds ${options.name} ${options.downAfterMs}`,
      `sentinel failover-timeout ${options.name} ${options.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${options.name} 1`,
      ""
    ].join("\n")
  )
  const child: ChildProcess = spawn(bin, [conf, "--sentinel"], { stdio: ["ignore", "ignore", "inherit"] })
  const stop = async () => {
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      child.once("exit", () => {
        clearTimeout(timer)
        resolve()
      })
      child.kill("SIGTERM")
    })
    Fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    await until(`sentinel on ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`sentinel exited with code ${child.exitCode}`)
      return (await command(port, "PING")) === "PONG"
    }, 10_000)
  } catch (e) {
    await stop()
    throw e
  }
  return { port, pid: child.pid!, dir, process: child, stop }
}

/**
 * A primary, one replica in sync with it, and three sentinels (quorum 2) that know each other
 * and the replica, so that a failover can start as soon as the primary is down for
 * `downAfterMs`.
 */
export const startSentinelSet = async (
  options: { readonly name?: string; readonly downAfterMs?: number; readonly failoverTimeoutMs?: number } = {}
): Promise<SentinelSet> => {
  const name = options.name ?? "lockstep"
  const started: Array<Server> = []
  try {
    // a diskless full sync waits 5 s for more replicas by default: there is only one
    const noSyncDelay = ["--repl-diskless-sync-delay", "0"]
    const primary = await startRedis({ extra: noSyncDelay })
    started.push(primary)
    const replica = await startRedis({ extra: [...noSyncDelay, "--replicaof", "127.0.0.1", String(primary.port)] })
    started.push(replica)
    await until("the replica to sync", async () => (await info(replica.port, "INFO", "replication")).includes("master_link_status:up"), 15_000)
    const sentinels = await Promise.all([0, 1, 2].map(() =>
      startSentinel({
        name,
        primaryPort: primary.port,
        quorum: 2,
        downAfterMs: options.downAfterMs ?? 500,
        failoverTimeoutMs: options.failoverTimeoutMs ?? 3_000
      }).then((s) => {
        started.push(s)
        return s
      })
    ))
    // sentinels find each other through hello messages on the primary (every 2 s)
    await Promise.all(sentinels.map((s) =>
      until(`sentinel ${s.port} to see the replica and the other sentinels`, async () => {
        const fields = (await command(s.port, "SENTINEL", "MASTER", name)) as Array<string>
        const get = (k: string) => Number(fields[fields.indexOf(k) + 1])
        return get("num-slaves") === 1 && get("num-other-sentinels") === 2
      }, 20_000)
    ))
    const currentPrimary = async () => {
      for (const s of sentinels) {
        try {
          const addr = (await command(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)) as Array<string>
          return Number(addr[1])
        } catch {
          // ask the next one
        }
      }
      throw new Error("no sentinel answered")
    }
    return {
      name,
      primary,
      replica,
      sentinels,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
      currentPrimary,
      stop: () => stopAll(started)
    }
  } catch (e) {
    await stopAll(started)
    throw e
  }
}
