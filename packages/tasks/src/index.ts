/**
 * @spindle/tasks — durable tasks: the task model, its state machine, the store interface and
 * the memory store, the worker runtime and the client.
 *
 * @since 0.1.0
 */

/**
 * Lifecycle events of tasks.
 *
 * @since 0.1.0
 */
export * as TaskEvent from "./TaskEvent.js"

/**
 * The stored task.
 *
 * @since 0.1.0
 */
export * as TaskRecord from "./TaskRecord.js"

/**
 * Statuses and the allowed transitions between them.
 *
 * @since 0.1.0
 */
export * as TaskStatus from "./TaskStatus.js"

/**
 * The raw store interface every store implements.
 *
 * @since 0.1.0
 */
export * as TaskStore from "./TaskStore.js"

/**
 * Task definitions: name, Schemas, queue, priority, attempts, retry policy, timeouts.
 *
 * @since 0.1.0
 */
export * as Task from "./Task.js"

/**
 * A TaskStore kept in memory, for tests and single-process use.
 *
 * @since 0.1.0
 */
export * as MemoryStore from "./MemoryStore.js"

/**
 * The client applications use: submit, await, get, list, cancel, retry, stats, events.
 *
 * @since 0.1.0
 */
export * as TaskClient from "./TaskClient.js"

/**
 * Cron and repeating tasks that fire once per tick across many workers.
 *
 * @since 0.1.0
 */
export * as Cron from "./Cron.js"

/**
 * What a handler sees of its task: id, attempt, progress, log lines.
 *
 * @since 0.1.0
 */
export * as TaskContext from "./TaskContext.js"

/**
 * Handlers registered through a Layer, their requirements typed.
 *
 * @since 0.1.0
 */
export * as TaskHandlers from "./TaskHandlers.js"

/**
 * Metrics of durable tasks.
 *
 * @since 0.1.0
 */
export * as TaskMetrics from "./TaskMetrics.js"

/**
 * The worker runtime: claims, limits, deadlines, retries, heartbeats, rescue, graceful shutdown.
 *
 * @since 0.1.0
 */
export * as TaskWorker from "./TaskWorker.js"
