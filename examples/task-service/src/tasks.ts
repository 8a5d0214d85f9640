/**
 * The task definitions of the service: plain data shared by whoever submits the tasks (the HTTP
 * API, `spindle submit`, other services) and the worker that runs them.
 *
 * | task                  | queue         | shows                                                        |
 * | --------------------- | ------------- | ------------------------------------------------------------ |
 * | `report.generate`     | `reports`     | CPU work on a worker-thread pool, progress and log lines     |
 * | `notification.send`   | `notifications` | a flaky API: exponential retries, rate limit, timeouts, typed failure |
 * | `data.import`         | `imports`     | records into SQLite through a Batcher, progress per chunk    |
 * | `maintenance.cleanup` | `maintenance` | a nightly cron that deletes old finished tasks and temp data |
 *
 * @since 0.1.0
 */
import { RetryPolicy } from "@spindle/core"
import { Task } from "@spindle/tasks"
import { Schema } from "effect"
import { Statistics } from "./report.js"

// -----------------------------------------------------------------------------
// report.generate
// -----------------------------------------------------------------------------

/**
 * Computes sales statistics over `rows` generated orders on the worker-thread pool and writes
 * the report to the service's reports directory (temporary data: `maintenance.cleanup` removes
 * old reports).
 *
 * @since 0.1.0
 * @category definitions
 */
export const GenerateReport = Task.make("report.generate", {
  payload: Schema.Struct({
    title: Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(200)),
    /** Orders in the generated data set. */
    rows: Schema.Int.pipe(Schema.between(1, 50_000_000)),
    /** The data set is a function of the seed: the same seed gives the same report. */
    seed: Schema.Int,
    /** Orders per chunk sent to a worker thread (progress is reported per chunk). Default 250,000. */
    chunkSize: Schema.optional(Schema.Int.pipe(Schema.between(1_000, 5_000_000)))
  }),
  success: Schema.Struct({
    title: Schema.String,
    chunks: Schema.Int,
    statistics: Statistics,
    /** Where the report was written. */
    file: Schema.String
  }),
  failure: Schema.Never,
  queue: "reports",
  priority: "low",
  // a crashed worker thread is a defect: try twice more, a little later
  retry: RetryPolicy.fixed({ delay: "5 seconds", maxAttempts: 3 }),
  timeout: "10 minutes",
  softTimeout: "1 minute",
  tags: ["cpu"]
})

// -----------------------------------------------------------------------------
// notification.send
// -----------------------------------------------------------------------------

/**
 * The provider refused the recipient (unknown, blocked or unsubscribed): retrying cannot help.
 *
 * @since 0.1.0
 * @category errors
 */
export class RecipientRejected extends Schema.TaggedError<RecipientRejected>()("RecipientRejected", {
  recipient: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `recipient ${this.recipient} rejected: ${this.reason}`
  }
}

/**
 * The provider failed (a 5xx, or no answer): retried with backoff.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderUnavailable extends Schema.TaggedError<ProviderUnavailable>()("ProviderUnavailable", {
  /** The HTTP status, 0 when no response came. */
  status: Schema.Int,
  message: Schema.String
}) {}

/**
 * The provider throttled us (429): retried with backoff.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderThrottled extends Schema.TaggedError<ProviderThrottled>()("ProviderThrottled", {
  retryAfterMs: Schema.optional(Schema.Int)
}) {
  override get message(): string {
    return "the provider answered 429 Too Many Requests"
  }
}

/**
 * Sends one message through the notification provider. Transient failures (5xx, 429, timeouts)
 * are retried with exponential backoff and jitter; a rejected recipient fails the task at once.
 * The worker rate-limits this task (see `module.ts`).
 *
 * @since 0.1.0
 * @category definitions
 */
export const SendNotification = Task.make("notification.send", {
  payload: Schema.Struct({
    to: Schema.String.pipe(Schema.pattern(/^[^@\s]+@[^@\s]+$/), Schema.maxLength(320)),
    subject: Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(200)),
    body: Schema.String.pipe(Schema.maxLength(10_000))
  }),
  success: Schema.Struct({ messageId: Schema.String, attempt: Schema.Int }),
  failure: Schema.Union(RecipientRejected, ProviderUnavailable, ProviderThrottled),
  queue: "notifications",
  priority: "high",
  retry: RetryPolicy.exponential({
    initial: "500 millis",
    factor: 2,
    maxDelay: "30 seconds",
    maxAttempts: 8,
    jitter: "full",
    // RecipientRejected is not listed: it fails the task without a retry
    retryOn: ["ProviderUnavailable", "ProviderThrottled", "Timeout", "Defect"]
  }),
  timeout: "5 seconds",
  softTimeout: "1 second"
})

// -----------------------------------------------------------------------------
// data.import
// -----------------------------------------------------------------------------

/**
 * One record of an import.
 *
 * @since 0.1.0
 * @category models
 */
export const ImportRecord = Schema.Struct({
  /** The record's id in the source system: a record is stored once, whatever the imports. */
  externalId: Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(100)),
  name: Schema.String.pipe(Schema.maxLength(200)),
  email: Schema.String.pipe(Schema.maxLength(320)),
  amountCents: Schema.Int
})

/**
 * @since 0.1.0
 * @category models
 */
export type ImportRecord = typeof ImportRecord.Type

/**
 * The import database failed; retried (records already stored are not stored twice).
 *
 * @since 0.1.0
 * @category errors
 */
export class ImportFailed extends Schema.TaggedError<ImportFailed>()("ImportFailed", {
  message: Schema.String
}) {}

/**
 * Imports records into the import database (SQLite) through the service's Batcher: the records
 * of every running import share its multi-row transactions. A record already stored (same
 * `externalId`) is counted as a duplicate and left as it is.
 *
 * @since 0.1.0
 * @category definitions
 */
export const ImportData = Task.make("data.import", {
  payload: Schema.Struct({
    batchId: Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(100)),
    records: Schema.Array(ImportRecord).pipe(Schema.minItems(1), Schema.maxItems(5_000)),
    /** Records per progress step. Default 100. */
    chunkSize: Schema.optional(Schema.Int.pipe(Schema.between(1, 5_000)))
  }),
  success: Schema.Struct({
    batchId: Schema.String,
    records: Schema.Int,
    inserted: Schema.Int,
    duplicates: Schema.Int,
    chunks: Schema.Int
  }),
  failure: ImportFailed,
  queue: "imports",
  retry: RetryPolicy.exponential({ initial: "1 second", maxAttempts: 5, jitter: "equal" }),
  timeout: "2 minutes",
  softTimeout: "20 seconds",
  // submitting a batch again while it is still queued or running returns the existing task
  unique: (payload) => payload.batchId
})

// -----------------------------------------------------------------------------
// maintenance.cleanup
// -----------------------------------------------------------------------------

/**
 * The clean-up could not reach the task store or the reports directory; retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class CleanupFailed extends Schema.TaggedError<CleanupFailed>()("CleanupFailed", {
  message: Schema.String
}) {}

/**
 * Deletes finished tasks (and their logs) that finished more than `olderThanHours` ago, and
 * reports written before then. Runs nightly (see `module.ts`); may also be submitted by hand.
 *
 * @since 0.1.0
 * @category definitions
 */
export const Cleanup = Task.make("maintenance.cleanup", {
  payload: Schema.Struct({
    olderThanHours: Schema.Number.pipe(Schema.between(0, 24 * 365))
  }),
  success: Schema.Struct({
    cutoff: Schema.Date,
    tasksDeleted: Schema.Int,
    reportsDeleted: Schema.Int
  }),
  failure: CleanupFailed,
  queue: "maintenance",
  priority: "low",
  retry: RetryPolicy.fixed({ delay: "1 minute", maxAttempts: 3 }),
  timeout: "10 minutes",
  unique: () => "cleanup"
})

/**
 * Every definition of the service.
 *
 * @since 0.1.0
 * @category definitions
 */
export const definitions = [GenerateReport, SendNotification, ImportData, Cleanup] as const
