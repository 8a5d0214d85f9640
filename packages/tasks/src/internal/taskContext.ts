import type { Context } from "effect"
import { Clock, Effect } from "effect"
import type * as TaskContext from "../TaskContext.js"
import type { TaskLogLine, TaskRecord } from "../TaskRecord.js"
import type { TaskStore } from "../TaskStore.js"

/** @internal */
export const withContext = <I, A, E, R>(
  tag: Context.Tag<I, TaskContext.TaskContext.Service>,
  f: (ctx: TaskContext.TaskContext.Service) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | I> => Effect.flatMap(tag, f)

interface AttemptState {
  readonly record: TaskRecord
  lastWrite: number
  pending: { readonly fraction: number; readonly message: string | undefined } | undefined
  lines: Array<TaskLogLine>
}

/**
 * The per-attempt side of a `TaskContext`, with what the worker needs to flush it.
 *
 * @internal
 */
export interface Attempt {
  readonly context: TaskContext.TaskContext.Service
  /** Whether the attempt has progress or log lines not yet written. */
  readonly hasPending: () => boolean
  /** Writes the pending progress and log lines of this attempt (before it completes). */
  readonly flush: Effect.Effect<void>
}

/**
 * Buffers progress and log lines of every attempt of one worker: progress is written at most
 * once per `intervalMs` per attempt (the latest value wins), log lines are appended in one batch
 * for all attempts by `flushAll`, which the worker runs every `intervalMs`.
 *
 * @internal
 */
export interface Reporter {
  readonly attempt: (record: TaskRecord) => Attempt
  readonly flushAll: Effect.Effect<void>
}

const clamp = (fraction: number): number => Number.isNaN(fraction) ? 0 : fraction < 0 ? 0 : fraction > 1 ? 1 : fraction

/** @internal */
export const makeReporter = (options: {
  readonly store: TaskStore["Type"]
  readonly workerId: string
  readonly intervalMs: number
}): Reporter => {
  const { intervalMs, store, workerId } = options
  const dirty = new Set<AttemptState>()

  const writeProgress = (
    state: AttemptState,
    fraction: number,
    message: string | undefined
  ): Effect.Effect<void> =>
    store.taskProgress({ id: state.record.id, workerId, progress: fraction, message }).pipe(
      Effect.catchAll((error) =>
        Effect.logDebug("spindle: progress not recorded").pipe(
          Effect.annotateLogs({ taskId: state.record.id, error: error.message })
        )
      )
    )

  const appendLines = (lines: ReadonlyArray<TaskLogLine>): Effect.Effect<void> =>
    lines.length === 0 ? Effect.void : store.taskLogAppend({ lines }).pipe(
      Effect.catchAll((error) =>
        Effect.logWarning("spindle: task log lines lost").pipe(
          Effect.annotateLogs({ lines: lines.length, error: error.message })
        )
      )
    )

  const takePending = (state: AttemptState): Effect.Effect<void> => {
    const pending = state.pending
    if (pending === undefined) return Effect.void
    state.pending = undefined
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      state.lastWrite = now
      return writeProgress(state, pending.fraction, pending.message)
    })
  }

  const flushAll: Effect.Effect<void> = Effect.suspend(() => {
    if (dirty.size === 0) return Effect.void
    const states = Array.from(dirty)
    dirty.clear()
    const lines: Array<TaskLogLine> = []
    for (const state of states) {
      for (const line of state.lines) lines.push(line)
      state.lines = []
    }
    return Effect.zipRight(
      appendLines(lines),
      Effect.forEach(states, takePending, { discard: true })
    )
  })

  const attempt = (record: TaskRecord): Attempt => {
    const state: AttemptState = { record, lastWrite: Number.NEGATIVE_INFINITY, pending: undefined, lines: [] }
    const context: TaskContext.TaskContext.Service = {
      id: record.id,
      name: record.name,
      queue: record.queue,
      attempt: record.attempt,
      maxAttempts: record.maxAttempts,
      workerId,
      progress: (fraction, message) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const value = clamp(fraction)
          if (now - state.lastWrite >= intervalMs) {
            state.lastWrite = now
            state.pending = undefined
            return writeProgress(state, value, message)
          }
          state.pending = { fraction: value, message }
          dirty.add(state)
          return Effect.void
        }),
      log: (message, level = "info") =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          state.lines.push({ taskId: record.id, attempt: record.attempt, at: new Date(now), level, message })
          dirty.add(state)
        })
    }
    const flush = Effect.suspend(() => {
      dirty.delete(state)
      const lines = state.lines
      state.lines = []
      return Effect.zipRight(appendLines(lines), takePending(state))
    })
    return { context, hasPending: () => state.pending !== undefined || state.lines.length > 0, flush }
  }

  return { attempt, flushAll }
}
