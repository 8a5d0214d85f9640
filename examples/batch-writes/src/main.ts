/**
 * Runs the batch-writes comparison and prints a short table.
 *
 *   node dist/main.js [--rows 100000] [--file path.db] [--batch-size 1000] [--submitters 1000]
 *                     [--synchronous NORMAL|FULL]
 *
 * Each flag can also come from the environment: ROWS, FILE, BATCH_SIZE, SUBMITTERS, SYNCHRONOUS.
 * Without a file, the database lives in a temporary directory removed at the end.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import { program, type Report } from "./program.js"

/** `--batch-size 10` and `--batch-size=10` become `BATCH_SIZE -> "10"`. */
const flags = (argv: ReadonlyArray<string>): Map<string, string> => {
  const map = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith("--")) continue
    const [name, inline] = arg.slice(2).split("=", 2)
    const value = inline ?? argv[++i]
    if (value !== undefined) {
      map.set(name.replace(/-/g, "_").toUpperCase(), value)
    }
  }
  return map
}

const config = Config.all({
  rows: Config.integer("ROWS").pipe(Config.withDefault(100_000)),
  file: Config.option(Config.string("FILE")),
  batchSize: Config.integer("BATCH_SIZE").pipe(Config.withDefault(1_000)),
  submitters: Config.integer("SUBMITTERS").pipe(Config.withDefault(1_000)),
  synchronous: Config.literal("NORMAL", "FULL")("SYNCHRONOUS").pipe(Config.withDefault("NORMAL" as const))
})

const int = (n: number): string => Math.round(n).toLocaleString("en-US")
const seconds = (millis: number): string => `${(millis / 1000).toFixed(2)} s`

const render = (report: Report): string => {
  const rows: ReadonlyArray<ReadonlyArray<string>> = [
    ["strategy", "time", "rows/s", "rows in table"],
    [
      "row at a time",
      seconds(report.rowAtATime.durationMillis),
      int(report.rowAtATime.rowsPerSecond),
      int(report.rowAtATime.rowsInTable)
    ],
    [
      "batcher",
      seconds(report.batched.durationMillis),
      int(report.batched.rowsPerSecond),
      int(report.batched.rowsInTable)
    ]
  ]
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  const line = (row: ReadonlyArray<string>) =>
    row.map((cell, column) => column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])).join("  ")
  const { stats } = report.batched
  return [
    `batch-writes: ${int(report.rows)} rows into SQLite (WAL, synchronous=${report.synchronous}), ` +
    `${int(report.submitters)} concurrent submitters`,
    "",
    line(rows[0]),
    widths.map((width) => "-".repeat(width)).join("  "),
    line(rows[1]),
    line(rows[2]),
    "",
    `batcher: ${int(stats.batches)} batches of up to ${int(report.batchSize)} rows ` +
    `(${int(stats.flushedBySize)} full, ${int(stats.flushedByTime)} on time)`,
    `speedup: ${report.speedup.toFixed(1)}x`
  ].join("\n")
}

const main = Effect.gen(function*() {
  const options = yield* config
  const file = Option.isSome(options.file)
    ? options.file.value
    : path.join(yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped()), "batch-writes.db")
  const report = yield* program({ ...options, file })
  yield* Console.log(render(report))
}).pipe(
  Effect.scoped,
  Effect.withConfigProvider(
    ConfigProvider.fromMap(flags(process.argv.slice(2))).pipe(ConfigProvider.orElse(() => ConfigProvider.fromEnv()))
  ),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main)
