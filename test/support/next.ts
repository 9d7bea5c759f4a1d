/**
 * The Next.js fixture (`test/next/`): `lockstep/next` bundled for Next to load, the app built with
 * `next build` (once per content of its inputs: the build is skipped when `.next/` holds the
 * build of the same files and Next version), and `next start` processes on free ports.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { onFreePort } from "./services.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const fixture = Path.join(root, "test/next")
const nextBin = Path.join(root, "node_modules/next/dist/bin/next")
const stamp = Path.join(fixture, ".next/lockstep-inputs")

/** `src/Next.ts` as one ES module (its packages left to `node_modules`), where Next can load it. */
export const bundleHandler = (): string => {
  const out = Path.join(root, "node_modules/.cache/lockstep-next/handler.mjs")
  const r = spawnSync(Path.join(root, "node_modules/.bin/esbuild"), [
    Path.join(root, "src/Next.ts"),
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--packages=external",
    `--outfile=${out}`,
    "--log-level=warning"
  ], { stdio: "inherit" })
  if (r.status !== 0) throw new Error("esbuild could not bundle src/Next.ts")
  return out
}

const inputsHash = (): string => {
  const hash = createHash("sha256")
  hash.update(JSON.parse(Fs.readFileSync(Path.join(root, "node_modules/next/package.json"), "utf8")).version)
  const walk = (dir: string) => {
    for (const entry of Fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name === ".next" || entry.name === "node_modules" || entry.name === "next-env.d.ts") continue
      const p = Path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else hash.update(Path.relative(fixture, p)).update(Fs.readFileSync(p))
    }
  }
  walk(fixture)
  return hash.digest("hex")
}

/** Whether `.next/` holds the build of the fixture's current inputs. */
export const isBuilt = (hash = inputsHash()): boolean => Fs.existsSync(stamp) && Fs.readFileSync(stamp, "utf8") === hash

/** Builds the fixture unless `.next/` already holds the build of these inputs; answers the build's seconds (0: cached). */
export const buildFixture = (handler: string): number => {
  const hash = inputsHash()
  if (isBuilt(hash)) return 0
  const start = Date.now()
  const r = spawnSync(process.execPath, [nextBin, "build"], {
    cwd: fixture,
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", LOCKSTEP_NEXT_HANDLER: handler, COUNTER_FILE: "/dev/null" }
  })
  if (r.status !== 0) throw new Error(`next build failed:\n${r.stdout}\n${r.stderr}`)
  Fs.writeFileSync(stamp, hash)
  return (Date.now() - start) / 1000
}

export interface NextServer {
  readonly url: string
  readonly process: ChildProcess
  /** Sends SIGTERM and answers how long the process took to exit (ms). */
  readonly stop: () => Promise<number>
}

/** `next start` on a free port, once it answers (on another port when another process took that one first). */
export const startNext = (env: Record<string, string>): Promise<NextServer> => onFreePort((port) => startNextOn(port, env))

const startNextOn = async (port: number, env: Record<string, string>): Promise<NextServer> => {
  const child = spawn(process.execPath, [nextBin, "start", "-p", String(port), "-H", "127.0.0.1"], {
    cwd: fixture,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", ...env }
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next start exited with ${child.exitCode}`)
    try {
      await fetch(`${url}/_not-found`, { signal: AbortSignal.timeout(2_000) })
      break
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL")
        throw new Error("next start did not answer within 30 s")
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return {
    url,
    process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return 0
      const start = Date.now()
      const exited = new Promise((r) => child.once("exit", r))
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await exited
      clearTimeout(timer)
      return Date.now() - start
    }
  }
}
