/**
 * The JSON check a loader's decode tries before Schema: wherever it passes, Schema's decode of
 * the same value succeeds and gives it back unchanged (the same properties in the same order),
 * so answering the parsed value is answering what Schema would have built. Where it fails, or
 * does not apply, Schema decides: a loader's values decode exactly as before.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, Either, Option, Schema } from "effect"
import * as fc from "fast-check"
import { isDeepStrictEqual } from "node:util"
import { Memo, Redis } from "../src/index.js"
import * as JsonCheck from "../src/internal/memo/jsonCheck.js"
import * as Testing from "../src/Testing.js"

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
      const check = JsonCheck.compile(schema.ast, "value")!
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

  /**
   * Values a lookup or a `set` may hand over that JSON.parse never makes: properties Schema reads
   * (inherited, not enumerable) or sees (a symbol, under `onExcessProperty`) and JSON.stringify
   * does not write. Schema's encode decides for each of them, as it did before the check.
   */
  const hidden = (() => {
    const xy = Schema.Struct({ x: Schema.Number, y: Schema.Number })
    const notEnumerable = <A extends object>(o: A, name: string, value: unknown): A =>
      Object.defineProperty(o, name, { value, enumerable: false })
    return [
      // Schema reads an inherited property it requires (not exact) and writes it as its own
      { name: "a required property inherited", schema: xy, value: () => Object.assign(Object.create({ y: 2 }), { x: 1 }) },
      // Schema reads an own property whatever its enumerability
      {
        name: "an optional property not enumerable",
        schema: Schema.Struct({ x: Schema.Number, y: Schema.optional(Schema.Number) }),
        value: () => notEnumerable({ x: 1 }, "y", 2)
      },
      {
        name: "an extra property not enumerable, preserved",
        schema: xy.annotations({ parseOptions: { onExcessProperty: "preserve" } }),
        value: () => notEnumerable({ x: 1, y: 2 }, "z", 3)
      },
      {
        name: "an extra property not enumerable, an error",
        schema: xy.annotations({ parseOptions: { onExcessProperty: "error" } }),
        value: () => notEnumerable({ x: 1, y: 2 }, "z", 3)
      },
      {
        name: "a symbol key, an error",
        schema: xy.annotations({ parseOptions: { onExcessProperty: "error" } }),
        value: () => ({ x: 1, y: 2, [Symbol.for("meta")]: 3 })
      },
      {
        name: "an optional property not enumerable, before one that is",
        schema: Schema.Struct({ x: Schema.optional(Schema.Number), y: Schema.Number }),
        value: () => notEnumerable({ y: 2 }, "x", 1)
      },
      {
        name: "a symbol key in an element, an error for the array and what it holds",
        schema: Schema.Array(xy).annotations({ parseOptions: { onExcessProperty: "error" } }),
        value: () => [{ x: 1, y: 2, [Symbol.for("meta")]: 3 }]
      },
      {
        name: "nested: an inherited property in an array's element",
        schema: Schema.Array(xy),
        value: () => [{ x: 1, y: 2 }, Object.assign(Object.create({ y: 2 }), { x: 1 })]
      }
    ] as ReadonlyArray<{ readonly name: string; readonly schema: Schema.Schema<any, any, never>; readonly value: () => unknown }>
  })()

  for (const { name, schema, value } of hidden) {
    it(`a value to encode with ${name}: the check passes it only if JSON.stringify writes what Schema's encode writes`, () => {
      const check = JsonCheck.compile(schema.ast, "value")!
      expect(check).toBeDefined()
      const v = value()
      const encoded = Schema.encodeEither(Schema.parseJson(schema))(v)
      if (check(v)) expect(JSON.stringify(v)).toBe(Either.getOrThrow(encoded))
    })

    it.effect(`set of a value with ${name} stores what Schema's encode writes, or fails as it does`, () =>
      Effect.gen(function*() {
        const page = Memo.loader({ key: "page", window: 10_000, schema, lookup: () => Effect.die("not called") })
        const v = value()
        const encoded = Schema.encodeEither(Schema.parseJson(schema))(v)
        const written = yield* Effect.either(page.set(undefined, v))
        expect(Either.isRight(written)).toBe(Either.isRight(encoded))
        if (Either.isRight(encoded)) {
          const stored = yield* Effect.flatMap(Redis.Redis, (store) => store.get("page"))
          expect(Option.map(stored.stored, (s) => s.data)).toEqual(Option.some(encoded.right))
        }
      }).pipe(Effect.provide(Testing.layer)))
  }

  /**
   * Schemas of the subset the check compiles, drawn at random: property names that enumerate in
   * another order than written ("0", "10") or that objects inherit ("constructor"), optional and
   * exact properties, unions, and `parseOptions` that change how Schema parses a struct.
   */
  const anySchema: fc.Arbitrary<Schema.Schema<any, any, never>> = (() => {
    type S = Schema.Schema<any, any, never>
    const names = ["a", "b", "0", "10", "constructor", "_tag"]
    const leaf: fc.Arbitrary<S> = fc.oneof(
      fc.constantFrom<S>(Schema.String, Schema.Number, Schema.Boolean, Schema.Unknown, Schema.Any, Schema.Null, Schema.Undefined),
      fc.array(fc.constantFrom<any>("a", "1", 0, 1, true, null, ""), { minLength: 1, maxLength: 3 }).map((ls) => Schema.Literal(...(ls as [any])))
    )
    const parseOptions = fc.option(
      fc.record({
        onExcessProperty: fc.constantFrom("ignore", "error", "preserve"),
        exact: fc.boolean(),
        propertyOrder: fc.constantFrom("none", "original")
      }, { requiredKeys: [] }),
      { nil: undefined }
    )
    const annotated = (s: S, options: object | undefined): S => options === undefined ? s : s.annotations({ parseOptions: options })
    const property = (type: S, kind: string) =>
      kind === "required" ? type : kind === "optional" ? Schema.optional(type) : Schema.optionalWith(type, { exact: true })
    return fc.letrec<{ s: S }>((tie) => ({
      s: fc.oneof(
        { depthSize: "small" },
        leaf,
        fc.tuple(
          fc.uniqueArray(fc.tuple(fc.constantFrom(...names), fc.constantFrom("required", "optional", "exact")), { selector: (p) => p[0], maxLength: 4 }),
          fc.array(tie("s"), { minLength: 4, maxLength: 4 }),
          parseOptions
        ).map(([ps, types, options]) => annotated(Schema.Struct(Object.fromEntries(ps.map(([name, kind], i) => [name, property(types[i]!, kind)]))), options)),
        tie("s").map((s): S => Schema.Array(s)),
        fc.tuple(fc.array(leaf, { maxLength: 2 }), tie("s"), parseOptions).map(([ps, s, options]) => annotated(Schema.Union(...ps, s), options))
      ) as fc.Arbitrary<S>
    })).s
  })()

  it("any schema of the subset: parsed JSON the check passes decodes to itself, a value it passes encodes to its JSON.stringify", () => {
    let passed = 0
    fc.assert(
      fc.property(
        anySchema.chain((schema) => fc.tuple(fc.constant(schema), Arbitrary.make(schema), json, fc.constantFrom("a", "0", "z"), json)),
        ([schema, value, other, name, extra]) => {
          const check = JsonCheck.compile(schema.ast)
          const checkValue = JsonCheck.compile(schema.ast, "value")
          expect(checkValue === undefined).toBe(check === undefined)
          if (check === undefined || checkValue === undefined) return
          // Schema cannot build the parser of every such schema (a union of structs with a literal
          // under an inherited name): the loader's definition throws, the check is never used
          try {
            Schema.encodeEither(Schema.parseJson(schema))
            Schema.decodeUnknownEither(schema)
          } catch {
            return
          }
          const encoded = Schema.encodeEither(Schema.parseJson(schema))(value)
          const text = (() => {
            try {
              return JSON.stringify(value)
            } catch {
              return undefined
            }
          })()
          // what the store gets: the encode falls back to Schema where JSON.stringify writes nothing
          if (checkValue(value) && text !== undefined) expect(text).toBe(Either.getOrThrow(encoded))
          const stored: Array<unknown> = [other]
          if (Either.isRight(encoded)) {
            const parsed: unknown = JSON.parse(encoded.right)
            stored.push(parsed)
            if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
              stored.push({ ...parsed, [name]: extra }, Object.fromEntries(Object.entries(parsed).reverse()))
            }
          }
          for (const u of stored) {
            const parsed: unknown = JSON.parse(JSON.stringify(u))
            if (!check(parsed)) continue
            passed++
            const d = decoded(schema, parsed)
            expect(Either.isRight(d)).toBe(true)
            // deep-equal with the same properties in the same order, at every level
            expect(JSON.stringify(Either.getOrThrow(d))).toBe(JSON.stringify(parsed))
            expect(isDeepStrictEqual(Either.getOrThrow(d), parsed)).toBe(true)
          }
        }
      ),
      { numRuns: 1_000 }
    )
    expect(passed).toBeGreaterThan(100)
  })
})
