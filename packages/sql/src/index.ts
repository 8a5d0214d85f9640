/**
 * @spindle/sql — durable task stores on SQL databases: SQLite (the embedded default: one file)
 * and Postgres (many workers on many machines).
 *
 * @since 0.1.0
 */

/**
 * The SQLite task store.
 *
 * @since 0.1.0
 */
export * as SqliteTaskStore from "./SqliteTaskStore.js"

/**
 * The Postgres task store.
 *
 * @since 0.1.0
 */
export * as PgTaskStore from "./PgTaskStore.js"
