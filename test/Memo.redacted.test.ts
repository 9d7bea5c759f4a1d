/**
 * A schema that contains `Redacted` would put the secret in Redis, and on the notices, in
 * clear: refused when the loader is defined, unless the loader opts in.
 */
import * as Model from "@effect/sql/Model"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Memo } from "../src/index.js"

class User extends Model.Class<User>("User")({
  id: Model.Generated(Schema.Number),
  name: Schema.String,
  apiToken: Model.Sensitive(Schema.Redacted(Schema.String))
}) {}

const lookup = () => Effect.die("not run")

/** The message of the `InvalidOptions` that `define` throws, or `undefined`. */
const refusal = (define: () => unknown): string | undefined => {
  try {
    define()
    return undefined
  } catch (e) {
    expect(e).toBeInstanceOf(Memo.InvalidOptions)
    return (e as Memo.InvalidOptions).message
  }
}

describe("a schema with Redacted", () => {
  it("an @effect/sql model with a Sensitive Redacted field is refused, pointing at its public variant", () => {
    const message = refusal(() => Memo.loader({ key: (id: number) => `user:${id}`, window: "1 minute", schema: User, lookup }))
    expect(message).toContain("Redacted")
    expect(message).toContain("User.json")
    expect(message).toContain("storeRedacted")
    // the public variant holds no secret
    expect(refusal(() => Memo.loader({ key: (id: number) => `user:${id}`, window: "1 minute", schema: User.json, lookup }))).toBeUndefined()
  })

  it.each([
    ["a field", Schema.Struct({ token: Schema.Redacted(Schema.String) })],
    ["Redacted itself", Schema.Redacted(Schema.Number)],
    ["RedactedFromSelf", Schema.Struct({ token: Schema.RedactedFromSelf(Schema.String) })],
    ["an array element", Schema.Array(Schema.Struct({ token: Schema.Redacted(Schema.String) }))],
    ["a union member", Schema.Union(Schema.Null, Schema.Redacted(Schema.String))],
    ["an optional field", Schema.Struct({ token: Schema.optional(Schema.Redacted(Schema.String)) })],
    ["a record value", Schema.Record({ key: Schema.String, value: Schema.Redacted(Schema.String) })],
    ["a filtered struct", Schema.Struct({ token: Schema.Redacted(Schema.String) }).pipe(Schema.filter(() => true))]
  ])("refused in %s, for loader and memo alike", (_, schema) => {
    expect(refusal(() => Memo.loader({ key: "k", window: "1 minute", schema: schema as Schema.Schema<unknown, unknown>, lookup }))).toContain("Redacted")
    expect(refusal(() => Memo.memo({ key: "k", window: "1 minute", schema: schema as Schema.Schema<unknown, unknown> }, Effect.die("")))).toContain("Redacted")
    // opted in: stored knowingly
    expect(refusal(() => Memo.loader({ key: "k", window: "1 minute", schema: schema as Schema.Schema<unknown, unknown>, lookup, storeRedacted: true }))).toBeUndefined()
  })

  it("a schema without Redacted, recursive ones included, is accepted", () => {
    interface Tree {
      readonly children: ReadonlyArray<Tree>
    }
    const Tree: Schema.Schema<Tree> = Schema.Struct({ children: Schema.Array(Schema.suspend(() => Tree)) })
    expect(refusal(() => Memo.loader({ key: "k", window: "1 minute", schema: Tree, lookup }))).toBeUndefined()
    expect(refusal(() => Memo.loader({ key: "k", window: "1 minute", schema: Schema.Struct({ a: Schema.DateFromString }), lookup }))).toBeUndefined()
  })
})
