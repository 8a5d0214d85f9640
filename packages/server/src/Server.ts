/**
 * The HTTP server of the task service: the handlers of `Api.SpindleApi`, bearer-token auth,
 * CORS, the body limit, request logging with a request id, `/openapi.json` and Swagger UI.
 *
 * @since 0.1.0
 */
import type { HttpApi, HttpServer } from "@effect/platform"
import type { TaskClient, TaskStore } from "@spindle/tasks"
import type { Layer, Redacted } from "effect"
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
