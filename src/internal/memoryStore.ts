/**
 * The fleet protocol on plain maps, for one process. It mirrors `scripts.ts` step by step, with
 * `Clock` as the server's time, so `TestClock` drives leases and back-off markers.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Claim, Commit, Store, Stored } from "../Redis.js"
import * as Keys from "./keys.js"

export interface Lock {
  readonly token: string
  readonly expiresAt: number
}

/** The maps behind one in-memory "server"; stores of several tenants may share one. */
export interface Server {
  readonly values: Map<string, Stored>
  readonly locks: Map<string, Lock>
  readonly fences: Map<string, number>
  readonly failures: Map<string, number>
}

export const makeServer = (): Server => ({ values: new Map(), locks: new Map(), fences: new Map(), failures: new Map() })

export const make = (tenant: string, server: Server = makeServer()): Store => {
  const { failures, fences, locks, values } = server

  const liveLock = (k: string, now: number): Lock | undefined => {
    const lock = locks.get(k)
    if (lock !== undefined && lock.expiresAt <= now) {
      locks.delete(k)
      return undefined
    }
    return lock
  }

  const withNow = <A>(f: (now: number) => A) => Effect.map(Clock.currentTimeMillis, f)

  return {
    tenant,
    kind: "memory",
    health: Effect.succeed("closed"),
    get: (key) => withNow((now) => ({ now, stored: Option.fromNullable(values.get(Keys.make(tenant, key).value)) })),
    claim: (key, o) =>
      withNow((now): Claim => {
        const k = Keys.make(tenant, key)
        const bucket = Math.floor(now / o.windowMs)
        const r = values.get(k.value)
        const stored = Option.fromNullable(r)
        if (r && !o.force && r.windowMs === o.windowMs && r.bucket >= bucket) {
          return { _tag: "Fresh", now, stored: r }
        }
        const held = liveLock(k.lock, now)
        if (held) {
          const ttlMs = held.expiresAt - now
          return held.token.startsWith("backoff:")
            ? { _tag: "Backoff", now, stored, ttlMs }
            : { _tag: "Busy", now, stored, ttlMs }
        }
        const fence = Math.max(fences.get(k.fence) ?? 0, r?.fence ?? 0) + 1
        fences.set(k.fence, fence)
        locks.set(k.lock, { token: o.token, expiresAt: now + o.leaseMs })
        return { _tag: "Acquired", now, stored, bucket, fence }
      }),
    renew: (key, token, leaseMs) =>
      withNow((now) => {
        const k = Keys.make(tenant, key)
        if (liveLock(k.lock, now)?.token !== token) return false
        locks.set(k.lock, { token, expiresAt: now + leaseMs })
        return true
      }),
    commit: (key, value, token) =>
      withNow((now): Commit => {
        const k = Keys.make(tenant, key)
        const r = values.get(k.value)
        const stored = Option.fromNullable(r)
        if (value.bucket > Math.floor(now / value.windowMs)) return { _tag: "Refused", reason: "future", now, stored }
        if (token !== undefined && value.fence < (fences.get(k.fence) ?? 0)) {
          return { _tag: "Refused", reason: "fenced", now, stored }
        }
        if (
          r && r.windowMs === value.windowMs &&
          (value.bucket < r.bucket || (value.bucket === r.bucket && value.fence < r.fence))
        ) {
          return { _tag: "Refused", reason: "older", now, stored }
        }
        values.set(k.value, value)
        failures.delete(k.failures)
        if (token !== undefined && liveLock(k.lock, now)?.token === token) locks.delete(k.lock)
        return { _tag: "Committed", now }
      }),
    release: (key, token, backoff) =>
      withNow((now) => {
        const k = Keys.make(tenant, key)
        if (liveLock(k.lock, now)?.token !== token) return
        const base = backoff === undefined ? 0 : Math.max(0, Math.round(backoff.baseMs))
        if (base === 0) return void locks.delete(k.lock)
        const n = (failures.get(k.failures) ?? 0) + 1
        failures.set(k.failures, n)
        const ms = Math.max(1, Math.floor(Math.min(base * 2 ** Math.min(n - 1, 30), backoff!.maxMs)))
        locks.set(k.lock, { token: `backoff:${token}`, expiresAt: now + ms })
      })
  }
}
