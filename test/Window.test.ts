import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { Window } from "../src/index.js"

describe("Window", () => {
  it("numbers windows from the epoch, so every process agrees", () => {
    expect(Window.bucketOf(0, 1000)).toBe(0)
    expect(Window.bucketOf(999, 1000)).toBe(0)
    expect(Window.bucketOf(1000, 1000)).toBe(1)
    expect(Window.bucketOf(1_795_737_861_735, 60_000)).toBe(29_928_964)
    expect(Window.startOf(29_928_964, 60_000)).toBe(1_795_737_840_000)
  })

  it("puts the next boundary strictly after now, at most one window away", () => {
    expect(Window.nextBoundary(1000, 1000)).toBe(2000)
    expect(Window.untilNextBoundary(1000, 1000)).toBe(1000)
    expect(Window.untilNextBoundary(1999, 1000)).toBe(1)
    for (const now of [0, 1, 12_345, 99_999]) {
      const until = Window.untilNextBoundary(now, 7_000)
      expect(until).toBeGreaterThan(0)
      expect(until).toBeLessThanOrEqual(7_000)
      expect(Window.bucketOf(now + until, 7_000)).toBe(Window.bucketOf(now, 7_000) + 1)
    }
  })

  it("accepts durations and rejects windows that cannot be bucketed", () => {
    expect(Window.toMillis("2 seconds")).toEqual(Either.right(2000))
    expect(Window.toMillis(1500)).toEqual(Either.right(1500))
    for (const bad of [0, -1, "0 millis", "-5 seconds", "banana", Infinity, NaN, "0.5 millis", "2 years", null]) {
      const result = Window.toMillis(bad as never)
      expect(Either.isLeft(result), `window ${String(bad)}`).toBe(true)
      if (Either.isLeft(result)) expect(result.left._tag).toBe("InvalidWindow")
    }
  })
})
