/**
 * lockstep as its users get it: `npm pack`, then the tarball installed into empty folders next
 * to `effect` 3 and `ioredis` only (the versions this repository uses, from the local npm cache
 * where it has them). The consumer runs under plain Node (ESM and CommonJS), type-checks under
 * `NodeNext`, `Bundler` and `Node10` resolution with this repository's TypeScript, and runs the
 * README's `lockstep/testing` examples with its own vitest and `@effect/vitest`.
 *
 * The fixtures are in `test/consumer/`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))
const fixtures = Path.join(root, "test/consumer")
const versionOf = (name: string): string =>
  JSON.parse(Fs.readFileSync(Path.join(root, "node_modules", name, "package.json"), "utf8")).version
const effect = `effect@${versionOf("effect")}`
const ioredis = `ioredis@${versionOf("ioredis")}`

/**
 * The environment without what `npm test` exports about this package, so that a nested npm acts
 * on its own folder; no colours in the nested vitest's report.
 */
const env = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([key]) =>
      !(key.startsWith("npm_") && !key.startsWith("npm_config_") || key === "npm_config_local_prefix" || key === "INIT_CWD")
    )
  ),
  NO_COLOR: "1"
}

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (cmd: string, args: ReadonlyArray<string>, cwd: string, timeoutMs = 120_000): Promise<Run> =>
  new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })

const ok = async (cmd: string, args: ReadonlyArray<string>, cwd: string): Promise<string> => {
  const result = await run(cmd, args, cwd)
  if (result.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited with ${result.code}\n${result.stdout}\n${result.stderr}`)
  }
  return result.stdout
}

const npmInstall = ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"]

/** An empty project folder, as `npm init` would leave it. */
const project = (dir: string) => {
  Fs.mkdirSync(dir, { recursive: true })
  Fs.writeFileSync(Path.join(dir, "package.json"), JSON.stringify({ name: Path.basename(dir), private: true, type: "module" }, null, 2))
  return dir
}

/** Apparent size of every file under `dir`, in bytes. */
const sizeOf = (dir: string): number =>
  Fs.readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => {
    const path = Path.join(dir, entry.name)
    if (entry.isDirectory()) return sum + sizeOf(path)
    return entry.isFile() ? sum + Fs.statSync(path).size : sum
  }, 0)

/** The installed packages (`name@version`), from npm's hidden lockfile. */
const installed = (dir: string): Array<string> => {
  const lock = JSON.parse(Fs.readFileSync(Path.join(dir, "node_modules/.package-lock.json"), "utf8"))
  return Object.entries(lock.packages as Record<string, { version: string }>)
    .map(([path, meta]) => `${path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length)}@${meta.version}`)
    .sort()
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

let work: string
let tarball: string
let packed: Array<string>
let baseline: string
let consumer: string
let tester: string

beforeAll(async () => {
  work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "lockstep-consumer-"))
  // prepack builds dist/ (a failing build fails here)
  const packOut = await ok("npm", ["pack", "--json", "--loglevel=error", "--pack-destination", work], root)
  const pack = JSON.parse(packOut.slice(packOut.search(/^\[/m))) // after the build's own output
  tarball = Path.join(work, pack[0].filename)
  packed = pack[0].files.map((f: { path: string }) => f.path).sort()

  baseline = project(Path.join(work, "baseline"))
  consumer = project(Path.join(work, "consumer"))
  // a consumer that also tests its loaders, with the versions the README asks for
  tester = project(Path.join(work, "tester"))
  await Promise.all([
    ok("npm", [...npmInstall, effect, ioredis], baseline),
    ok("npm", [...npmInstall, effect, ioredis, tarball], consumer),
    ok("npm", [...npmInstall, effect, ioredis, tarball, `vitest@${versionOf("vitest")}`, `@effect/vitest@${versionOf("@effect/vitest")}`], tester)
  ])
}, 300_000)

afterAll(() => {
  if (work) Fs.rmSync(work, { recursive: true, force: true })
})

describe("the packed package", () => {
  it("holds only dist/, the README, LICENSE, CHANGELOG and package.json", () => {
    const stray = packed.filter((path) => !/^(dist\/.+|README\.md|LICENSE|CHANGELOG\.md|package\.json)$/.test(path))
    expect(stray).toEqual([])
    for (const expected of ["README.md", "LICENSE", "CHANGELOG.md", "package.json", "dist/esm/index.js", "dist/esm/index.d.ts", "dist/esm/Testing.js", "dist/cjs/index.js", "dist/cjs/Testing.d.ts", "dist/esm/Promise.js", "dist/cjs/Promise.d.ts", "dist/esm/Next.js", "dist/cjs/Next.js", "dist/cjs/package.json"]) {
      expect(packed).toContain(expected)
    }
  })

  it("declares no member tagged @internal (stripInternal) and ships no TypeScript sources", () => {
    const dist = Path.join(consumer, "node_modules/lockstep/dist")
    const files = (Fs.readdirSync(dist, { recursive: true }) as Array<string>).map((f) => Path.join(dist, f))
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([])
    const tagged = files.filter((f) => f.endsWith(".d.ts") && Fs.readFileSync(f, "utf8").includes("@internal"))
    expect(tagged).toEqual([])
  })

  it("installs nothing but itself next to effect and ioredis, within 1.3 × their size", () => {
    const version = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")).version
    expect(installed(consumer)).toEqual([...installed(baseline), `lockstep@${version}`].sort())
    const base = sizeOf(Path.join(baseline, "node_modules"))
    const total = sizeOf(Path.join(consumer, "node_modules"))
    const own = sizeOf(Path.join(consumer, "node_modules/lockstep"))
    console.log(`installed: effect + ioredis ${mb(base)}; with lockstep ${mb(total)} (lockstep itself ${mb(own)}, ${(total / base).toFixed(3)}×)`)
    expect(total).toBeLessThanOrEqual(1.3 * base)
  })

  it("leaves no missing or invalid dependency (npm ls)", async () => {
    const result = await run("npm", ["ls", "--all"], consumer)
    expect(result.code, result.stdout + result.stderr).toBe(0)
  })
})

describe("a consumer with only effect 3 and ioredis", () => {
  const parse = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!)

  it("runs Memo.memo on Redis.layerMemory under plain Node, as an ES module", async () => {
    Fs.copyFileSync(Path.join(fixtures, "esm.mjs"), Path.join(consumer, "esm.mjs"))
    const out = parse(await ok(process.execPath, ["esm.mjs"], consumer))
    expect(out).toMatchObject({ values: [1, 1], runs: 1, cache: "hit", testing: "function" })
    expect(out.resolved).toEqual([
      expect.stringMatching(/node_modules\/lockstep\/dist\/esm\/index\.js$/),
      expect.stringMatching(/node_modules\/lockstep\/dist\/esm\/Testing\.js$/)
    ])
  })

  it("runs it through require, as CommonJS", async () => {
    Fs.copyFileSync(Path.join(fixtures, "cjs.cjs"), Path.join(consumer, "cjs.cjs"))
    const out = parse(await ok(process.execPath, ["cjs.cjs"], consumer))
    expect(out).toMatchObject({ values: [1, 1], runs: 1, cache: "hit", testing: "function" })
    expect(out.resolved).toEqual([
      expect.stringMatching(/node_modules\/lockstep\/dist\/cjs\/index\.js$/),
      expect.stringMatching(/node_modules\/lockstep\/dist\/cjs\/Testing\.js$/)
    ])
  })

  it("runs lockstep/promise with no Effect in its own code, as an ES module and through require", async () => {
    const expected = {
      values: [10, 10, 20],
      runs: 2,
      cache: "hit",
      header: "hit",
      error: expect.stringMatching(/^TypeError: loader "bad": window/),
      closed: "Closed"
    }
    for (const [file, dir] of [["promise.mjs", "esm"], ["promise.cjs", "cjs"]] as const) {
      Fs.copyFileSync(Path.join(fixtures, file), Path.join(consumer, file))
      const out = parse(await ok(process.execPath, [file], consumer))
      expect(out).toMatchObject(expected)
      expect(out.resolved).toMatch(new RegExp(`node_modules/lockstep/dist/${dir}/Promise\\.js$`))
    }
  })

  it("gives Next lockstep/next without Next installed: a miss, the entry set, read twice, expired by its tag", async () => {
    Fs.copyFileSync(Path.join(fixtures, "next.mjs"), Path.join(consumer, "next.mjs"))
    const out = parse(await ok(process.execPath, ["next.mjs"], consumer))
    expect(out).toMatchObject({
      required: "function",
      miss: true,
      html: "<p>report</p>",
      again: "<p>report</p>",
      expiredRenders: true,
      expiration: null // Infinity: Next passes the tags to get
    })
    expect(out.resolved).toMatch(/node_modules\/lockstep\/dist\/esm\/Next\.js$/)
  })

  // The consumer's own node_modules has no @types/node; lockstep's Redis types come from
  // ioredis, which needs Node's, so the check borrows this repository's.
  const typecheck = async (name: string, options: Record<string, unknown>, files: ReadonlyArray<string>) => {
    for (const file of files) Fs.copyFileSync(Path.join(fixtures, file), Path.join(consumer, file))
    const tsconfig = `tsconfig.${name}.json`
    Fs.writeFileSync(
      Path.join(consumer, tsconfig),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022", "DOM"],
          strict: true,
          exactOptionalPropertyTypes: true,
          noEmit: true,
          types: ["node"],
          typeRoots: [Path.join(root, "node_modules/@types")],
          ...options
        },
        files
      })
    )
    const result = await run(process.execPath, [Path.join(root, "node_modules/typescript/bin/tsc"), "-p", tsconfig], consumer)
    expect(result.code, result.stdout + result.stderr).toBe(0)
  }

  describe.concurrent("type-checks", () => {
    // once with every declaration file checked (lockstep's own included: a declaration that
    // points at a stripped member fails here), then as most projects do, with skipLibCheck
    it("under moduleResolution NodeNext, as ESM and as CommonJS, without skipLibCheck", () =>
      typecheck("nodenext", { module: "NodeNext", moduleResolution: "NodeNext", skipLibCheck: false }, ["typed.ts", "typed.cts"]))

    it("under moduleResolution Bundler", () =>
      typecheck("bundler", { module: "ESNext", moduleResolution: "Bundler", skipLibCheck: true }, ["typed.ts"]))

    it("under moduleResolution Node10", () =>
      typecheck("node10", { module: "CommonJS", moduleResolution: "Node10", skipLibCheck: true }, ["typed.ts"]))
  })

  it("runs the README's lockstep/testing examples with vitest 3.2 and @effect/vitest 0.30", async () => {
    const tests = Path.join(tester, "test")
    Fs.mkdirSync(tests, { recursive: true })
    for (const file of ["readme-example.test.ts", "readme-fleet.test.ts"]) {
      Fs.copyFileSync(Path.join(root, "test", file), Path.join(tests, file))
    }
    Fs.writeFileSync(Path.join(tester, "vitest.config.mjs"), `export default { test: { include: ["test/**/*.test.ts"] } }\n`)
    const result = await run(process.execPath, ["node_modules/vitest/vitest.mjs", "run"], tester)
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(result.stdout).toMatch(/Tests\s+2 passed \(2\)/)
  })
})

describe("the published package.json", () => {
  it("has no scripts (none an install script, none naming unshipped files), and no dev fields", () => {
    const published = JSON.parse(Fs.readFileSync(Path.join(consumer, "node_modules/lockstep/package.json"), "utf8"))
    expect(published.scripts).toBeUndefined()
    expect(published.devDependencies).toBeUndefined()
    expect(published.peerDependencies).toEqual({ effect: "^3.22.0" })
    // npm lists no install script for it
    const lock = JSON.parse(Fs.readFileSync(Path.join(consumer, "node_modules/.package-lock.json"), "utf8"))
    expect(lock.packages["node_modules/lockstep"].hasInstallScript).toBeUndefined()
    // and the checkout's package.json is back as it was
    expect(JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")).scripts.prepack).toBeDefined()
  })
})

describe("a project on effect 4", () => {
  it("importing lockstep fails at once, naming the installed effect and the supported range", async () => {
    // a project that already had effect 4 gets lockstep with peer warnings only; its effect is
    // this fake: a package.json whose modules are missing, as effect 4's are for lockstep
    const dir = project(Path.join(work, "effect4-import"))
    const modules = Path.join(dir, "node_modules")
    Fs.cpSync(Path.join(consumer, "node_modules/lockstep"), Path.join(modules, "lockstep"), { recursive: true })
    Fs.symlinkSync(Path.join(consumer, "node_modules/ioredis"), Path.join(modules, "ioredis"))
    Fs.mkdirSync(Path.join(modules, "effect"))
    Fs.writeFileSync(
      Path.join(modules, "effect/package.json"),
      JSON.stringify({ name: "effect", version: "4.0.0", type: "module", exports: { "./package.json": "./package.json", "./*": "./dist/*.js" } })
    )
    const loads = {
      esm: ["--input-type=module", "-e", `import "lockstep"`],
      esmTesting: ["--input-type=module", "-e", `import "lockstep/testing"`],
      esmPromise: ["--input-type=module", "-e", `import "lockstep/promise"`],
      cjs: ["-e", `require("lockstep")`]
    }
    for (const [name, args] of Object.entries(loads)) {
      const result = await run(process.execPath, args, dir)
      expect(result.code, name).not.toBe(0)
      expect(result.stderr, name).toContain("lockstep supports effect ^3.22.0")
      expect(result.stderr, name).toContain("effect 4.0.0 is installed")
      expect(result.stderr, name).not.toContain("ERR_MODULE_NOT_FOUND")
    }
    // the same folder with a supported effect loads
    Fs.rmSync(Path.join(modules, "effect"), { recursive: true })
    Fs.symlinkSync(Path.join(consumer, "node_modules/effect"), Path.join(modules, "effect"))
    for (const [name, args] of Object.entries(loads)) {
      const result = await run(process.execPath, args, dir)
      expect(result.code, `${name}: ${result.stderr}`).toBe(0)
    }
  })

  it("cannot install lockstep: npm stops with a peer conflict", async () => {
    const dir = project(Path.join(work, "effect4"))
    // effect 4's metadata comes from the registry when npm's cache does not have it yet
    const result = await run("npm", ["install", "--prefer-offline", "--dry-run", "--no-audit", "--no-fund", "effect@4", tarball], dir)
    const output = result.stdout + result.stderr
    expect(output, "npm could not resolve effect@4 (no registry and no cached metadata)").not.toMatch(/ENOTCACHED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT/)
    expect(result.code, output).not.toBe(0)
    expect(output).toMatch(/ERESOLVE/)
    expect(output).toMatch(/peer effect@"\^3\.22\.0" from lockstep/)
  })
})
