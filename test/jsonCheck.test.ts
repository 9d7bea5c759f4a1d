/**
 * The JSON check a loader's decode tries before Schema: wherever it passes, Schema's decode of
 * the same value succeeds and gives it back unchanged (the same properties in the same order),
 * so answering the parsed value is answering what Schema would have built. Where it fails, or
 * does not apply, Schema decides: a loader's values decode exactly as before.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, Schema } from "effect"
import * as fc from "fast-check"
import * as JsonCheck from "../src/internal/memo/jsonCheck.js"

const Point = Schema.Struct({ x: Schema.Number, y: Schema.Number })
const schemas = {
  dashboard: Schema.Struct({
    key: Schema.String,
    volume: Schema.Number,
    flag: Schema.Boolean,
    kind: Schema.Literal("a", "b"),
    note: Schema.optional(Schema.String),
    exact: Schema.optionalWith(Schema.Number, { exact: true }),
    parent: Schema.NullOr(Point),
    series: Schema.Array(Schema.Struct({ day: Schema.String, volume: Schema.Number })),
    extra: Schema.Unknown
  }),
  points: Schema.Array(Point),
  scalar: Schema.Union(Schema.String, Schema.Number, Schema.Literal(null)),
  tagged: Schema.TaggedStruct("T", { n: Schema.Number })
}

/** Any JSON value, to mix into a schema's own values. */
const json = fc.jsonValue({ maxDepth: 2 })

/**
 * A schema's values as the store holds them (encoded, through JSON), and the same nudged off
 * their shape: a property added, one removed, the properties reversed, one replaced.
 */
const storedValues = (schema: Schema.Schema<any, any, never>) =>
  fc.tuple(Arbitrary.make(schema), fc.nat(3), fc.string({ maxLength: 3 }), json).map(([value, nudge, name, other]) => {
    const stored: unknown = JSON.parse(JSON.stringify(Schema.encodeSync(schema)(value)))
    if (typeof stored !== "object" || stored === null || Array.isArray(stored)) return stored
    const entries = Object.entries(stored)
    switch (nudge) {
      case 0:
        return stored
      case 1:
        return { ...stored, [name]: other }
      case 2:
        return Object.fromEntries(entries.reverse())
      default:
        return Object.fromEntries(entries.slice(1))
    }
  })

const decoded = (schema: Schema.Schema<any, any, never>, u: unknown) => Schema.decodeUnknownEither(schema)(u)

describe("JsonCheck", () => {
  for (const [name, schema] of Object.entries(schemas)) {
    it(`${name}: a value the check passes decodes to itself, properties in the same order`, () => {
      const check = JsonCheck.compile(schema.ast)
      expect(check).toBeDefined()
      let passed = 0
      fc.assert(fc.property(storedValues(schema), (parsed) => {
        if (!check!(parsed)) return
        passed++
        const d = decoded(schema, parsed)
        expect(Either.isRight(d)).toBe(true)
        expect(JSON.stringify(Either.getOrThrow(d))).toBe(JSON.stringify(parsed))
      }), { numRuns: 2_000 })
      // the property is about values the check passes: most of the schema's own are
      expect(passed).toBeGreaterThan(200)
    })
  }

  for (const [name, schema] of Object.entries(schemas) as Array<[string, Schema.Schema<any, any, never>]>) {
    it(`${name}: a value the check passes is written by JSON.stringify as Schema's encode writes it`, () => {
      const check = JsonCheck.compile(schema.ast)!
      const encode = Schema.encodeEither(Schema.parseJson(schema))
      let passed = 0
      fc.assert(fc.property(Arbitrary.make(schema), fc.nat(2), fc.string({ maxLength: 3 }), json, (value, nudge, name, other) => {
        // a value as a lookup may return it: with a property the schema does not know, or a `toJSON`
        const v = typeof value !== "object" || value === null || Array.isArray(value) || nudge === 0
          ? value
          : nudge === 1
          ? { ...value, [name]: other }
          : Object.assign(new (class Row {
            toJSON() {
              return other
            }
          })(), value)
        if (!check(v)) return
        passed++
        expect(JSON.stringify(v)).toBe(Either.getOrThrow(encode(v)))
      }), { numRuns: 1_000 })
      expect(passed).toBeGreaterThan(100)
    })
  }

  it("passes a value as a loader commits it, and leaves to Schema what decoding would change", () => {
    const check = JsonCheck.compile(schemas.dashboard.ast)!
    const value = {
      key: "k",
      volume: 1,
      flag: true,
      kind: "a" as const,
      parent: { x: 1, y: 2 },
      series: [{ day: "d", volume: 2 }],
      extra: { any: [1] }
    }
    const encoded = JSON.parse(JSON.stringify(Schema.encodeSync(schemas.dashboard)(value)))
    expect(check(encoded)).toBe(true)
    // an extra property (decoding drops it), another order, a missing or mistyped field
    expect(check({ ...encoded, other: 1 })).toBe(false)
    expect(check({ volume: 1, ...encoded })).toBe(false)
    expect(check({ ...encoded, series: [{ volume: 2, day: "d" }] })).toBe(false)
    const { key: _, ...missing } = encoded
    expect(check(missing)).toBe(false)
    expect(check({ ...encoded, volume: "1" })).toBe(false)
    expect(check({ ...encoded, kind: "c" })).toBe(false)
  })

  it("does not apply where decoding transforms, refines or must choose", () => {
    for (
      const schema of [
        Schema.Struct({ n: Schema.Int }),
        Schema.Struct({ at: Schema.Date }),
        Schema.Struct({ n: Schema.optionalWith(Schema.Number, { default: () => 0 }) }),
        Schema.Record({ key: Schema.String, value: Schema.Number }),
        Schema.Tuple(Schema.String, Schema.Number),
        Schema.Union(Point, Schema.Struct({ x: Schema.Number })),
        Schema.BigInt
      ] as ReadonlyArray<Schema.Schema<any, any, never>>
    ) {
      expect(JsonCheck.compile(schema.ast)).toBeUndefined()
    }
  })
})
