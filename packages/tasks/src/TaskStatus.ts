/**
 * The lifecycle of a durable task: its statuses and the transitions allowed between them, as
 * data. This module is a leaf: it depends on nothing else in Spindle, so every store, the worker,
 * the client and the server agree on one state machine. The diagram is in
 * `docs/state-machine.md`.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Either, Schema } from "effect"

/**
 * Every status a task can be in.
 *
 * - `pending`: ready to run, waiting for a worker.
 * - `scheduled`: waiting for its `runAt` (a delayed task, or a retry backing off); claimable
 *   once `runAt` has passed.
 * - `running`: claimed by a worker that holds a lease on it.
 * - `succeeded`: finished with a result. Final.
 * - `failed`: finished with an error that is not retried (its tag is not in the policy's
 *   `retryOn`). Can be retried by hand.
 * - `dead`: every attempt failed. Can be retried by hand.
 * - `cancelled`: cancelled before it finished. Can be retried by hand.
 * - `timed-out`: the last attempt exceeded the task's hard timeout. Can be retried by hand.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const status = Schema.decodeUnknownSync(TaskStatus.TaskStatus)("running")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskStatus = Schema.Literal(
  "pending",
  "scheduled",
  "running",
  "succeeded",
  "failed",
  "dead",
  "cancelled",
  "timed-out"
)

/**
 * @since 0.1.0
 * @category models
 */
export type TaskStatus = typeof TaskStatus.Type

/**
 * Every status, in lifecycle order.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * for (const status of TaskStatus.all) console.log(status)
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const all: ReadonlyArray<TaskStatus> = TaskStatus.literals

/**
 * The allowed transitions: `transitions[from]` lists every status `from` may move to.
 *
 * - A worker claims `pending` and due `scheduled` tasks (`running`).
 * - A running task ends `succeeded`, `failed`, `dead` or `timed-out`; goes back to `scheduled`
 *   to retry after a backoff; goes back to `pending` when its worker releases it at shutdown or
 *   its lease expires (the rescuer); or ends `cancelled`.
 * - A finished task other than `succeeded` may be retried by hand (`pending`).
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * TaskStatus.transitions.running.includes("succeeded") // true
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const transitions: { readonly [From in TaskStatus]: ReadonlyArray<TaskStatus> } = {
  pending: ["running", "scheduled", "cancelled"],
  scheduled: ["pending", "running", "cancelled"],
  running: ["succeeded", "failed", "dead", "timed-out", "scheduled", "pending", "cancelled"],
  succeeded: [],
  failed: ["pending"],
  dead: ["pending"],
  cancelled: ["pending"],
  "timed-out": ["pending"]
}

/**
 * Whether `from → to` is an allowed transition.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * TaskStatus.canTransition("succeeded", "pending") // false
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const canTransition = (from: TaskStatus, to: TaskStatus): boolean => transitions[from].includes(to)

/**
 * A task was asked to make a transition the state machine does not allow (for example,
 * cancelling a task that has already succeeded). Answered with 409 Conflict over HTTP.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * const error = new TaskStatus.IllegalTransition({ taskId: "t1", from: "succeeded", to: "cancelled" })
 * error.message // "task t1 cannot go from succeeded to cancelled"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>("@spindle/tasks/IllegalTransition")(
  "IllegalTransition",
  { taskId: Schema.String, from: TaskStatus, to: TaskStatus },
  HttpApiSchema.annotations({ status: 409 })
) {
  override get message(): string {
    return `task ${this.taskId} cannot go from ${this.from} to ${this.to}`
  }
}

/**
 * Checks a transition: `Right(to)` when allowed, `Left(IllegalTransition)` otherwise.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 * import { Either } from "effect"
 *
 * Either.isLeft(TaskStatus.transition("t1", "succeeded", "running")) // true
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const transition = (
  taskId: string,
  from: TaskStatus,
  to: TaskStatus
): Either.Either<TaskStatus, IllegalTransition> =>
  canTransition(from, to) ? Either.right(to) : Either.left(new IllegalTransition({ taskId, from, to }))

/**
 * Statuses a worker may claim (when `runAt` has passed).
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * TaskStatus.claimable // ["pending", "scheduled"]
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const claimable: ReadonlyArray<TaskStatus> = ["pending", "scheduled"]

/**
 * Statuses in which a task is finished: it will not run again unless retried by hand.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * TaskStatus.isFinished("dead") // true
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFinished = (status: TaskStatus): boolean =>
  status === "succeeded" || status === "failed" || status === "dead" || status === "cancelled" ||
  status === "timed-out"

/**
 * Finished statuses a task may be retried from by hand.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * TaskStatus.retryable.includes("dead") // true
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const retryable: ReadonlyArray<TaskStatus> = ["failed", "dead", "cancelled", "timed-out"]

/**
 * A count per status, every one zero: the starting point of statistics.
 *
 * @example
 * ```ts
 * import { TaskStatus } from "@spindle/tasks"
 *
 * const counts = TaskStatus.emptyCounts()
 * counts.pending += 1
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const emptyCounts = (): { [S in TaskStatus]: number } => ({
  pending: 0,
  scheduled: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  dead: 0,
  cancelled: 0,
  "timed-out": 0
})
