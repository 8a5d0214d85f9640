import type { RetryPolicy } from "@spindle/core"
import type { ParseResult } from "effect"
import type { Either } from "effect"
import { Cause, Duration, Effect, Predicate, Schema } from "effect"
import type * as Task from "../Task.js"
import type { NewTask, Priority } from "../TaskRecord.js"

/** @internal */
export const TypeId: typeof Task.TypeId = Symbol.for("@spindle/tasks/Task") as typeof Task.TypeId

/** @internal */
export const isTask = (u: unknown): u is Task.Task.Any => Predicate.hasProperty(u, TypeId)

const positive = (name: string, field: string, input: Duration.DurationInput | undefined) => {
  if (input === undefined) return undefined
  const duration = Duration.decode(input)
  if (!Duration.isFinite(duration) || Duration.toMillis(duration) <= 0) {
    throw new Cause.IllegalArgumentException(`Task.make("${name}"): ${field} must be a positive, finite duration`)
  }
  return duration
}

/** @internal */
export const make = <
  const Name extends string,
  Payload extends Task.AnySchema,
  Success extends Task.AnySchema,
  Failure extends Task.AnySchema
>(
  name: Name,
  options: Task.Task.Options<Payload, Success, Failure>
): Task.Task<Name, Payload, Success, Failure> => {
  if (name.length === 0) throw new Cause.IllegalArgumentException("Task.make: the name must not be empty")
  const retry: RetryPolicy.Serializable | undefined = options.retry
  const maxAttempts = options.maxAttempts ?? retry?.maxAttempts ?? 1
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new Cause.IllegalArgumentException(`Task.make("${name}"): maxAttempts must be an integer >= 1`)
  }
  const priority: Priority = options.priority ?? "normal"
  return {
    [TypeId]: TypeId,
    name,
    payload: options.payload,
    success: options.success,
    failure: options.failure,
    queue: options.queue ?? "default",
    priority,
    maxAttempts,
    retry,
    timeout: positive(name, "timeout", options.timeout),
    softTimeout: positive(name, "softTimeout", options.softTimeout),
    unique: options.unique,
    tags: options.tags ?? []
  }
}

/** Widens a task Schema (whose types may be `never`) for the generic codecs. */
const asSchema = (schema: Task.AnySchema): Schema.Schema<any, any, never> => schema as Schema.Schema<any, any, never>

/**
 * A definition's codecs, made once per definition (a codec made per call costs more than a small
 * payload's encoding). The `Either` forms run without the Effect runtime; a Schema with
 * asynchronous parts fails them with a `Forbidden` issue, and callers then take the Effect form.
 *
 * @internal
 */
export interface Codecs {
  readonly decodePayloadEither: (input: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly encodePayloadEither: (payload: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodePayload: (input: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
  readonly encodePayload: (payload: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
  readonly encodeSuccess: (value: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
  readonly decodeSuccess: (encoded: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
  readonly encodeFailure: (error: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
  readonly decodeFailure: (encoded: unknown) => Effect.Effect<unknown, ParseResult.ParseError>
}

const codecsCache = new WeakMap<Task.Task.Any, Codecs>()

/** @internal */
export const codecsOf = (task: Task.Task.Any): Codecs => {
  let codecs = codecsCache.get(task)
  if (codecs === undefined) {
    const payload = asSchema(task.payload)
    const success = asSchema(task.success)
    const failure = asSchema(task.failure)
    codecs = {
      decodePayloadEither: Schema.decodeUnknownEither(payload),
      encodePayloadEither: Schema.encodeUnknownEither(payload),
      decodePayload: Schema.decodeUnknown(payload),
      encodePayload: Schema.encodeUnknown(payload),
      encodeSuccess: Schema.encodeUnknown(success),
      decodeSuccess: Schema.decodeUnknown(success),
      encodeFailure: Schema.encodeUnknown(failure),
      decodeFailure: Schema.decodeUnknown(failure)
    }
    codecsCache.set(task, codecs)
  }
  return codecs
}

/** @internal */
export const encodePayload = <T extends Task.Task.Any>(task: T, payload: Task.Task.Payload<T>) =>
  codecsOf(task).encodePayload(payload)

/** @internal */
export const decodePayload = <T extends Task.Task.Any>(task: T, encoded: unknown) =>
  codecsOf(task).decodePayload(encoded) as Effect.Effect<Task.Task.Payload<T>, ParseResult.ParseError>

/** @internal */
export const validatePayload = <T extends Task.Task.Any>(task: T, input: unknown) =>
  Effect.flatMap(decodePayload(task, input), (payload) => encodePayload(task, payload))

/** @internal */
export const encodeSuccess = <T extends Task.Task.Any>(task: T, value: Task.Task.Success<T>) =>
  codecsOf(task).encodeSuccess(value)

/** @internal */
export const decodeSuccess = <T extends Task.Task.Any>(task: T, encoded: unknown) =>
  codecsOf(task).decodeSuccess(encoded) as Effect.Effect<Task.Task.Success<T>, ParseResult.ParseError>

/** @internal */
export const encodeFailure = <T extends Task.Task.Any>(task: T, error: Task.Task.Failure<T>) =>
  codecsOf(task).encodeFailure(error)

/** @internal */
export const decodeFailure = <T extends Task.Task.Any>(task: T, encoded: unknown) =>
  codecsOf(task).decodeFailure(encoded) as Effect.Effect<Task.Task.Failure<T>, ParseResult.ParseError>

/**
 * `toNewTask` for many payloads of one submission: the options are resolved once, and the
 * function returned builds the row of each payload.
 *
 * @internal
 */
export const newTaskMaker = <T extends Task.Task.Any>(
  task: T,
  options?: Task.NewTaskOptions
): (decoded: Task.Task.Payload<T>, encoded: unknown) => NewTask => {
  const name = task.name
  const queue = options?.queue ?? task.queue
  const priority = options?.priority ?? task.priority
  const maxAttempts = options?.maxAttempts ?? task.maxAttempts
  const retry = task.retry ?? null
  const timeoutMs = task.timeout === undefined ? null : Duration.toMillis(task.timeout)
  const softTimeoutMs = task.softTimeout === undefined ? null : Duration.toMillis(task.softTimeout)
  const runAt = options?.runAt
  const key = options?.idempotencyKey
  const unique = task.unique
  const parentId = options?.parentId ?? null
  const tags = options?.tags === undefined || options.tags.length === 0
    ? task.tags
    : Array.from(new Set([...task.tags, ...options.tags]))
  return (decoded, encoded) => ({
    name,
    queue,
    priority,
    payload: encoded,
    maxAttempts,
    retry,
    timeoutMs,
    softTimeoutMs,
    runAt,
    idempotencyKey: key !== undefined ? key : unique === undefined ? null : unique(decoded),
    parentId,
    tags
  })
}

/** @internal */
export const toNewTask = <T extends Task.Task.Any>(
  task: T,
  decoded: Task.Task.Payload<T>,
  encoded: unknown,
  options?: Task.NewTaskOptions
): NewTask => newTaskMaker(task, options)(decoded, encoded)
