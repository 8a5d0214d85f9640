/**
 * The worker runtime: claims tasks from the store in batches (by priority, then run-at), runs
 * their handlers under the configured limits and each task's Deadline, records the outcome with
 * the task's RetryPolicy (the backoff persisted as run-at), heartbeats its leases, rescues tasks
 * whose lease expired (a crashed worker), and shuts down in two phases.
 *
 * - Claims wake on the store's push signal (`awaitWork`) with jittered polling as a backstop;
 *   a worker never claims more than it has free slots for, plus `prefetch` tasks held ahead.
 * - Outcomes are recorded in batches (`TaskStore.tasksComplete` / `tasksFail`): one round trip
 *   for every outcome that arrived while the previous batch was written. A slot goes to the next
 *   task as soon as a handler ends; the task stays held (and heartbeated) until its outcome is
 *   durable.
 * - A hard timeout interrupts the attempt (`Timeout`: retried, or `timed-out` on the last
 *   attempt); a soft timeout writes a warning to the task's log and does not interrupt.
 * - A payload that does not decode fails the task (`failed`, not retried). A typed failure is
 *   retried when the policy's `retryOn` allows its tag, else `failed`; `dead` when attempts are
 *   exhausted. Defects are retried unless `retryOn` is set and lacks `Defect`.
 * - One heartbeat fiber renews every held lease; leases lost stop their handlers without
 *   recording anything. Cancellation requested (seen as a `cancel-requested` event, or by the
 *   heartbeat as a backstop) interrupts the handler and records `cancelled`.
 * - When the scope closes: stop claiming, wait for running tasks up to `shutdownGrace`, then
 *   interrupt the rest and release them to `pending` (their attempt undone).
 *
 * @since 0.1.0
 */
import type { Context, Duration, Effect, Layer, Scope } from "effect"
import { Context as Ctx, Layer as L } from "effect"
import type * as Cron from "./Cron.js"
import * as internal from "./internal/taskWorker.js"
import type { TaskHandlers } from "./TaskHandlers.js"
import type { TaskStatus } from "./TaskStatus.js"
import type { TaskStore, TaskStoreError } from "./TaskStore.js"

/**
 * A running worker.
 *
 * @example
 * ```ts
 * import { TaskWorker } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const report = Effect.flatMap(TaskWorker.TaskWorker, (worker) => worker.stats)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskWorker {
  readonly workerId: string
  /** Live counters of this worker. */
  readonly stats: Effect.Effect<TaskWorker.Stats>
  /** Pauses a queue in the store: no worker claims from it until resumed. */
  readonly pause: (queue: string) => Effect.Effect<void, TaskStoreError>
  readonly resume: (queue: string) => Effect.Effect<void, TaskStoreError>
}

/**
 * @since 0.1.0
 */
export declare namespace TaskWorker {
  /**
   * Options of one queue, when the worker lists its queues with their own concurrency.
   *
   * @since 0.1.0
   * @category models
   */
  export interface QueueOptions {
    /** At most this many tasks of this queue at once (within the global `concurrency`). */
    readonly concurrency?: number | undefined
  }

  /**
   * Limits on the tasks of one name. Key functions receive the decoded payload.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Limits {
    /** At most this many tasks of this name at once in this worker. */
    readonly concurrency?: number | undefined
    /** At most `limit` starts in any window of `interval` (sliding window), per key when `key` is given. */
    readonly rateLimit?: {
      readonly limit: number
      readonly interval: Duration.DurationInput
      readonly key?: ((payload: any) => string) | undefined
    } | undefined
    /** At most `limit` tasks with the same key at once. */
    readonly keyConcurrency?: {
      readonly key: (payload: any) => string
      readonly limit: number
    } | undefined
  }

  /**
   * Options of `make` and `layer`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /** Default `<hostname>-<pid>-<random>`. */
    readonly workerId?: string | undefined
    /**
     * The queues to claim from: all when omitted, a list, or a record giving each queue its own
     * concurrency.
     */
    readonly queues?: ReadonlyArray<string> | { readonly [queue: string]: QueueOptions } | undefined
    /** Tasks running at once in this worker. Default 10. */
    readonly concurrency?: number | undefined
    /** Limits by task name. */
    readonly limits?: { readonly [name: string]: Limits } | undefined
    /** Lease of a claimed task, renewed by heartbeats. Default 30 seconds. */
    readonly lease?: Duration.DurationInput | undefined
    /** Default a third of the lease. */
    readonly heartbeatInterval?: Duration.DurationInput | undefined
    /** The polling backstop of push wake-ups, jittered ±20%. Default 1 second. */
    readonly pollInterval?: Duration.DurationInput | undefined
    /** Tasks claimed per round trip at most. Default `concurrency` + `prefetch`. */
    readonly claimBatchSize?: number | undefined
    /**
     * Tasks claimed ahead of free slots and held in memory (per queue group): a local queue, so
     * that a slot freed by a finished task takes the next task at once instead of waiting for a
     * claim round trip, and claims come in batches. The buffer is topped up when half of it has
     * gone. For throughput with many short tasks, a few hundred (as graphile-worker's
     * `localQueue`); for long tasks, 0. Prefetched tasks are `running` in the store and leased to
     * this worker (heartbeats renew them) while they wait; they are released at once when the
     * worker shuts down. Default 0 (claim only for free slots).
     */
    readonly prefetch?: number | undefined
    /** How often expired leases are rescued, jittered ±20%. Default 5 seconds. */
    readonly rescueInterval?: Duration.DurationInput | undefined
    /** How long shutdown waits for running tasks before releasing them. Default 30 seconds. */
    readonly shutdownGrace?: Duration.DurationInput | undefined
    /** Progress is written at most once per interval per task; logs are batched. Default 1 second. */
    readonly progressInterval?: Duration.DurationInput | undefined
    /** Deletes finished tasks older than `olderThan`, every `interval` (default 1 minute). */
    readonly retention?: {
      readonly olderThan: Duration.DurationInput
      readonly interval?: Duration.DurationInput | undefined
      readonly statuses?: ReadonlyArray<TaskStatus> | undefined
    } | undefined
    /** Cron schedules this worker also runs (every node may run them: each tick fires once). */
    readonly cron?: ReadonlyArray<Cron.Schedule> | undefined
  }

  /**
   * Counters of one worker since it started.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats {
    readonly workerId: string
    /** Tasks held now (running, or waiting for a limit). */
    readonly running: number
    readonly claimed: number
    readonly succeeded: number
    /** Attempts that failed and were rescheduled. */
    readonly retried: number
    readonly failed: number
    readonly dead: number
    readonly timedOut: number
    readonly cancelled: number
    /** Attempts dropped because the lease was lost. */
    readonly lost: number
    readonly released: number
    /** Tasks of any worker rescued by this worker's rescuer. */
    readonly rescued: number
  }
}

/**
 * The tag of the worker provided by `layer`.
 *
 * @example
 * ```ts
 * import { TaskWorker } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const id = Effect.map(TaskWorker.TaskWorker, (worker) => worker.workerId)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export const TaskWorker: Context.Tag<TaskWorker, TaskWorker> = Ctx.GenericTag<TaskWorker>(
  "@spindle/tasks/TaskWorker"
)

/**
 * Starts a worker in the current scope; closing the scope shuts it down gracefully. Dies with
 * `IllegalArgumentException` on invalid options.
 *
 * @example
 * ```ts
 * import { TaskWorker } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const worker = yield* TaskWorker.make({ concurrency: 20, queues: { email: { concurrency: 5 }, reports: {} } })
 *   yield* Effect.never
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: TaskWorker.Options
) => Effect.Effect<TaskWorker, never, Scope.Scope | TaskStore | TaskHandlers> = internal.make

/**
 * A worker as a layer.
 *
 * @example
 * ```ts
 * import { MemoryStore, Task, TaskHandlers, TaskWorker } from "@spindle/tasks"
 * import { Effect, Layer, Schema } from "effect"
 *
 * const Ping = Task.make("ping", { payload: Schema.Void, success: Schema.String, failure: Schema.Never })
 * const WorkerLive = TaskWorker.layer({ concurrency: 4 }).pipe(
 *   Layer.provide(TaskHandlers.layer(TaskHandlers.handler(Ping, () => Effect.succeed("pong")))),
 *   Layer.provide(MemoryStore.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: TaskWorker.Options): Layer.Layer<TaskWorker, never, TaskStore | TaskHandlers> =>
  L.scoped(TaskWorker, internal.make(options))
