/**
 * The core benchmark: in one run, Limiter.forEach against raw Effect.forEach, p-limit and
 * p-queue (no-op tasks at a fixed concurrency, each variant in a fresh child process after a
 * warm-up, rounds interleaved), and Batcher against row-at-a-time SQLite inserts.
 *
 *   npm run bench:core -w @spindle/bench -- --tasks 1000000 --rounds 3 --rows 100000
 */
import { parseArgs } from "node:util"
import { runBatcherBench } from "./batcher.js"
import { runLimiterBench } from "./limiter.js"
import { renderTable, summarize } from "./report.js"

export interface CoreBenchOptions {
  readonly tasks: number
  readonly concurrency: number
  readonly rows: number
  readonly rounds: number
}

/** A goal from the issue tracker, checked against the measured medians. */
const goal = (label: string, ratio: number | undefined, atLeast: number) =>
  `${ratio !== undefined && ratio >= atLeast ? "met " : "MISS"}  ${label}: ${
    ratio === undefined ? "n/a" : ratio.toFixed(2)
  }x (goal >= ${atLeast}x)`

/** Run both comparisons and return the printed report. */
export const runCoreBench = async (options: CoreBenchOptions): Promise<string> => {
  const limiterSamples = await runLimiterBench({
    tasks: options.tasks,
    concurrency: options.concurrency,
    rounds: options.rounds
  })
  const limiterBaselines = ["effect-forEach", "p-limit", "p-queue"]
  const limiterRows = summarize(
    limiterSamples.map((s) => ({ variant: s.variant, perSecond: s.opsPerSec })),
    limiterBaselines
  )
  const batcherSamples = await runBatcherBench({ rows: options.rows, rounds: options.rounds })
  const batcherRows = summarize(
    batcherSamples.map((s) => ({ variant: s.variant, perSecond: s.rowsPerSec })),
    ["row-at-a-time"]
  )
  const spindle = limiterRows.find((r) => r.variant === "spindle-limiter")
  const batcher = batcherRows.find((r) => r.variant === "batcher")
  const batchProcess = batcherRows.find((r) => r.variant === "batch-process")
  return [
    renderTable(
      `In-process limiter: ${options.tasks.toLocaleString()} no-op tasks, concurrency ${options.concurrency}, ${options.rounds} rounds (median, min–max)`,
      "tasks",
      limiterRows,
      limiterBaselines
    ),
    "",
    renderTable(
      `Batcher: ${options.rows.toLocaleString()} rows into SQLite, ${options.rounds} rounds`,
      "rows",
      batcherRows,
      ["row-at-a-time"]
    ),
    "",
    "Goals",
    goal("Limiter.forEach vs raw Effect.forEach", spindle?.ratios["effect-forEach"], 0.8),
    goal("Limiter.forEach vs p-limit", spindle?.ratios["p-limit"], 1.3),
    goal("Batcher (submit from 1,000 fibers) vs row-at-a-time", batcher?.ratios["row-at-a-time"], 50),
    goal("Batcher.batchProcess (offline list) vs row-at-a-time", batchProcess?.ratios["row-at-a-time"], 50)
  ].join("\n")
}

/** Command-line flags, with the defaults the figures were measured with. */
export const parseCoreBenchArgs = (args: ReadonlyArray<string>): CoreBenchOptions => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      tasks: { type: "string", default: "1000000" },
      concurrency: { type: "string", default: "100" },
      rows: { type: "string", default: "100000" },
      rounds: { type: "string", default: "3" }
    }
  })
  const positive = (name: string, value: string) => {
    const n = Number(value)
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`--${name} must be a positive integer, got ${value}`)
    return n
  }
  return {
    tasks: positive("tasks", values.tasks),
    concurrency: positive("concurrency", values.concurrency),
    rows: positive("rows", values.rows),
    rounds: positive("rounds", values.rounds)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await runCoreBench(parseCoreBenchArgs(process.argv.slice(2))))
}
