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
