/**
 * The fleet on a real redis-server: several processes, each with many concurrent callers, from a
 * cold start across many window rollovers. Producer starts are counted by this process from the
 * pods' IPC reports.
 */
import { afterAll, beforeAll, describe, it } from "vitest"
import { expectOneStartPerWindow } from "./support/faults.js"
import { startFleet, type Fleet } from "./support/fleet.js"
import { startRedis, type Server } from "./support/services.js"

const PODS = 4
const CALLERS = 50
const WINDOW_MS = 1000
const PRODUCER_MS = 300
const LOAD_MS = 12_500

describe("fleet on redis-server", () => {
  let redis: Server
  let fleet: Fleet
  beforeAll(async () => {
    redis = await startRedis()
    fleet = await startFleet(PODS, {
      env: { REDIS_HOST: "127.0.0.1", REDIS_PORT: String(redis.port), TENANT: "fleet" },
      key: "aggregate",
      windowMs: WINDOW_MS,
      producerMs: PRODUCER_MS
    })
  })
  afterAll(async () => {
    await fleet?.stop()
    await redis?.stop()
  })

  it(`${PODS} processes x ${CALLERS} callers: exactly one producer start per window, cold start included`, async () => {
    const summaries = await fleet.load({ callers: CALLERS, durationMs: LOAD_MS, pauseMs: 20 })
    // cold start plus at least ten rollovers
    expectOneStartPerWindow(fleet, summaries, { windowMs: WINDOW_MS, minWindows: 11, minCallsPerPod: CALLERS * 10 })
  })
})
