/**
 * Lifecycle events: every transition of a task (and its progress) is published as a
 * `TaskEvent` by the store that made it, so the worker, the client's `await`, the SSE endpoint
 * and the dashboard all see the same sequence.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { TaskError } from "./TaskRecord.js"
import { TaskStatus } from "./TaskStatus.js"

/**
 * What happened:
 * - `submitted`: inserted (status `pending` or `scheduled`).
 * - `started`: claimed by a worker (`running`); `attempt` is the attempt that starts.
 * - `progress`: the handler reported progress (no status change).
 * - `succeeded`, `failed`, `dead`, `timed-out`, `cancelled`: finished.
 * - `retrying`: the attempt failed and the task waits for its backoff (`scheduled`).
 * - `released`: its worker shut down and gave it back (`pending`).
 * - `rescued`: its lease expired (a crashed worker) and the rescuer gave it back.
 * - `cancel-requested`: cancellation of a running task was asked for; its worker interrupts it.
 * - `retried`: a finished task was retried by hand (`pending`).
 *
 * @example
 * ```ts
 * import { TaskEvent } from "@spindle/tasks"
 *
 * const kind: TaskEvent.TaskEventType = "succeeded"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskEventType = Schema.Literal(
  "submitted",
  "started",
  "progress",
  "succeeded",
  "failed",
  "dead",
  "timed-out",
  "cancelled",
  "retrying",
  "released",
  "rescued",
  "cancel-requested",
  "retried"
)

/**
 * @since 0.1.0
 * @category models
 */
export type TaskEventType = typeof TaskEventType.Type

/**
 * One lifecycle event. `sequence` orders events; where the store keeps events durably it is
 * the store's sequence number (usable as an SSE `Last-Event-ID`), otherwise a per-process
 * counter.
 *
 * @example
 * ```ts
 * import { TaskEvent } from "@spindle/tasks"
 *
 * const isFinal = (event: TaskEvent.TaskEvent) => event.type === "succeeded" || event.type === "dead"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskEvent = Schema.Struct({
  sequence: Schema.Number,
  type: TaskEventType,
  taskId: Schema.String,
  name: Schema.String,
  queue: Schema.String,
  /** The status after the event. */
  status: TaskStatus,
  attempt: Schema.Int,
  at: Schema.DateFromNumber,
  progress: Schema.optional(Schema.Number),
  message: Schema.optional(Schema.String),
  error: Schema.optional(TaskError),
  /** The encoded result, on `succeeded`. */
  result: Schema.optional(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskEvent extends Schema.Schema.Type<typeof TaskEvent> {}
