import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Layer from "effect/Layer"
import { HttpLive, Services } from "./Http.js"

HttpLive.pipe(Layer.provide(Services), Layer.launch, NodeRuntime.runMain)
