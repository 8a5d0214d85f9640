/**
 * The task service in one Layer: a store chosen by its address (a SQLite file path or a
 * `postgres://` URL), the HTTP API on a port, and a worker running the module's handlers.
 * `spindle serve`, `spindle worker` and the task-service example are built on it.
 *
 * @since 0.1.0
 */
import type { Cron, Task, TaskClient, TaskHandlers, TaskStore, TaskWorker } from "@spindle/tasks"
import type { Effect, Layer, Option } from "effect"
import { Context, Data } from "effect"
import * as internal from "./internal/taskService.js"
import type * as Server from "./Server.js"

/**
 * What a service runs: the definitions its API accepts, the handlers its worker runs (their
 * requirements provided), cron schedules and worker options. `spindle serve --tasks <module>`
 * loads a module whose default export is one of these.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 * import { Task, TaskHandlers } from "@spindle/tasks"
 * import { Effect, Schema } from "effect"
 *
 * const Greet = Task.make("greet", {
 *   payload: Schema.Struct({ name: Schema.String }),
 *   success: Schema.String,
 *   failure: Schema.Never
 * })
 *
 * export default TaskService.module({
 *   handlers: TaskHandlers.layer(TaskHandlers.handler(Greet, ({ name }) => Effect.succeed(`hello ${name}`)))
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskModule {
  /** Definitions the API accepts besides those of the handlers (tasks other workers run). */
  readonly definitions?: ReadonlyArray<Task.Task.Any> | undefined
  /**
   * The handlers. The service provides the `TaskStore` and a `TaskClient` (for handlers that
   * submit follow-up tasks or maintain the store); every other requirement must be provided.
   * Without handlers no worker runs.
   */
  readonly handlers?:
    | Layer.Layer<TaskHandlers.TaskHandlers, unknown, TaskStore.TaskStore | TaskClient.TaskClient>
    | undefined
  readonly cron?: ReadonlyArray<Cron.Schedule> | undefined
  /** Worker options (limits per task, lease, retention...); `concurrency` is overridden by the service's. */
  readonly worker?: TaskWorker.TaskWorker.Options | undefined
}

/**
 * Declares a task module (the identity, for type inference).
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 *
 * export default TaskService.module({ definitions: [] })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const module = <const M extends TaskModule>(self: M): M => self

/**
 * Options of `layer`.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 * import { Effect } from "effect"
 *
 * const options: TaskService.Options = {
 *   db: "postgres://postgres@127.0.0.1:5432/app?schema=jobs",
 *   port: 0,
 *   concurrency: 20,
 *   server: { token: "s3cret", eventsBuffer: 50_000 },
 *   onListening: (url) => Effect.log(`listening on ${url}`)
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * A SQLite file path, or a `postgres://` / `postgresql://` URL (`?schema=` picks the schema).
   * Default `./spindle.db`.
   */
  readonly db?: string | undefined
  readonly module?: TaskModule | undefined
  /** Serve the HTTP API. Default true. */
  readonly api?: boolean | undefined
  /** Run a worker for the module's handlers. Default: when the module has handlers. */
  readonly worker?: boolean | undefined
  /** Default 7400; 0 picks a free port (the `url` and `onListening` give the one bound). */
  readonly port?: number | undefined
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Tasks the worker runs at once. Default 10. */
  readonly concurrency?: number | undefined
  /** HTTP options: bearer token, CORS, body limit, Swagger path... */
  readonly server?: Server.Options | undefined
  /** Called once the API listens, with its base URL (`http://127.0.0.1:7400`). */
  readonly onListening?: ((url: string) => Effect.Effect<void>) | undefined
}

/**
 * The running service: where it listens, which store it uses, its worker's id.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 * import { Effect } from "effect"
 *
 * const printUrl = Effect.flatMap(TaskService.TaskService, (service) => Effect.log(service.url))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskService extends Context.Tag("@spindle/server/TaskService")<TaskService, {
  /** The API's base URL, when the API is served. */
  readonly url: Option.Option<string>
  readonly store: "sqlite" | "postgres"
  readonly workerId: Option.Option<string>
}>() {}

/**
 * The service could not start. `reason`:
 * - `BadOption`: an option out of range (port, host, concurrency, buffer sizes, worker options),
 *   a worker asked for without handlers, a malformed store address.
 * - `Store`: the store cannot be opened: a SQLite path that is a directory, under a file, not
 *   a database; an unreachable Postgres; a failed migration.
 * - `Listen`: the port is in use or the host cannot be bound.
 * - `Module`: the module's handlers failed to build, or two definitions share a name.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 *
 * const error = new TaskService.TaskServiceError({ reason: "Listen", message: "port 7400 in use" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskServiceError extends Data.TaggedError("TaskServiceError")<{
  readonly reason: "BadOption" | "Store" | "Listen" | "Module"
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The store for an address: Postgres for a `postgres://` or `postgresql://` URL (its `schema`
 * query parameter names the store's schema, default `spindle`), SQLite for anything else, a
 * file path (WAL; the file and its directory are created when missing). Migrations are
 * applied.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 *
 * const StoreLive = TaskService.layerStore("./spindle.db")
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore: (db: string) => Layer.Layer<TaskStore.TaskStore, TaskServiceError> = internal.layerStore

/**
 * The whole service; runs until its scope closes, then shuts down in order: end the event
 * streams, stop accepting requests and let those in flight finish, stop claiming and let
 * running tasks finish (up to the worker's `shutdownGrace`), close the store.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 * import { Layer } from "effect"
 *
 * const main = Layer.launch(TaskService.layer({ db: "./spindle.db", port: 7400 }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: (options?: Options) => Layer.Layer<TaskService, TaskServiceError> = internal.layer

/**
 * The values `layer` takes for the options left out: the SQLite file `./spindle.db`, port
 * 7400 on the loopback interface, 10 tasks at once.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 *
 * const url = `http://${TaskService.defaults.host}:${TaskService.defaults.port}`
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly db: "./spindle.db"
  readonly port: 7400
  readonly host: "127.0.0.1"
  readonly concurrency: 10
} = internal.defaults

/**
 * A database address fit to print: the password of a URL (`postgres://user:password@host/db`)
 * replaced with `***`; anything else unchanged.
 *
 * @example
 * ```ts
 * import { TaskService } from "@spindle/server"
 *
 * // "postgres://app:***@db.internal:5432/tasks"
 * const shown = TaskService.redactUrl("postgres://app:s3cret@db.internal:5432/tasks")
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const redactUrl: (url: string) => string = internal.redactUrl
