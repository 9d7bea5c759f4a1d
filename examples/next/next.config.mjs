// next.config.mjs: 'use cache: remote' goes through lockstep, configured by REDIS_* and TENANT
export default {
  cacheComponents: true,
  cacheHandlers: { remote: import.meta.resolve("lockstep/next") }
}
