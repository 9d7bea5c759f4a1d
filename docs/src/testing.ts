// "lockstep/testing" in a doc example (see index.ts here)
export * from "../../src/Testing.js"
