/**
 * The Postgres task store: many workers on many machines share one database.
 *
 * - Every object lives in one schema (default `spindle`), created if missing, with numbered
 *   migrations embedded in code (`Migrator.fromRecord`, bookkeeping in `<schema>.migrations`).
 *   Several processes may start at once: migrations run in one transaction under an advisory
 *   lock on the schema name, so the second waits for the first and then finds nothing to do.
 * - Claims are one statement: a subquery selects the next claimable ids ordered by priority,
 *   run-at and id `FOR UPDATE SKIP LOCKED` (so concurrent claimers never wait for or share a
 *   task) and an `UPDATE … RETURNING` takes them by primary key, incrementing the attempt and
 *   setting the lease. A partial index holds only the claimable rows, so finished rows do not
 *   slow claims.
 * - Inserts send one JSON array per column; without idempotency keys in the batch, nothing
 *   comes back but the command status.
 * - A lone task submitted while a worker of the same process waits idle is inserted already
 *   claimed by it (a call of the schema's `insert_claimed` function), so the task starts as its
 *   insert returns.
 * - Claims, batched completions and those inserts go straight to connections the store keeps
 *   once a worker of the process waits or claims: up to 3, leaving 2 to the pool (none from a
 *   pool of 2 or fewer). A statement arriving while they are all busy goes through the pool.
 * - Completion, failure and progress apply only to a task still `running` under the caller's
 *   lease (`LeaseLost` otherwise).
 * - Wake-ups and lifecycle events reach the other processes through LISTEN/NOTIFY on one channel
 *   per schema (`<schema>_tasks`), sent in batches by a background fiber; `awaitWork` still times
 *   out, so polling remains the backstop. Event `sequence` numbers are per process.
 *
 * Time comes from the `Clock` of the calling process (keep the clocks of the machines in sync).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type { SqlError } from "@effect/sql/SqlError"
import { TaskStore } from "@spindle/tasks"
import type { Duration, Effect, Scope } from "effect"
import { Layer, Redacted } from "effect"
import * as internal from "./internal/pgTaskStore.js"

/**
 * @since 0.1.0
 */
export declare namespace PgTaskStore {
  /**
   * Options of a store on a `PgClient` already in context.
   *
   * @since 0.1.0
   * @category models
   */
  export interface ClientOptions {
    /**
     * The schema holding the store's tables (created if missing). Lower-case letters, digits
     * and `_`, starting with a letter or `_`, at most 48 characters. Default `spindle`.
     */
    readonly schema?: string | undefined
    /**
     * How often the store checks that its LISTEN connection still hears the channel (by
     * notifying itself); after two unheard probes it reconnects. Default 10 seconds.
     */
    readonly listenHealthCheck?: Duration.DurationInput | undefined
  }

  /**
   * Options of a store with its own connection pool.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options extends ClientOptions {
    /** A connection URL, such as `postgres://user@host:5432/db`. */
    readonly url: Redacted.Redacted | string
    /** Pool size; default 10. */
    readonly maxConnections?: number | undefined
    readonly connectTimeout?: Duration.DurationInput | undefined
    /** Shown in `pg_stat_activity`; default `spindle`. */
    readonly applicationName?: string | undefined
  }
}

/**
 * Makes a store on the `PgClient` in context: runs the migrations, starts listening for other
 * processes' notifications, and stops when the scope closes.
 *
 * Two stores on one `PgClient` with the same schema share the client's LISTEN connection, and
 * the one closed first unlistens the channel for both (the other notices at its next health
 * check and listens again): give each its own client (as `layer` does) when both live in one
 * process. Stores in different schemas may share a client.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { PgTaskStore } from "@spindle/sql"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const store = yield* PgTaskStore.make({ schema: "jobs" })
 *     return yield* store.tasksList({ limit: 10 })
 *   })
 * ).pipe(Effect.provide(PgClient.layer({ database: "app" })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: PgTaskStore.ClientOptions
) => Effect.Effect<TaskStore.TaskStore["Type"], TaskStore.TaskStoreError, PgClient.PgClient | Scope.Scope> = (
  options
) => internal.make(options ?? {})

/**
 * The store as a `TaskStore` layer on the `PgClient` in context.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { PgTaskStore } from "@spindle/sql"
 * import { Layer } from "effect"
 *
 * const StoreLive = PgTaskStore.layerClient({ schema: "jobs" }).pipe(
 *   Layer.provide(PgClient.layer({ database: "app" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options?: PgTaskStore.ClientOptions
): Layer.Layer<TaskStore.TaskStore, TaskStore.TaskStoreError, PgClient.PgClient> =>
  Layer.scoped(TaskStore.TaskStore, make(options))

/**
 * The store as a `TaskStore` layer with its own connection pool.
 *
 * @example
 * ```ts
 * import { PgTaskStore } from "@spindle/sql"
 * import { Redacted } from "effect"
 *
 * const StoreLive = PgTaskStore.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/app") })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PgTaskStore.Options
): Layer.Layer<TaskStore.TaskStore, TaskStore.TaskStoreError | SqlError> =>
  layerClient({ schema: options.schema, listenHealthCheck: options.listenHealthCheck }).pipe(
    Layer.provide(PgClient.layer({
      url: typeof options.url === "string" ? Redacted.make(options.url) : options.url,
      maxConnections: options.maxConnections ?? 10,
      applicationName: options.applicationName ?? "spindle",
      ...(options.connectTimeout === undefined ? {} : { connectTimeout: options.connectTimeout })
    }))
  )

/**
 * Runs the store's migrations in `schema` (default `spindle`) and returns the ids and names of
 * the migrations applied; safe to run from several processes at once. For a `migrate` command.
 *
 * @example
 * ```ts
 * import { PgTaskStore } from "@spindle/sql"
 *
 * const applied = PgTaskStore.migrate({ schema: "jobs" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const migrate = (
  options?: PgTaskStore.ClientOptions
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, TaskStore.TaskStoreError, PgClient.PgClient> =>
  internal.migrateSchema(options?.schema ?? "spindle")
