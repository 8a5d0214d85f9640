/**
 * The stored form of a task: what every store keeps and returns, and what the HTTP API sends.
 * Payload and result are JSON values here (the raw store never decodes them); the typed facade
 * (`Task`, `TaskClient`) encodes and decodes them with the task definition's Schemas.
 *
 * @since 0.1.0
 */
import { PriorityScheduler, RetryPolicy } from "@spindle/core"
import { Schema } from "effect"
import { TaskStatus } from "./TaskStatus.js"

/**
 * Priority levels, as in `@spindle/core`'s PriorityScheduler: claims take `critical` first.
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 *
 * const p: TaskRecord.Priority = "high"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const Priority = PriorityScheduler.Priority

/**
 * @since 0.1.0
 * @category models
 */
export type Priority = PriorityScheduler.Priority

/**
 * The rank a store sorts claims by: 0 for `critical` up to 3 for `low`.
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 *
 * TaskRecord.priorityRank.critical // 0
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const priorityRank: { readonly [P in Priority]: number } = { critical: 0, high: 1, normal: 2, low: 3 }

/**
 * The priority of a rank (the inverse of `priorityRank`).
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 *
 * TaskRecord.priorityOfRank(3) // "low"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const priorityOfRank = (rank: number): Priority => PriorityScheduler.priorities[rank] ?? "normal"

/**
 * Why an attempt failed, readable by a person: the error's tag (or `Defect`, `Interrupted`,
 * `Timeout`, `LeaseExpired`), its message, and the pretty-printed cause.
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 *
 * const error: TaskRecord.TaskError = { tag: "Unavailable", message: "503 from billing", cause: "Error: ..." }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskError = Schema.Struct({
  tag: Schema.String,
  message: Schema.String,
  cause: Schema.String,
  /** The encoded failure value, when the task definition has a failure Schema. */
  value: Schema.optional(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category models
 */
export type TaskError = typeof TaskError.Type

const Millis = Schema.DateFromNumber
const NullableMillis = Schema.NullOr(Schema.DateFromNumber)

/**
 * The stored task. Times are `Date`s, encoded as epoch milliseconds.
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const toJson = Schema.encodeSync(TaskRecord.TaskRecord)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskRecord = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  queue: Schema.String,
  status: TaskStatus,
  priority: Priority,
  /** The encoded payload (JSON). */
  payload: Schema.Unknown,
  /** The encoded result (JSON) once succeeded, otherwise null. */
  result: Schema.Unknown,
  /** Why the last attempt failed, or null. */
  error: Schema.NullOr(TaskError),
  /** Attempts started so far (a claim increments it). */
  attempt: Schema.Int,
  maxAttempts: Schema.Int,
  /** The retry policy stored with the task, or null for none. */
  retry: Schema.NullOr(RetryPolicy.Schema),
  /** Hard timeout per attempt in milliseconds, or null. */
  timeoutMs: Schema.NullOr(Schema.Number),
  /** Soft timeout per attempt in milliseconds (warn, do not interrupt), or null. */
  softTimeoutMs: Schema.NullOr(Schema.Number),
  /** Not claimed before this time. */
  runAt: Millis,
  createdAt: Millis,
  updatedAt: Millis,
  /** When the current or last attempt started. */
  startedAt: NullableMillis,
  finishedAt: NullableMillis,
  /** The worker holding the lease while running. */
  leaseOwner: Schema.NullOr(Schema.String),
  leaseExpiresAt: NullableMillis,
  /** Set when cancellation of a running task was requested; its worker interrupts it. */
  cancelRequested: Schema.Boolean,
  /** 0..1 */
  progress: Schema.Number,
  progressMessage: Schema.NullOr(Schema.String),
  idempotencyKey: Schema.NullOr(Schema.String),
  parentId: Schema.NullOr(Schema.String),
  tags: Schema.Array(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskRecord extends Schema.Schema.Type<typeof TaskRecord> {}

/**
 * What a store needs to insert a task. Omitted fields take defaults: a generated time-ordered
 * `id`, queue `"default"`, priority `"normal"`, `maxAttempts` 1, `runAt` now (a later `runAt`
 * makes the task `scheduled`), no tags.
 *
 * An `idempotencyKey` is unique among tasks of the same `name` that are not finished: inserting
 * a second one returns the existing task (`created: false`) instead of a duplicate.
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 *
 * const task: TaskRecord.NewTask = { name: "send-email", payload: { to: "ada@example.com" } }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface NewTask {
  readonly id?: string | undefined
  readonly name: string
  readonly queue?: string | undefined
  readonly priority?: Priority | undefined
  readonly payload: unknown
  readonly maxAttempts?: number | undefined
  readonly retry?: RetryPolicy.Serializable | null | undefined
  readonly timeoutMs?: number | null | undefined
  readonly softTimeoutMs?: number | null | undefined
  readonly runAt?: Date | undefined
  readonly idempotencyKey?: string | null | undefined
  readonly parentId?: string | null | undefined
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * One log line kept with a task (`TaskContext.log` inside a handler).
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 *
 * const line: TaskRecord.TaskLogLine = { taskId: "t1", attempt: 1, at: new Date(), level: "info", message: "fetched 20 rows" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const TaskLogLine = Schema.Struct({
  taskId: Schema.String,
  attempt: Schema.Int,
  at: Millis,
  level: Schema.Literal("debug", "info", "warn", "error"),
  message: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskLogLine extends Schema.Schema.Type<typeof TaskLogLine> {}

let lastMillis = 0
let sequence = 0

/**
 * A new task id: 26 characters, time-ordered (milliseconds, then a per-process sequence, then
 * randomness), so ids sort by creation time and index well.
 *
 * @example
 * ```ts
 * import { TaskRecord } from "@spindle/tasks"
 *
 * const id = TaskRecord.makeId(Date.now())
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeId = (nowMillis: number): string => {
  if (nowMillis === lastMillis) sequence++
  else {
    lastMillis = nowMillis
    sequence = 0
  }
  const time = nowMillis.toString(36).padStart(9, "0")
  const seq = sequence.toString(36).padStart(5, "0")
  return time + seq + randomDigits() + randomDigits()
}

/** Six random base-36 digits from one draw (36^6 < 2^31). */
const randomDigits = (): string => Math.floor(Math.random() * 2_176_782_336).toString(36).padStart(6, "0")
