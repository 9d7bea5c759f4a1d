/**
 * The runtime's settings, checked once when the runtime is built, and the options of a loader,
 * checked once when it is defined. A bad value is `InvalidOptions`: at layer construction for
 * settings, thrown at definition for a loader (a programmer's mistake, like `Duration.decode`'s).
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

export class InvalidOptions extends Data.TaggedError("InvalidOptions")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export interface Settings {
  readonly lease: Duration.DurationInput
  readonly pollInterval: Duration.DurationInput
  readonly redisRetry: Duration.DurationInput
  readonly failureBackoff: Duration.DurationInput
  readonly maxFailureBackoff: Duration.DurationInput
  readonly degradedAfter: Duration.DurationInput
  readonly maxRun: Duration.DurationInput
  readonly l1Capacity: number
}

export const defaults: Settings = {
  lease: "10 seconds",
  pollInterval: "50 millis",
  redisRetry: "250 millis",
  failureBackoff: "1 second",
  maxFailureBackoff: "30 seconds",
  degradedAfter: "1 second",
  maxRun: "5 minutes",
  l1Capacity: 10_000
}

export interface Resolved {
  readonly leaseMs: number
  readonly pollMs: number
  readonly redisRetryMs: number
  readonly backoffMs: number
  readonly maxBackoffMs: number
  readonly degradedAfterMs: number
  readonly maxRunMs: number
  readonly l1Capacity: number
}

/** The longest delay Effect and Node timers support: a longer one never wakes, or fires at once. */
export const maxTimerMs = 2 ** 31 - 1

const describe = (input: unknown): string => {
  if (Duration.isDuration(input)) return Duration.format(input)
  try {
    return JSON.stringify(input) ?? String(input)
  } catch {
    return String(input)
  }
}

/** A duration in whole milliseconds within `[min, max]`, or `InvalidOptions` naming it. */
export const millis = (
  name: string,
  input: unknown,
  min: number,
  max: number = maxTimerMs
): Either.Either<number, InvalidOptions> => {
  // Duration clamps negative inputs to zero: a negative duration is a mistake, not a zero
  const negative = (typeof input === "number" && input < 0) || (typeof input === "string" && input.trim().startsWith("-"))
  const decoded = Duration.decodeUnknown(input)
  const ms = negative ? NaN : Option.isSome(decoded) ? Duration.toMillis(decoded.value) : NaN
  if (!(ms >= min && ms <= max)) {
    const range = max === Infinity ? `at least ${min} ms` : `from ${min} ms to ${Duration.format(Duration.millis(max))}`
    return Either.left(new InvalidOptions({ message: `${name} must be a duration ${range}, got ${describe(input)}` }))
  }
  return Either.right(Math.round(ms))
}

export const resolve = (settings: Partial<Settings>): Either.Either<Resolved, InvalidOptions> =>
  Either.gen(function*() {
    const s = { ...defaults, ...settings }
    const leaseMs = yield* millis("lease", s.lease, 30)
    const maxBackoffMs = yield* millis("maxFailureBackoff", s.maxFailureBackoff, 0)
    const l1Capacity = s.l1Capacity
    if (!Number.isSafeInteger(l1Capacity) || l1Capacity < 1) {
      return yield* Either.left(new InvalidOptions({ message: `l1Capacity must be a positive whole number, got ${describe(l1Capacity)}` }))
    }
    return {
      leaseMs,
      pollMs: yield* millis("pollInterval", s.pollInterval, 1),
      redisRetryMs: yield* millis("redisRetry", s.redisRetry, 1),
      backoffMs: yield* millis("failureBackoff", s.failureBackoff, 0),
      maxBackoffMs,
      degradedAfterMs: yield* millis("degradedAfter", s.degradedAfter, 0),
      maxRunMs: yield* millis("maxRun", s.maxRun, 1),
      l1Capacity
    }
  })
