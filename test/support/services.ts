/**
 * Private servers for tests and benchmarks: a `redis-server` (or Valkey, with
 * `LOCKSTEP_REDIS_SERVER=valkey`) or a MariaDB on a free loopback port with its own data folder,
 * installed from Debian's packages when missing (as root), and stopped by whoever started them.
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

/** A port free at the time of the call; it is released before it returns, so start a server on it with `onFreePort`. */
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

/** Whether some process listens on `port` now. */
const portTaken = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = Net.createServer()
    server.unref()
    server.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "EADDRINUSE"))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(false)))
  })

/** A server found another process on the port it was given. */
class PortTaken extends Error {}

/**
 * Starts a server on a free port. `freePort` releases the port before the server binds it, so
 * another process (another suite on the same machine) can take it in between: when the server
 * does not come up, or another one answers on its port, and the port is taken, `start` runs again
 * on a new port, up to `attempts` times.
 */
export const onFreePort = async <A>(start: (port: number) => Promise<A>, attempts = 5): Promise<A> => {
  for (let attempt = 1;; attempt++) {
    const port = await freePort()
    try {
      return await start(port)
    } catch (e) {
      if (attempt >= attempts || !(e instanceof PortTaken || (await portTaken(port)))) throw e
    }
  }
}

/**
 * Sends an inline command on a raw connection and reads the reply until `parse` makes something
 * of it; `undefined` when nothing answers within `timeoutMs`.
 */
const rawCommand = <A>(port: number, command: string, parse: (reply: string) => A | undefined, timeoutMs: number): Promise<A | undefined> =>
  new Promise((resolve) => {
    const socket = Net.connect({ port, host: "127.0.0.1" })
    let got = ""
    const done = (result: A | undefined) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => done(undefined), timeoutMs)
    socket.once("connect", () => socket.write(`${command}\r\n`))
    socket.on("data", (d) => {
      got += d.toString()
      const result = parse(got)
      if (result !== undefined) done(result)
    })
    socket.once("error", () => done(undefined))
  })

/** The `process_id` that `INFO server` gives (the server that answers on `port`). */
const serverPid = (port: number): Promise<number | undefined> =>
  rawCommand(port, "INFO server", (reply) => {
    const match = /process_id:(\d+)\r\n/.exec(reply)
    return match ? Number(match[1]) : undefined
  }, 2_000)

/** `PING` answered with `PONG` (not `LOADING`). */
const canPing = async (port: number): Promise<boolean> =>
  (await rawCommand(port, "PING", (reply) => (reply.includes("\r\n") ? reply.startsWith("+PONG") : undefined), 1_000)) ?? false

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
  /** The running process (a new one after each `start`). */
  readonly pid: number
  readonly dir: string
  readonly process: ChildProcess
  readonly stop: () => Promise<void>
}

const tmpDir = (prefix: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), `lockstep-${prefix}-`))

// ---------------------------------------------------------------------------------------------
// redis-server or Valkey

/** Which server implementation the tests run: `LOCKSTEP_REDIS_SERVER=redis` (default) or `valkey`. */
export type ServerKind = "redis" | "valkey"

export const serverKind = (): ServerKind => {
  const v = (process.env.LOCKSTEP_REDIS_SERVER ?? "redis").trim().toLowerCase()
  if (v === "" || v === "redis" || v === "redis-server") return "redis"
  if (v === "valkey" || v === "valkey-server") return "valkey"
  throw new Error(`LOCKSTEP_REDIS_SERVER must be 'redis' or 'valkey', got ${JSON.stringify(process.env.LOCKSTEP_REDIS_SERVER)}`)
}

/**
 * Debian bookworm has Valkey 8 only in bookworm-backports: add that suite, on the mirror of the
 * machine's own bookworm entry, unless some source already lists it.
 */
const addBackports = () => {
  const files = ["/etc/apt/sources.list", ...(() => {
    try {
      return Fs.readdirSync("/etc/apt/sources.list.d").map((f) => Path.join("/etc/apt/sources.list.d", f))
    } catch {
      return []
    }
  })()].filter((f) => /\.(list|sources)$/.test(f) && Fs.existsSync(f))
  const texts = files.map((f) => Fs.readFileSync(f, "utf8"))
  if (texts.some((t) => /^[^#]*bookworm-backports/m.test(t))) return
  // deb822 (`URIs:` + `Suites: bookworm …`) or one-line (`deb URI bookworm main`)
  let mirror: string | undefined
  for (const t of texts) {
    for (const stanza of t.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1]
      if (uri && /^Suites:.*\bbookworm\b(?!-)/m.test(stanza)) mirror ??= uri
    }
    mirror ??= /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(t)?.[1]
  }
  if (mirror === undefined) throw new Error("valkey-server: no bookworm entry in apt's sources to take the mirror from")
  Fs.writeFileSync(
    "/etc/apt/sources.list.d/lockstep-bookworm-backports.sources",
    [
      "Types: deb",
      `URIs: ${mirror}`,
      "Suites: bookworm-backports",
      "Components: main",
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
      ""
    ].join("\n")
  )
}

const ensureValkey = (bin: "valkey-server" | "valkey-cli"): string => {
  const found = which(bin)
  if (found) return found
  if (process.getuid?.() !== 0) {
    throw new Error(`${bin} is not installed; Valkey 8 is Debian's 'valkey-server' in bookworm-backports (apt-get install -t bookworm-backports valkey-server)`)
  }
  addBackports()
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  const lock = ["-o", "DPkg::Lock::Timeout=120"]
  execFileSync("apt-get", ["update", "-qq", ...lock], { stdio: "inherit", env })
  aptUpdated = true
  execFileSync("apt-get", ["install", "-y", "-qq", ...lock, "--no-install-recommends", "-t", "bookworm-backports", "valkey-server", "valkey-tools"], {
    stdio: "inherit",
    env
  })
  const installed = which(bin)
  if (!installed) throw new Error(`installed valkey-server but ${bin} is still not on PATH`)
  return installed
}

/**
 * The server binary and its CLI for `LOCKSTEP_REDIS_SERVER`, installed when missing (as root).
 * Global setup calls it first, so an install never runs inside a test.
 */
export const serverBinaries = (): { readonly kind: ServerKind; readonly server: string; readonly cli: string } => {
  const kind = serverKind()
  return kind === "valkey"
    ? { kind, server: ensureValkey("valkey-server"), cli: ensureValkey("valkey-cli") }
    : { kind, server: ensureBinary("redis-server", "redis-server"), cli: ensureBinary("redis-cli", "redis-tools") }
}

/** The server's own version line (`redis_version` / `valkey_version` of `INFO server`). */
export const serverVersion = (): string => {
  const { server } = serverBinaries()
  return execFileSync(server, ["--version"], { encoding: "utf8" }).trim()
}

export interface RedisOptions {
  readonly port?: number
  /** Append-only file on, fsynced at every write: a restart keeps every acknowledged write. */
  readonly aof?: boolean
  /** `maxmemory`, e.g. `"1mb"`, with `maxmemory-policy noeviction`: writes past it fail with `OOM`. */
  readonly maxmemory?: string
  /** `enable-debug-command local`, for `DEBUG SLEEP` (off by default since Redis 7). */
  readonly debug?: boolean
  /** More command-line options. */
  readonly extra?: ReadonlyArray<string>
}

export interface RedisServer extends Server {
  readonly kind: ServerKind
  /** Ends the process (`SIGKILL` by default: a crash, no final save) and waits for it to exit. */
  readonly kill: (signal?: NodeJS.Signals) => Promise<void>
  /**
   * Starts the server again on the same port and data folder, with the same options: with AOF
   * on, it loads what it had; `empty` wipes the folder first (a restart that lost its disk).
   */
  readonly start: (options?: { readonly empty?: boolean }) => Promise<void>
}

/** A private redis-server (or Valkey, see `serverKind`); no persistence unless `aof`. */
export const startRedis = async (options: RedisOptions = {}): Promise<RedisServer> => {
  if (options.port === undefined) return onFreePort((port) => startRedis({ ...options, port }))
  const { kind, server: bin } = serverBinaries()
  const port = options.port
  const dir = tmpDir(kind)
  const args = [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--save", "",
    "--appendonly", options.aof ? "yes" : "no",
    ...(options.aof ? ["--appendfsync", "always"] : []),
    ...(options.maxmemory ? ["--maxmemory", options.maxmemory, "--maxmemory-policy", "noeviction"] : []),
    ...(options.debug ? ["--enable-debug-command", "local"] : []),
    "--dir", dir,
    "--daemonize", "no",
    "--loglevel", "warning",
    ...(options.extra ?? [])
  ]
  let child: ChildProcess
  const spawnServer = async () => {
    child = spawn(bin, args, { stdio: ["ignore", "ignore", "inherit"] })
    // a server that loads its AOF accepts connections before it is done: wait for `PING`
    await waitFor(kind, () => canPing(port), child, 10_000)
    // the `PONG` may have come from another server that took the port first
    if ((await serverPid(port)) !== child.pid) throw new PortTaken(`${kind}: another server answers on port ${port}`)
  }
  try {
    await spawnServer()
  } catch (e) {
    await stopChild(child!)
    Fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
  return {
    kind,
    port,
    get pid() {
      return child.pid!
    },
    dir,
    get process() {
      return child
    },
    kill: async (signal = "SIGKILL") => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((r) => child.once("exit", r))
      try {
        process.kill(child.pid!, "SIGCONT")
      } catch {
        // already gone
      }
      child.kill(signal)
      await exited
    },
    start: async (o = {}) => {
      if (child.exitCode === null && child.signalCode === null) throw new Error(`${kind} on ${port} is still running`)
      if (o.empty) {
        for (const f of Fs.readdirSync(dir)) Fs.rmSync(Path.join(dir, f), { recursive: true, force: true })
      }
      await spawnServer()
    },
    stop: async () => {
      await stopChild(child)
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A private MariaDB with a `root` user without password and an empty database `lockstep`. */
export const startMariadb = (): Promise<Server> => onFreePort(startMariadbOn)

const startMariadbOn = async (port: number): Promise<Server> => {
  ensureBinary("mariadbd", "mariadb-server")
  const installDb = ensureBinary("mariadb-install-db", "mariadb-server")
  const admin = ensureBinary("mariadb-admin", "mariadb-client")
  const client = ensureBinary("mariadb", "mariadb-client")
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
  try {
    await waitFor("mariadbd", ping, child, 30_000)
    // the answer may have come from another server that took the port first
    const served = execFileSync(client, ["--no-defaults", "-h127.0.0.1", `-P${port}`, "-uroot", "-N", "-e", "SELECT @@datadir"], { encoding: "utf8" })
    if (Path.resolve(served.trim()) !== Path.resolve(datadir)) throw new PortTaken(`mariadbd: another server answers on port ${port}`)
  } catch (e) {
    await stopChild(child, 15_000)
    Fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
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
