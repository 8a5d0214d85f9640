/**
 * The HTTP server of the task service: the handlers of `Api.SpindleApi`, bearer-token auth,
 * CORS, the body limit, request logging with a request id, `/openapi.json` and Swagger UI.
 *
 * What a client can rely on:
 *
 * - Every 4xx answer is JSON with a `_tag` and a `message`, and names where the fault is: an
 *   `issues` list whose paths start with `body`, `query`, `path` or `headers`
 *   (`["body", "tasks", 3, "payload", "to"]`), or the `parameter` of an `InvalidParams`
 *   (`"query.limit"`). Malformed JSON, an empty body, a content type other than JSON and JSON
 *   nested deeper than 64 levels are `BadRequest`s; a path no route answers is `NotFound`.
 * - A body over `bodyLimitBytes` gets `PayloadTooLarge` (413) and the connection is kept, whether
 *   the body announced its length or came chunked. A rejected request stores nothing.
 * - `POST /v1/tasks/batch` validates every item first and stores them in one round trip;
 *   concurrent `POST /v1/tasks` are stored together too (see `coalesceWindow`).
 * - Each answer carries `x-request-id` (the request's own when it sent a sane one), also in the
 *   request's log line.
 *
 * @since 0.1.0
 */
import type { HttpApi, HttpServer } from "@effect/platform"
import type { Dashboard } from "@spindle/dashboard"
import type { TaskClient, TaskStore } from "@spindle/tasks"
import type { Duration, Layer, Redacted } from "effect"
import type { FastLane } from "./internal/fastLane.js"
import * as internal from "./internal/server.js"
import type { TaskCatalog } from "./TaskCatalog.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** When set, every `/v1` route answers 401 without `Authorization: Bearer <token>`. */
  readonly token?: Redacted.Redacted | string | undefined
  /** Guard `/healthz`, `/readyz` and `/metrics` with the token too. Default false. */
  readonly protectSystemRoutes?: boolean | undefined
  /** Allowed CORS origins (`["*"]` for any). Default none: no CORS headers. */
  readonly corsOrigins?: ReadonlyArray<string> | undefined
  /** Largest request body accepted; larger ones get 413. Default 1 MiB. */
  readonly bodyLimitBytes?: number | undefined
  /** Events held for `Last-Event-ID` resumption. Default 10,000. */
  readonly eventsBuffer?: number | undefined
  /** Where Swagger UI is served. Default `/docs`. */
  readonly swaggerPath?: string | undefined
  /** Log one line per request (method, path, status, duration, request id). Default true. */
  readonly requestLog?: boolean | undefined
  /** The store's kind, as `/readyz` reports it (`"sqlite"`, `"postgres"`, `"memory"`). Default `"task-store"`. */
  readonly storeName?: string | undefined
  /**
   * How long a single submission (`POST /v1/tasks`) may wait for concurrent ones, so that they
   * are stored together in one store round trip (up to 500 at once): under load this is what
   * makes a store that commits per round trip (SQLite) keep up. Default 1 millisecond; `0`
   * stores what arrived before the next turn of the event loop.
   */
  readonly coalesceWindow?: Duration.DurationInput | undefined
  /**
   * Serve the dashboard page at `/` (and its assets at `/assets/*`). Default true; `false` turns
   * it off, an object sets where its assets are read from.
   */
  readonly dashboard?: boolean | Dashboard.Options | undefined
  /**
   * One span per request (the platform's `HttpMiddleware.tracer`), for a tracer such as
   * OpenTelemetry's. Default false: without an exporter the spans cost time and go nowhere.
   */
  readonly httpSpans?: boolean | undefined
  /**
   * Where the Node server finds the fast lane of `POST /v1/tasks` (set by `TaskService`, which
   * creates the Node server).
   *
   * @internal
   */
  readonly fastLane?: FastLane | undefined
}

/**
 * The API's handlers and middleware, without a server: provide an `HttpServer` (or use
 * `NodeHttpServer.layerTest` in tests) with `layer`.
 *
 * @example
 * ```ts
 * import { Server } from "@spindle/server"
 *
 * const ApiLive = Server.layerApi({ token: "s3cret" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi: (
  options?: Options
) => Layer.Layer<HttpApi.Api, never, TaskClient.TaskClient | TaskStore.TaskStore | TaskCatalog> = internal.layerApi

/**
 * Serves the API on the `HttpServer` in context.
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { Server } from "@spindle/server"
 * import { Layer } from "effect"
 * import { createServer } from "node:http"
 *
 * const HttpLive = Server.layer().pipe(Layer.provide(NodeHttpServer.layer(createServer, { port: 7400 })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: (
  options?: Options
) => Layer.Layer<never, never, HttpServer.HttpServer | TaskClient.TaskClient | TaskStore.TaskStore | TaskCatalog> =
  internal.layer
