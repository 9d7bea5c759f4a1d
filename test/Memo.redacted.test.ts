/**
 * A schema that contains `Redacted` would put the secret in Redis, and on the notices, in
 * clear: refused when the loader is defined, unless the loader opts in or encrypts its values.
 */
import * as Model from "@effect/sql/Model"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Crypto from "node:crypto"
import { Memo, Redis } from "../src/index.js"

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

describe("encrypt: values encrypted at rest and on the bus", () => {
  const Secret = Schema.Struct({ name: Schema.String, token: Schema.Redacted(Schema.String) })
  const value = { name: "ada", token: Redacted.make("s3cr3t-token") }
  const keyA = Redacted.make(Crypto.randomBytes(32).toString("base64"))
  const keyB = Redacted.make(new Uint8Array(Crypto.randomBytes(32)))
  const loaderWith = (encrypt: Memo.LoaderOptions<void, unknown, unknown, never, never>["encrypt"], runs: { n: number }) =>
    Memo.loader({
      key: "secret",
      window: "1 minute",
      schema: Secret,
      lookup: () => Effect.sync(() => (runs.n++, value)),
      encrypt
    })

  it.scoped("the store and the notices hold ciphertext; another process with the key reads it; a rotated key still reads it", () =>
    Effect.gen(function*() {
      const server = Redis.makeMemoryServer()
      const store = yield* Redis.makeMemory({ server })
      const notices: Array<string> = []
      yield* store.subscribe({
        onNotice: (n) => {
          if (n._tag === "Committed" && Option.isSome(n.data)) notices.push(n.data.value)
        },
        onState: () => {}
      })
      const pod = (name: string) =>
        Effect.map(
          Layer.build(Memo.layer.pipe(Layer.provide(Layer.effect(Redis.Redis, Effect.orDie(Redis.makeMemory({ server })))))),
          (ctx) => <A, E>(e: Effect.Effect<A, E, Memo.Memo>) => Effect.provide(e, ctx).pipe(Effect.withSpan(name))
        )
      const runs = { n: 0 }
      const a = yield* pod("a")
      const got = yield* a(loaderWith({ key: keyA }, runs).get())
      expect(Redacted.value(got.token)).toBe("s3cr3t-token")
      const stored = Option.getOrThrow((yield* store.get("secret")).stored).data
      expect(stored).not.toContain("s3cr3t-token")
      expect(stored).not.toContain("ada")
      expect(stored).toMatch(/^lockstep:aes-256-gcm:/)
      expect(notices.length).toBeGreaterThan(0)
      for (const n of notices) expect(n).not.toContain("s3cr3t-token")
      // another process with the key reads the stored value: no run
      const b = yield* pod("b")
      expect((yield* b(loaderWith({ key: keyA }, runs).getWithInfo())).cache).toBe("hit")
      expect(runs.n).toBe(1)
      // rotation: the new key, with the old one still listed, reads it
      const c = yield* pod("c")
      expect((yield* c(loaderWith({ key: keyB, previousKeys: [keyA] }, runs).getWithInfo())).cache).toBe("hit")
      expect(runs.n).toBe(1)
      // a process without the old key cannot open it: recomputed (and written with its key)
      const d = yield* pod("d")
      expect((yield* d(loaderWith({ key: keyB }, runs).getWithInfo())).cache).toBe("miss")
      expect(runs.n).toBe(2)
    }))

  it("a key that is not 32 bytes, or not Redacted, is refused at definition", () => {
    expect(refusal(() => loaderWith({ key: Redacted.make("c2hvcnQ=") }, { n: 0 }))).toContain("must be 32 bytes")
    expect(refusal(() => loaderWith({ key: "plain" as never }, { n: 0 }))).toContain("Redacted")
  })
})
