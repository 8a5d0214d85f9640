/**
 * Run: `npm start -w @spindle/example-file-pipeline` (ROWS=2000000 CONCURRENCY=64 to change).
 */
import { FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Config, Console, Effect } from "effect"
import { program } from "./program.js"

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

const main = Effect.gen(function*() {
  const rows = yield* Config.integer("ROWS").pipe(Config.withDefault(1_000_000))
  const concurrency = yield* Config.integer("CONCURRENCY").pipe(Config.withDefault(64))
  const fs = yield* FileSystem.FileSystem
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "spindle-file-pipeline-" })
  yield* Console.log(`streaming ${rows.toLocaleString()} generated rows with concurrency ${concurrency}...`)
  const report = yield* program({ rows, directory, concurrency, malformedEvery: 10_000 })
  yield* Console.log(
    [
      `rows processed   ${report.rows.toLocaleString()} (${report.malformed} malformed rows skipped)`,
      `input / output   ${mib(report.inputBytes)} / ${mib(report.outputBytes)}`,
      `time             ${report.seconds.toFixed(2)} s`,
      `throughput       ${Math.round(report.rowsPerSecond).toLocaleString()} rows/s`,
      `peak memory      ${mib(report.peakHeapBytes)} heap, ${
        mib(report.peakRssBytes)
      } RSS (bounded by backpressure, not by file size)`,
      `peak in flight   ${report.peakInFlight} (limit ${concurrency})`
    ].join("\n")
  )
})

main.pipe(Effect.scoped, Effect.provide(NodeContext.layer), NodeRuntime.runMain)
