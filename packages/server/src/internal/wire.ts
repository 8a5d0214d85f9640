import { RetryPolicy } from "@spindle/core"
import type { TaskRecord } from "@spindle/tasks"
import { Schema } from "effect"
import type { TaskView } from "../Api.js"

const encodeRetry = Schema.encodeSync(RetryPolicy.Schema)

const iso = (date: Date): string => date.toISOString()

const isoOrNull = (date: Date | null): string | null => date === null ? null : date.toISOString()

const encodeError = (error: TaskRecord.TaskError | null): typeof TaskView.Encoded["error"] =>
  error === null
    ? null
    : error.value === undefined
    ? { tag: error.tag, message: error.message, cause: error.cause }
    : { tag: error.tag, message: error.message, cause: error.cause, value: error.value }

/**
 * A record as `Api.TaskView` encodes it (times as ISO strings), written out by hand: the
 * submission's answer is on the hot path, and this is what `Schema.encodeSync(TaskView)` gives
 * (the tests check that they agree).
 *
 * @internal
 */
export const encodeTask = (record: TaskRecord.TaskRecord): typeof TaskView.Encoded => ({
  id: record.id,
  name: record.name,
  queue: record.queue,
  status: record.status,
  priority: record.priority,
  payload: record.payload,
  result: record.result,
  error: encodeError(record.error),
  attempt: record.attempt,
  maxAttempts: record.maxAttempts,
  retry: record.retry === null ? null : encodeRetry(record.retry),
  timeoutMs: record.timeoutMs,
  softTimeoutMs: record.softTimeoutMs,
  runAt: iso(record.runAt),
  createdAt: iso(record.createdAt),
  updatedAt: iso(record.updatedAt),
  startedAt: isoOrNull(record.startedAt),
  finishedAt: isoOrNull(record.finishedAt),
  leaseOwner: record.leaseOwner,
  leaseExpiresAt: isoOrNull(record.leaseExpiresAt),
  cancelRequested: record.cancelRequested,
  progress: record.progress,
  progressMessage: record.progressMessage,
  idempotencyKey: record.idempotencyKey,
  parentId: record.parentId,
  tags: record.tags
})
