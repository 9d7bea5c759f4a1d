// The same consumer through `require`: lockstep/promise's CommonJS build.
const { createCache } = require("lockstep/promise")

const Count = {
  "~standard": {
    version: 1,
    vendor: "consumer",
    validate: (value) => (typeof value === "number" ? { value } : { issues: [{ message: "not a number" }] })
  }
}

const main = async () => {
  const cache = createCache()
  let runs = 0
  const page = cache.loader({
    key: (id) => `page:${id}`,
    window: "1 minute",
    schema: Count,
    lookup: async (id) => {
      runs++
      return id * 10
    }
  })
  const values = await Promise.all([page.get(1), page.get(1), page.get(2)])
  const info = await page.getWithInfo(1)
  let error
  try {
    cache.loader({ key: "bad", window: 0, schema: Count, lookup: async () => 1 })
  } catch (e) {
    error = e
  }
  await cache.close()
  const closed = await page.get(1).catch((e) => e.code)

  console.log(JSON.stringify({
    values,
    runs,
    cache: info.cache,
    header: cache.cacheHeaders(info)["x-cache"],
    error: `${error.name}: ${error.message}`,
    closed,
    resolved: require.resolve("lockstep/promise")
  }))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
