// The same consumer through `require`: lockstep's CommonJS build.
const { Effect, Layer, ManagedRuntime, Schema } = require("effect")
const { Memo, Redis } = require("lockstep")
const Testing = require("lockstep/testing")

const main = async () => {
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
    resolved: [require.resolve("lockstep"), require.resolve("lockstep/testing")]
  }))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
