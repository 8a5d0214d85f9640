/**
 * The worker script (compiled to dist/worker.js): serves `Backtest` requests
 * until the pool closes it.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as WorkerPool from "@spindle/core/WorkerPool"
import * as Effect from "effect/Effect"
import { Backtest, backtest } from "./backtest.js"

WorkerPool.runner(Backtest, {
  Backtest: (job) => Effect.sync(() => backtest(job))
}).pipe(NodeRuntime.runMain)
