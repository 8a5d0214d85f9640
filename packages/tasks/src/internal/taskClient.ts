import type { Context, Scope } from "effect"
import { Clock, Duration, Effect, Either, Fiber, Metric, Option, ParseResult, Queue, Stream } from "effect"
import * as Task from "../Task.js"
import type { TaskClient as TC } from "../TaskClient.js"
import {
  AwaitTimeout,
  InvalidParams,
  InvalidPayload,
  TaskCancelled,
  TaskDecodeError,
  TaskDefect,
  TaskFailed,
  TaskNameMismatch,
  TaskTimedOut
} from "../TaskClient.js"
import type { TaskEvent, TaskEventType } from "../TaskEvent.js"
import * as TaskMetrics from "../TaskMetrics.js"
import type { NewTask, TaskRecord } from "../TaskRecord.js"
import type { IllegalTransition } from "../TaskStatus.js"
import { isFinished } from "../TaskStatus.js"
import type { TaskStore } from "../TaskStore.js"
import { TaskNotFound, TaskStoreError } from "../TaskStore.js"
import * as internalTask from "./task.js"

type Store = Context.Tag.Service<TaskStore>

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

const countSubmitted = (name: string, queue: string, count: number): Effect.Effect<void> =>
  count === 0
    ? Effect.void
    : Metric.incrementBy(
      TaskMetrics.submittedTotal.pipe(Metric.tagged("name", name), Metric.tagged("queue", queue)),
      count
    )

// -----------------------------------------------------------------------------
// Validation
// -----------------------------------------------------------------------------

/** @internal */
export const invalidPayload = (
  taskName: string,
  error: ParseResult.ParseError,
  index: number | undefined
): InvalidPayload => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: issue.path.map((key) => typeof key === "symbol" ? String(key) : key),
    message: issue.message
  }))
  const where = index === undefined ? "" : ` at index ${index}`
  return new InvalidPayload({
    taskName,
    ...(index === undefined ? {} : { index }),
    message: `invalid payload for task "${taskName}"${where}: ${ParseResult.TreeFormatter.formatErrorSync(error)}`,
    issues
  })
}

const isPositiveInt = (n: number): boolean => Number.isSafeInteger(n) && n >= 1

const invalid = (parameter: string, message: string) => Effect.fail(new InvalidParams({ parameter, message }))

/** Resolves `runAt` / `delay` into a date, or undefined for "now". */
const resolveRunAt = (
  runAt: Date | undefined,
  delay: Duration.DurationInput | undefined
): Effect.Effect<Date | undefined, InvalidParams> => {
  if (runAt !== undefined && delay !== undefined) return invalid("runAt", "give runAt or delay, not both")
  if (runAt !== undefined) {
    return Number.isFinite(runAt.getTime()) ? Effect.succeed(runAt) : invalid("runAt", "runAt is not a valid date")
  }
  if (delay === undefined) return Effect.succeed(undefined)
  const decoded = Duration.decodeUnknown(delay)
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
    return invalid("delay", "delay must be a finite duration")
  }
  const millis = Duration.toMillis(decoded.value)
  return Effect.map(Clock.currentTimeMillis, (now) => new Date(now + Math.max(0, millis)))
}

/** The options of a submission, checked once for all its payloads, with `runAt` resolved. */
interface Checked extends Task.NewTaskOptions {}

const common = (
  options: TC.SubmitManyOptions | undefined
): Effect.Effect<Checked, InvalidParams> =>
  Effect.suspend(() => {
    if (options?.maxAttempts !== undefined && !isPositiveInt(options.maxAttempts)) {
      return invalid("maxAttempts", "maxAttempts must be an integer >= 1")
    }
    if (options?.queue !== undefined && options.queue.length === 0) {
      return invalid("queue", "queue must not be empty")
    }
    return Effect.map(resolveRunAt(options?.runAt, options?.delay), (runAt): Checked => ({
      queue: options?.queue,
      priority: options?.priority,
      maxAttempts: options?.maxAttempts,
      runAt,
      parentId: options?.parentId,
      tags: options?.tags
    }))
  })

/**
 * Validates one payload and builds its NewTask. `decode` is true for values of unknown shape
 * (decoded first, then encoded), false for typed payloads (encoded, which validates them).
 */
const prepare = (
  task: Task.Task.Any,
  input: unknown,
  decode: boolean,
  checked: Checked,
  idempotencyKey: string | null | undefined,
  index: number | undefined
): Effect.Effect<NewTask, InvalidPayload> => {
  const decoded: Effect.Effect<unknown, ParseResult.ParseError> = decode
    ? Task.decodePayload(task, input)
    : Effect.succeed(input)
  return decoded.pipe(
    Effect.flatMap((payload) =>
      Effect.map(
        Task.encodePayload(task, payload),
        (encoded) => Task.toNewTask(task, payload, encoded, { ...checked, idempotencyKey })
      )
    ),
    Effect.mapError((error) => invalidPayload(task.name, error, index))
  )
}

/** The options of a submission given none. */
const noOptions: Checked = {
  queue: undefined,
  priority: undefined,
  maxAttempts: undefined,
  runAt: undefined,
  parentId: undefined,
  tags: undefined
}

/**
 * `prepare` for every payload of a batch, in a plain loop (an Effect per payload costs more than
 * encoding it; for a lone submit from an idle process, a tenth of a millisecond of the time from
 * submit to start). A payload the synchronous codecs refuse (an invalid one, or a Schema with
 * asynchronous parts) and the rest of the batch go through `prepare`, which decides. `one`: a
 * lone submission, with its idempotency key, whose errors name no index.
 */
const prepareAll = (
  task: Task.Task.Any,
  inputs: ReadonlyArray<unknown>,
  decode: boolean,
  checked: Checked,
  one?: { readonly idempotencyKey: string | null | undefined }
): Effect.Effect<Array<NewTask>, InvalidPayload> => {
  const codecs = internalTask.codecsOf(task)
  const decodeSync = decode ? codecs.decodePayloadEither : undefined
  const encodeSync = codecs.encodePayloadEither
  const idempotencyKey = one?.idempotencyKey
  const make = internalTask.newTaskMaker(task, { ...checked, idempotencyKey })
  const tasks: Array<NewTask> = []
  for (let index = 0; index < inputs.length; index++) {
    const decoded = decodeSync === undefined ? Either.right(inputs[index]) : decodeSync(inputs[index])
    const encoded = Either.isRight(decoded) ? encodeSync(decoded.right) : decoded
    if (Either.isLeft(decoded) || Either.isLeft(encoded)) {
      return Effect.map(
        Effect.forEach(
          inputs.slice(index),
          (input, i) => prepare(task, input, decode, checked, idempotencyKey, one ? undefined : index + i)
        ),
        (rest) => tasks.concat(rest)
      )
    }
    tasks.push(make(decoded.right, encoded.right))
  }
  return Effect.succeed(tasks)
}

const toHandle = <T extends Task.Task.Any>(task: T, inserted: TaskStore.Inserted): TC.Handle<T> => ({
  id: inserted.task.id,
  task,
  created: inserted.created,
  record: inserted.task
})

// -----------------------------------------------------------------------------
// Awaiting
// -----------------------------------------------------------------------------

/** How often `await` re-reads a task it has heard nothing about: a backstop for lost events. */
const DEFAULT_RECHECK = Duration.seconds(30)

/** The most scheduler turns given to the event subscription to become live. */
const MAX_SUBSCRIBE_TURNS = 16

/**
 * Routes the events that end a task to the `await`s waiting for that task: one subscription to
 * the store's events for the whole client, however many tasks are awaited, held only while some
 * are (a client that awaits nothing, beside a busy worker, would otherwise receive every event
 * of every task: 7% of a worker process's CPU in the drain benchmark).
 */
interface Dispatcher {
  /**
   * A queue receiving the events that end task `id` (`None` once the store's stream ended),
   * registered until the scope closes. It returns once subscribed, so a read made after it
   * cannot miss a transition.
   */
  readonly register: (id: string) => Effect.Effect<Queue.Dequeue<Option.Option<TaskEvent>>, never, Scope.Scope>
}

/** The types of the events that end a task (their status is the event's type). */
const endingEvents: ReadonlyArray<TaskEventType> = ["succeeded", "failed", "dead", "timed-out", "cancelled"]

/**
 * Makes the dispatcher in the current scope. Its subscription starts with the first waiter and
 * stops when the last one leaves. A Stream subscribes when it starts running, a few scheduler
 * turns after it is forked: starting waits until the consumer has suspended (for a
 * PubSub-backed stream: subscribed and waiting for an event). A store whose subscription
 * completes later is covered by the periodic re-read of `waitFinished`.
 */
const makeDispatcher = (store: Store): Effect.Effect<Dispatcher, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const waiters = new Map<string, Set<Queue.Queue<Option.Option<TaskEvent>>>>()
    /** Set once the store's events ended (the store closed): waiters learn it at once. */
    let ended = false
    const end = () => {
      ended = true
      for (const queues of waiters.values()) for (const queue of queues) queue.unsafeOffer(Option.none())
    }
    /** The running subscription, and how to stop it (without ending the waits). */
    let consumer: { readonly stop: Effect.Effect<void> } | undefined
    // waiters and the subscription change together, one at a time
    const lock = yield* Effect.makeSemaphore(1)

    const subscribe = Effect.gen(function*() {
      let stopped = false
      const fiber = yield* store.eventsOf(endingEvents).pipe(
        // a chunk at a time: most events are of tasks nobody awaits, and cost one check each
        Stream.runForEachChunk((events) =>
          Effect.sync(() => {
            if (waiters.size === 0) return
            for (const event of events) {
              if (!isFinished(event.status)) continue
              const queues = waiters.get(event.taskId)
              if (queues !== undefined) { for (const queue of queues) queue.unsafeOffer(Option.some(event)) }
            }
          })
        ),
        Effect.onExit(() =>
          Effect.sync(() => {
            if (!stopped) end()
          })
        ),
        // forked from a registration, which runs uninterruptibly: the subscription must not be
        Effect.interruptible,
        Effect.forkIn(scope)
      )
      for (let turn = 0; turn < MAX_SUBSCRIBE_TURNS; turn++) {
        yield* Effect.yieldNow()
        const status = yield* fiber.status
        if (status._tag !== "Running") break
      }
      consumer = {
        stop: Effect.suspend(() => {
          stopped = true
          return Fiber.interruptFork(fiber)
        })
      }
    })

    const register = (id: string) =>
      Effect.acquireRelease(
        lock.withPermits(1)(Effect.gen(function*() {
          if (consumer === undefined && !ended) yield* subscribe
          const queue = yield* Queue.unbounded<Option.Option<TaskEvent>>()
          const queues = waiters.get(id)
          if (queues === undefined) waiters.set(id, new Set([queue]))
          else queues.add(queue)
          if (ended) queue.unsafeOffer(Option.none())
          return queue
        })),
        (queue) =>
          lock.withPermits(1)(Effect.suspend(() => {
            const queues = waiters.get(id)
            if (queues !== undefined) {
              queues.delete(queue)
              if (queues.size === 0) waiters.delete(id)
            }
            if (waiters.size > 0 || consumer === undefined) return Effect.void
            const { stop } = consumer
            consumer = undefined
            return stop
          }))
      )
    return { register }
  })

const waitFinished = (
  store: Store,
  dispatcher: Dispatcher,
  id: string,
  recheck: Duration.Duration,
  expectedName: string | undefined
): Effect.Effect<TaskRecord, TaskNotFound | TaskNameMismatch | TaskStoreError> =>
  Effect.scoped(Effect.gen(function*() {
    // Register first, then read: a task that finishes between the two is seen by the
    // registration.
    const finished = yield* dispatcher.register(id)
    while (true) {
      const record = yield* store.taskGet({ id })
      if (Option.isNone(record)) return yield* new TaskNotFound({ taskId: id })
      if (expectedName !== undefined && record.value.name !== expectedName) {
        return yield* new TaskNameMismatch({ taskId: id, expected: expectedName, actual: record.value.name })
      }
      if (isFinished(record.value.status)) return record.value
      // Wait for an event that ends the task, or re-read after `recheck` (lost events). The
      // record is the authority (result, error); if it was retried by hand since, wait on.
      const event = yield* Effect.timeoutOption(Queue.take(finished), recheck)
      if (Option.isSome(event) && Option.isNone(event.value)) {
        return yield* new TaskStoreError({ operation: "events", message: "the event stream ended" })
      }
    }
  }))

const withTimeout = <A, E>(
  id: string,
  effect: Effect.Effect<A, E>,
  options: TC.AwaitOptions | undefined
): Effect.Effect<A, E | AwaitTimeout> => {
  if (options?.timeout === undefined) return effect
  const duration = Duration.decode(options.timeout)
  if (!Duration.isFinite(duration)) return effect
  return Effect.timeoutFail(effect, {
    duration,
    onTimeout: () => new AwaitTimeout({ taskId: id, timeoutMs: Duration.toMillis(duration) })
  })
}

const recheckOf = (options: TC.AwaitOptions | undefined): Duration.Duration => {
  if (options?.recheckInterval === undefined) return DEFAULT_RECHECK
  const duration = Duration.decode(options.recheckInterval)
  return Duration.greaterThan(duration, Duration.zero) ? duration : DEFAULT_RECHECK
}

const decodeError = (record: TaskRecord, field: "payload" | "result" | "failure") => (error: ParseResult.ParseError) =>
  new TaskDecodeError({
    taskId: record.id,
    taskName: record.name,
    field,
    message: ParseResult.TreeFormatter.formatErrorSync(error)
  })

/** The typed outcome of a finished record. */
const outcome = <T extends Task.Task.Any>(
  task: T,
  record: TaskRecord
): Effect.Effect<Task.Task.Success<T>, TC.AwaitError<T>> => {
  const base = { taskId: record.id, taskName: record.name }
  switch (record.status) {
    case "succeeded":
      return Effect.mapError(Task.decodeSuccess(task, record.result), decodeError(record, "result"))
    case "cancelled":
      return Effect.fail(new TaskCancelled(base))
    case "timed-out":
      return Effect.fail(new TaskTimedOut({ ...base, attempt: record.attempt, error: record.error }))
    case "failed":
    case "dead": {
      const status = record.status
      const error = record.error
      if (error === null || error.value === undefined) {
        return Effect.fail(new TaskDefect({ ...base, status, attempt: record.attempt, error }))
      }
      return Task.decodeFailure(task, error.value).pipe(
        Effect.mapError(decodeError(record, "failure")),
        Effect.flatMap((value) =>
          Effect.fail(new TaskFailed<Task.Task.Failure<T>>({ ...base, status, attempt: record.attempt, error, value }))
        )
      )
    }
    default:
      return Effect.dieMessage(`TaskClient: task ${record.id} is not finished (${record.status})`)
  }
}

// -----------------------------------------------------------------------------
// Events
// -----------------------------------------------------------------------------

/** @internal */
export const eventMatches = (filter: TC.EventFilter | undefined) => {
  if (filter === undefined) return (_: TaskEvent) => true
  const ids = filter.ids === undefined ? undefined : new Set(filter.ids)
  const names = filter.names === undefined ? undefined : new Set(filter.names)
  const queues = filter.queues === undefined ? undefined : new Set(filter.queues)
  const types = filter.types === undefined ? undefined : new Set<string>(filter.types)
  return (event: TaskEvent): boolean =>
    (ids === undefined || ids.has(event.taskId)) &&
    (names === undefined || names.has(event.name)) &&
    (queues === undefined || queues.has(event.queue)) &&
    (types === undefined || types.has(event.type))
}

// -----------------------------------------------------------------------------
// The client
// -----------------------------------------------------------------------------

const MAX_CURSOR_LENGTH = 1024

/** @internal */
export const make = (store: Store): Effect.Effect<TC.Service, never, Scope.Scope> =>
  Effect.map(makeDispatcher(store), (dispatcher): TC.Service => {
    const submitOne = <T extends Task.Task.Any>(
      task: T,
      input: unknown,
      decode: boolean,
      options: TC.SubmitOptions | undefined
    ): Effect.Effect<TC.Handle<T>, InvalidPayload | InvalidParams | TaskStoreError> =>
      Effect.gen(function*() {
        const checked = options === undefined ? noOptions : yield* common(options)
        const [newTask] = yield* prepareAll(task, [input], decode, checked, { idempotencyKey: options?.idempotencyKey })
        const inserted = yield* store.tasksInsert({ tasks: [newTask] })
        const first = inserted[0]
        if (first === undefined) {
          return yield* new TaskStoreError({ operation: "tasksInsert", message: "the store returned no record" })
        }
        if (first.created) yield* countSubmitted(task.name, newTask.queue ?? task.queue, 1)
        return toHandle(task, first)
      })

    const submitBatch = <T extends Task.Task.Any>(
      task: T,
      inputs: Iterable<unknown>,
      decode: boolean,
      options: TC.SubmitManyOptions | undefined
    ): Effect.Effect<ReadonlyArray<TC.Handle<T>>, InvalidPayload | InvalidParams | TaskStoreError> =>
      Effect.gen(function*() {
        const checked = yield* common(options)
        const items = Array.from(inputs)
        if (items.length === 0) return []
        const tasks = yield* prepareAll(task, items, decode, checked)
        const inserted = yield* store.tasksInsert({ tasks })
        if (inserted.length !== tasks.length) {
          return yield* new TaskStoreError({
            operation: "tasksInsert",
            message: `the store returned ${inserted.length} records for ${tasks.length} tasks`
          })
        }
        let created = 0
        const handles = inserted.map((one) => {
          if (one.created) created++
          return toHandle(task, one)
        })
        yield* countSubmitted(task.name, checked.queue ?? task.queue, created)
        return handles
      })

    const checkName = (task: Task.Task.Any, record: TaskRecord): Effect.Effect<void, TaskNameMismatch> =>
      record.name === task.name
        ? Effect.void
        : Effect.fail(new TaskNameMismatch({ taskId: record.id, expected: task.name, actual: record.name }))

    const awaitRecord = (
      id: string,
      options?: TC.AwaitOptions
    ): Effect.Effect<TaskRecord, AwaitTimeout | TaskNotFound | TaskStoreError> =>
      withTimeout(
        id,
        waitFinished(store, dispatcher, id, recheckOf(options), undefined).pipe(
          // No name is expected, so there is no mismatch.
          Effect.catchTag("TaskNameMismatch", Effect.die)
        ),
        options
      )

    const awaitTyped = <T extends Task.Task.Any>(
      task: T,
      id: string,
      options: TC.AwaitOptions | undefined
    ): Effect.Effect<Task.Task.Success<T>, TC.AwaitError<T>> =>
      Effect.flatMap(
        withTimeout(id, waitFinished(store, dispatcher, id, recheckOf(options), task.name), options),
        (record) => outcome(task, record)
      )

    function awaitResult<T extends Task.Task.Any>(
      handle: TC.Handle<T>,
      options?: TC.AwaitOptions
    ): Effect.Effect<Task.Task.Success<T>, TC.AwaitError<T>>
    function awaitResult<T extends Task.Task.Any>(
      task: T,
      id: string,
      options?: TC.AwaitOptions
    ): Effect.Effect<Task.Task.Success<T>, TC.AwaitError<T>>
    function awaitResult<T extends Task.Task.Any>(
      first: TC.Handle<T> | T,
      second?: string | TC.AwaitOptions,
      third?: TC.AwaitOptions
    ): Effect.Effect<Task.Task.Success<T>, TC.AwaitError<T>> {
      if (Task.isTask(first)) return awaitTyped(first as T, second as string, third)
      const handle = first as TC.Handle<T>
      return awaitTyped(handle.task, handle.id, second as TC.AwaitOptions | undefined)
    }

    const getTyped = <T extends Task.Task.Any>(
      task: T,
      id: string
    ): Effect.Effect<Option.Option<TC.Typed<T>>, TaskNameMismatch | TaskDecodeError | TaskStoreError> =>
      Effect.flatMap(store.taskGet({ id }), (found) => {
        if (Option.isNone(found)) return Effect.succeed(Option.none())
        const record = found.value
        return Effect.gen(function*() {
          yield* checkName(task, record)
          const payload = yield* Effect.mapError(
            Task.decodePayload(task, record.payload),
            decodeError(record, "payload")
          )
          const result = record.status === "succeeded"
            ? Option.some(
              yield* Effect.mapError(Task.decodeSuccess(task, record.result), decodeError(record, "result"))
            )
            : Option.none()
          const failureValue = record.error?.value
          const failure = record.status !== "succeeded" && failureValue !== undefined
            ? Option.some(
              yield* Effect.mapError(Task.decodeFailure(task, failureValue), decodeError(record, "failure"))
            )
            : Option.none()
          return Option.some<TC.Typed<T>>({ record, payload, result, failure })
        })
      })

    const list = (params: TaskStore.ListParams = {}): Effect.Effect<TaskStore.Page, InvalidParams | TaskStoreError> => {
      if (params.limit !== undefined && !(isPositiveInt(params.limit) && params.limit <= 1000)) {
        return invalid("limit", "limit must be an integer in 1..1000")
      }
      if (params.cursor !== undefined && (params.cursor.length === 0 || params.cursor.length > MAX_CURSOR_LENGTH)) {
        return invalid("cursor", "cursor must be a cursor returned by a previous page")
      }
      return store.tasksList(params)
    }

    const retry = (
      id: string,
      options?: TC.RetryOptions
    ): Effect.Effect<TaskRecord, InvalidParams | TaskNotFound | IllegalTransition | TaskStoreError> =>
      Effect.gen(function*() {
        if (options?.extraAttempts !== undefined && !isPositiveInt(options.extraAttempts)) {
          return yield* invalid("extraAttempts", "extraAttempts must be an integer >= 1")
        }
        const runAt = yield* resolveRunAt(options?.runAt, options?.delay)
        return yield* store.taskRetry({ id, runAt, extraAttempts: options?.extraAttempts })
      })

    const stats = (options?: TC.StatsOptions): Effect.Effect<TaskStore.Stats, InvalidParams | TaskStoreError> => {
      const minutes = options?.minutes
      if (minutes !== undefined && !(isPositiveInt(minutes) && minutes <= 1440)) {
        return invalid("minutes", "minutes must be an integer in 1..1440")
      }
      return store.tasksStats({ minutes })
    }

    return {
      submit: (task, payload, options) => submitOne(task, payload, false, options),
      submitUnknown: (task, input, options) => submitOne(task, input, true, options),
      submitMany: (task, payloads, options) => submitBatch(task, payloads, false, options),
      submitManyUnknown: (task, inputs, options) => submitBatch(task, inputs, true, options),
      await: awaitResult,
      awaitRecord,
      get: (id) => store.taskGet({ id }),
      getTyped,
      list,
      cancel: (id) => store.taskCancel({ id }),
      retry,
      stats,
      events: (filter) => {
        if (filter === undefined) return store.events
        // of some types only: the store builds no event of the others for this subscriber
        const events = filter.types === undefined ? store.events : store.eventsOf(filter.types)
        return Stream.filter(events, eventMatches(filter))
      }
    }
  })
