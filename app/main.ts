import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Layer from "effect/Layer"
import { HttpLive, Services, TracingLive } from "./Http.js"

HttpLive.pipe(Layer.provide(Services), Layer.provide(TracingLive), Layer.launch, NodeRuntime.runMain)
