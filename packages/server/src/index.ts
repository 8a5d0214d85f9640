/**
 * @spindle/server — the task service over HTTP: the API declaration, its handlers, SSE events,
 * metrics, health and readiness, OpenAPI and Swagger UI.
 *
 * @since 0.1.0
 */

/**
 * The HTTP API, declared apart from its handlers.
 *
 * @since 0.1.0
 */
export * as Api from "./Api.js"

/**
 * The task definitions a service accepts, by name.
 *
 * @since 0.1.0
 */
export * as TaskCatalog from "./TaskCatalog.js"

/**
 * The HTTP server: handlers, auth, CORS, body limit, request log, OpenAPI and Swagger UI.
 *
 * @since 0.1.0
 */
export * as Server from "./Server.js"

/**
 * The whole task service in one Layer: store by address, HTTP API, worker.
 *
 * @since 0.1.0
 */
export * as TaskService from "./TaskService.js"
