// A consumer under plain Node, no TypeScript: lockstep's ESM build over the consumer's own
// effect and ioredis.
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Memo, Redis } from "lockstep"
import * as Testing from "lockstep/testing"

let runs = 0
const options = { key: "page", window: "1 minute", schema: Schema.Number }
const page = Memo.memo(options, Effect.sync(() => ++runs))
const pageWithInfo = Memo.memoWithInfo(options, Effect.sync(() => ++runs))

const runtime = ManagedRuntime.make(Memo.layer.pipe(Layer.provide(Redis.layerMemory)))
const values = [await runtime.runPromise(page), await runtime.runPromise(page)]
const info = await runtime.runPromise(pageWithInfo)
await runtime.dispose()

console.log(JSON.stringify({
  values,
  runs,
  cache: info.cache,
  testing: typeof Testing.producer,
  resolved: [import.meta.resolve("lockstep"), import.meta.resolve("lockstep/testing")]
}))
