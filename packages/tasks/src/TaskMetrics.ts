/**
 * Metrics of the worker runtime, in the global Metric registry (`Prometheus.render` from
 * `@spindle/core` exposes them). Counters and histograms are tagged with the task `name`;
 * `completedTotal` also with the `outcome`.
 *
 * @since 0.1.0
 */
import { Metric, MetricBoundaries } from "effect"

const secondsBoundaries = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 20 })

/**
 * Attempts that ended, tagged `name` and `outcome` (`succeeded`, `retry`, `failed`, `dead`,
 * `timed-out`, `cancelled`).
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Effect, Metric } from "effect"
 *
 * const done = Metric.value(TaskMetrics.completedTotal)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const completedTotal: Metric.Metric.Counter<number> = Metric.counter("spindle_tasks_completed_total", {
  description: "Task attempts that ended, by task name and outcome",
  incremental: true
})

/**
 * How long handlers ran, in seconds, tagged `name`.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const durations = Metric.value(TaskMetrics.durationSeconds)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const durationSeconds: Metric.Metric.Histogram<number> = Metric.histogram(
  "spindle_tasks_duration_seconds",
  secondsBoundaries,
  "How long task attempts ran, in seconds"
)

/**
 * How long tasks waited between their `runAt` and the start of an attempt, in seconds, tagged
 * `name`.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const waits = Metric.value(TaskMetrics.queueWaitSeconds)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const queueWaitSeconds: Metric.Metric.Histogram<number> = Metric.histogram(
  "spindle_tasks_queue_wait_seconds",
  secondsBoundaries,
  "How long tasks waited from their run-at to the start of an attempt, in seconds"
)

/**
 * Handlers running now, across the workers of this process.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const active = Metric.value(TaskMetrics.activeHandlers)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const activeHandlers: Metric.Metric.Gauge<number> = Metric.gauge("spindle_tasks_active_handlers", {
  description: "Task handlers running now"
})

/**
 * Workers running now in this process (from the start of `TaskWorker.make` until its shutdown
 * has finished).
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const workers = Metric.value(TaskMetrics.activeWorkers)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const activeWorkers: Metric.Metric.Gauge<number> = Metric.gauge("spindle_tasks_active_workers", {
  description: "Task workers running now"
})

/**
 * Tasks claimed by workers of this process.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const claimed = Metric.value(TaskMetrics.claimedTotal)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const claimedTotal: Metric.Metric.Counter<number> = Metric.counter("spindle_tasks_claimed_total", {
  description: "Tasks claimed by workers",
  incremental: true
})

/**
 * Tasks whose lease had expired, returned to the queue by the rescuer of a worker of this
 * process.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const rescued = Metric.value(TaskMetrics.rescuedTotal)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const rescuedTotal: Metric.Metric.Counter<number> = Metric.counter("spindle_tasks_lease_rescued_total", {
  description: "Tasks whose lease expired (a crashed worker), rescued back to the queue",
  incremental: true
})

/**
 * Tasks given back to the queue at shutdown by workers of this process.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const released = Metric.value(TaskMetrics.releasedTotal)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const releasedTotal: Metric.Metric.Counter<number> = Metric.counter("spindle_tasks_released_total", {
  description: "Tasks released back to the queue at worker shutdown",
  incremental: true
})

/**
 * Tasks created by submissions (not those answered by an idempotency key), tagged `name` and
 * `queue`: counted by `TaskClient` and by the task service's HTTP API.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const submitted = Metric.value(TaskMetrics.submittedTotal)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const submittedTotal: Metric.Metric.Counter<number> = Metric.counter("spindle_tasks_submitted_total", {
  description: "Tasks created through the client (not those answered by an idempotency key)",
  incremental: true
})

/**
 * Tasks in the store by `queue` and `status`: a gauge set from the store's counts when it is
 * read (the task service's `/metrics` refreshes it on every scrape), so it covers the tasks of
 * every process sharing the store.
 *
 * @example
 * ```ts
 * import { TaskMetrics } from "@spindle/tasks"
 * import { Metric } from "effect"
 *
 * const pending = TaskMetrics.queueDepth.pipe(Metric.tagged("queue", "email"), Metric.tagged("status", "pending"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const queueDepth: Metric.Metric.Gauge<number> = Metric.gauge("spindle_tasks_queue_depth", {
  description: "Tasks in the store by queue and status"
})
