/**
 * Numbered migrations of the SQLite task store, embedded in code. Table and index names carry
 * the store's prefix. Run with `Migrator.make` inside one `BEGIN IMMEDIATE` transaction, so two
 * processes migrating one file at once serialize on SQLite's write lock: the second one waits
 * (busy timeout), then finds the migrations done.
 *
 * @internal
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"

/** Table names of a prefix. @internal */
export interface SqliteTables {
  readonly tasks: string
  readonly logs: string
  readonly paused: string
  readonly migrations: string
}

/** @internal */
export const prefixPattern = /^[a-z_][a-z0-9_]*$/

/** @internal */
export const tablesOf = (prefix: string): SqliteTables => ({
  tasks: `${prefix}tasks`,
  logs: `${prefix}task_logs`,
  paused: `${prefix}paused_queues`,
  migrations: `${prefix}migrations`
})

/** The latest migration id: the schema version a migrated store is at. @internal */
export const latestVersion = 2

/** @internal */
export const migrations = (
  tables: SqliteTables
): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "0001_create_tasks": Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const t = sql(tables.tasks)
    const index = (name: string) => sql(`${tables.tasks}_${name}`)
    yield* sql`CREATE TABLE ${t} (
      id TEXT PRIMARY KEY NOT NULL,
      name TEXT NOT NULL,
      queue TEXT NOT NULL,
      status TEXT NOT NULL,
      priority INTEGER NOT NULL,
      payload TEXT NOT NULL,
      result TEXT,
      error TEXT,
      attempt INTEGER NOT NULL,
      max_attempts INTEGER NOT NULL,
      retry TEXT,
      timeout_ms INTEGER,
      soft_timeout_ms INTEGER,
      run_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      started_at INTEGER,
      finished_at INTEGER,
      lease_owner TEXT,
      lease_expires_at INTEGER,
      cancel_requested INTEGER NOT NULL DEFAULT 0,
      progress REAL NOT NULL DEFAULT 0,
      progress_message TEXT,
      idempotency_key TEXT,
      parent_id TEXT,
      tags TEXT NOT NULL DEFAULT '[]'
    )`
    // Claims: only claimable rows are in this index, however many finished rows the table holds.
    yield* sql`CREATE INDEX ${index("claim")} ON ${t} (priority, run_at, id)
      WHERE status IN ('pending', 'scheduled')`
    // The rescuer: running tasks by lease expiry.
    yield* sql`CREATE INDEX ${index("lease")} ON ${t} (lease_expires_at) WHERE status = 'running'`
    // Retention clean-up and statistics windows.
    yield* sql`CREATE INDEX ${index("finished")} ON ${t} (finished_at) WHERE finished_at IS NOT NULL`
    // Counts by queue, the queue list.
    yield* sql`CREATE INDEX ${index("queue_status")} ON ${t} (queue, status)`
    yield* sql`CREATE INDEX ${index("parent")} ON ${t} (parent_id) WHERE parent_id IS NOT NULL`
    // Idempotency: one unfinished task per (name, key).
    yield* sql`CREATE UNIQUE INDEX ${index("idempotency")} ON ${t} (name, idempotency_key)
      WHERE idempotency_key IS NOT NULL
      AND status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'timed-out')`
    yield* sql`CREATE TABLE ${sql(tables.logs)} (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      task_id TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      at INTEGER NOT NULL,
      level TEXT NOT NULL,
      message TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX ${sql(`${tables.logs}_task`)} ON ${sql(tables.logs)} (task_id, seq)`
    yield* sql`CREATE TABLE ${sql(tables.paused)} (
      queue TEXT PRIMARY KEY NOT NULL,
      paused_at INTEGER NOT NULL
    )`
  }),
  // The statistics windows and the retention clean-up read status and started_at from the
  // finished index instead of looking each row up (about half the time of their scans).
  "0002_finished_covering": Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const index = (name: string) => sql(`${tables.tasks}_${name}`)
    yield* sql`CREATE INDEX ${index("finished_status")} ON ${sql(tables.tasks)} (finished_at, status, started_at)
      WHERE finished_at IS NOT NULL`
    yield* sql`DROP INDEX ${index("finished")}`
  })
})

/**
 * Runs the migrations that are not applied yet; returns those it ran.
 *
 * @internal
 */
export const migrate = (
  tables: SqliteTables,
  transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
): Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> =>
  transaction(
    Migrator.make({})({
      loader: Migrator.fromRecord(migrations(tables)),
      table: tables.migrations
    })
  )
