import { Cause, Context, Effect, Layer } from "effect"
import type * as Task from "../Task.js"
import type { TaskContext } from "../TaskContext.js"
import * as TaskHandlers from "../TaskHandlers.js"
import { codecsOf } from "./task.js"

/** @internal */
export const TypeId: typeof TaskHandlers.TypeId = Symbol.for("@spindle/tasks/TaskHandlers/Handler") as never

/** @internal */
export const handler = <T extends Task.Task.Any, R>(
  task: T,
  handle: (
    payload: Task.Task.Payload<T>,
    ctx: TaskContext["Type"]
  ) => Effect.Effect<Task.Task.Success<T>, Task.Task.Failure<T>, R>
): TaskHandlers.Handler<T, Exclude<R, TaskContext>> => ({
  [TypeId]: TypeId,
  task,
  handle: handle as TaskHandlers.Handler<T, Exclude<R, TaskContext>>["handle"]
})

const toEntry = <R>(
  h: TaskHandlers.Handler<Task.Task.Any, R>,
  context: Context.Context<R>
): TaskHandlers.TaskHandlers.Entry => {
  const task = h.task
  const { decodePayload, encodeFailure, encodeSuccess } = codecsOf(task)
  const onFailure = (error: unknown) =>
    Effect.matchEffect(encodeFailure(error), {
      onFailure: () => Effect.fail(new TaskHandlers.HandlerError({ reason: "failure", error })),
      onSuccess: (encoded) => Effect.fail(new TaskHandlers.HandlerError({ reason: "failure", error, encoded }))
    })
  const onSuccess = (value: unknown) =>
    Effect.mapError(encodeSuccess(value), (error) => new TaskHandlers.HandlerError({ reason: "result", error }))
  return {
    task,
    context: context as Context.Context<never>,
    decode: decodePayload,
    run: (payload, ctx) => Effect.flatMap(Effect.catchAll(h.handle(payload, ctx), onFailure), onSuccess)
  }
}

/** @internal */
export const registry = <R>(
  handlers: ReadonlyArray<TaskHandlers.Handler<any, R>>,
  context: Context.Context<R>
): TaskHandlers.TaskHandlers.Registry => {
  const entries = new Map<string, TaskHandlers.TaskHandlers.Entry>()
  for (const h of handlers) {
    if (entries.has(h.task.name)) {
      throw new Cause.IllegalArgumentException(`TaskHandlers: two handlers for task "${h.task.name}"`)
    }
    entries.set(h.task.name, toEntry(h, context))
  }
  return { entries, names: Array.from(entries.keys()) }
}

/** @internal */
export const layer = <const Handlers extends ReadonlyArray<TaskHandlers.Handler<any, any>>>(
  ...handlers: Handlers
): Layer.Layer<TaskHandlers.TaskHandlers, never, TaskHandlers.TaskHandlers.Context<Handlers[number]>> =>
  Layer.effect(
    TaskHandlers.TaskHandlers,
    Effect.map(
      Effect.context<TaskHandlers.TaskHandlers.Context<Handlers[number]>>(),
      (context) => registry(handlers, context)
    )
  )
