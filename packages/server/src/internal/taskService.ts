/**
 * The task service in one Layer.
 *
 * Composition, and so the order of shutdown (a layer built later is released earlier):
 *
 * ```text
 * store                        built first, released last
 *  └ worker (+ handlers)       stops claiming, lets running tasks finish within its grace
 *     └ catalog, TaskClient
 *        └ Node HTTP server    stops accepting, waits for the requests in flight
 *           └ Server.layer     detaches the handlers; its event log ends the SSE streams
 *              └ TaskService   calls onListening
 * ```
 *
 * The SSE streams end before the Node server closes (it waits for open connections), and the
 * TaskClient outlives the Node server, so a request still in flight (a long `result` wait)
 * finishes normally.
 *
 * @internal
 */
import type { HttpServer } from "@effect/platform"
import { HttpServer as HttpServerTag } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { PgTaskStore, SqliteTaskStore } from "@spindle/sql"
import { TaskClient, TaskStore, TaskWorker } from "@spindle/tasks"
import { Cause, Effect, Layer, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import type * as Http from "node:http"
import { createServer } from "node:http"
import * as Path from "node:path"
import * as Server from "../Server.js"
import { TaskCatalog } from "../TaskCatalog.js"
import * as Catalog from "../TaskCatalog.js"
import type { Options, TaskModule } from "../TaskService.js"
import { TaskService, TaskServiceError } from "../TaskService.js"
import * as FastLane from "./fastLane.js"

/** @internal */
export const defaults = {
  db: "./spindle.db",
  port: 7400,
  host: "127.0.0.1",
  concurrency: 10
} as const

const badOption = (message: string) => new TaskServiceError({ reason: "BadOption", message })

const describe = (error: unknown): string =>
  error instanceof Error
    ? error.message
    : typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

/** The cause's failure or defect, as a message; interruptions are not errors. */
const causeMessage = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onSome: describe,
    onNone: () => Option.match(Cause.dieOption(cause), { onSome: describe, onNone: () => Cause.pretty(cause) })
  })

/**
 * Maps every failure and defect of building `layer` to a `TaskServiceError` (an interruption
 * stays one).
 */
const mapBuildCause = <A, E, R>(
  layer: Layer.Layer<A, E, R>,
  f: (cause: Cause.Cause<E>) => TaskServiceError
): Layer.Layer<A, TaskServiceError, R> =>
  Layer.catchAllCause(layer, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Layer.failCause(Cause.map(cause, () => f(cause)))
      : Layer.fail(f(cause)))

// -----------------------------------------------------------------------------
// Store
// -----------------------------------------------------------------------------

const isPostgres = (db: string): boolean => /^postgres(?:ql)?:\/\//i.test(db)

/**
 * The URL with its password hidden, for messages: the user info ends at the last `@` before
 * the path, as a URL parser reads it; nothing is normalized.
 *
 * @internal
 */
export const redactUrl = (url: string): string => url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:)[^/?#]*@/i, "$1***@")

const pgStore = (db: string): Layer.Layer<TaskStore.TaskStore, TaskServiceError> => {
  let url: URL
  try {
    url = new URL(db)
  } catch {
    return Layer.fail(badOption(`malformed Postgres URL ${redactUrl(db)}`))
  }
  // `?schema=` selects the store's schema (default `spindle`); Postgres does not know it.
  const schema = url.searchParams.get("schema") ?? undefined
  url.searchParams.delete("schema")
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(schema)) {
    return Layer.fail(badOption(`schema must match [A-Za-z_][A-Za-z0-9_]*, got ${JSON.stringify(schema)}`))
  }
  return mapBuildCause(
    PgTaskStore.layer({ url: Redacted.make(url.toString()), ...(schema === undefined ? {} : { schema }) }),
    (cause) =>
      new TaskServiceError({
        reason: "Store",
        message: `cannot open the Postgres store at ${redactUrl(db)}: ${causeMessage(cause)}`,
        cause: Cause.squash(cause)
      })
  )
}

const isSpecialSqliteName = (db: string): boolean => db === ":memory:" || db.startsWith("file:")

/** Checks the file can be a SQLite database, creating its directory when missing. */
const prepareSqliteFile = (filename: string): Effect.Effect<void, TaskServiceError> =>
  Effect.try({
    try: () => {
      const stat = Fs.statSync(filename, { throwIfNoEntry: false })
      if (stat !== undefined) {
        if (stat.isDirectory()) throw new Error(`${filename} is a directory, not a SQLite database file`)
        Fs.accessSync(filename, Fs.constants.R_OK | Fs.constants.W_OK)
        return
      }
      const directory = Path.dirname(filename)
      Fs.mkdirSync(directory, { recursive: true })
      Fs.accessSync(directory, Fs.constants.W_OK)
    },
    catch: (error) =>
      new TaskServiceError({
        reason: "Store",
        message: `cannot use ${filename} as the SQLite store: ${describe(error)}`,
        cause: error
      })
  })

const sqliteStore = (db: string): Layer.Layer<TaskStore.TaskStore, TaskServiceError> => {
  const filename = isSpecialSqliteName(db) ? db : Path.resolve(db)
  return Layer.unwrapEffect(
    Effect.as(
      isSpecialSqliteName(db) ? Effect.void : prepareSqliteFile(filename),
      mapBuildCause(SqliteTaskStore.layer({ filename }), (cause) =>
        new TaskServiceError({
          reason: "Store",
          message: `cannot open the SQLite store ${filename}: ${causeMessage(cause)}`,
          cause: Cause.squash(cause)
        }))
    )
  )
}

/** @internal */
export const storeKind = (db: string): "sqlite" | "postgres" => isPostgres(db) ? "postgres" : "sqlite"

/** @internal */
export const layerStore = (db: string): Layer.Layer<TaskStore.TaskStore, TaskServiceError> =>
  db.trim() === ""
    ? Layer.fail(badOption("db must be a SQLite file path or a postgres:// URL, got an empty string"))
    : isPostgres(db)
    ? pgStore(db)
    : sqliteStore(db)

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

interface Resolved {
  readonly db: string
  readonly module: TaskModule
  readonly api: boolean
  readonly worker: boolean
  readonly port: number
  readonly host: string
  readonly concurrency: number
}

const isInt = (value: number, min: number, max = Number.MAX_SAFE_INTEGER): boolean =>
  Number.isSafeInteger(value) && value >= min && value <= max

/** @internal */
export const resolveOptions = (options: Options): Effect.Effect<Resolved, TaskServiceError> =>
  Effect.suspend(() => {
    const module = options.module ?? {}
    const port = options.port ?? defaults.port
    const host = options.host ?? defaults.host
    const concurrency = options.concurrency ?? defaults.concurrency
    const db = options.db ?? defaults.db
    const worker = options.worker ?? module.handlers !== undefined
    const server = options.server ?? {}
    if (!isInt(port, 0, 65535)) return Effect.fail(badOption(`port must be an integer in 0..65535, got ${port}`))
    if (typeof host !== "string" || host.trim() === "") {
      return Effect.fail(badOption(`host must be a non-empty string, got ${JSON.stringify(host)}`))
    }
    if (!isInt(concurrency, 1)) {
      return Effect.fail(badOption(`concurrency must be an integer >= 1, got ${concurrency}`))
    }
    if (worker && module.handlers === undefined) {
      return Effect.fail(badOption("a worker was asked for, but the module has no handlers"))
    }
    if (server.eventsBuffer !== undefined && !isInt(server.eventsBuffer, 0)) {
      return Effect.fail(badOption(`server.eventsBuffer must be an integer >= 0, got ${server.eventsBuffer}`))
    }
    if (server.bodyLimitBytes !== undefined && !isInt(server.bodyLimitBytes, 1)) {
      return Effect.fail(badOption(`server.bodyLimitBytes must be an integer >= 1, got ${server.bodyLimitBytes}`))
    }
    return Effect.succeed({ db, module, api: options.api ?? true, worker, port, host: host.trim(), concurrency })
  })

// -----------------------------------------------------------------------------
// The service
// -----------------------------------------------------------------------------

/**
 * The base URL of a bound address; a wildcard address is reached through the loopback.
 *
 * @internal
 */
export const baseUrl = (address: HttpServer.Address): string => {
  if (address._tag === "UnixAddress") return `http+unix://${encodeURIComponent(address.path)}`
  const hostname = address.hostname === "0.0.0.0" ? "127.0.0.1" : address.hostname === "::" ? "::1" : address.hostname
  return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${address.port}`
}

/**
 * A Node HTTP server that, once closing, ends each connection as soon as its response is done.
 * `server.close()` closes the connections idle at that moment and then waits for the others:
 * a keep-alive connection whose response ends a little later (an SSE stream ended by the
 * shutdown) would otherwise hold the close for the keep-alive timeout (5 seconds).
 *
 * With a fast lane, a request it takes never reaches the platform's handler.
 *
 * @internal
 */
export const createHttpServer = (lane?: FastLane.FastLane): Http.Server => {
  const server = createServer()
  if (lane !== undefined) {
    const emit = server.emit
    server.emit = function(this: Http.Server, event: string, ...args: Array<any>) {
      if (event === "request" && lane.current !== undefined && lane.current(args[0], args[1])) {
        // the server's own "request" listener (below) still sees it
        endWhenClosing(args[0], args[1])
        return true
      }
      return (emit as (this: Http.Server, event: string, ...args: Array<any>) => boolean).call(this, event, ...args)
    } as typeof server.emit
  }
  const endWhenClosing = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    // The response lets go of its socket when it finishes: keep it from the request.
    const socket = request.socket
    response.on("finish", () => {
      if (!server.listening) socket.end()
    })
  }
  server.on("request", endWhenClosing)
  return server
}

/** @internal */
export const layer = (options: Options = {}): Layer.Layer<TaskService, TaskServiceError> =>
  Layer.unwrapEffect(Effect.map(resolveOptions(options), (resolved) => {
    const { module } = resolved
    const definitions = module.definitions ?? []

    const HandlersLive = module.handlers === undefined
      ? undefined
      : mapBuildCause(Layer.provide(module.handlers, TaskClient.layer), (cause) =>
        new TaskServiceError({
          reason: "Module",
          message: `the module's handlers failed to build: ${causeMessage(cause)}`,
          cause: Cause.squash(cause)
        }))

    // A definition name given twice fails `TaskCatalog.make`: the module is at fault.
    const moduleFault = (cause: Cause.Cause<never>) =>
      new TaskServiceError({ reason: "Module", message: causeMessage(cause), cause: Cause.squash(cause) })
    const CatalogLive: Layer.Layer<TaskCatalog, TaskServiceError, TaskStore.TaskStore> = HandlersLive === undefined
      ? mapBuildCause(Catalog.layer(definitions), moduleFault)
      : mapBuildCause(Catalog.layerFromHandlers(definitions), moduleFault).pipe(Layer.provide(HandlersLive))

    const WorkerLive: Layer.Layer<never, TaskServiceError, TaskStore.TaskStore> =
      !resolved.worker || HandlersLive === undefined
        ? Layer.empty
        : mapBuildCause(
          TaskWorker.layer({
            ...module.worker,
            concurrency: resolved.concurrency,
            cron: [...(module.worker?.cron ?? []), ...(module.cron ?? [])]
          }),
          (cause) =>
            new TaskServiceError({
              reason: "BadOption",
              message: `the worker did not start: ${causeMessage(cause)}`,
              cause: Cause.squash(cause)
            })
        ).pipe(Layer.provide(HandlersLive))

    // POST /v1/tasks answered from the Node server's request event (see fastLane.ts).
    const lane = FastLane.make()
    const NodeHttpLive = Layer.mapError(
      NodeHttpServer.layer(() => createHttpServer(lane), { port: resolved.port, host: resolved.host }),
      (error) =>
        new TaskServiceError({
          reason: "Listen",
          message: `cannot listen on ${resolved.host}:${resolved.port}: ${describe(error.cause)}`,
          cause: error.cause
        })
    )

    const HttpLive: Layer.Layer<never, TaskServiceError, TaskStore.TaskStore> = !resolved.api
      ? Layer.empty
      : Server.layer({ ...options.server, fastLane: lane }).pipe(
        Layer.provideMerge(NodeHttpLive),
        Layer.provide(TaskClient.layer),
        Layer.provide(CatalogLive)
      )

    const ServiceLive = Layer.effect(
      TaskService,
      Effect.gen(function*() {
        const server = yield* Effect.serviceOption(HttpServerTag.HttpServer)
        const worker = yield* Effect.serviceOption(TaskWorker.TaskWorker)
        const url = Option.map(server, (server) => baseUrl(server.address))
        if (Option.isSome(url) && options.onListening !== undefined) yield* options.onListening(url.value)
        return TaskService.of({
          url,
          store: storeKind(resolved.db),
          workerId: Option.map(worker, (worker) => worker.workerId)
        })
      })
    )

    // The layers above are typed by what they require; what they provide (the HttpServer, the
    // TaskWorker) reaches ServiceLive at run time, which reads it with `serviceOption`.
    return ServiceLive.pipe(
      Layer.provide(Layer.provideMerge(HttpLive, WorkerLive)),
      Layer.provide(layerStore(resolved.db))
    )
  }))
