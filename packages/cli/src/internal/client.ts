import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Api } from "@spindle/server"
import { Effect, Option, ParseResult, Predicate, Redacted } from "effect"
import { CliError } from "./error.js"
import * as Format from "./format.js"

/** @internal */
export interface Connection {
  readonly url: string
  readonly token: Option.Option<Redacted.Redacted>
}

const makeApi = (connection: Connection) =>
  HttpApiClient.make(Api.SpindleApi, {
    baseUrl: connection.url.replace(/\/+$/, ""),
    transformClient: Option.match(connection.token, {
      onNone: () => (client: HttpClient.HttpClient) => client,
      onSome: (token) => HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(token)))
    })
  })

/**
 * The typed client of `Api.SpindleApi`.
 *
 * @internal
 */
export type ApiClient = Effect.Effect.Success<ReturnType<typeof makeApi>>

/**
 * A client whose calls fail with a printable `CliError`.
 *
 * @internal
 */
export interface Client {
  readonly url: string
  readonly call: <A, E>(f: (api: ApiClient) => Effect.Effect<A, E>) => Effect.Effect<A, CliError>
}

/** @internal */
export const make = (connection: Connection): Effect.Effect<Client, never, HttpClient.HttpClient> =>
  Effect.map(makeApi(connection), (api) => ({
    url: connection.url,
    call: (f) => Effect.catchAll(f(api), (error) => Effect.flatMap(describe(connection.url, error), Effect.fail))
  }))

const errorCode = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 6 && Predicate.isObject(current); depth++) {
    if (Predicate.hasProperty(current, "code") && typeof current.code === "string") return current.code
    if (Predicate.hasProperty(current, "errors") && Array.isArray(current.errors)) {
      const nested = current.errors.map(errorCode).find((code) => code !== undefined)
      if (nested !== undefined) return nested
    }
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return undefined
}

const innermostMessage = (cause: unknown): string | undefined => {
  let message: string | undefined
  let current: unknown = cause
  for (let depth = 0; depth < 6 && Predicate.isObject(current); depth++) {
    if (Predicate.hasProperty(current, "message") && typeof current.message === "string" && current.message !== "") {
      message = current.message
    }
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return message
}

const connectionMessages: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable"
}

type Issue = { readonly path: ReadonlyArray<string | number>; readonly message: string }

const isIssue = (u: unknown): u is Issue =>
  Predicate.hasProperty(u, "path") && Array.isArray(u.path) && Predicate.hasProperty(u, "message") &&
  typeof u.message === "string"

const fromTagged = (error: { readonly _tag: string; readonly message?: unknown; readonly issues?: unknown }) =>
  Format.errorLines(
    error._tag,
    typeof error.message === "string" && error.message !== "" ? error.message : error._tag,
    Array.isArray(error.issues) ? error.issues.filter(isIssue) : []
  )

const unauthorized = (): CliError =>
  new CliError({ reason: "Api", lines: ["error: Unauthorized: missing or wrong token (SPINDLE_TOKEN)"] })

/**
 * Turns what a client call failed with into the lines to print: the API's tagged errors with
 * their issues, 401 as a token problem, a refused connection naming the URL.
 *
 * @internal
 */
export const describe = (url: string, error: unknown): Effect.Effect<CliError> => {
  if (Predicate.isTagged(error, "RequestError") && Predicate.hasProperty(error, "reason")) {
    if (error.reason === "Transport") {
      const cause = Predicate.hasProperty(error, "cause") ? error.cause : undefined
      const code = errorCode(cause)
      const what = code === undefined
        ? innermostMessage(cause) ?? "connection failed"
        : connectionMessages[code] ?? code
      return Effect.succeed(
        new CliError({
          reason: "Connection",
          lines: [
            `error: cannot reach the spindle service at ${url}: ${what}`,
            "  is `spindle serve` running there? (set --url or SPINDLE_URL)"
          ],
          cause: error
        })
      )
    }
    return Effect.succeed(
      new CliError({ reason: "Connection", lines: [`error: bad request to ${url}: ${String(error)}`], cause: error })
    )
  }
  if (Predicate.isTagged(error, "ResponseError") && Predicate.hasProperty(error, "response")) {
    const response = error.response as { readonly status: number; readonly json: Effect.Effect<unknown, unknown> }
    if (response.status === 401) return Effect.succeed(unauthorized())
    return response.json.pipe(
      Effect.option,
      Effect.map((body) => {
        const lines = Option.isSome(body) && Predicate.hasProperty(body.value, "_tag") &&
            typeof body.value._tag === "string"
          ? fromTagged(body.value as { readonly _tag: string })
          : [`error: HTTP ${response.status} from ${url}`]
        return new CliError({ reason: "Api", lines, cause: error })
      })
    )
  }
  if (ParseResult.isParseError(error)) {
    return Effect.succeed(
      new CliError({
        reason: "Api",
        lines: [`error: unexpected answer from ${url}: ${error.message}`],
        cause: error
      })
    )
  }
  if (Predicate.isTagged(error, "Unauthorized")) return Effect.succeed(unauthorized())
  if (Predicate.hasProperty(error, "_tag") && typeof error._tag === "string") {
    return Effect.succeed(
      new CliError({ reason: "Api", lines: fromTagged(error as { readonly _tag: string }), cause: error })
    )
  }
  return Effect.succeed(new CliError({ reason: "Api", lines: [`error: ${String(error)}`], cause: error }))
}
