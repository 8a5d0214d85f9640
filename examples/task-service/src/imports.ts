/**
 * What `data.import` needs: the import database (a SQLite file of its own, next to the task
 * database) and the `Batcher` every import writes through. Concurrent callers' records are
 * gathered into one multi-row `INSERT … ON CONFLICT DO NOTHING` per flush, in one transaction,
 * so an import of 5,000 records costs a handful of commits, and a record already stored (same
 * `externalId`) is reported as a duplicate instead of stored twice.
 *
 * @since 0.1.0
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Batcher from "@spindle/core/Batcher"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ImportRecord } from "./tasks.js"
import { ImportFailed } from "./tasks.js"

/**
 * A record on its way into the database, with the batch that brought it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ImportRow extends ImportRecord {
  readonly batchId: string
}

/**
 * What became of one record.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = "inserted" | "duplicate"

/**
 * The import database.
 *
 * @since 0.1.0
 * @category tags
 */
export class Imports extends Context.Tag("task-service/Imports")<Imports, {
  /** Stores one record (batched with everyone else's); waits for its transaction to commit. */
  readonly submit: (row: ImportRow) => Effect.Effect<Outcome, ImportFailed>
  /** Records stored, and distinct external ids among them (equal, by the primary key). */
  readonly count: Effect.Effect<{ readonly rows: number; readonly distinct: number }, ImportFailed>
  readonly stats: Effect.Effect<Batcher.Stats>
}>() {}

const migrations = Migrator.fromRecord({
  "1_create_imported_records": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE imported_records (
      external_id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      email TEXT NOT NULL,
      amount_cents INTEGER NOT NULL,
      batch_id TEXT NOT NULL,
      imported_at INTEGER NOT NULL
    )`)
})

/** 6 columns a row: 150 rows stay well below SQLite's limit of bound variables per statement. */
const ROWS_PER_STATEMENT = 150

const insertRows = (
  rows: ReadonlyArray<ImportRow>
): Effect.Effect<ReadonlyArray<Outcome>, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const importedAt = yield* Clock.currentTimeMillis
    const inserted = new Set<string>()
    yield* sql.withTransaction(Effect.gen(function*() {
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const values = rows.slice(i, i + ROWS_PER_STATEMENT).map((row) => ({
          external_id: row.externalId,
          name: row.name,
          email: row.email,
          amount_cents: row.amountCents,
          batch_id: row.batchId,
          imported_at: importedAt
        }))
        const stored = yield* sql<{ readonly external_id: string }>`
          INSERT INTO imported_records ${sql.insert(values)}
          ON CONFLICT (external_id) DO NOTHING
          RETURNING external_id`
        for (const row of stored) inserted.add(row.external_id)
      }
    }))
    // the first of a batch's records with an id gets "inserted", the others (if any) "duplicate"
    return rows.map((row) => inserted.delete(row.externalId) ? "inserted" : "duplicate")
  })

/**
 * Options of `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The SQLite file (created, with its table, when missing). */
  readonly filename: string
  /** Most records per transaction. Default 1,000. */
  readonly maxBatch?: number | undefined
}

/**
 * The import database in `filename`, migrated, with its Batcher.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Imports, ImportFailed> =>
  Layer.scoped(
    Imports,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Migrator.make({})({ loader: migrations })
      const context = yield* Effect.context<SqlClient.SqlClient>()
      const batcher = yield* Batcher.make({
        name: "imports",
        maxSize: options.maxBatch ?? 1_000,
        maxWait: "10 millis",
        run: (rows: ReadonlyArray<ImportRow>) => Effect.provide(insertRows(rows), context)
      })
      const failed = (error: { readonly message: string }) => new ImportFailed({ message: error.message })
      return {
        submit: (row) =>
          Effect.mapError(batcher.submit(row), (error) =>
            new ImportFailed({
              message: error.cause === undefined ? error.message : `${error.message}: ${error.cause.message}`
            })),
        count: sql<{ readonly rows: number; readonly distinct: number }>`
          SELECT COUNT(*) AS rows, COUNT(DISTINCT external_id) AS "distinct" FROM imported_records`.pipe(
          Effect.map((result) => result[0] ?? { rows: 0, distinct: 0 }),
          Effect.mapError(failed)
        ),
        stats: batcher.stats
      }
    })
  ).pipe(
    Layer.provide(SqliteClient.layer({ filename: options.filename })),
    Layer.mapError((error) => new ImportFailed({ message: `import database: ${error.message}` }))
  )
