/**
 * The store over an ioredis client: each operation is one Lua script (`scripts.ts`), behind a
 * circuit breaker; notices arrive on a subscriber connection of their own.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { Cluster, type Redis as IORedis } from "ioredis"
import * as Metrics from "../../Metrics.js"
import * as Keys from "../keys.js"
import type { Backoff, Claim, Commit, Inspected, Notice, PlainRead, Release, Scanned, Store, Stored, Subscriber } from "../store.js"
import { absentMarkMs, RedisError } from "../store.js"
import * as Breaker from "./breaker.js"
import * as Client from "./client.js"
import * as Scripts from "./scripts.js"

// ---------------------------------------------------------------------------------------------
// replies

/** The numbers of a reply, or `undefined` when one is not a number (not what the scripts send). */
const numbers = (r: ReadonlyArray<string>, from: number, count: number): Array<number> | undefined => {
  const out: Array<number> = []
  for (let i = from; i < from + count; i++) {
    const n = Number(r[i])
    if (r[i] === undefined || r[i] === "" || !Number.isFinite(n)) return undefined
    out.push(n)
  }
  return out
}

/** A number field of a record (`NaN` when missing or empty, which the checks below refuse). */
const field = (x: string | null | undefined): number => (x === null || x === undefined || x === "" ? NaN : Number(x))

/**
 * The record whose fields `b f w t d` start at `at`, its schema identity at `schemaAt` (records
 * written before identities carry none), if any. The scripts pass on only records they checked;
 * anything else here would still be a miss, never an error, so that data can't trip the breaker.
 * Every L2 read passes here: it reads the reply in place.
 */
const storedIn = (r: ReadonlyArray<string | null>, at: number, schemaAt: number): Option.Option<Stored> => {
  const data = r[at + 4]
  if (data === null || data === undefined) return Option.none()
  const bucket = field(r[at])
  const fence = field(r[at + 1])
  const windowMs = field(r[at + 2])
  const computedAt = field(r[at + 3])
  if (!Number.isSafeInteger(bucket) || !Number.isSafeInteger(fence) || !Number.isSafeInteger(windowMs) || windowMs <= 0) {
    return Option.none()
  }
  if (!Number.isFinite(computedAt)) return Option.none()
  const schema = r[schemaAt]
  return Option.some(
    schema === null || schema === undefined || schema === ""
      ? { data, bucket, fence, windowMs, computedAt }
      : { data, bucket, fence, windowMs, computedAt, schema }
  )
}

/** The record a script's reply carries at `at`, its schema identity right after it. */
const parseStored = (r: ReadonlyArray<string>, at: number): Option.Option<Stored> => storedIn(r, at, at + 5)

const asReply = (operation: string, raw: unknown): Effect.Effect<ReadonlyArray<string>, RedisError> =>
  Array.isArray(raw) && raw.length >= 3 && raw.every((x) => typeof x === "string" || Buffer.isBuffer(x))
    ? Effect.succeed(raw.map(String))
    : Effect.fail(new RedisError({ reason: "Protocol", operation, cause: raw }))

/** `[status, now, mark]`, or `undefined`. */
const header = (r: ReadonlyArray<string>) => {
  const n = numbers(r, 1, 2)
  return n === undefined ? undefined : { status: r[0], now: n[0]!, mark: n[1]! }
}

export const decodeClaim = (r: ReadonlyArray<string>): Claim | undefined => {
  const h = header(r)
  if (h === undefined) return undefined
  const { mark, now } = h
  switch (h.status) {
    case "fresh": {
      const stored = parseStored(r, 3)
      return Option.isSome(stored) ? { _tag: "Fresh", now, mark, stored: stored.value } : undefined
    }
    case "busy":
    case "backoff": {
      const ttl = numbers(r, 3, 1)
      if (ttl === undefined) return undefined
      return { _tag: h.status === "busy" ? "Busy" : "Backoff", now, mark, ttlMs: Math.max(0, ttl[0]!), stored: parseStored(r, 4) }
    }
    case "acquired": {
      const n = numbers(r, 3, 2)
      if (n === undefined) return undefined
      return { _tag: "Acquired", now, mark, bucket: n[0]!, fence: n[1]!, stored: parseStored(r, 5) }
    }
  }
  return undefined
}

export const decodeCommit = (r: ReadonlyArray<string>): Commit | undefined => {
  const h = header(r)
  if (h === undefined) return undefined
  const { mark, now } = h
  switch (h.status) {
    case "committed":
      return { _tag: "Committed", now, mark }
    case "pending":
      return { _tag: "Committed", now, mark, pending: true }
    case "older":
    case "fenced":
    case "future":
    case "changed":
      return { _tag: "Refused", reason: h.status, now, mark, stored: parseStored(r, 3) }
  }
  return undefined
}

const decodeRelease = (r: ReadonlyArray<string>): Release | undefined => {
  const h = header(r)
  if (h === undefined) return undefined
  switch (h.status) {
    case "released":
      return { _tag: "Released", now: h.now }
    case "lost":
      return { _tag: "Lost", now: h.now }
    case "backoff": {
      const ms = numbers(r, 3, 1)
      return ms === undefined ? undefined : { _tag: "Backoff", now: h.now, ms: ms[0]! }
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// notices

const bar = 0x7c // "|"

/** Splits `count` `|`-terminated fields off the front of a message; the rest follows them. */
const fields = (message: Buffer, count: number): { readonly parts: Array<string>; readonly rest: number } | undefined => {
  const parts: Array<string> = []
  let at = 0
  for (let i = 0; i < count; i++) {
    const end = message.indexOf(bar, at)
    if (end < 0) return undefined
    parts.push(message.toString("latin1", at, end))
    at = end + 1
  }
  return { parts, rest: at }
}

/** A notice as the scripts publish it; `undefined` for anything else on the channel. */
export const decodeNotice = (message: Buffer): Notice | undefined => {
  const kind = message.toString("latin1", 0, 2)
  if (kind === "c|") {
    const f = fields(message.subarray(2), 6)
    if (f === undefined) return undefined
    const [bucket, fence, windowMs, computedAt, mark, length] = f.parts.map(Number) as [number, number, number, number, number, number]
    if (![bucket, fence, windowMs, computedAt, mark, length].every(Number.isFinite)) return undefined
    const start = 2 + f.rest
    const key = message.toString("utf8", start, start + length)
    const data = message.toString("utf8", start + length)
    return {
      _tag: "Committed",
      key: Keys.unescape(key),
      bucket,
      fence,
      windowMs,
      computedAt,
      mark,
      data: data.length > 0 ? Option.some(data) : Option.none()
    }
  }
  if (kind === "p|") {
    const f = fields(message.subarray(2), 7)
    if (f === undefined) return undefined
    const n = f.parts.map(Number) as [number, number, number, number, number, number, number]
    if (!n.every(Number.isFinite)) return undefined
    const [bucket, fence, windowMs, computedAt, mark, durationMs, length] = n
    const start = 2 + f.rest
    const data = message.toString("utf8", start + length)
    return {
      _tag: "Pending",
      key: Keys.unescape(message.toString("utf8", start, start + length)),
      bucket,
      fence,
      windowMs,
      computedAt,
      mark,
      durationMs,
      data: data.length > 0 ? Option.some(data) : Option.none()
    }
  }
  if (kind === "u|") {
    const f = fields(message.subarray(2), 8)
    if (f === undefined) return undefined
    const n = f.parts.map(Number)
    if (!n.every(Number.isFinite)) return undefined
    const [bucket, fence, windowMs, computedAt, mark, fromBucket, fromFence, length] = n as [number, number, number, number, number, number, number, number]
    const start = 2 + f.rest
    return {
      _tag: "Committed",
      key: Keys.unescape(message.toString("utf8", start, start + length)),
      bucket,
      fence,
      windowMs,
      computedAt,
      mark,
      data: Option.none(),
      from: { bucket: fromBucket, fence: fromFence }
    }
  }
  if (kind === "x|") {
    const f = fields(message.subarray(2), 2)
    if (f === undefined) return undefined
    const [fence, length] = f.parts.map(Number) as [number, number]
    if (!Number.isFinite(fence) || !Number.isFinite(length)) return undefined
    const start = 2 + f.rest
    return { _tag: "Purged", key: Keys.unescape(message.toString("utf8", start, start + length)), fence }
  }
  if (kind === "i|") {
    const f = fields(message.subarray(2), 2)
    if (f === undefined) return undefined
    const [mark, length] = f.parts.map(Number) as [number, number]
    if (!Number.isFinite(mark) || !Number.isFinite(length)) return undefined
    const start = 2 + f.rest
    return { _tag: "Invalidated", key: Keys.unescape(message.toString("utf8", start, start + length)), mark }
  }
  if (kind === "r|") {
    const f = fields(message.subarray(2), 1)
    const length = f === undefined ? NaN : Number(f.parts[0])
    if (f === undefined || !Number.isFinite(length)) return undefined
    const start = 2 + f.rest
    return { _tag: "Released", key: Keys.unescape(message.toString("utf8", start, start + length)) }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// store

/**
 * The fields a plain read takes of a record: `b f w t d`, the full key `k`, the mark `i`, the
 * value committed early for the next window (`pb pf pw pt pd`), and the schema identities of
 * both (`s ps`).
 */
const recordFields = ["b", "f", "w", "t", "d", "k", "i", "pb", "pf", "pw", "pt", "pd", "s", "ps"] as const

/** A plain read's reply: what the scripts would not pass on reads as absent, as they would. */
const decodeRead = (k: Pick<Keys.Keys, "full">, r: ReadonlyArray<string | null>): PlainRead => {
  const ours = (r[5] ?? "") === k.full
  const stored = ours ? storedIn(r, 0, 12) : Option.none()
  const pending = ours ? storedIn(r, 7, 13) : Option.none()
  // a missing field is null, which `Number` would read as 0
  const mark = r[6] === null || r[6] === undefined || r[6] === "" ? -1 : Number(r[6])
  return { mark: Number.isSafeInteger(mark) && mark >= 0 ? mark : -1, stored, pending }
}

/**
 * Another type under a value key (foreign data) is data, not a fault: it reads as absent, as the
 * scripts read it, and the next commit replaces it.
 */
const wrongTypeAsAbsent = (e: unknown): ReadonlyArray<string | null> => {
  if (e instanceof Error && e.message.startsWith("WRONGTYPE")) return recordFields.map(() => null)
  throw e
}

/**
 * `HMGET` of many records in one pipeline. A Cluster takes a pipeline only for keys of one node:
 * the records are grouped by the node that serves their slot (as the client last learnt the
 * slots), one pipeline each, all sent at once.
 */
const readPipelined = async (client: Client.Client, names: ReadonlyArray<string>): Promise<Array<ReadonlyArray<string | null>>> => {
  const groups = new Map<string, Array<number>>()
  if (client instanceof Cluster) {
    const slots = (client as unknown as { readonly slots: ReadonlyArray<ReadonlyArray<string> | undefined> }).slots
    names.forEach((name, i) => {
      const node = slots[Keys.slotOf(name)]?.[0] ?? ""
      const group = groups.get(node)
      if (group === undefined) groups.set(node, [i])
      else group.push(i)
    })
  } else {
    groups.set("", names.map((_, i) => i))
  }
  const out: Array<ReadonlyArray<string | null>> = new Array(names.length)
  await Promise.all([...groups.values()].map(async (indices) => {
    const pipeline = client.pipeline()
    for (const i of indices) pipeline.hmget(names[i]!, ...recordFields)
    const results = await pipeline.exec()
    if (results === null) throw new Error("the pipeline was discarded")
    results.forEach(([error, reply], j) => {
      out[indices[j]!] = error ? wrongTypeAsAbsent(error) : (reply as ReadonlyArray<string | null>)
    })
  }))
  return out
}

type Runner = (name: Scripts.Name, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>) => Promise<unknown>

/** ioredis sends `EVALSHA` and falls back to `EVAL` on `NOSCRIPT` (after a `SCRIPT FLUSH` or a restart). */
const defineScripts = (client: Client.Client): Runner => {
  for (const [name, lua] of Object.entries(Scripts.all)) {
    client.defineCommand(`lockstep_${name}`, { numberOfKeys: Scripts.keyCounts[name as Scripts.Name], lua })
  }
  return (name, keys, args) =>
    (client as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[`lockstep_${name}`]!(
      ...keys,
      ...args
    )
}

export interface FromClientOptions {
  readonly tenant: string
  readonly breakerThreshold: number
  readonly breakerCooldownMs: number
  /** How long subscribing waits for its first confirmation (default 2 s). */
  readonly connectTimeoutMs?: number | undefined
  readonly onBreakerChange?: ((state: Breaker.State) => void) | undefined
}

export const fromClient = (client: Client.Client, options: FromClientOptions): Store => {
  const run = defineScripts(client)
  const tenant = options.tenant
  const prefix = Keys.tenantPrefix(tenant)
  const channel = `${prefix}:lockstep:bus`
  const breakerTags = [Metrics.label("tenant", tenant)]
  const breaker = Breaker.make({
    threshold: options.breakerThreshold,
    cooldownMs: options.breakerCooldownMs,
    onChange: (state) => {
      Metrics.breakerState.unsafeUpdate(Metrics.breakerValue(state), breakerTags)
      options.onBreakerChange?.(state)
    }
  })

  const commandTimeoutMs = commandTimeoutOf(client)
  /** Timeouts the process itself made (see `sendTimed`): the breaker does not count them. */
  const late = new WeakSet<RedisError>()
  /** One command, its failure a `RedisError`. */
  const send = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, RedisError> =>
    sendTimed(client, commandTimeoutMs, f, (cause) =>
      new RedisError({
        reason: cause instanceof Error && /timed? ?out/i.test(cause.message) ? "Timeout" : "Unavailable",
        operation,
        cause
      }), late)
  /** One script call, without the breaker. */
  const attempt = <A>(
    operation: Scripts.Name,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>,
    decode: (r: ReadonlyArray<string>) => A | undefined
  ): Effect.Effect<A, RedisError> =>
    send(operation, () => run(operation, keys, args)).pipe(
      Effect.flatMap((raw) => asReply(operation, raw)),
      Effect.flatMap((r) => {
        const decoded = decode(r)
        return decoded === undefined
          ? Effect.fail(new RedisError({ reason: "Protocol", operation, cause: r }))
          : Effect.succeed(decoded)
      })
    )
  /** The last fault, which a call refused by the open breaker names. */
  let lastFault: RedisError | undefined
  const isFault = (e: RedisError) => {
    // a late timeout: the connection read since the command went out, so Redis is reachable
    if (e.reason === "Protocol" || late.has(e)) return false
    lastFault = e
    return true
  }
  const circuitOpen = (operation: string) => new RedisError({ reason: "CircuitOpen", operation, cause: lastFault })
  /** Plain commands (tag sets live in slots of their own, so no script can touch them with a key's). */
  const tagCall = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, RedisError> =>
    breaker.guard(send(operation, f), () => circuitOpen(operation), isFault)
  const call = <A>(
    operation: Scripts.Name,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>,
    decode: (r: ReadonlyArray<string>) => A | undefined
  ): Effect.Effect<A, RedisError> =>
    breaker.guard(attempt(operation, keys, args, decode), () => circuitOpen(operation), isFault)

  const release = (key: string, token: string, backoff: Backoff | undefined, send: typeof call = call) => {
    const k = Keys.make(prefix, key)
    const base = backoff === undefined ? 0 : Math.max(0, Math.round(backoff.baseMs))
    const max = backoff === undefined ? 0 : Math.max(1, Math.round(backoff.maxMs))
    return send("release", [k.lock, k.failures], [token, base, max, channel, k.escaped], decodeRelease)
  }

  return {
    tenant,
    kind: "redis",
    health: breaker.state,
    get: (key) => {
      const k = Keys.make(prefix, key)
      return call("get", [k.value, k.mark], [k.full], (r) => {
        const h = header(r)
        return h === undefined ? undefined : { now: h.now, mark: h.mark, stored: parseStored(r, 3) }
      })
    },
    read: (key) => {
      const k = Keys.record(prefix, key)
      return tagCall("read", () => client.hmget(k.value, ...recordFields).catch(wrongTypeAsAbsent)).pipe(Effect.map((r) => decodeRead(k, r)))
    },
    readMany: (keys) => {
      if (keys.length === 0) return Effect.succeed([])
      const names = keys.map((key) => Keys.make(prefix, key))
      return tagCall("readMany", () => readPipelined(client, names.map((k) => k.value))).pipe(
        Effect.map((replies) => replies.map((r, i) => decodeRead(names[i]!, r)))
      )
    },
    claim: (key, o) => {
      const k = Keys.make(prefix, key)
      return call(
        "claim",
        [k.value, k.lock, k.fence, k.mark],
        [o.windowMs, o.leaseMs, o.token, o.force ? "1" : "0", k.full, o.retainMs, o.bucket ?? "", o.schema ?? ""],
        decodeClaim
      ).pipe(
        // A claim that timed out (Redis frozen or paused) still runs when Redis wakes up, and
        // would take the lock for a token nobody holds: the fleet would wait a whole lease. A
        // release of that token queued behind it on the same connection undoes it; it is sent
        // past the breaker, which this very timeout may just have opened.
        Effect.tapError((e) =>
          e.reason === "Timeout" ? Effect.forkDaemon(Effect.ignore(release(key, o.token, undefined, attempt))) : Effect.void
        )
      )
    },
    renew: (key, token, leaseMs) =>
      call("renew", [Keys.make(prefix, key).lock], [token, leaseMs], (r) => (r[0] === "held" ? true : r[0] === "lost" ? false : undefined)),
    commit: (key, value, token, details) => {
      const k = Keys.make(prefix, key)
      return call(
        "commit",
        [k.value, k.lock, k.fence, k.failures, k.mark],
        [
          value.bucket,
          value.fence,
          value.windowMs,
          Math.round(value.computedAt),
          value.data,
          token ?? "",
          k.full,
          details.retainMs,
          channel,
          k.escaped,
          details.durationMs === undefined ? "" : Math.round(details.durationMs),
          details.tags === undefined || details.tags.length === 0 ? "" : JSON.stringify(details.tags),
          value.schema ?? ""
        ],
        decodeCommit
      )
    },
    unchanged: (key, value, token, details) => {
      const k = Keys.make(prefix, key)
      return call(
        "unchanged",
        [k.value, k.lock, k.fence, k.failures, k.mark],
        [
          value.from.bucket,
          value.from.fence,
          value.bucket,
          value.fence,
          value.windowMs,
          Math.round(value.computedAt),
          token,
          k.full,
          details.retainMs,
          channel,
          k.escaped,
          details.durationMs === undefined ? "" : Math.round(details.durationMs)
        ],
        decodeCommit
      )
    },
    purge: (key) => {
      const k = Keys.make(prefix, key)
      return call("purge", [k.value, k.lock, k.fence, k.failures, k.mark], [k.full, channel, k.escaped, absentMarkMs], (r) => {
        const h = header(r)
        const n = numbers(r, 3, 1)
        return h === undefined || h.status !== "purged" || n === undefined ? undefined : { now: h.now, fence: n[0]! }
      })
    },
    // past the breaker: a lock left behind costs the fleet a whole lease, and the release is
    // worth a try whatever the breaker counted (a refused commit may just have opened it)
    release: (key, token, backoff) => release(key, token, backoff, attempt),
    invalidate: (key, options) => {
      const k = Keys.make(prefix, key)
      return call("invalidate", [k.value, k.fence, k.mark], [k.full, channel, k.escaped, options?.markAbsent === false ? 0 : absentMarkMs], (r) => {
        const h = header(r)
        if (h === undefined || (h.status !== "invalidated" && h.status !== "absent")) return undefined
        return { now: h.now, mark: h.status === "absent" && h.mark < 0 ? Option.none() : Option.some(h.mark) }
      })
    },
    tag: (key, tags, { retainMs }) => {
      const member = Keys.make(prefix, key).escaped
      // one script per tag: each set is a slot of its own
      return tagCall("tag", () => Promise.all(tags.map((tag) => run("tag", [Keys.tagKey(prefix, tag)], [member, retainMs])))).pipe(
        Effect.asVoid
      )
    },
    untag: (tag, keys) =>
      keys.length === 0
        ? Effect.void
        : Effect.asVoid(tagCall("untag", () => client.srem(Keys.tagKey(prefix, tag), ...keys.map((key) => Keys.make(prefix, key).escaped)))),
    tagged: (tag) =>
      tagCall("tagged", async () => {
        const name = Keys.tagKey(prefix, tag)
        const found = new Set<string>()
        let cursor = "0"
        do {
          const [next, members] = await (client as IORedis).sscan(name, cursor, "COUNT", 1000)
          for (const m of members) found.add(Keys.unescape(m))
          cursor = next
        } while (cursor !== "0")
        return [...found]
      }),
    set: (key, value, { retainMs }) => {
      const k = Keys.make(prefix, key)
      return call(
        "set",
        [k.value, k.fence, k.failures, k.mark],
        [value.windowMs, value.data, k.full, retainMs, channel, k.escaped, value.schema ?? ""],
        (r) => {
          const h = header(r)
          const n = numbers(r, 3, 2)
          return h === undefined || h.status !== "set" || n === undefined
            ? undefined
            : { now: h.now, mark: h.mark, bucket: n[0]!, fence: n[1]! }
        }
      )
    },
    subscribe: (subscriber) => subscribe(client, channel, subscriber, options.connectTimeoutMs ?? 2_000),
    scan: ({ count, cursor }) => tagCall("scan", () => scan(client, prefix, run, cursor, count))
  }
}

/** `SCAN` over every primary (one for a standalone server), a page at a time, then each key's state. */
const scan = async (
  client: Client.Client,
  prefix: string,
  run: Runner,
  cursor: string | undefined,
  count: number
): Promise<Scanned> => {
  const nodes: ReadonlyArray<IORedis> = client instanceof Cluster ? client.nodes("master") : [client]
  const [at, from] = cursor === undefined ? [0, "0"] : [Number(cursor.split(":")[0]) || 0, cursor.split(":")[1] ?? "0"]
  const node = nodes[at] ?? nodes[0]!
  const [[seconds, micros], [next, names]] = await Promise.all([
    node.time(),
    nodes[at] === undefined ? Promise.resolve(["0", []] as [string, Array<string>]) : node.scan(from, "MATCH", Keys.valuePattern(prefix), "COUNT", Math.max(1, Math.floor(count) || 1))
  ])
  const found = await Promise.all(names.map(async (name) => {
    const key = Keys.keyOfValue(prefix, name)
    // a hashed key's name does not tell the key: its record does
    const full = key === undefined ? String(await node.hget(name, "k") ?? "") : ""
    if (key === undefined && full === "") return undefined
    const base = name.slice(0, -2)
    const reply = await run("inspect", [name, `${base}:l`, `${base}:i`], [full]) as ReadonlyArray<unknown>
    return decodeInspect(key ?? Keys.unescape(full), reply.map(String))
  }))
  const keys = found.flatMap((f) => (f === undefined ? [] : [f.inspected]))
  const done = next === "0" || nodes[at] === undefined
  return {
    now: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000),
    keys,
    cursor: done ? (at + 1 < nodes.length ? Option.some(`${at + 1}:0`) : Option.none()) : Option.some(`${at}:${next}`)
  }
}

const decodeInspect = (key: string, r: ReadonlyArray<string>): { now: number; inspected: Inspected } | undefined => {
  const h = header(r)
  const pttl = Number(r[4])
  if (h === undefined || r[0] !== "ok" || !Number.isFinite(pttl)) return undefined
  const held = r[3] ?? ""
  const backoff = held.startsWith("backoff:")
  const n = r[5] === "1" ? numbers(r, 6, 5) : undefined
  let tags: ReadonlyArray<string> = []
  try {
    const parsed: unknown = r[12] ? JSON.parse(r[12]) : []
    if (Array.isArray(parsed)) tags = parsed.filter((t): t is string => typeof t === "string")
  } catch {
    // not ours: no tags to show
  }
  const duration = Number(r[11])
  return {
    now: h.now,
    inspected: {
      key,
      mark: h.mark,
      stored: n === undefined ? Option.none() : Option.some({
        bucket: n[0]!,
        fence: n[1]!,
        windowMs: n[2]!,
        computedAt: n[3]!,
        size: n[4]!,
        durationMs: r[11] !== undefined && r[11] !== "" && Number.isFinite(duration) ? Option.some(duration) : Option.none(),
        tags
      }),
      lock: held !== "" && !backoff ? Option.some({ holder: held, ttlMs: Math.max(0, pttl) }) : Option.none(),
      backoffMs: backoff ? Option.some(Math.max(0, pttl)) : Option.none()
    }
  }
}

/**
 * Listens on the tenant's channel with a connection of its own. It is `up` once `SUBSCRIBE` is
 * confirmed after each (re)connect and `down` from the moment the connection drops: notices sent
 * meanwhile are lost, which the subscriber must assume. Acquiring it waits (up to
 * `connectTimeoutMs`) for the first confirmation, so a process starts with a trusted L1.
 */
const subscribe = (client: Client.Client, channel: string, subscriber: Subscriber, connectTimeoutMs: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const connection: IORedis = Client.subscriberOf(client)
      let closed = false
      let resolveUp: () => void = () => {}
      const firstUp = new Promise<void>((resolve) => {
        resolveUp = resolve
      })
      connection.on("error", () => {})
      const onReady = () => {
        connection.subscribe(channel).then(
          () => {
            if (closed) return
            subscriber.onState("up")
            resolveUp()
          },
          () => {
            // the connection dropped again before confirming; the next `ready` retries
          }
        )
      }
      connection.on("ready", onReady)
      connection.on("close", () => {
        if (!closed) subscriber.onState("down")
      })
      const heard = { messages: 0 }
      connection.on("messageBuffer", (from: Buffer, message: Buffer) => {
        heard.messages++
        if (closed || from.toString() !== channel) return
        const notice = decodeNotice(message)
        if (notice !== undefined) subscriber.onNotice(notice)
      })
      if (connection.status === "ready") onReady()
      return {
        connection,
        heard,
        firstUp,
        /** The connection is open but answers nothing (a black hole): down, and connect again. */
        lost: () => {
          if (closed) return
          subscriber.onState("down")
          connection.disconnect(true)
        },
        close: () => {
          closed = true
          resolveUp()
          connection.disconnect()
        }
      }
    }),
    (s) => Effect.sync(() => s.close())
  ).pipe(
    // the heartbeat measures the network, which runs on real time: it lives on Effect's default
    // runtime (its live clock), not on the caller's, whose clock may be a `TestClock`; it is
    // owned by the subscription's scope all the same
    Effect.tap((s) =>
      Effect.acquireRelease(
        Effect.sync(() => Runtime.runFork(Runtime.defaultRuntime)(heartbeat(s.connection, s.heard, s.lost))),
        Fiber.interrupt
      )
    ),
    // the command connection already had its `connectTimeout`: when it is not up, Redis is
    // down, and the subscription would only double the wait before the process starts degraded
    Effect.flatMap((s) => Effect.timeoutOption(Effect.promise(() => s.firstUp), client.status === "ready" ? connectTimeoutMs : 0)),
    Effect.asVoid
  )

/**
 * How long the subscriber connection may stay silent before it is asked for a `PING`. A
 * connection's events tell of a close, not of a path that went silent; a ping that fails (the
 * connection's `commandTimeout` bounds it, on the network's own time, whatever clock the
 * runtime has) makes the subscription count as down (no L1 freshness is trusted) until it has
 * subscribed again. A notice heard meanwhile is answer enough: a busy fleet sends no ping.
 *
 * A timeout alone is not a silent path: when the event loop was held past `commandTimeout` (by
 * a handler run on I/O, say), the ping's timer runs before the socket that holds its reply is
 * polled again. So a timed-out ping is a loss only if, once the loop has read what is pending,
 * the socket received nothing since the ping went out.
 */
const heartbeatMs = 1_000

/** What each socket of a client has read so far (a `Cluster` has one per node). */
type Received = ReadonlyArray<{ readonly stream: IORedis["stream"] | undefined; readonly bytes: number }>

const received = (client: Client.Client): Received =>
  (client instanceof Cluster ? client.nodes() : [client]).map((c) => {
    const stream: IORedis["stream"] | undefined = c.stream
    return { stream, bytes: stream?.bytesRead ?? 0 }
  })

/** Whether a socket that was open at `before` has read anything since. */
const readSince = (client: Client.Client, before: Received): boolean =>
  received(client).some((a) => a.stream !== undefined && before.some((b) => b.stream === a.stream && a.bytes > b.bytes))

/**
 * How many turns of the event loop a timed-out command's reply is given to be read: each
 * `Effect.sleep` of a millisecond fires in a later turn than the one that set it, after that
 * turn's poll for I/O (a proxy in the same process needs two polls to pass a reply on).
 */
const settleTurns = 3

/** Effect's live clock: the network runs on real time, whatever clock the caller's runtime has. */
const liveClock = Clock.make()

/** Lets up to `settleTurns` turns of the event loop pass while `pending` holds; whether it still does. */
const settle = (pending: () => boolean, turns = settleTurns): Effect.Effect<boolean> =>
  Effect.suspend(() =>
    !pending()
      ? Effect.succeed(false)
      : turns === 0
      ? Effect.succeed(true)
      : Effect.zipRight(Effect.withClock(Effect.sleep(1), liveClock), settle(pending, turns - 1))
  )

/** The `commandTimeout` a client's commands have (none: never late). */
const commandTimeoutOf = (client: Client.Client): number =>
  (client instanceof Cluster ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout) ?? Infinity

/**
 * When a command's timeout fires this long after `commandTimeout` (as a share of it), the
 * process itself was late: its event loop was held, and the reply may be waiting on the socket.
 */
const lateShare = 0.5

/**
 * Sends one command. A timeout is the process's own, and added to `late`, when its timer fired
 * well after `commandTimeout` (on the live clock) and, once the loop has read what is pending,
 * the connection has read something since the command went out: ioredis's timer and the reply
 * were ready in the same turn, and Node runs timers first. A timer that fires on time (a slow
 * Redis, or a slow path) or a connection that read nothing (a black hole, a frozen server) is
 * a fault as before.
 */
const sendTimed = <A>(
  client: Client.Client,
  commandTimeoutMs: number,
  f: () => Promise<A>,
  toError: (cause: unknown) => RedisError,
  late: WeakSet<RedisError>
): Effect.Effect<A, RedisError> =>
  Effect.suspend(() => {
    const sentAt = liveClock.unsafeCurrentTimeNanos()
    const before = received(client)
    return Effect.tapError(Effect.tryPromise({ try: f, catch: toError }), (e) => {
      const waitedMs = Number(liveClock.unsafeCurrentTimeNanos() - sentAt) / 1e6
      return e.reason !== "Timeout" || waitedMs < commandTimeoutMs * (1 + lateShare)
        ? Effect.void
        : Effect.map(settle(() => !readSince(client, before)), (silent) => {
          if (!silent) late.add(e)
        })
    })
  })

const heartbeat = (connection: IORedis, heard: { readonly messages: number }, lost: () => void): Effect.Effect<void> => {
  let seen = heard.messages
  const ping = Effect.suspend(() => {
    const [before] = received(connection)
    // anything the socket read since the ping was sent (its reply, a notice) shows the path is
    // alive; a new socket means the old one closed, which its `close` already reported
    const silent = () => {
      const [after] = received(connection)
      return after?.stream !== undefined && after.stream === before?.stream && after.bytes === before.bytes
    }
    return Effect.catchAll(
      Effect.tryPromise(() => connection.ping()),
      () =>
        Effect.map(settle(silent), (still) => {
          if (still) lost()
        })
    )
  })
  return Effect.suspend(() => {
    const quiet = heard.messages === seen
    seen = heard.messages
    return connection.status !== "ready" || !quiet ? Effect.void : ping
  }).pipe(Effect.delay(heartbeatMs), Effect.forever)
}
