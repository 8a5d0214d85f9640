// The README's durable-tasks snippet, kept here so that `npm test` typechecks it.
import { RetryPolicy } from "@spindle/core"
import { SqliteTaskStore } from "@spindle/sql"
import { Task, TaskClient, TaskHandlers, TaskWorker } from "@spindle/tasks"
import { Effect, Layer, Schema } from "effect"

class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", { status: Schema.Number }) {}

const SendEmail = Task.make("send-email", {
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  success: Schema.Struct({ messageId: Schema.String }),
  failure: Unavailable,
  queue: "email",
  retry: RetryPolicy.exponential({ initial: "1 second", maxAttempts: 5, retryOn: ["Unavailable"] }),
  timeout: "30 seconds",
  softTimeout: "10 seconds",
  unique: (email) => `${email.to}:${email.subject}`
})

const Handlers = TaskHandlers.layer(
  TaskHandlers.handler(SendEmail, (email, ctx) =>
    Effect.gen(function*() {
      yield* ctx.log(`sending to ${email.to}`)
      return { messageId: `m-${ctx.id}` }
    }))
)

const Store = SqliteTaskStore.layer({ filename: "./spindle.db" })
const Worker = TaskWorker.layer({ concurrency: 20, queues: { email: { concurrency: 5 } } })

export const program = Effect.gen(function*() {
  const client = yield* TaskClient.TaskClient
  const handle = yield* client.submit(SendEmail, { to: "ada@example.com", subject: "hi" })
  const { messageId } = yield* client.await(handle) // fails with TaskFailed<Unavailable> when it does
  return messageId
}).pipe(
  Effect.provide(Layer.mergeAll(Worker.pipe(Layer.provide(Handlers)), TaskClient.layer).pipe(Layer.provide(Store)))
)
