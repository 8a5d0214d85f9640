import type { HttpApp } from "@effect/platform"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiError,
  HttpApp as App,
  HttpMiddleware,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cause, Context, Effect, Layer, Option, Redacted, SchemaAST } from "effect"
import type { Issue } from "../Api.js"
import type { BadRequest, PayloadTooLarge } from "../Api.js"
import { Authorization, InternalError, NotFound, SpindleApi, Unauthorized } from "../Api.js"
import type { Config } from "./config.js"
import { badRequest, declaredTooLarge, tooLarge, truncate } from "./request.js"

// -----------------------------------------------------------------------------
// Authorization
// -----------------------------------------------------------------------------

const encoder = new TextEncoder()

/** Compares in a time that depends on the expected token's length only. @internal */
export const constantTimeEquals = (given: Uint8Array, expected: Uint8Array): boolean => {
  let diff = given.length === expected.length ? 0 : 1
  for (let i = 0; i < expected.length; i++) {
    diff |= (given[i % Math.max(given.length, 1)] ?? 0) ^ expected[i]!
  }
  return diff === 0
}

const SYSTEM_ROUTES: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"])

const bearerPrefix = /^bearer[ \t]+/i

/**
 * The `Authorization` middleware: with a token configured, a request must carry
 * `Authorization: Bearer <token>`; the system routes only when `protectSystemRoutes`.
 *
 * @internal
 */
export const authorizationLayer = (config: Config): Layer.Layer<Authorization> => {
  const expected = config.token === undefined ? undefined : encoder.encode(Redacted.value(config.token))
  const unauthorized = (message: string) => Effect.fail(new Unauthorized({ message }))
  return Layer.succeed(
    Authorization,
    Authorization.of({
      bearer: () =>
        Effect.withFiberRuntime((fiber) => {
          if (expected === undefined) return Effect.void
          const context = fiber.currentContext
          if (!config.protectSystemRoutes) {
            const route = Context.unsafeGet(context, HttpRouter.RouteContext)
            if (SYSTEM_ROUTES.has(route.route.path)) return Effect.void
          }
          const request = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
          const header = request.headers["authorization"]
          if (header === undefined) return unauthorized("missing bearer token: send \"Authorization: Bearer <token>\"")
          const match = bearerPrefix.exec(header)
          if (match === null) return unauthorized("the Authorization header is not a bearer token")
          const given = encoder.encode(header.slice(match[0].length).trim())
          return constantTimeEquals(given, expected) ? Effect.void : unauthorized("wrong bearer token")
        })
    })
  )
}

// -----------------------------------------------------------------------------
// Where a decode fault is
// -----------------------------------------------------------------------------

type Part = "path" | "query" | "headers" | "body"

interface Route {
  readonly method: string
  readonly segments: ReadonlyArray<string>
  readonly keys: ReadonlyArray<readonly [Part, ReadonlySet<string>]>
  readonly hasBody: boolean
}

const keysOf = (ast: SchemaAST.AST): ReadonlySet<string> => {
  switch (ast._tag) {
    case "TypeLiteral":
      return new Set(ast.propertySignatures.map((ps) => String(ps.name)))
    case "Transformation":
      return keysOf(ast.to)
    case "Refinement":
      return keysOf(ast.from)
    case "Suspend":
      return keysOf(ast.f())
    default:
      return new Set()
  }
}

const routes: ReadonlyArray<Route> = (() => {
  const out: Array<Route> = []
  HttpApi.reflect(SpindleApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const keys: Array<readonly [Part, ReadonlySet<string>]> = []
      const add = (part: Part, schema: Option.Option<{ readonly ast: SchemaAST.AST }>) => {
        if (Option.isSome(schema)) keys.push([part, keysOf(schema.value.ast)])
      }
      add("path", endpoint.pathSchema)
      add("query", endpoint.urlParamsSchema)
      add("headers", endpoint.headersSchema)
      add("body", endpoint.payloadSchema)
      out.push({
        method: endpoint.method,
        segments: endpoint.path.split("/").filter((s) => s.length > 0),
        keys,
        hasBody: Option.isSome(endpoint.payloadSchema) && endpoint.method !== "GET"
      })
    }
  })
  return out
})()

const findRoute = (method: string, pathname: string): Route | undefined => {
  const segments = pathname.split("/").filter((s) => s.length > 0)
  let best: Route | undefined
  let bestLiterals = -1
  for (const route of routes) {
    if (route.method !== method || route.segments.length !== segments.length) continue
    let literals = 0
    let matches = true
    for (let i = 0; i < segments.length; i++) {
      const expected = route.segments[i]!
      if (expected.startsWith(":")) continue
      if (expected !== segments[i]) {
        matches = false
        break
      }
      literals++
    }
    if (matches && literals > bestLiterals) {
      best = route
      bestLiterals = literals
    }
  }
  return best
}

const partOf = (route: Route | undefined, first: PropertyKey | undefined): Part => {
  if (route === undefined) return "query"
  if (first !== undefined) {
    for (const [part, keys] of route.keys) if (keys.has(String(first))) return part
  }
  return route.hasBody ? "body" : "query"
}

/** Names where (path, query, headers or body) each fault of a decode error is. @internal */
export const locateIssues = (
  request: HttpServerRequest.HttpServerRequest,
  error: HttpApiError.HttpApiDecodeError
): Array<Issue> => {
  const route = findRoute(request.method, pathnameOf(request.url))
  return error.issues.map((issue) => ({
    path: [partOf(route, issue.path[0]), ...issue.path.map((key) => typeof key === "symbol" ? String(key) : key)],
    message: truncate(issue.message)
  }))
}

const pathnameOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

// -----------------------------------------------------------------------------
// The API-level middleware
// -----------------------------------------------------------------------------

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

let idCounter = 0
const idPrefix = Math.floor(Math.random() * 0xffffffff).toString(36)

const newRequestId = (): string => {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  if (crypto?.randomUUID !== undefined) return crypto.randomUUID()
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${idPrefix}-${Date.now().toString(36)}-${idCounter.toString(36)}`
}

/** The request id taken from `x-request-id` (when sane) or generated. @internal */
export const requestIdOf = (request: HttpServerRequest.HttpServerRequest): string =>
  requestIdFrom(request.headers["x-request-id"])

/**
 * The request id of an `x-request-id` header: the given one when it is well-formed, else a new one.
 *
 * @internal
 */
export const requestIdFrom = (given: string | undefined): string =>
  given !== undefined && REQUEST_ID.test(given) ? given : newRequestId()

type ApiFailure = BadRequest | PayloadTooLarge | NotFound | InternalError

const isRequestTooLarge = (defect: unknown): boolean =>
  HttpServerError.isServerError(defect) && defect._tag === "RequestError" &&
  String((defect.cause as { message?: unknown } | undefined)?.message ?? "").includes("maxBytes")

/**
 * Maps what the platform answers without a JSON body, or with one that does not name where the
 * fault is, to the API's errors: decode errors to `BadRequest` (paths prefixed by the request
 * part), unknown routes to `NotFound`, unreadable bodies to `BadRequest` or `PayloadTooLarge`,
 * defects to `InternalError` (logged).
 */
const mapFailures = (
  request: HttpServerRequest.HttpServerRequest,
  requestId: string,
  limitBytes: number
) =>
(cause: Cause.Cause<never>): Effect.Effect<HttpServerResponse.HttpServerResponse, ApiFailure> => {
  // The app's failures are typed `never` but are the endpoints' errors and the platform's.
  const failure = Cause.failureOption(cause as Cause.Cause<unknown>)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof HttpApiError.HttpApiDecodeError) {
      return Effect.fail(badRequest(locateIssues(request, error)))
    }
    if (HttpServerError.isServerError(error)) {
      if (error._tag === "RouteNotFound") {
        const pathname = pathnameOf(request.url)
        const message = `no route for ${request.method} ${truncate(pathname)}`
        return Effect.fail(
          new NotFound({
            method: request.method,
            path: truncate(pathname),
            message,
            issues: [{ path: ["path"], message }]
          })
        )
      }
      if (error._tag === "RequestError") {
        return isRequestTooLarge(error)
          ? Effect.fail(tooLarge(limitBytes))
          : Effect.fail(badRequest([{ path: ["body"], message: truncate(error.message) }]))
      }
    }
    return Effect.failCause(cause)
  }
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
  const defect = Cause.squash(cause)
  if (isRequestTooLarge(defect)) return Effect.fail(tooLarge(limitBytes))
  if (HttpServerError.isServerError(defect) && defect._tag === "RequestError") {
    const reason = (defect.cause as { message?: unknown } | undefined)?.message
    return Effect.fail(badRequest([{
      path: ["body"],
      message: truncate(typeof reason === "string" ? `the body could not be read: ${reason}` : defect.message)
    }]))
  }
  return Effect.zipRight(
    Effect.logError("unexpected failure", cause).pipe(Effect.annotateLogs("requestId", requestId)),
    Effect.fail(new InternalError({ message: "internal error: the service failed unexpectedly", requestId }))
  )
}

const logRequest = (
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse,
  requestId: string,
  started: number
): Effect.Effect<void> => logLine(request.method, pathnameOf(request.url), response.status, requestId, started)

/**
 * The log line of one request: method, path, status and duration, annotated with the request id.
 *
 * @internal
 */
export const logLine = (
  method: string,
  path: string,
  status: number,
  requestId: string,
  started: number
): Effect.Effect<void> => {
  const durationMs = Math.round((performance.now() - started) * 100) / 100
  const line = `${method} ${path} ${status} ${durationMs}ms`
  const log = status >= 500 ? Effect.logError(line) : Effect.logInfo(line)
  return log.pipe(Effect.annotateLogs({ requestId, method, path, status, durationMs }))
}

/**
 * The API-level middleware: a request id (taken from `x-request-id` or generated, echoed in the
 * response), the body limit by declared length, the mapping of platform failures to the API's
 * JSON errors, one log line per request, and CORS when origins are configured.
 *
 * @internal
 */
export const apiMiddleware = (config: Config) => (app: HttpApp.Default): HttpApp.Default<ApiFailure> => {
  const limitBytes = config.bodyLimitBytes
  const handled: HttpApp.Default<ApiFailure> = Effect.withFiberRuntime<
    HttpServerResponse.HttpServerResponse,
    ApiFailure,
    HttpServerRequest.HttpServerRequest
  >((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const requestId = requestIdOf(request)
    const started = config.requestLog ? performance.now() : 0
    const respond = App.appendPreResponseHandler((_request, response) => {
      const withId = HttpServerResponse.setHeader(response, "x-request-id", requestId)
      const withChallenge = response.status === 401
        ? HttpServerResponse.setHeader(withId, "www-authenticate", "Bearer realm=\"spindle\"")
        : withId
      return config.requestLog
        ? Effect.as(logRequest(request, withChallenge, requestId, started), withChallenge)
        : Effect.succeed(withChallenge)
    })
    const answer = declaredTooLarge(request, limitBytes)
      ? Effect.fail(tooLarge(limitBytes))
      : Effect.catchAllCause(app, mapFailures(request, requestId, limitBytes))
    return Effect.zipRight(respond, answer)
  })
  return config.corsOrigins.length === 0
    ? handled
    : HttpMiddleware.cors({
      allowedOrigins: config.corsOrigins.includes("*") ? [] : config.corsOrigins,
      allowedHeaders: ["authorization", "content-type", "last-event-id", "x-request-id"],
      exposedHeaders: ["x-request-id"],
      maxAge: 600
    })(handled)
}

/** @internal */
export const apiMiddlewareLayer = (config: Config): Layer.Layer<never> =>
  HttpApiBuilder.middleware(SpindleApi, apiMiddleware(config))
