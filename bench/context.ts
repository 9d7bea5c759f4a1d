import { setMaxListeners } from "node:events"

/** What every section gets from `main`: the servers it may use, its budget, and a logger. */
export interface BenchContext {
  /** A small run that checks the harness works (tests), not the figures. */
  readonly smoke: boolean
  /** Rounds per measurement (≥ 5 outside smoke runs). */
  readonly rounds: number
  readonly redis: { readonly host: string; readonly port: number }
  /** MariaDB for the HTTP section. */
  readonly mysql?: { readonly host: string; readonly port: number } | undefined
  /** Distinguishes this run's keys from any other run against the same Redis. */
  readonly runId: string
  readonly log: (message: string) => void
  /** Aborted when the section runs out of time: loops stop at the next measurement. */
  readonly signal: AbortSignal
}

/** Fails a section that runs past its budget instead of letting it hang the whole run. */
export const withDeadline = <A>(what: string, ms: number, run: (signal: AbortSignal) => Promise<A>): Promise<A> => {
  const controller = new AbortController()
  setMaxListeners(100, controller.signal) // one listener per pending fleet message
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort()
      reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`))
    }, ms)
  })
  return Promise.race([run(controller.signal), deadline]).finally(() => clearTimeout(timer))
}
