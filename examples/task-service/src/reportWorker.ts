/**
 * The worker script of the report pool (compiled to dist/reportWorker.js): serves
 * `SummarizeChunk` requests until the pool closes it.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as WorkerPool from "@spindle/core/WorkerPool"
import * as Effect from "effect/Effect"
import { SummarizeChunk, summarizeChunk } from "./report.js"

WorkerPool.runner(SummarizeChunk, {
  SummarizeChunk: (chunk) => Effect.sync(() => summarizeChunk(chunk))
}).pipe(NodeRuntime.runMain)
