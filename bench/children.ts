/**
 * Every process the benchmark starts is registered here and killed when the run ends, however
 * it ends (normal exit, an exception, Ctrl-C): no orphans.
 */
import type { ChildProcess } from "node:child_process"

const children = new Set<ChildProcess>()
const cleanups = new Set<() => Promise<void>>()

export const track = <C extends ChildProcess>(child: C): C => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

/** Registers an async cleanup (stopping a server) for `shutdown`; returns its remover. */
export const onShutdown = (f: () => Promise<void>): (() => void) => {
  cleanups.add(f)
  return () => cleanups.delete(f)
}

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null

/** SIGTERM, then SIGKILL after `graceMs` for whatever is still alive. */
export const killAll = async (graceMs = 2_000): Promise<void> => {
  const list = [...children].filter(alive)
  for (const c of list) c.kill("SIGTERM")
  await Promise.race([
    Promise.all(list.map((c) => (alive(c) ? new Promise((r) => c.once("exit", r)) : undefined))),
    new Promise((r) => setTimeout(r, graceMs))
  ])
  for (const c of list) if (alive(c)) c.kill("SIGKILL")
}

export const shutdown = async (): Promise<void> => {
  await killAll()
  const fs = [...cleanups]
  cleanups.clear()
  await Promise.allSettled(fs.map((f) => f()))
}

/** Last resort when the process exits without `shutdown`: synchronous kills only. */
process.once("exit", () => {
  for (const c of children) if (alive(c)) c.kill("SIGKILL")
})
