/**
 * The fleet's notices, as this process handles them: commits, invalidations and purges update
 * what L1 trusts (a purge drops the key), and a worker waiting on another process's run wakes on the commit instead of its next
 * poll; a small value travels with the notice, so the woken worker has it without a read.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Metrics from "../../Metrics.js"
import type { BusState, Notice } from "../store.js"
import type { Durations } from "./core.js"
import type * as L1 from "./l1.js"

export interface Listener {
  /** Completes on the key's next commit, with its value when the notice carried one, or its lock's release. */
  readonly await: Effect.Effect<Option.Option<L1.Entry>>
  readonly cancel: Effect.Effect<void>
}

export interface Notices {
  /** Listens for the key's next commit; listen before asking the store, so none is missed in between. */
  readonly listen: (key: string, decode: L1.Decode) => Listener
  readonly onNotice: (notice: Notice) => void
  readonly onState: (state: BusState) => void
  readonly state: () => BusState
  /** Keys with a worker waiting for their next commit. */
  readonly waiting: () => number
}

interface Waiting {
  readonly deferred: Deferred.Deferred<Option.Option<L1.Entry>>
  readonly decode: L1.Decode
  listeners: number
}

/** A notified value as an L1 candidate: the latest version, as the notice describes it. */
const candidate = (
  n: { readonly bucket: number; readonly fence: number; readonly computedAt: number; readonly windowMs: number; readonly mark: number },
  value: unknown,
  decode: L1.Decode
): L1.Candidate => ({
  value,
  bucket: n.bucket,
  fence: n.fence,
  computedAt: n.computedAt,
  windowMs: n.windowMs,
  decode,
  latest: true,
  mark: n.mark
})

export const make = (
  l1: L1.L1,
  durations: Durations,
  /** A purge heard of: this process's run of the key, if it already answered, is not joined again. */
  onPurged: (key: string) => void = () => {}
): Notices => {
  const waiting = new Map<string, Waiting>()
  let state: BusState = "down"
  l1.setTrusted(false)

  const listen = (key: string, decode: L1.Decode): Listener => {
    let w = waiting.get(key)
    if (w === undefined) {
      w = { deferred: Deferred.unsafeMake(FiberId.none), decode, listeners: 0 }
      waiting.set(key, w)
    }
    w.listeners++
    const own = w
    let cancelled = false
    return {
      await: Deferred.await(own.deferred),
      cancel: Effect.sync(() => {
        if (cancelled) return
        cancelled = true
        if (--own.listeners === 0 && waiting.get(key) === own) waiting.delete(key)
      })
    }
  }

  const committed = (n: Extract<Notice, { _tag: "Committed" }>) => {
    l1.heardCommit(n.key, n.windowMs, n.bucket, n.fence, n.mark)
    const w = waiting.get(n.key)
    const held = l1.entries.get(n.key)
    if (
      held !== undefined && held.windowMs === n.windowMs &&
      (held.bucket > n.bucket || (held.bucket === n.bucket && held.fence >= n.fence))
    ) {
      // a repeated or late notice: what it tells is known already
      Metrics.noticesSkipped.unsafeUpdate(1, [])
      if (w === undefined) return
    }
    if (w === undefined && held === undefined) return
    let published: L1.Entry | undefined
    const decode = w?.decode ?? held?.decode
    if (
      n.from !== undefined && held !== undefined && held.windowMs === n.windowMs && held.bucket === n.from.bucket &&
      held.fence === n.from.fence
    ) {
      // the value we hold, committed again under a new version: it needs no payload
      published = l1.publish(n.key, candidate(n, held.value, held.decode))
    } else if (Option.isSome(n.data) && decode !== undefined) {
      const decoded = decode(n.data.value)
      if (decoded.ok) {
        published = l1.publish(n.key, candidate(n, decoded.value, decode))
      }
    }
    if (w !== undefined) {
      waiting.delete(n.key)
      Deferred.unsafeDone(w.deferred, Effect.succeed(Option.fromNullable(published)))
    }
  }

  /**
   * A value committed early for the next window: kept beside the current entry, to take its
   * place at the boundary. Waiters claim again at once (the lock is free).
   */
  const pending = (n: Extract<Notice, { _tag: "Pending" }>) => {
    durations.record(n.key, n.durationMs)
    const held = l1.entries.get(n.key)
    if (held !== undefined && Option.isSome(n.data)) {
      const decoded = held.decode(n.data.value)
      if (decoded.ok) {
        l1.publishPending(n.key, candidate(n, decoded.value, held.decode))
      }
    }
    released(n.key)
  }

  /** The lock is free: a worker waiting for its holder claims now rather than at its next poll. */
  const released = (key: string) => {
    const w = waiting.get(key)
    if (w === undefined) return
    waiting.delete(key)
    Deferred.unsafeDone(w.deferred, Effect.succeed(Option.none()))
  }

  return {
    listen,
    onNotice: (notice) => {
      Metrics.noticesReceived.unsafeUpdate(1, [])
      if (notice._tag === "Committed") committed(notice)
      else if (notice._tag === "Pending") pending(notice)
      else if (notice._tag === "Invalidated") l1.heardInvalidation(notice.key, notice.mark)
      else if (notice._tag === "Purged") {
        l1.heardPurge(notice.key, notice.fence)
        onPurged(notice.key)
        // the lock went with the records: a waiting worker claims at once
        released(notice.key)
      } else released(notice.key)
    },
    onState: (next) => {
      if (next === state) return
      state = next
      if (next === "up") Metrics.resyncs.unsafeUpdate(1, [])
      Metrics.busState.unsafeUpdate(next === "up" ? 1 : 0, [])
      // while down, a notice may be missed: no entry answers hits until the store confirms it
      l1.setTrusted(next === "up")
    },
    state: () => state,
    waiting: () => waiting.size
  }
}
