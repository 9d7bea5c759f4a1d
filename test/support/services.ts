/**
 * Private servers for tests and benchmarks: a `redis-server` or a MariaDB on a free loopback
 * port with its own data folder, installed from Debian's packages when missing (as root), and
 * stopped by whoever started them.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

let aptUpdated = false

const which = (bin: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin", "/sbin"])) {
    const p = Path.join(dir, bin)
    try {
      Fs.accessSync(p, Fs.constants.X_OK)
      return p
    } catch {
      // keep looking
    }
  }
  return undefined
}

/** A binary and the Debian package that provides it. */
export type Need = readonly [bin: string, pkg: string]

/**
 * Finds every `bin`, installing the Debian packages of the missing ones (in one `apt-get
 * install`) when we are root; otherwise fails with a message naming the packages to install.
 * Returns the binaries' paths in order.
 */
export const ensureBinaries = (needs: ReadonlyArray<Need>): Array<string> => {
  const missing = [...new Set(needs.filter(([bin]) => !which(bin)).map(([, pkg]) => pkg))]
  if (missing.length > 0) {
    if (process.getuid?.() !== 0) {
      const list = missing.join(" ")
      throw new Error(`missing Debian package${missing.length > 1 ? "s" : ""} ${list}: install with apt-get install ${list} and run again`)
    }
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    if (!aptUpdated) {
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env })
      aptUpdated = true
    }
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "inherit", env })
  }
  return needs.map(([bin, pkg]) => {
    const found = which(bin)
    if (!found) throw new Error(`installed '${pkg}' but ${bin} is still not on PATH`)
    return found
  })
}

/** Finds `bin`, installing the Debian package `pkg` when it is missing and we are root. */
export const ensureBinary = (bin: string, pkg: string): string => ensureBinaries([[bin, pkg]])[0]!

/**
 * Everything the suite and the benchmarks run from Debian: redis-server and redis-cli (clusters,
 * sentinels), MariaDB, and Chromium for the browser test.
 */
export const systemNeeds: ReadonlyArray<Need> = [
  ["redis-server", "redis-server"],
  ["redis-cli", "redis-tools"],
  ["mariadbd", "mariadb-server"],
  ["mariadb-install-db", "mariadb-server"],
  ["mariadb-admin", "mariadb-client"],
  ["mariadb", "mariadb-client"],
  ["chromium", "chromium"]
]

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1" })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const waitFor = async (what: string, check: () => Promise<boolean>, child: ChildProcess, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before it was ready`)
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${what} was not ready within ${timeoutMs} ms`)
}

const stopChild = (child: ChildProcess, timeoutMs = 5_000): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    try {
      process.kill(child.pid!, "SIGCONT") // a test may have left it frozen
    } catch {
      // already gone
    }
    child.kill("SIGTERM")
  })

export interface Server {
  readonly port: number
  readonly pid: number
  readonly dir: string
  readonly process: ChildProcess
  readonly stop: () => Promise<void>
}

const tmpDir = (prefix: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), `lockstep-${prefix}-`))

/** A private redis-server without persistence. `extra` adds command-line options. */
export const startRedis = async (options: { readonly port?: number; readonly extra?: ReadonlyArray<string> } = {}): Promise<Server> => {
  const bin = ensureBinary("redis-server", "redis-server")
  const port = options.port ?? (await freePort())
  const dir = tmpDir("redis")
  const child = spawn(
    bin,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning", ...(options.extra ?? [])],
    { stdio: ["ignore", "ignore", "inherit"] }
  )
  await waitFor("redis-server", () => canConnect(port), child, 10_000)
  return {
    port,
    pid: child.pid!,
    dir,
    process: child,
    stop: async () => {
      await stopChild(child)
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A private MariaDB with a `root` user without password and an empty database `lockstep`. */
export const startMariadb = async (): Promise<Server> => {
  ensureBinary("mariadbd", "mariadb-server")
  const installDb = ensureBinary("mariadb-install-db", "mariadb-server")
  const admin = ensureBinary("mariadb-admin", "mariadb-client")
  const client = ensureBinary("mariadb", "mariadb-client")
  const port = await freePort()
  const dir = tmpDir("mariadb")
  const datadir = Path.join(dir, "data")
  execFileSync(installDb, [
    "--no-defaults",
    "--user=root",
    `--datadir=${datadir}`,
    "--auth-root-authentication-method=normal",
    "--skip-test-db"
  ], { stdio: "ignore" })
  const child = spawn(which("mariadbd")!, [
    "--no-defaults",
    "--user=root",
    `--datadir=${datadir}`,
    `--port=${port}`,
    "--bind-address=127.0.0.1",
    `--socket=${Path.join(dir, "sock")}`,
    `--pid-file=${Path.join(dir, "pid")}`,
    "--skip-log-bin",
    "--innodb-buffer-pool-size=256M",
    "--innodb-flush-log-at-trx-commit=0",
    "--skip-name-resolve"
  ], { stdio: ["ignore", "ignore", "ignore"] })
  const ping = () =>
    new Promise<boolean>((resolve) => {
      const p = spawn(admin, ["--no-defaults", "-h127.0.0.1", `-P${port}`, "-uroot", "ping"], { stdio: "ignore" })
      p.on("exit", (code) => resolve(code === 0))
      p.on("error", () => resolve(false))
    })
  await waitFor("mariadbd", ping, child, 30_000)
  execFileSync(client, ["--no-defaults", "-h127.0.0.1", `-P${port}`, "-uroot", "-e", "CREATE DATABASE IF NOT EXISTS lockstep"])
  return {
    port,
    pid: child.pid!,
    dir,
    process: child,
    stop: async () => {
      await stopChild(child, 15_000)
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}
