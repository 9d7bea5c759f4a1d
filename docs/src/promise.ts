// "lockstep/promise" in a doc example (see index.ts here)
export * from "../../src/Promise.js"
