/**
 * Batcher benchmark: rows written into SQLite (WAL) row at a time (every row its own `INSERT`
 * and commit) against the same concurrent submitters going through a `Batcher` (every flush
 * one transaction of multi-row `INSERT`s). A self-contained copy of the approach of
 * examples/batch-writes. Each sample writes into a fresh SQLite file; the two variants alternate
 * within a round so machine noise spreads over both.
 *
 *   node bench/dist/batcher.js [--rows 100000] [--rounds 3] [--submitters 1000]
 *                              [--batch-size 1000] [--synchronous NORMAL|FULL]
 *
 * With `--synchronous FULL` every commit waits for fsync: row at a time then costs one fsync
 * per row (use fewer rows).
 *
 * @since 0.1.0
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Batcher from "@spindle/core/Batcher"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { renderTable, summarize } from "./report.js"

/**
 * The two ways of writing rows.
 *
 * @since 0.1.0
 */
export type BatcherBenchVariant = "row-at-a-time" | "batcher" | "batch-process"

/**
 * Options of `runBatcherBench`.
 *
 * @since 0.1.0
 */
export interface BatcherBenchOptions {
  /** Rows per sample. */
  readonly rows: number
  /** Samples per variant. */
  readonly rounds: number
  /** Concurrent submitting fibers (both variants). Default 1,000. */
  readonly submitters?: number | undefined
  /** Most rows per flush. Default 1,000. */
  readonly batchSize?: number | undefined
  /** SQLite `synchronous`. Default `"NORMAL"` (the driver's default in WAL mode). */
  readonly synchronous?: "NORMAL" | "FULL" | undefined
}

/**
 * The samples of one variant, in rows per second, one per round.
 *
 * @since 0.1.0
 */
export interface BatcherBenchSamples {
  readonly variant: BatcherBenchVariant
  readonly rowsPerSec: Array<number>
}

type Row = {
  readonly id: number
  readonly source: string
  readonly payload: string
  readonly created_at: number
}

interface Settings {
  readonly submitters: number
  readonly batchSize: number
  readonly synchronous: "NORMAL" | "FULL"
}

const makeRows = (count: number): ReadonlyArray<Row> =>
  Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    source: `sensor-${i % 64}`,
    payload: `{"reading":${(i * 7919) % 10_000},"unit":"mV"}`,
    created_at: 1_700_000_000_000 + i
  }))

/**
 * Rows per INSERT: 4 bound variables each, 4,000 per statement, within the 32,766 that SQLite
 * allows since 3.32 (better-sqlite3 bundles 3.53).
 */
const ROWS_PER_STATEMENT = 1_000

const insertRow = (sql: SqlClient.SqlClient, row: Row) =>
  sql`INSERT INTO events (id, source, payload, created_at) VALUES (${row.id}, ${row.source}, ${row.payload}, ${row.created_at})`

const insertRows = (
  sql: SqlClient.SqlClient,
  rows: ReadonlyArray<Row>
): Effect.Effect<ReadonlyArray<number>, SqlError> => {
  const statements: Array<Effect.Effect<unknown, SqlError>> = []
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    statements.push(sql`INSERT INTO events ${sql.insert(rows.slice(i, i + ROWS_PER_STATEMENT))}`)
  }
  return sql.withTransaction(Effect.all(statements, { discard: true })).pipe(Effect.as(rows.map((row) => row.id)))
}

/** `submitters` fibers, each writing its share of the rows one after another. */
const fromSubmitters = <E>(
  rows: ReadonlyArray<Row>,
  submitters: number,
  f: (row: Row) => Effect.Effect<unknown, E>
): Effect.Effect<void, E> =>
  Effect.forEach(
    Array.from({ length: Math.min(submitters, rows.length) }, (_, submitter) => submitter),
    (submitter) =>
      Effect.gen(function*() {
        for (let i = submitter; i < rows.length; i += submitters) {
          yield* f(rows[i])
        }
      }),
    { concurrency: "unbounded", discard: true }
  )

/** One sample: a fresh file, the variant's writes timed, the row count checked; rows per second. */
const sample = (
  variant: BatcherBenchVariant,
  rows: ReadonlyArray<Row>,
  options: Settings
): Effect.Effect<number, unknown> =>
  Effect.acquireUseRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spindle-bench-batcher-"))),
    (dir) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE events (
          id INTEGER PRIMARY KEY, source TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL
        )`
        yield* options.synchronous === "FULL" ? sql`PRAGMA synchronous = FULL` : sql`PRAGMA synchronous = NORMAL`
        const write: Effect.Effect<void, SqlError | Batcher.BatchError<SqlError>> = variant === "row-at-a-time"
          ? fromSubmitters(rows, options.submitters, (row) => insertRow(sql, row))
          : variant === "batch-process"
          // the offline path: a list already in hand, chunked, no fiber per row
          ? Effect.asVoid(Batcher.batchProcess(rows, { size: options.batchSize }, (chunk) => insertRows(sql, chunk)))
          // the online path: independent callers, each waiting for its own row's result
          : Effect.scoped(Effect.gen(function*() {
            const batcher = yield* Batcher.make({
              name: "bench",
              maxSize: options.batchSize,
              maxWait: Duration.millis(5),
              run: (batch: ReadonlyArray<Row>) => insertRows(sql, batch)
            })
            yield* fromSubmitters(rows, options.submitters, batcher.submit)
          }))
        const [duration] = yield* Effect.timed(write)
        const [{ n }] = yield* sql<{ readonly n: number }>`SELECT COUNT(*) AS n FROM events`
        if (n !== rows.length) {
          return yield* Effect.dieMessage(`${variant}: ${n} rows in the table, expected ${rows.length}`)
        }
        return (rows.length * 1000) / Math.max(Duration.toMillis(duration), 0.001)
      }).pipe(Effect.provide(SqliteClient.layer({ filename: path.join(dir, "bench.db") }))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/**
 * Runs both variants `rounds` times over `rows` rows and returns rows per second per round.
 *
 * @since 0.1.0
 */
export const runBatcherBench = (options: BatcherBenchOptions): Promise<Array<BatcherBenchSamples>> => {
  const settings: Settings = {
    submitters: options.submitters ?? 1_000,
    batchSize: options.batchSize ?? 1_000,
    synchronous: options.synchronous ?? "NORMAL"
  }
  const rows = makeRows(options.rows)
  const variants: ReadonlyArray<BatcherBenchVariant> = ["row-at-a-time", "batcher", "batch-process"]
  return Effect.runPromise(Effect.gen(function*() {
    const samples = new Map<BatcherBenchVariant, Array<number>>(variants.map((v) => [v, []]))
    for (let round = 0; round < options.rounds; round++) {
      // rotate which variant goes first
      for (let k = 0; k < variants.length; k++) {
        const variant = variants[(round + k) % variants.length]!
        samples.get(variant)!.push(yield* sample(variant, rows, settings))
      }
    }
    return variants.map((variant) => ({ variant, rowsPerSec: samples.get(variant)! }))
  }))
}

/**
 * Parses the command-line flags of the standalone run.
 *
 * @since 0.1.0
 */
export const parseBatcherBenchArgs = (args: ReadonlyArray<string>): BatcherBenchOptions => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      rows: { type: "string", default: "100000" },
      rounds: { type: "string", default: "3" },
      submitters: { type: "string", default: "1000" },
      "batch-size": { type: "string", default: "1000" },
      synchronous: { type: "string", default: "NORMAL" }
    },
    strict: false
  })
  const synchronous = String(values.synchronous).toUpperCase() === "FULL" ? "FULL" : "NORMAL"
  return {
    rows: Number(values.rows),
    rounds: Number(values.rounds),
    submitters: Number(values.submitters),
    batchSize: Number(values["batch-size"]),
    synchronous
  }
}

/**
 * Runs the benchmark and renders its table.
 *
 * @since 0.1.0
 */
export const renderBatcherBench = async (options: BatcherBenchOptions): Promise<string> => {
  const samples = await runBatcherBench(options)
  const rows = summarize(samples.map((s) => ({ variant: s.variant, perSecond: s.rowsPerSec })), ["row-at-a-time"])
  const title = `Batcher: ${options.rows.toLocaleString("en-US")} rows into SQLite (WAL, synchronous=${
    options.synchronous ?? "NORMAL"
  }), ${(options.submitters ?? 1_000).toLocaleString("en-US")} submitters, ${options.rounds} round(s)`
  return renderTable(title, "rows", rows, ["row-at-a-time"])
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(await renderBatcherBench(parseBatcherBenchArgs(process.argv.slice(2))))
}
