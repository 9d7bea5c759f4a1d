// "lockstep/next" in a doc example (see index.ts here)
export * from "../../src/Next.js"
