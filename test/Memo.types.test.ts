/**
 * What TypeScript says when `Memo.memo`'s options lack a `schema`: the error names the missing
 * `schema`, in both argument orders and data-last, rather than an overload about `Effect`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../", import.meta.url))

/** The diagnostics of each source, compiled together with the project's options, as text. */
const diagnose = (sources: ReadonlyArray<string>): Array<Array<string>> => {
  const dir = Fs.mkdtempSync(Path.join(root, ".tmp-types-"))
  try {
    const files = sources.map((source, i) => {
      const file = Path.join(dir, `snippet${i}.ts`)
      Fs.writeFileSync(file, source)
      return file
    })
    const { config } = ts.readConfigFile(Path.join(root, "tsconfig.json"), ts.sys.readFile)
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root)
    const program = ts.createProgram(files, { ...options, noUnusedLocals: false })
    const diagnostics = ts.getPreEmitDiagnostics(program)
    return files.map((file) =>
      diagnostics.filter((d) => d.file?.fileName === file).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))
    )
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe("Memo.memo without a schema", () => {
  it("the type error names the missing schema", () => {
    const header = `import { Effect, Schema } from "effect"\nimport { Memo } from "lockstep"\nconst load = Effect.succeed(1)\n`
    const calls = [
      `Memo.memo({ key: "k", window: "1 minute" }, load)`,
      `Memo.memoWithInfo({ key: "k", window: "1 minute" }, load)`,
      `load.pipe(Memo.memo({ key: "k", window: "1 minute" }))`,
      // with the schema, it compiles
      `Memo.memo({ key: "k", window: "1 minute", schema: Schema.Number }, load)`
    ]
    const results = diagnose(calls.map((call) => `${header}export const x = ${call}\n`))
    for (const [i, messages] of results.slice(0, 3).entries()) {
      expect(messages.length, calls[i]).toBeGreaterThan(0)
      expect(messages.join("\n"), calls[i]).toContain("Property 'schema' is missing")
      expect(messages.join("\n"), calls[i]).not.toContain("'key' does not exist in type 'Effect")
    }
    expect(results[3]).toEqual([])
  }, 120_000)
})
