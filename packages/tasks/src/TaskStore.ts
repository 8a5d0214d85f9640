/**
 * The raw task store: one interface that the memory, SQLite and Postgres stores implement and
 * that one conformance suite (`test/TaskStoreSuite.ts`) checks. Methods are named noun first,
 * each takes one params object, and every change of status follows the state machine of
 * `TaskStatus` and publishes a `TaskEvent`.
 *
 * Payloads and results are JSON values here; the typed facade (`Task`, `TaskClient`, the worker)
 * does the Schema encoding. Time comes from the `Clock` (so `TestClock` drives the memory
 * store); stores on a shared database use the clock of the process calling them, so the
 * machines of one deployment should keep their clocks in sync (NTP), as with any lease-based
 * queue.
 *
 * This interface is for store authors and the runtime; applications use `TaskClient`.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import type { Option, Scope } from "effect"
import { Context, Effect, PubSub, Schema, Stream } from "effect"
import type { TaskEvent, TaskEventType } from "./TaskEvent.js"
import type { NewTask, Priority, TaskError, TaskLogLine, TaskRecord } from "./TaskRecord.js"
import { priorityRank } from "./TaskRecord.js"
import type { IllegalTransition, TaskStatus } from "./TaskStatus.js"
import { emptyCounts } from "./TaskStatus.js"

/**
 * The store could not be reached or failed (a database error, a busy timeout). Answered with
 * 503 over HTTP. `operation` names the store method.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * const error = new TaskStore.TaskStoreError({ operation: "tasksClaim", message: "database is locked" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskStoreError extends Schema.TaggedError<TaskStoreError>("@spindle/tasks/TaskStoreError")(
  "TaskStoreError",
  { operation: Schema.String, message: Schema.String, cause: Schema.optional(Schema.Defect) },
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * No task has this id. Answered with 404 over HTTP.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * const error = new TaskStore.TaskNotFound({ taskId: "t1" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>("@spindle/tasks/TaskNotFound")(
  "TaskNotFound",
  { taskId: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {
  override get message(): string {
    return `no task with id ${this.taskId}`
  }
}

/**
 * A worker tried to complete, fail or report on a task it no longer holds: its lease expired
 * and the task was rescued (and perhaps claimed by another worker), or it was cancelled. The
 * store refuses, so a task never completes twice.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * const error = new TaskStore.LeaseLost({ taskId: "t1", workerId: "w1" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>("@spindle/tasks/LeaseLost")(
  "LeaseLost",
  { taskId: Schema.String, workerId: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {
  override get message(): string {
    return `worker ${this.workerId} no longer holds the lease on task ${this.taskId}`
  }
}

/**
 * @since 0.1.0
 */
export declare namespace TaskStore {
  /**
   * The events of a store in this process (see `makeEventHub`).
   *
   * @example
   * ```ts
   * import type { TaskEvent, TaskStore } from "@spindle/tasks"
   * import type { Effect } from "effect"
   *
   * declare const hub: TaskStore.TaskStore.EventHub
   * declare const event: TaskEvent.TaskEvent
   * // dropped unless someone subscribed to events of its type
   * const published: Effect.Effect<void> = hub.publish([event])
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  export interface EventHub {
    /** Whether someone subscribed to events of `type`: build them only then. */
    readonly wants: (type: TaskEventType) => boolean
    /** Delivers the events someone wants, drops the others. */
    readonly publish: (events: ReadonlyArray<TaskEvent>) => Effect.Effect<void>
    /** Every event (the store's `events`). */
    readonly events: Stream.Stream<TaskEvent>
    /** The events of these types (the store's `eventsOf`). */
    readonly eventsOf: (types: ReadonlyArray<TaskEventType>) => Stream.Stream<TaskEvent>
  }

  /**
   * A waiting worker's offer to take a new task the moment it is submitted (see `awaitWork`):
   * the task is inserted already claimed by the worker, in the same statement, so it starts
   * without a wake-up and a claim of its own (one round trip from submit to start instead of
   * three, in a process that both submits and works).
   *
   * @example
   * ```ts
   * import type { TaskStore } from "@spindle/tasks"
   *
   * const handoff: TaskStore.TaskStore.Handoff = {
   *   workerId: "worker-1",
   *   leaseMs: 30_000,
   *   accepts: (task) => task.name === "email.send",
   *   receive: (task) => console.log(task?.status) // "running", or undefined when not claimed
   * }
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  export interface Handoff {
    readonly workerId: string
    readonly leaseMs: number
    /**
     * Whether the worker takes this task now; asked synchronously, at most once per task, and
     * only for a task that could be claimed right away (due now). `true` commits the worker:
     * the store then calls `receive` exactly once.
     */
    readonly accepts: (task: { readonly name: string; readonly queue: string }) => boolean
    /**
     * The task as inserted: `running`, attempt 1, leased to `workerId` for `leaseMs`. Or
     * `undefined` when the store did not claim it after all (its queue was paused, the insert
     * failed): the task, if inserted, waits to be claimed as usual.
     */
    readonly receive: (task: TaskRecord | undefined) => void
    /**
     * Optional: the task as `receive` will have it if the insert succeeds, given (once, before
     * `receive`, by a store whose insert takes a round trip) while the insert is on its way, so
     * that the worker readies the attempt meanwhile. It must only compute: `receive` may still
     * bring `undefined`.
     */
    readonly prepare?: ((task: TaskRecord) => void) | undefined
  }

  /**
   * The outcome of inserting one task: the stored record, and whether it was created (false
   * when an unfinished task with the same name and idempotency key already existed).
   *
   * @since 0.1.0
   * @category models
   */
  export interface Inserted {
    readonly task: TaskRecord
    readonly created: boolean
  }

  /**
   * The result of a heartbeat: leases renewed, leases this worker no longer holds (stop those
   * handlers), and running tasks whose cancellation was requested (interrupt those handlers).
   *
   * @since 0.1.0
   * @category models
   */
  export interface Heartbeat {
    readonly renewed: ReadonlyArray<string>
    readonly lost: ReadonlyArray<string>
    readonly cancelRequested: ReadonlyArray<string>
  }

  /**
   * How a running attempt ended, when it did not succeed.
   *
   * - `retry`: back to `scheduled` until `runAt` (a backoff).
   * - `failed` / `dead` / `timed-out`: finished.
   * - `cancelled`: it was interrupted because cancellation was requested.
   *
   * @since 0.1.0
   * @category models
   */
  export type FailOutcome =
    | { readonly _tag: "retry"; readonly runAt: Date }
    | { readonly _tag: "failed" }
    | { readonly _tag: "dead" }
    | { readonly _tag: "timed-out" }
    | { readonly _tag: "cancelled" }

  /**
   * Filters of a listing; every field given must match.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Filter {
    readonly status?: ReadonlyArray<TaskStatus> | undefined
    readonly name?: ReadonlyArray<string> | undefined
    readonly queue?: ReadonlyArray<string> | undefined
    /** Tasks carrying this tag, or every one of these tags. */
    readonly tag?: string | ReadonlyArray<string> | undefined
    readonly parentId?: string | undefined
  }

  /**
   * Sort keys of a listing; ties are broken by id in the same direction.
   *
   * @since 0.1.0
   * @category models
   */
  export type SortKey = "createdAt" | "runAt" | "updatedAt" | "priority"

  /**
   * @since 0.1.0
   * @category models
   */
  export interface ListParams {
    readonly filter?: Filter | undefined
    /** Default `createdAt`. */
    readonly sortBy?: SortKey | undefined
    /** Default `desc` (newest first). */
    readonly order?: "asc" | "desc" | undefined
    /** 1..1000, default 50. */
    readonly limit?: number | undefined
    /** The `nextCursor` of the previous page: opaque to callers. */
    readonly cursor?: string | undefined
  }

  /**
   * One page of a listing; `nextCursor` is undefined on the last page. A cursor stays valid
   * while tasks are inserted or change status: pages never repeat or skip a task that keeps
   * its sort key.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Page {
    readonly items: ReadonlyArray<TaskRecord>
    readonly nextCursor: string | undefined
  }

  /**
   * Task counts over the whole store: by status, by name and by queue (names and queues in
   * order; a paused queue is listed even when it holds no task).
   *
   * @since 0.1.0
   * @category models
   */
  export interface Counts {
    readonly total: number
    readonly byStatus: { readonly [S in TaskStatus]: number }
    readonly byName: ReadonlyArray<{ readonly name: string; readonly counts: { readonly [S in TaskStatus]: number } }>
    readonly byQueue: ReadonlyArray<
      { readonly queue: string; readonly paused: boolean; readonly counts: { readonly [S in TaskStatus]: number } }
    >
  }

  /**
   * Statistics over the whole store: the counts, and the finished tasks of recent windows.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stats extends Counts {
    /** Tasks finished per minute, for the last `minutes` minutes, oldest first. */
    readonly throughput: ReadonlyArray<
      { readonly minute: Date; readonly succeeded: number; readonly failed: number }
    >
    /** succeeded / (succeeded + failed + dead + timed-out) over the window; 1 when none finished. */
    readonly successRate: number
    /** Over attempts that finished in the window: from startedAt to finishedAt, milliseconds. */
    readonly meanDurationMs: number
    readonly p95DurationMs: number
    /** Tasks finished per hour for the last 24 hours, oldest first. */
    readonly hourly: ReadonlyArray<{ readonly hour: Date; readonly succeeded: number; readonly failed: number }>
  }

  /**
   * One completion of a batch (`tasksComplete`): a running task held by `workerId` succeeded
   * with `result`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Completion {
    readonly id: string
    readonly workerId: string
    readonly result: unknown
  }

  /**
   * One failure of a batch (`tasksFail`): a running attempt held by `workerId` ended without
   * succeeding, with `outcome` (see FailOutcome).
   *
   * @since 0.1.0
   * @category models
   */
  export interface Failure {
    readonly id: string
    readonly workerId: string
    readonly error: TaskError
    readonly outcome: FailOutcome
  }

  /**
   * What became of one item of a batch: `settled` (the change was made and its event
   * published), or `lease-lost` (the task was not running under that worker's lease: nothing
   * changed, as `LeaseLost` from the single-task methods). Only the first item of an id
   * repeated within one batch applies: its later items are `lease-lost`.
   *
   * @since 0.1.0
   * @category models
   */
  export type BatchOutcome = "settled" | "lease-lost"

  /**
   * A queue and whether it is paused.
   *
   * @since 0.1.0
   * @category models
   */
  export interface QueueInfo {
    readonly queue: string
    readonly paused: boolean
  }
}

/**
 * The raw store. Every method is atomic; a method that changes a task publishes its events on
 * `events` once the change is durable.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const pending = Effect.flatMap(TaskStore.TaskStore, (store) =>
 *   store.tasksList({ filter: { status: ["pending"] }, limit: 10 }))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskStore extends Context.Tag("@spindle/tasks/TaskStore")<TaskStore, {
  /**
   * Inserts many tasks in one round trip, all or none. A task whose (name, idempotencyKey)
   * matches an unfinished task is not inserted: the existing record comes back with
   * `created: false`. Results are in input order.
   */
  readonly tasksInsert: (params: {
    readonly tasks: ReadonlyArray<NewTask>
  }) => Effect.Effect<ReadonlyArray<TaskStore.Inserted>, TaskStoreError>

  /**
   * Atomically claims up to `limit` claimable tasks whose `runAt` has passed, in the given
   * queues (all queues when omitted) that are not paused, ordered by priority, then runAt, then
   * id. Each claimed task becomes `running`, its `attempt` goes up by one, `startedAt` is now,
   * and the lease is `workerId`'s until now + `leaseMs`. Two claimers never get the same task.
   */
  readonly tasksClaim: (params: {
    readonly workerId: string
    readonly limit: number
    readonly leaseMs: number
    readonly queues?: ReadonlyArray<string> | undefined
    /** Only tasks with these names (a worker without handlers for others). */
    readonly names?: ReadonlyArray<string> | undefined
  }) => Effect.Effect<ReadonlyArray<TaskRecord>, TaskStoreError>

  /** Extends the leases `workerId` still holds to now + `leaseMs`. */
  readonly tasksHeartbeat: (params: {
    readonly workerId: string
    readonly ids: ReadonlyArray<string>
    readonly leaseMs: number
  }) => Effect.Effect<TaskStore.Heartbeat, TaskStoreError>

  /**
   * Marks a running task held by `workerId` as succeeded with `result`. Fails with LeaseLost
   * when the task is not running under that worker's lease any more.
   */
  readonly taskComplete: (params: {
    readonly id: string
    readonly workerId: string
    readonly result: unknown
  }) => Effect.Effect<TaskRecord, TaskStoreError | LeaseLost>

  /**
   * `taskComplete` for many tasks in one round trip (one statement or one transaction): each
   * item only applies to a task still running under its worker's lease. Returns the outcome of
   * each item, in input order; events are published once the batch is durable. The records are
   * not returned (nothing is read back): the worker's hot path.
   */
  readonly tasksComplete: (params: {
    readonly items: ReadonlyArray<TaskStore.Completion>
  }) => Effect.Effect<ReadonlyArray<TaskStore.BatchOutcome>, TaskStoreError>

  /** `taskFail` for many tasks in one round trip, as `tasksComplete`. */
  readonly tasksFail: (params: {
    readonly items: ReadonlyArray<TaskStore.Failure>
  }) => Effect.Effect<ReadonlyArray<TaskStore.BatchOutcome>, TaskStoreError>

  /** Ends a running attempt held by `workerId` that did not succeed (see FailOutcome). */
  readonly taskFail: (params: {
    readonly id: string
    readonly workerId: string
    readonly error: TaskError
    readonly outcome: TaskStore.FailOutcome
  }) => Effect.Effect<TaskRecord, TaskStoreError | LeaseLost>

  /**
   * Gives tasks held by `workerId` back to `pending` (graceful shutdown), undoing the attempt
   * count of the claim. Returns how many were released.
   */
  readonly tasksRelease: (params: {
    readonly workerId: string
    readonly ids: ReadonlyArray<string>
  }) => Effect.Effect<number, TaskStoreError>

  /**
   * Returns running tasks whose lease expired before now to `pending` (or to `dead` when their
   * attempts are exhausted), publishing `rescued` (or `dead`). Returns the rescued records.
   */
  readonly tasksRescue: (params: {
    readonly limit?: number | undefined
  }) => Effect.Effect<ReadonlyArray<TaskRecord>, TaskStoreError>

  /**
   * Cancels a task: a pending or scheduled one becomes `cancelled` at once; a running one gets
   * `cancelRequested` (its worker interrupts the handler and ends it `cancelled`). Fails with
   * IllegalTransition for a finished task.
   */
  readonly taskCancel: (params: {
    readonly id: string
  }) => Effect.Effect<TaskRecord, TaskStoreError | TaskNotFound | IllegalTransition>

  /**
   * Retries a finished task that did not succeed: back to `pending` (or `scheduled` at
   * `runAt`), with `maxAttempts` raised so that it gets `extraAttempts` (default 1) more.
   */
  readonly taskRetry: (params: {
    readonly id: string
    readonly runAt?: Date | undefined
    readonly extraAttempts?: number | undefined
  }) => Effect.Effect<TaskRecord, TaskStoreError | TaskNotFound | IllegalTransition>

  /** Records progress (0..1) of a running task held by `workerId`; publishes `progress`. */
  readonly taskProgress: (params: {
    readonly id: string
    readonly workerId: string
    readonly progress: number
    readonly message?: string | undefined
  }) => Effect.Effect<void, TaskStoreError | LeaseLost>

  /** Appends log lines to a task. */
  readonly taskLogAppend: (params: {
    readonly lines: ReadonlyArray<TaskLogLine>
  }) => Effect.Effect<void, TaskStoreError>

  /** A task's log lines, oldest first. */
  readonly taskLogs: (params: {
    readonly id: string
  }) => Effect.Effect<ReadonlyArray<TaskLogLine>, TaskStoreError>

  readonly taskGet: (params: {
    readonly id: string
  }) => Effect.Effect<Option.Option<TaskRecord>, TaskStoreError>

  readonly tasksList: (params: TaskStore.ListParams) => Effect.Effect<TaskStore.Page, TaskStoreError>

  /**
   * The counts of `tasksStats` alone (one grouped count, none of its time windows): what a
   * queue listing or a metrics scrape needs.
   */
  readonly tasksCount: (params?: {}) => Effect.Effect<TaskStore.Counts, TaskStoreError>

  /** Statistics; the throughput window is the last `minutes` minutes (default 60). */
  readonly tasksStats: (params: {
    readonly minutes?: number | undefined
  }) => Effect.Effect<TaskStore.Stats, TaskStoreError>

  /** Deletes finished tasks (and their logs) that finished before `before`; returns how many. */
  readonly tasksDelete: (params: {
    readonly finishedBefore: Date
    readonly statuses?: ReadonlyArray<TaskStatus> | undefined
  }) => Effect.Effect<number, TaskStoreError>

  /** Pauses a queue: claims skip it until resumed. Idempotent. */
  readonly queuePause: (params: { readonly queue: string }) => Effect.Effect<void, TaskStoreError>
  readonly queueResume: (params: { readonly queue: string }) => Effect.Effect<void, TaskStoreError>
  /** Queues that hold tasks or are paused. */
  readonly queuesList: (params?: {}) => Effect.Effect<ReadonlyArray<TaskStore.QueueInfo>, TaskStoreError>

  /**
   * Lifecycle events of every task in the store, as they happen (a hot stream: subscribers see
   * events published after they subscribed). Stores shared between processes deliver other
   * processes' events too (Postgres by LISTEN/NOTIFY).
   */
  readonly events: Stream.Stream<TaskEvent>

  /**
   * The events of these types alone, as `events` otherwise. A store builds only the events
   * someone subscribed to (see `makeEventHub`): a worker listening for cancellation requests
   * alone does not make every start and completion cost an event.
   */
  readonly eventsOf: (types: ReadonlyArray<TaskEventType>) => Stream.Stream<TaskEvent>

  /**
   * Completes when claimable work may have arrived (a task inserted, retried, released or
   * rescued, a queue resumed), or after `timeoutMs`: the worker's push wake-up, with polling as
   * the backstop. Across processes where the store supports it (Postgres LISTEN/NOTIFY).
   *
   * With a `handoff`, while this waits, a lone task submitted in this process (`tasksInsert` of
   * one task without an idempotency key, due now, in a queue not paused) that the handoff
   * accepts is inserted already claimed by it (`submitted` then `started` are published) and
   * handed to `receive`; the handoff takes one task at most. A task handed off wakes no other
   * waiter. Stores may ignore `handoff` (the worker then claims as usual).
   */
  readonly awaitWork: (params: {
    readonly timeoutMs: number
    readonly handoff?: TaskStore.Handoff | undefined
  }) => Effect.Effect<void>
}>() {}

/**
 * A priority rank comparator for stores that sort in memory: critical first.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * ["low", "critical"].sort(TaskStore.comparePriority) // ["critical", "low"]
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const comparePriority = (a: Priority, b: Priority): number => priorityRank[a] - priorityRank[b]

/**
 * The order in which claims take tasks: priority (critical first), then `runAt`, then id. For
 * stores that choose or sort claimed tasks in memory.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 * import type { TaskRecord } from "@spindle/tasks"
 *
 * const next = (tasks: Array<TaskRecord.TaskRecord>) => tasks.sort(TaskStore.compareClaimOrder)[0]
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const compareClaimOrder = (a: TaskRecord, b: TaskRecord): number => {
  const byPriority = priorityRank[a.priority] - priorityRank[b.priority]
  if (byPriority !== 0) return byPriority
  const byRunAt = a.runAt.getTime() - b.runAt.getTime()
  if (byRunAt !== 0) return byRunAt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/**
 * The status a task takes when a running attempt ends with `outcome`: `scheduled` for a retry,
 * else the outcome's own status (`failed`, `dead`, `timed-out`, `cancelled`).
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * TaskStore.failStatus({ _tag: "retry", runAt: new Date() }) // "scheduled"
 * TaskStore.failStatus({ _tag: "dead" }) // "dead"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const failStatus = (
  outcome: TaskStore.FailOutcome
): "scheduled" | Exclude<TaskStore.FailOutcome["_tag"], "retry"> =>
  outcome._tag === "retry" ? "scheduled" : outcome._tag

/**
 * The type of the event published when a running attempt ends with `outcome`: `retrying` for a
 * retry, else the outcome's own type (`failed`, `dead`, `timed-out`, `cancelled`).
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * TaskStore.failEventType({ _tag: "retry", runAt: new Date() }) // "retrying"
 * TaskStore.failEventType({ _tag: "timed-out" }) // "timed-out"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const failEventType = (
  outcome: TaskStore.FailOutcome
): "retrying" | Exclude<TaskStore.FailOutcome["_tag"], "retry"> => outcome._tag === "retry" ? "retrying" : outcome._tag

/**
 * The number a listing sorts `record` by for `key` (the value kept in a listing cursor):
 * milliseconds for the times; for `priority`, importance (`critical` highest), so `asc` lists
 * `low` first and `desc` lists `critical` first.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 * import type { TaskRecord } from "@spindle/tasks"
 *
 * const newestFirst = (tasks: Array<TaskRecord.TaskRecord>) =>
 *   tasks.sort((a, b) => TaskStore.sortValue(b, "createdAt") - TaskStore.sortValue(a, "createdAt"))
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const sortValue = (record: TaskRecord, key: TaskStore.SortKey): number => {
  switch (key) {
    case "createdAt":
      return record.createdAt.getTime()
    case "runAt":
      return record.runAt.getTime()
    case "updatedAt":
      return record.updatedAt.getTime()
    case "priority":
      return 3 - priorityRank[record.priority]
  }
}

/**
 * For store implementations: the events of a store in this process, delivered to their
 * subscribers and built only for them. `events` takes every type, `eventsOf` some types; a
 * store asks `wants(type)` once a change is committed, and builds and publishes its event only
 * then (asked before the commit, a subscriber arriving meanwhile could miss an event it should
 * see, since its own read of the store would come before the change too). `publish` drops the
 * events nobody wants. Shut down with the scope.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const hub = yield* TaskStore.makeEventHub
 *   hub.wants("started") // false: nobody listens, so a claim builds no event
 * })
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const makeEventHub: Effect.Effect<TaskStore.EventHub, never, Scope.Scope> = Effect.gen(function*() {
  const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<TaskEvent>(), PubSub.shutdown)
  let everything = 0
  const byType = new Map<TaskEventType, number>()
  const wants = (type: TaskEventType): boolean => everything > 0 || (byType.get(type) ?? 0) > 0
  const count = (types: ReadonlyArray<TaskEventType> | undefined, by: 1 | -1) => {
    if (types === undefined) everything += by
    else for (const type of new Set(types)) byType.set(type, (byType.get(type) ?? 0) + by)
  }
  // the interest is counted before the subscription and uncounted after it ends
  const subscribe = (types: ReadonlyArray<TaskEventType> | undefined): Stream.Stream<TaskEvent> =>
    Stream.unwrapScoped(
      Effect.as(
        Effect.acquireRelease(Effect.sync(() => count(types, 1)), () => Effect.sync(() => count(types, -1))),
        Stream.fromPubSub(pubsub)
      )
    )
  return {
    wants,
    publish: (events) => {
      const wanted = everything > 0 ? events : events.filter((event) => wants(event.type))
      return wanted.length === 0 ? Effect.void : Effect.asVoid(PubSub.publishAll(pubsub, wanted))
    },
    events: subscribe(undefined),
    eventsOf: (types) => {
      const only = new Set(types)
      return Stream.filter(subscribe(types), (event) => only.has(event.type))
    }
  }
})

/**
 * For store implementations: the handoffs of the `awaitWork` calls waiting (see `awaitWork`).
 * `offer` runs a wait with its handoff on offer while the wait lasts; `take` gives the waiting
 * handoff that takes a batch of new tasks, if the batch is a lone task without an idempotency
 * key, due at `now`, and removes it (each takes one task at most). The store must then insert
 * the task claimed by it (unless its queue is paused, see `claimedRecord`) and call its
 * `receive` exactly once.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * const handoffs = TaskStore.makeHandoffs()
 * handoffs.waiting() // false: nobody waits, inserts go the usual way
 * const taker = handoffs.take([{ name: "email.send", payload: {} }], Date.now()) // undefined
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const makeHandoffs = (): {
  readonly offer: <A, E, R>(
    handoff: TaskStore.Handoff | undefined,
    wait: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
  readonly waiting: () => boolean
  readonly take: (tasks: ReadonlyArray<NewTask>, now: number) => TaskStore.Handoff | undefined
} => {
  const waiting = new Set<TaskStore.Handoff>()
  return {
    offer: (handoff, wait) =>
      handoff === undefined ? wait : Effect.suspend(() => {
        waiting.add(handoff)
        return Effect.ensuring(wait, Effect.sync(() => waiting.delete(handoff)))
      }),
    waiting: () => waiting.size > 0,
    take: (tasks, now) => {
      if (waiting.size === 0 || tasks.length !== 1) return undefined
      const task = tasks[0]!
      if (task.idempotencyKey != null || (task.runAt !== undefined && task.runAt.getTime() > now)) return undefined
      const candidate = { name: task.name, queue: task.queue ?? "default" }
      for (const handoff of waiting) {
        if (handoff.accepts(candidate)) {
          waiting.delete(handoff)
          return handoff
        }
      }
      return undefined
    }
  }
}

/**
 * For store implementations: a claimable task as claimed by `workerId` at `now` (the record a
 * claim returns, and the one a handoff receives).
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 * import type { TaskRecord } from "@spindle/tasks"
 *
 * declare const pending: TaskRecord.TaskRecord
 * const running = TaskStore.claimedRecord(pending, { workerId: "w1", leaseMs: 30_000 }, Date.now())
 * // status "running", attempt + 1, leased to w1 for 30 s
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const claimedRecord = (
  task: TaskRecord,
  claim: { readonly workerId: string; readonly leaseMs: number },
  now: number
): TaskRecord => ({
  ...task,
  status: "running",
  attempt: task.attempt + 1,
  startedAt: new Date(now),
  finishedAt: null,
  leaseOwner: claim.workerId,
  leaseExpiresAt: new Date(now + claim.leaseMs),
  cancelRequested: false,
  updatedAt: new Date(now)
})

/**
 * For store implementations: builds `Counts` from counts of (name, queue, status), added in any
 * order, and the paused queues.
 *
 * @example
 * ```ts
 * import { TaskStore } from "@spindle/tasks"
 *
 * const counter = TaskStore.makeCounter(["mail"])
 * counter.add("send", "mail", "pending", 3)
 * counter.add("send", "mail", "succeeded", 7)
 * const counts = counter.counts() // total 10, byQueue [{ queue: "mail", paused: true, ... }]
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const makeCounter = (paused: Iterable<string>): {
  readonly add: (name: string, queue: string, status: TaskStatus, n: number) => void
  readonly counts: () => TaskStore.Counts
} => {
  const pausedSet = new Set(paused)
  const byStatus = emptyCounts()
  const byName = new Map<string, { [S in TaskStatus]: number }>()
  const byQueue = new Map<string, { [S in TaskStatus]: number }>()
  for (const queue of pausedSet) byQueue.set(queue, emptyCounts())
  let total = 0
  const sorted = <A>(entries: Map<string, A>) => [...entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  return {
    add: (name, queue, status, n) => {
      total += n
      byStatus[status] += n
      let named = byName.get(name)
      if (named === undefined) byName.set(name, named = emptyCounts())
      named[status] += n
      let queued = byQueue.get(queue)
      if (queued === undefined) byQueue.set(queue, queued = emptyCounts())
      queued[status] += n
    },
    counts: () => ({
      total,
      byStatus: { ...byStatus },
      byName: sorted(byName).map(([name, counts]) => ({ name, counts: { ...counts } })),
      byQueue: sorted(byQueue).map(([queue, counts]) => ({
        queue,
        paused: pausedSet.has(queue),
        counts: { ...counts }
      }))
    })
  }
}
