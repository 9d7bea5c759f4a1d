/**
 * Starts pod processes against a redis-server and collects what they report. The parent is the
 * only witness that counts producer starts, so a bug in the pods cannot hide them.
 */
import { fork, type ChildProcess } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { FromPod, PodConfig, ToPod } from "./pod.js"

const podScript = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "pod.ts")

export interface Pod {
  readonly id: number
  readonly child: ChildProcess
  readonly send: (message: ToPod) => void
}

export interface Fleet {
  readonly pods: ReadonlyArray<Pod>
  readonly messages: Array<FromPod & { readonly receivedAt: number }>
  /** Producer starts per window, counted from the pods' reports. */
  readonly startsPerBucket: () => Map<number, number>
  /** Runs a load on every pod and waits for each pod's summary. */
  readonly load: (options: { callers: number; durationMs: number; pauseMs: number }) => Promise<ReadonlyArray<Extract<FromPod, { type: "loaded" }>>>
  readonly stop: () => Promise<void>
}

export const startFleet = async (n: number, config: Omit<PodConfig, "id">): Promise<Fleet> => {
  const messages: Fleet["messages"] = []
  const waiters: Array<() => void> = []
  const pods: Array<Pod> = []
  for (let id = 0; id < n; id++) {
    const child = fork(podScript, [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, LOCKSTEP_POD: JSON.stringify({ ...config, id }) },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    child.on("message", (m: FromPod) => {
      messages.push({ ...m, receivedAt: Date.now() })
      for (const w of waiters.splice(0)) w()
    })
    pods.push({ id, child, send: (m) => child.send(m) })
  }
  const waitFor = (predicate: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fleet: timed out waiting for ${what}`)), timeoutMs)
      const check = () => {
        if (predicate()) {
          clearTimeout(timer)
          resolve()
        } else {
          waiters.push(check)
        }
      }
      check()
    })
  const stop = async () => {
    await Promise.all(pods.map((p) =>
      new Promise<void>((resolve) => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve()
        const timer = setTimeout(() => p.child.kill("SIGKILL"), 5_000)
        p.child.once("exit", () => {
          clearTimeout(timer)
          resolve()
        })
        if (p.child.connected) p.send({ type: "exit" })
        else p.child.kill("SIGTERM")
      })
    ))
  }
  try {
    await waitFor(() => messages.filter((m) => m.type === "ready").length === n, 30_000, "pods to be ready")
  } catch (e) {
    await stop()
    throw e
  }
  return {
    pods,
    messages,
    startsPerBucket: () => {
      const counts = new Map<number, number>()
      for (const m of messages) if (m.type === "start") counts.set(m.bucket, (counts.get(m.bucket) ?? 0) + 1)
      return counts
    },
    load: async (options) => {
      const from = messages.length
      for (const p of pods) p.send({ type: "load", ...options })
      const loaded = () => messages.slice(from).filter((m): m is Extract<FromPod, { type: "loaded" }> & { receivedAt: number } => m.type === "loaded")
      await waitFor(() => loaded().length === n, options.durationMs + 30_000, "load summaries")
      return loaded()
    },
    stop
  }
}
