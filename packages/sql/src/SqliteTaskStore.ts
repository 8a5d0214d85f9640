/**
 * The SQLite task store, Spindle's embedded default: every task in one file, shared safely by
 * the processes of one machine.
 *
 * - The file is opened in WAL mode with `synchronous = NORMAL`, a busy timeout and foreign keys
 *   on. SQLite has one writer at a time: a write of several statements is a `BEGIN IMMEDIATE`
 *   transaction, and a write of one statement (claim, complete, fail, progress) takes the write
 *   lock as it starts, so processes sharing the file queue on the busy timeout rather than
 *   failing on a read-to-write upgrade.
 * - Numbered migrations are embedded in code and run through `@effect/sql`'s Migrator when the
 *   layer is built (safe when several processes start at once); tables carry a configurable
 *   prefix (default `spindle_`).
 * - Claims are one `UPDATE … RETURNING` ordered by priority, run-at and id, served by a partial
 *   index that holds only claimable tasks, so they stay fast with millions of finished rows.
 * - Events are published in process: `events` carries the changes made through this store
 *   instance (with a per-process `sequence`), not those of other processes. `awaitWork` wakes on
 *   this process's changes at once and on other processes' commits within `pollInterval`
 *   (`PRAGMA data_version`).
 * - Use one store (one connection) per file in a process, and share it (or its `SqlClient`,
 *   with `layerClient`): better-sqlite3 waits for a lock synchronously, so a second connection
 *   of the same process could wait on a transaction that cannot finish until it returns.
 *
 * @since 0.1.0
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { MigrationError } from "@effect/sql/Migrator"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { TaskStore } from "@spindle/tasks"
import type { ConfigError, Scope } from "effect"
import { Duration, Effect, Layer } from "effect"
import { tablesOf } from "./internal/sqliteMigrations.js"
import * as internal from "./internal/sqliteStore.js"

/**
 * Options of the store on a SQL client already in context (`layerClient`, `make`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /**
   * Prefix of the table names (`<prefix>tasks`, `<prefix>task_logs`, `<prefix>paused_queues`,
   * `<prefix>migrations`); must match `[a-z_][a-z0-9_]*`. Default `spindle_`.
   */
  readonly tablePrefix?: string | undefined
  /** How often `awaitWork` checks for commits of other processes. Default 100 millis. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * Options of the store on its own SQLite file (`layer`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends ClientOptions {
  /** The database file (created when missing). */
  readonly filename: string
  /** How long a write waits for another process holding the write lock. Default 5 seconds. */
  readonly busyTimeout?: Duration.DurationInput | undefined
}

/**
 * The store's table names for a prefix.
 *
 * @example
 * ```ts
 * import { SqliteTaskStore } from "@spindle/sql"
 *
 * SqliteTaskStore.tableNames("app_").tasks // "app_tasks"
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const tableNames = (prefix: string = internal.defaultPrefix): {
  readonly tasks: string
  readonly logs: string
  readonly paused: string
  readonly migrations: string
} => tablesOf(prefix)

/**
 * Builds the store on the `SqlClient` in context (a SQLite client): runs the migrations, then
 * returns the service. Dies when `tablePrefix` is not a valid prefix.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { SqliteTaskStore } from "@spindle/sql"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const store = yield* SqliteTaskStore.make({ tablePrefix: "jobs_" })
 *     yield* store.tasksInsert({ tasks: [{ name: "hello", payload: {} }] })
 *   })
 * ).pipe(Effect.provide(SqliteClient.layer({ filename: "tasks.db" })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: ClientOptions
) => Effect.Effect<TaskStore.TaskStore["Type"], SqlError | MigrationError, SqlClient | Scope.Scope> = internal.make

/**
 * The store on the `SqlClient` already in context, so an application can share one SQLite
 * connection between its own tables and the tasks. The connection's pragmas are left as the
 * application set them (use WAL and a busy timeout when several processes share the file).
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { SqliteTaskStore } from "@spindle/sql"
 * import { Layer } from "effect"
 *
 * const StoreLive = SqliteTaskStore.layerClient({ tablePrefix: "jobs_" }).pipe(
 *   Layer.provide(SqliteClient.layer({ filename: "app.db" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: ClientOptions = {}
): Layer.Layer<TaskStore.TaskStore, SqlError | MigrationError, SqlClient> =>
  Layer.scoped(TaskStore.TaskStore, internal.make(options))

/**
 * The store on its own SQLite file: opens it (WAL, `synchronous = NORMAL`, busy timeout,
 * foreign keys), migrates it, and provides `TaskStore`. The connection closes with the layer.
 *
 * @example
 * ```ts
 * import { SqliteTaskStore } from "@spindle/sql"
 * import { TaskStore } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* TaskStore.TaskStore
 *   const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "send-email", payload: { to: "ada@example.com" } }] })
 *   return inserted?.task.id
 * }).pipe(Effect.provide(SqliteTaskStore.layer({ filename: "tasks.db" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<TaskStore.TaskStore, SqlError | MigrationError | ConfigError.ConfigError> => {
  const busyMs = Math.max(0, Math.round(Duration.toMillis(options.busyTimeout ?? Duration.seconds(5))))
  const configure = Layer.effectDiscard(Effect.gen(function*() {
    const sql = yield* SqliteClient.SqliteClient
    yield* sql.unsafe(`PRAGMA busy_timeout = ${busyMs}`)
    yield* sql.unsafe("PRAGMA synchronous = NORMAL")
    yield* sql.unsafe("PRAGMA foreign_keys = ON")
  }))
  return layerClient(options).pipe(
    Layer.provide(configure),
    Layer.provide(SqliteClient.layer({ filename: options.filename }))
  )
}
