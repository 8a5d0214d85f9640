/**
 * Run: `npm start -w @spindle/example-cpu-pool` (JOBS=64 PRICES=500000 WORKERS=2 to change).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as os from "node:os"
import { program } from "./program.js"

const main = Effect.gen(function*() {
  const jobs = yield* Config.integer("JOBS").pipe(Config.withDefault(64))
  const pricesPerJob = yield* Config.integer("PRICES").pipe(Config.withDefault(500_000))
  const workers = yield* Config.integer("WORKERS").pipe(Config.withDefault(Math.max(2, os.availableParallelism())))
  yield* Console.log(
    `backtesting ${jobs} moving-average crossovers over ${pricesPerJob.toLocaleString()} prices each ` +
      `(${os.availableParallelism()} cores)...`
  )
  const report = yield* program({ jobs, pricesPerJob, workers })
  const row = (label: string, value: string) => `${label.padEnd(22)} ${value}`
  yield* Console.log(
    [
      row("main thread", `${report.mainThreadMillis.toFixed(0)} ms`),
      row(`worker pool (${report.workers})`, `${report.poolMillis.toFixed(0)} ms`),
      row("speedup", `${report.speedup.toFixed(2)}x`),
      row("pool start-up", `${report.startupMillis.toFixed(0)} ms (not timed above)`),
      row("identical results", report.identical ? "yes" : "NO"),
      row(
        "best parameters",
        `fast ${report.best.fast} / slow ${report.best.slow} on market ${report.best.seed}: ` +
          `equity ${report.best.finalEquity.toFixed(3)}, ${report.best.trades} trades, ` +
          `max drawdown ${(report.best.maxDrawdown * 100).toFixed(1)}%`
      ),
      row("pool tasks", `${report.stats.completed} completed, ${report.stats.failed} failed`)
    ].join("\n")
  )
  if (!report.identical) return yield* Effect.dieMessage("the pool's results differ from the main thread's")
})

main.pipe(NodeRuntime.runMain)
