import { Batcher } from "@spindle/core"
import { Task, TaskClient, TaskMetrics, type TaskRecord, TaskStore } from "@spindle/tasks"
import type { Context, Scope } from "effect"
import { Clock, Duration, Effect, Either, Metric, Option, ParseResult, Schema } from "effect"
import type { SubmitBatchRequest, SubmitRequest } from "../Api.js"
import { UnknownTask } from "../Api.js"
import type { TaskCatalog } from "../TaskCatalog.js"
import { formatPath, issuesOf, truncate } from "./request.js"

type PathKey = string | number

// -----------------------------------------------------------------------------
// Errors with the path of the fault inside the request
// -----------------------------------------------------------------------------

/** @internal */
export const unknownTask = (name: string, path: ReadonlyArray<PathKey>): UnknownTask => {
  const message = `no task named "${truncate(name)}" is registered`
  return new UnknownTask({ name: truncate(name), message, issues: [{ path, message }] })
}

const invalidPayload = (
  taskName: string,
  issues: ReadonlyArray<TaskClient.PayloadIssue>,
  index: number | undefined
): TaskClient.InvalidPayload => {
  const first = issues[0]
  const where = first === undefined ? "" : ` at ${formatPath(first.path)}: ${first.message}`
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""
  return new TaskClient.InvalidPayload({
    taskName,
    ...(index === undefined ? {} : { index }),
    message: `invalid payload for task "${taskName}"${where}${more}`,
    issues
  })
}

/** Client parameter names as the request spells them. */
const requestParameter = (parameter: string): string => parameter === "delay" ? "delayMs" : parameter

/** An `InvalidParams` whose parameter is the path of the field in the request. @internal */
export const locateParams = (error: TaskClient.InvalidParams, prefix: string): TaskClient.InvalidParams =>
  new TaskClient.InvalidParams({ parameter: `${prefix}.${requestParameter(error.parameter)}`, message: error.message })

// -----------------------------------------------------------------------------
// A batch: every item validated, then one store round trip
// -----------------------------------------------------------------------------

/** What a definition contributes to every task, computed once per definition. */
interface Codec {
  readonly decode: (input: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly encode: (payload: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodeEffect: (input: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
  readonly encodeEffect: (payload: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
}

const codecs = new WeakMap<Task.Task.Any, Codec>()

const codecOf = (task: Task.Task.Any): Codec => {
  const cached = codecs.get(task)
  if (cached !== undefined) return cached
  {
    const schema = task.payload as Schema.Schema<unknown, unknown, never>
    const codec: Codec = {
      decode: Schema.decodeUnknownEither(schema, { errors: "all" }),
      encode: Schema.encodeUnknownEither(schema, { errors: "all" }),
      decodeEffect: Schema.decodeUnknown(schema, { errors: "all" }),
      encodeEffect: Schema.encodeUnknown(schema, { errors: "all" })
    }
    codecs.set(task, codec)
    return codec
  }
}

/** A payload Schema with an asynchronous part cannot be run synchronously: run it as an Effect. */
const isForbidden = (error: ParseResult.ParseError): boolean => error.issue._tag === "Forbidden"

/** One validated item of a batch. @internal */
export interface Prepared {
  readonly task: Task.Task.Any
  readonly newTask: TaskRecord.NewTask
}

/** Where an item sits in the request: `["body"]`, or `["body", "tasks", i]` in a batch. */
type Location = ReadonlyArray<PathKey>

const bothTimes = (location: Location) =>
  new TaskClient.InvalidParams({ parameter: `${location.join(".")}.runAt`, message: "give runAt or delayMs, not both" })

/**
 * Validates one submission (its name against the catalog, its payload with its definition's
 * Schema, decoded then encoded) and builds its `NewTask` with the definition's defaults, as
 * `TaskClient.submit` does, synchronously: `undefined` when its payload Schema needs the
 * Effect runtime (an asynchronous transformation), which `prepareItem` then runs.
 *
 * @internal
 */
export const prepareItemSync = (
  catalog: Context.Tag.Service<TaskCatalog>,
  item: SubmitRequest,
  location: Location,
  index: number | undefined,
  now: number
): Either.Either<Prepared, UnknownTask | TaskClient.InvalidPayload | TaskClient.InvalidParams> | undefined => {
  const found = catalog.get(item.name)
  if (Option.isNone(found)) return Either.left(unknownTask(item.name, [...location, "name"]))
  const task = found.value
  if (item.runAt !== undefined && item.delayMs !== undefined) return Either.left(bothTimes(location))
  const codec = codecOf(task)
  const decoded = codec.decode(item.payload)
  if (Either.isLeft(decoded) && isForbidden(decoded.left)) return undefined
  const encoded = Either.flatMap(decoded, codec.encode)
  if (Either.isLeft(encoded)) {
    if (isForbidden(encoded.left)) return undefined
    return Either.left(invalidPayload(task.name, issuesOf(encoded.left, [...location, "payload"]), index))
  }
  return Either.right(prepared(task, item, (decoded as Either.Right<never, unknown>).right, encoded.right, now))
}

const prepared = (
  task: Task.Task.Any,
  item: SubmitRequest,
  decoded: unknown,
  encoded: unknown,
  now: number
): Prepared => ({
  task,
  newTask: Task.toNewTask(task, decoded, encoded, {
    queue: item.queue,
    priority: item.priority,
    maxAttempts: item.maxAttempts,
    runAt: item.runAt ?? (item.delayMs === undefined ? undefined : new Date(now + item.delayMs)),
    idempotencyKey: item.idempotencyKey,
    parentId: item.parentId,
    tags: item.tags
  })
})

/**
 * `prepareItemSync`, or the same through the runtime for a payload Schema that needs it.
 *
 * @internal
 */
export const prepareItem = (
  catalog: Context.Tag.Service<TaskCatalog>,
  item: SubmitRequest,
  location: Location,
  index: number | undefined,
  now: number
): Effect.Effect<Prepared, UnknownTask | TaskClient.InvalidPayload | TaskClient.InvalidParams> => {
  const sync = prepareItemSync(catalog, item, location, index, now)
  if (sync !== undefined) return sync
  const task = Option.getOrThrow(catalog.get(item.name))
  const codec = codecOf(task)
  return codec.decodeEffect(item.payload).pipe(
    Effect.flatMap((decoded) =>
      Effect.map(codec.encodeEffect(decoded), (encoded) => prepared(task, item, decoded, encoded, now))
    ),
    Effect.mapError((error) => invalidPayload(task.name, issuesOf(error, [...location, "payload"]), index))
  )
}

const counters = new Map<string, Metric.Metric.Counter<number>>()

const countCreated = (inserted: ReadonlyArray<TaskStore.TaskStore.Inserted>): Effect.Effect<void> => {
  let created: Map<string, number> | undefined
  for (const one of inserted) {
    if (!one.created) continue
    const key = `${one.task.name}\u0000${one.task.queue}`
    created ??= new Map()
    created.set(key, (created.get(key) ?? 0) + 1)
  }
  if (created === undefined) return Effect.void
  return Effect.forEach(created, ([key, count]) => {
    let counter = counters.get(key)
    if (counter === undefined) {
      const [name, queue] = key.split("\u0000") as [string, string]
      counter = TaskMetrics.submittedTotal.pipe(Metric.tagged("name", name), Metric.tagged("queue", queue))
      counters.set(key, counter)
    }
    return Metric.incrementBy(counter, count)
  }, { discard: true })
}

/**
 * Stores new tasks in one round trip and counts those created.
 *
 * @internal
 */
export const insertTasks = (
  store: Context.Tag.Service<TaskStore.TaskStore>,
  tasks: ReadonlyArray<TaskRecord.NewTask>
): Effect.Effect<ReadonlyArray<TaskStore.TaskStore.Inserted>, TaskStore.TaskStoreError> =>
  Effect.flatMap(
    store.tasksInsert({ tasks }),
    (inserted) =>
      inserted.length === tasks.length
        ? Effect.as(countCreated(inserted), inserted)
        : Effect.fail(
          new TaskStore.TaskStoreError({
            operation: "tasksInsert",
            message: `the store returned ${inserted.length} records for ${tasks.length} tasks`
          })
        )
  )

const insertAll = (
  store: Context.Tag.Service<TaskStore.TaskStore>,
  prepared: ReadonlyArray<Prepared>
): Effect.Effect<ReadonlyArray<TaskStore.TaskStore.Inserted>, TaskStore.TaskStoreError> =>
  insertTasks(store, prepared.map((item) => item.newTask))

/**
 * Stores single submissions: those that arrive within `window` of the first of a batch (up to
 * 500) go to the store together in one `tasksInsert` (all or none: a store failure fails each
 * of them), one batch at a time. Each caller gets its own task back.
 *
 * @internal
 */
export interface Inserter {
  readonly insert: (
    task: TaskRecord.NewTask
  ) => Effect.Effect<TaskStore.TaskStore.Inserted, TaskStore.TaskStoreError>
}

/** @internal */
export const makeInserter = (
  store: Context.Tag.Service<TaskStore.TaskStore>,
  window: Duration.DurationInput
): Effect.Effect<Inserter, never, Scope.Scope> =>
  Effect.map(
    Batcher.make({
      name: "spindle-server-submit",
      maxSize: 500,
      maxWait: window,
      run: (tasks: ReadonlyArray<TaskRecord.NewTask>) => insertTasks(store, tasks)
    }),
    (batcher): Inserter => ({
      insert: (task) =>
        batcher.submit(task).pipe(
          Effect.catchTag("BatchError", (error) =>
            error.reason === "RunFailed" && error.cause !== undefined
              ? Effect.fail(error.cause)
              : Effect.fail(
                new TaskStore.TaskStoreError({ operation: "tasksInsert", message: error.message, cause: error })
              ))
        )
    })
  )

/**
 * Validates one submission and stores it: the same validation, defaults and metric as
 * `TaskClient.submitUnknown`, with the faults located in the request (`["body", "payload",
 * "to"]`), and the per-definition codecs built once.
 *
 * @internal
 */
export const submitOne = (
  inserter: Inserter,
  catalog: Context.Tag.Service<TaskCatalog>,
  request: SubmitRequest
): Effect.Effect<
  TaskStore.TaskStore.Inserted,
  UnknownTask | TaskClient.InvalidPayload | TaskClient.InvalidParams | TaskStore.TaskStoreError
> =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (now) =>
      Effect.flatMap(prepareItem(catalog, request, ["body"], undefined, now), (prepared) =>
        inserter.insert(prepared.newTask))
  )

/**
 * Validates every item of a batch (the first fault fails the whole batch, nothing stored), then
 * stores them all with one `tasksInsert`.
 *
 * @internal
 */
export const submitBatch = (
  store: Context.Tag.Service<TaskStore.TaskStore>,
  catalog: Context.Tag.Service<TaskCatalog>,
  request: SubmitBatchRequest
): Effect.Effect<
  ReadonlyArray<TaskStore.TaskStore.Inserted>,
  UnknownTask | TaskClient.InvalidPayload | TaskClient.InvalidParams | TaskStore.TaskStoreError
> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const prepared: Array<Prepared> = []
    for (let index = 0; index < request.tasks.length; index++) {
      prepared.push(yield* prepareItem(catalog, request.tasks[index]!, ["body", "tasks", index], index, now))
    }
    return yield* insertAll(store, prepared)
  })

/** @internal */
export const decodeBody = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  return (input: unknown): Either.Either<A, ParseResult.ParseError> => decode(input)
}
