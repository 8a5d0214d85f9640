/**
 * The JSON shapes of the task service's API (`@spindle/server`'s `Api` module, encoded): what
 * the page reads. Declared here by hand so the browser bundle carries no Schema code.
 */

export const statuses = [
  "pending",
  "scheduled",
  "running",
  "succeeded",
  "failed",
  "dead",
  "cancelled",
  "timed-out"
] as const

export type TaskStatus = typeof statuses[number]

export type Counts = { readonly [S in TaskStatus]: number }

/** Statuses a task may be retried from (`TaskStatus.retryable`). */
export const retryable: ReadonlyArray<TaskStatus> = ["failed", "dead", "cancelled", "timed-out"]

/** Statuses a task may be cancelled from. */
export const cancellable: ReadonlyArray<TaskStatus> = ["pending", "scheduled", "running"]

export interface TaskError {
  readonly tag: string
  readonly message: string
  readonly cause: string
  readonly value?: unknown
}

export interface Task {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly status: TaskStatus
  readonly priority: string
  readonly payload: unknown
  readonly result: unknown
  readonly error: TaskError | null
  readonly attempt: number
  readonly maxAttempts: number
  readonly timeoutMs: number | null
  readonly softTimeoutMs: number | null
  readonly runAt: string
  readonly createdAt: string
  readonly updatedAt: string
  readonly startedAt: string | null
  readonly finishedAt: string | null
  readonly leaseOwner: string | null
  readonly leaseExpiresAt: string | null
  readonly cancelRequested: boolean
  readonly progress: number
  readonly progressMessage: string | null
  readonly idempotencyKey: string | null
  readonly parentId: string | null
  readonly tags: ReadonlyArray<string>
}

export interface TaskPage {
  readonly items: ReadonlyArray<Task>
  readonly nextCursor?: string
}

export interface LogLine {
  readonly taskId: string
  readonly attempt: number
  readonly at: string
  readonly level: "debug" | "info" | "warn" | "error"
  readonly message: string
}

export interface TaskLogs {
  readonly items: ReadonlyArray<LogLine>
}

export interface Queue {
  readonly queue: string
  readonly paused: boolean
  readonly counts: Counts
}

export interface Stats {
  readonly total: number
  readonly byStatus: Counts
  readonly byName: ReadonlyArray<{ readonly name: string; readonly counts: Counts }>
  readonly byQueue: ReadonlyArray<Queue>
  readonly throughput: ReadonlyArray<{ readonly minute: string; readonly succeeded: number; readonly failed: number }>
  readonly successRate: number
  readonly meanDurationMs: number
  readonly p95DurationMs: number
}

export interface Definition {
  readonly name: string
  readonly queue: string
  readonly priority: string
  readonly maxAttempts: number
  readonly tags: ReadonlyArray<string>
}

export type EventType =
  | "submitted"
  | "started"
  | "progress"
  | "succeeded"
  | "failed"
  | "dead"
  | "timed-out"
  | "cancelled"
  | "retrying"
  | "released"
  | "rescued"
  | "cancel-requested"
  | "retried"

/** A lifecycle event, as in the `data:` line of `GET /v1/events`. */
export interface TaskEvent {
  readonly sequence: number
  readonly type: EventType
  readonly taskId: string
  readonly name: string
  readonly queue: string
  readonly status: TaskStatus
  readonly attempt: number
  readonly at: string
  readonly progress?: number
  readonly message?: string
  readonly error?: TaskError
  readonly result?: unknown
}

/** A fault in a request, with where it is (`Api.Issue`). */
export interface Issue {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

/** The query of `GET /v1/tasks`, as the page keeps it in its address. */
export interface ListQuery {
  readonly status?: ReadonlyArray<TaskStatus> | undefined
  readonly name?: string | undefined
  readonly queue?: string | undefined
  readonly tag?: string | undefined
  readonly sort?: "createdAt" | "updatedAt" | "runAt" | "finishedAt" | "priority" | undefined
  readonly order?: "asc" | "desc" | undefined
  /** Page size, 1..1000 (the page's default is 25). */
  readonly limit?: number | undefined
  readonly cursor?: string | undefined
}
