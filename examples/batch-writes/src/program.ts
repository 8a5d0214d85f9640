/**
 * batch-writes: the same rows written into SQLite twice, by the same concurrent submitters.
 *
 * 1. Row at a time, what a naive service does: every submitter runs its own `INSERT`, which
 *    SQLite commits on its own (one statement, one transaction, one WAL commit per row).
 * 2. Through a `Batcher`: every submitter calls `batcher.submit(row)` and gets its row's id back;
 *    each flush writes its rows with multi-row `INSERT`s in one transaction.
 *
 * Both tables are then counted, and the report gives both durations and the speedup.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Batcher from "@spindle/core/Batcher"
import type { ConfigError } from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as path from "node:path"

/**
 * Options of `program`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Rows to write, in each of the two tables. */
  readonly rows: number
  /** SQLite file; it is deleted (with its -wal and -shm files) and created afresh. */
  readonly file: string
  /** Most rows per flush of the batcher. Default 1,000. */
  readonly batchSize?: number | undefined
  /** A partial batch is flushed this long after its first row. Default 5 millis. */
  readonly maxWait?: Duration.DurationInput | undefined
  /** Fibers submitting rows concurrently, in both variants. Default 1,000. */
  readonly submitters?: number | undefined
  /**
   * SQLite's `synchronous` setting. `"NORMAL"` (the driver's default in WAL mode): a commit
   * writes the WAL without waiting for the disk. `"FULL"`: every commit waits for fsync, so an
   * acknowledged row survives a power loss. Default `"NORMAL"`.
   */
  readonly synchronous?: Synchronous | undefined
}

/**
 * SQLite's `synchronous` settings the example supports.
 *
 * @since 0.1.0
 * @category models
 */
export type Synchronous = "NORMAL" | "FULL"

/**
 * How one variant did.
 *
 * @since 0.1.0
 * @category models
 */
export interface VariantReport {
  readonly table: Table
  readonly durationMillis: number
  readonly rowsPerSecond: number
  /** `SELECT COUNT(*)` of the table after the run. */
  readonly rowsInTable: number
}

/**
 * What `program` measured.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly rows: number
  readonly file: string
  readonly submitters: number
  readonly batchSize: number
  readonly synchronous: Synchronous
  readonly rowAtATime: VariantReport
  readonly batched: VariantReport & {
    readonly stats: Batcher.Stats
  }
  /** `rowAtATime.durationMillis / batched.durationMillis`. */
  readonly speedup: number
}

/**
 * A table does not hold the rows it should after a run.
 *
 * @since 0.1.0
 * @category errors
 */
export class VerificationError extends Data.TaggedError("VerificationError")<{
  readonly table: string
  readonly expected: number
  readonly actual: number
}> {
  override get message(): string {
    return `${this.table} holds ${this.actual} rows, expected ${this.expected}`
  }
}

/**
 * Everything `program` may fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type ProgramError =
  | SqlError
  | Batcher.BatchError<SqlError>
  | Migrator.MigrationError
  | VerificationError
  | PlatformError
  | ConfigError

/**
 * One row of the example's tables.
 *
 * @since 0.1.0
 * @category models
 */
export type Row = {
  readonly id: number
  readonly source: string
  readonly payload: string
  readonly created_at: number
}

/**
 * The example's two tables, one per variant.
 *
 * @since 0.1.0
 * @category models
 */
export type Table = "events_row_at_a_time" | "events_batched"

/**
 * Columns per row: SQLite binds `COLUMNS` variables per row of a multi-row `INSERT`.
 *
 * @since 0.1.0
 * @category constants
 */
export const COLUMNS = 4

/**
 * The bound-variable limit assumed for one statement: 999, SQLite's `SQLITE_MAX_VARIABLE_NUMBER`
 * before 3.32 (32,766 since), so the example works on any build.
 *
 * @since 0.1.0
 * @category constants
 */
export const SQLITE_MAX_VARIABLES = 999

/**
 * Rows per multi-row `INSERT` statement: as many as the bound-variable limit allows (249 rows of
 * 4 columns). A flush of more rows runs several statements in its one transaction. (Measured: a
 * few hundred rows per statement is also faster than thousands.)
 *
 * @since 0.1.0
 * @category constants
 */
export const ROWS_PER_STATEMENT = Math.floor(SQLITE_MAX_VARIABLES / COLUMNS)

/**
 * The example's deterministic rows, ids 1..count.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRows = (count: number): ReadonlyArray<Row> =>
  Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    source: `sensor-${i % 64}`,
    payload: `{"reading":${(i * 7919) % 10_000},"unit":"mV"}`,
    created_at: 1_700_000_000_000 + i
  }))

const migrations = Migrator.fromRecord({
  "1_create_events": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([
      sql`CREATE TABLE events_row_at_a_time (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      sql`CREATE TABLE events_batched (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`
    ], { discard: true }))
})

/**
 * Inserts one row in its own statement (and, outside a transaction, its own commit).
 *
 * @since 0.1.0
 * @category inserts
 */
export const insertRow = (table: Table, row: Row): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO ${sql(table)} ${sql.insert(row)}`)

/**
 * Inserts rows with multi-row `INSERT`s of at most `ROWS_PER_STATEMENT` rows, all in one
 * transaction, and returns the ids in the order of `rows` (one result per row, as a `Batcher`'s
 * `run` must).
 *
 * @since 0.1.0
 * @category inserts
 */
export const insertRows = (
  table: Table,
  rows: ReadonlyArray<Row>
): Effect.Effect<ReadonlyArray<number>, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const statements: Array<Effect.Effect<unknown, SqlError>> = []
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      const chunk = rows.slice(i, i + ROWS_PER_STATEMENT)
      statements.push(sql`INSERT INTO ${sql(table)} ${sql.insert(chunk)}`)
    }
    return sql.withTransaction(Effect.all(statements, { discard: true })).pipe(
      Effect.as(rows.map((row) => row.id))
    )
  })

const setSynchronous = (mode: Synchronous) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => mode === "FULL" ? sql`PRAGMA synchronous = FULL` : sql`PRAGMA synchronous = NORMAL`
  )

const countRows = (table: Table): Effect.Effect<number, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ readonly n: number }>`SELECT COUNT(*) AS n FROM ${sql(table)}`)
    .pipe(Effect.map((result) => result[0]?.n ?? 0))

const verify = (table: Table, expected: number) =>
  Effect.flatMap(
    countRows(table),
    (actual) =>
      actual === expected ? Effect.succeed(actual) : Effect.fail(new VerificationError({ table, expected, actual }))
  )

const variantReport = (table: Table, rows: number, duration: Duration.Duration, rowsInTable: number) => {
  const durationMillis = Duration.toMillis(duration)
  return {
    table,
    durationMillis,
    rowsPerSecond: durationMillis > 0 ? (rows * 1000) / durationMillis : Infinity,
    rowsInTable
  }
}

/** Deletes the SQLite file and its companions, and makes sure its directory exists. */
const freshFile = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(path.dirname(file), { recursive: true })
    for (const suffix of ["", "-wal", "-shm", "-journal"]) {
      yield* fs.remove(file + suffix, { force: true })
    }
  }).pipe(Effect.provide(NodeFileSystem.layer))

/**
 * Runs `f` for every row from `submitters` concurrent fibers, each taking its share of the rows
 * one after another (as request handlers would): row `i` goes to submitter `i % submitters`.
 *
 * @since 0.1.0
 * @category programs
 */
export const fromSubmitters = <E, R>(
  rows: ReadonlyArray<Row>,
  submitters: number,
  f: (row: Row) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, E, R> =>
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

/**
 * Writes `rows` rows row at a time, then through a `Batcher`, with the same concurrent
 * submitters, into a fresh SQLite file (WAL), verifies both tables and reports both durations
 * and the speedup.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { program } from "./program.js"
 *
 * const report = Effect.runPromise(program({ rows: 10_000, file: "/tmp/batch-writes.db" }))
 * ```
 *
 * @since 0.1.0
 * @category programs
 */
export const program = (options: Options): Effect.Effect<Report, ProgramError> =>
  Effect.gen(function*() {
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 1_000))
    const submitters = Math.max(1, Math.floor(options.submitters ?? 1_000))
    const rows = makeRows(options.rows)

    const synchronous = options.synchronous ?? "NORMAL"
    yield* Migrator.make({})({ loader: migrations })
    yield* setSynchronous(synchronous)

    // 1. Row at a time: each submitter inserts and commits its own row.
    const [naiveDuration] = yield* Effect.timed(
      fromSubmitters(rows, submitters, (row) => insertRow("events_row_at_a_time", row))
    )
    const naiveCount = yield* verify("events_row_at_a_time", rows.length)

    // 2. The same submitters, through a Batcher: one transaction per flush.
    const [batchedDuration, stats] = yield* Effect.timed(Effect.scoped(Effect.gen(function*() {
      const batcher = yield* Batcher.make({
        name: "batch-writes",
        maxSize: batchSize,
        maxWait: options.maxWait ?? Duration.millis(5),
        run: (batch: ReadonlyArray<Row>) => insertRows("events_batched", batch)
      })
      yield* fromSubmitters(rows, submitters, batcher.submit)
      return yield* batcher.stats
    })))
    const batchedCount = yield* verify("events_batched", rows.length)

    const rowAtATime = variantReport("events_row_at_a_time", rows.length, naiveDuration, naiveCount)
    const batched = {
      ...variantReport("events_batched", rows.length, batchedDuration, batchedCount),
      stats
    }
    return {
      rows: rows.length,
      file: options.file,
      submitters,
      batchSize,
      synchronous,
      rowAtATime,
      batched,
      speedup: batched.durationMillis > 0 ? rowAtATime.durationMillis / batched.durationMillis : Infinity
    }
  }).pipe(
    Effect.provide(SqliteClient.layer({ filename: options.file })),
    (self) => Effect.zipRight(freshFile(options.file), self)
  )
