/**
 * @spindle/core — in-process structured concurrency on Effect: limits, batching, retries,
 * deadlines, priorities, rate limits, pools of resources and of worker threads, monitoring.
 *
 * @since 0.1.0
 */

/**
 * Micro-batching: `submit(item)` returns that item's own result; batches flush at a size or
 * after a wait; identical keys merge.
 *
 * @since 0.1.0
 */
export * as Batcher from "./Batcher.js"

/**
 * Hard and soft timeouts, and a grace period for the finalizers of an interrupted effect.
 *
 * @since 0.1.0
 */
export * as Deadline from "./Deadline.js"

/**
 * At most N at once per key, for many keys.
 *
 * @since 0.1.0
 */
export * as KeyedLimiter from "./KeyedLimiter.js"

/**
 * A named concurrency limit with order-keeping `forEach` and live stats.
 *
 * @since 0.1.0
 */
export * as Limiter from "./Limiter.js"

/**
 * Live fibers, long-running fibers, event-loop delay and utilization.
 *
 * @since 0.1.0
 */
export * as Monitor from "./Monitor.js"

/**
 * Priority levels with strict or weighted-fair dispatch, aging, and bounded capacity.
 *
 * @since 0.1.0
 */
export * as PriorityScheduler from "./PriorityScheduler.js"

/**
 * Prometheus text exposition of every Effect metric.
 *
 * @since 0.1.0
 */
export * as Prometheus from "./Prometheus.js"

/**
 * Token-bucket and sliding-window rate limits, global or per key.
 *
 * @since 0.1.0
 */
export * as RateLimiter from "./RateLimiter.js"

/**
 * A health-checked pool of resources over `effect/Pool`.
 *
 * @since 0.1.0
 */
export * as ResourcePool from "./ResourcePool.js"

/**
 * Retry policies as data: a Schema, a Schedule, and the delays they produce.
 *
 * @since 0.1.0
 */
export * as RetryPolicy from "./RetryPolicy.js"

/**
 * CPU-bound work on a pool of worker threads with typed messages.
 *
 * @since 0.1.0
 */
export * as WorkerPool from "./WorkerPool.js"
