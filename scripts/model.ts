/**
 * The model checker, for longer than CI runs it: `npm run model -- --runs=5000 [--seed=N]
 * [--path=…] [--only=store|memo]`. Runs `test/model-store.test.ts` (the in-memory store against
 * a real redis-server, or Valkey with `LOCKSTEP_REDIS_SERVER=valkey`) and `test/model-memo.test.ts`
 * (a `Testing.fleet` under `TestClock`) with that many runs of each property (the timed store
 * differential runs a tenth of them: its runs take real time). Without `--seed` a new seed is
 * drawn and printed; CI runs the fixed one of `test/support/model.ts`. A failure prints the
 * shrunk counterexample with the seed and path that replay it (`--seed=… --path=…`).
 */
import { spawnSync } from "node:child_process"

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=")
    return [k!, v ?? "true"] as const
  })
)
for (const k of args.keys()) {
  if (!["runs", "seed", "path", "only"].includes(k)) {
    console.error(`model: unknown option --${k} (use --runs=N --seed=N --path=P --only=store|memo)`)
    process.exit(2)
  }
}
const runs = args.get("runs") ?? "1000"
const seed = args.get("seed") ?? String(Math.floor(Math.random() * 2 ** 31))
const only = args.get("only")
const files = only === "store" ? ["test/model-store.test.ts"] : only === "memo" ? ["test/model-memo.test.ts"] : ["test/model-store.test.ts", "test/model-memo.test.ts"]
console.log(`model: ${runs} runs of each property, seed ${seed}${args.has("path") ? `, path ${args.get("path")}` : ""}: ${files.join(" ")}`)
const result = spawnSync("npx", ["vitest", "run", ...files], {
  stdio: "inherit",
  env: {
    ...process.env,
    LOCKSTEP_MODEL_RUNS: runs,
    LOCKSTEP_MODEL_SEED: seed,
    ...(args.has("path") ? { LOCKSTEP_MODEL_PATH: args.get("path")! } : {})
  }
})
console.log(`model: seed ${seed} (replay with --seed=${seed})`)
process.exit(result.status ?? 1)
