// docgen compiles and runs the doc comments' examples from docs/api/examples, with their
// imports of "lockstep" and "lockstep/<path>" rewritten to "../../src" and "../../src/<path>":
// that is this folder, which maps them to the package's entry points.
export * from "../../src/index.js"
