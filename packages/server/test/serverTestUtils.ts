/**
 * A served `Server.layer` over a memory store, for the server's tests and others': the test
 * HTTP server (`NodeHttpServer.layerTest`, whose `HttpClient` is pointed at it), a `TaskClient`,
 * the `TaskStore` and a `TaskCatalog` of a few test definitions. `makeClient` derives the typed
 * client of the API.
 */
import { HttpApiClient, HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { RetryPolicy } from "@spindle/core"
import { Api, Server, TaskCatalog } from "@spindle/server"
import { MemoryStore, Task, TaskClient, TaskStore } from "@spindle/tasks"
import { Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"

export class Bounced extends Schema.TaggedError<Bounced>()("Bounced", { address: Schema.String }) {}

/** A payload with a nested field, a typed failure, its own queue and tags. */
export const SendEmail = Task.make("send-email", {
  payload: Schema.Struct({
    to: Schema.String.pipe(Schema.pattern(/@/)),
    subject: Schema.String,
    cc: Schema.optional(Schema.Array(Schema.String))
  }),
  success: Schema.Struct({ messageId: Schema.String }),
  failure: Bounced,
  queue: "email",
  maxAttempts: 3,
  tags: ["mail"],
  timeout: "30 seconds",
  retry: RetryPolicy.exponential({ initial: "1 second", maxAttempts: 3 })
})

/** A payload whose encoded form differs from its decoded one (a date as an ISO string). */
export const Report = Task.make("report", {
  payload: Schema.Struct({ day: Schema.Date, format: Schema.optional(Schema.Literal("pdf", "csv")) }),
  success: Schema.Number,
  failure: Schema.String
})

/** An idempotent task: one unfinished task per user. */
export const Notify = Task.make("notify", {
  payload: Schema.Struct({ userId: Schema.String, text: Schema.String }),
  success: Schema.Void,
  failure: Schema.Never,
  priority: "high",
  unique: (payload) => payload.userId
})

export const definitions: ReadonlyArray<Task.Task.Any> = [SendEmail, Report, Notify]

/**
 * The server (request log off unless asked) with everything it needs, and the services the
 * tests look at: `HttpClient` (to the server), `TaskStore`, `TaskClient`, `TaskCatalog`.
 */
export const layer = (
  options: Server.Options = {},
  wrapStore: (store: TaskStore.TaskStore["Type"]) => TaskStore.TaskStore["Type"] = (store) => store,
  http: { readonly keepAlive?: boolean } = {}
) =>
  Server.layer({ requestLog: false, ...options }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        http.keepAlive === true ? layerKeepAlive : NodeHttpServer.layerTest,
        TaskClient.layer,
        TaskCatalog.layer(definitions)
      )
    ),
    Layer.provideMerge(Layer.scoped(TaskStore.TaskStore, Effect.map(MemoryStore.make, wrapStore)))
  )

/** `NodeHttpServer.layerTest` with a client that keeps its connections open between requests. */
const layerKeepAlive = HttpServer.layerTestClient.pipe(
  Layer.provide(NodeHttpClient.layerWithoutAgent),
  Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true })),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))
)

/** The typed client of the API, at the test server. */
export const makeClient = HttpApiClient.make(Api.SpindleApi)

/** The typed client of the API sending `Authorization: Bearer <token>`. */
export const makeClientWithToken = (token: string) =>
  HttpApiClient.make(Api.SpindleApi, {
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
  })

/** Every task in the store (up to 1,000). */
export const allTasks = Effect.flatMap(TaskStore.TaskStore, (store) => store.tasksList({ limit: 1000 })).pipe(
  Effect.map((page) => page.items)
)

/** A raw request: the status, the headers and the body parsed as JSON when it is. */
export const send = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(request)
    const text = yield* response.text
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, headers: response.headers, text, json }
  }).pipe(Effect.scoped)

/** `POST path` with this text as a JSON body (or another content type). */
export const postText = (path: string, text: string, contentType = "application/json") =>
  send(HttpClientRequest.post(path).pipe(HttpClientRequest.bodyText(text, contentType)))
