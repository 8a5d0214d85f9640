/**
 * The API client: `fetch` against the service the page was served by (relative URLs, so the
 * page also works under a path prefix), with the bearer token kept in `sessionStorage`. Every
 * failure becomes an `ApiError` carrying the service's error `_tag`, message and issues; a 401
 * also tells the listeners registered with `onUnauthorized` (the token prompt).
 */
import type { Definition, Issue, ListQuery, Queue, Stats, Task, TaskLogs, TaskPage } from "./types.js"

const TOKEN_KEY = "spindle.token"

/** The bearer token of this tab, if one was entered. */
export const getToken = (): string | null => {
  try {
    return sessionStorage.getItem(TOKEN_KEY)
  } catch {
    return null
  }
}

export const setToken = (token: string | null): void => {
  if (token === null || token === "") sessionStorage.removeItem(TOKEN_KEY)
  else sessionStorage.setItem(TOKEN_KEY, token)
}

/** The `authorization` header for the current token (none without one). */
export const authHeaders = (): Record<string, string> => {
  const token = getToken()
  return token === null ? {} : { authorization: `Bearer ${token}` }
}

/** An error answered by the service (or `NetworkError` when it did not answer). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly tag: string,
    message: string,
    readonly issues: ReadonlyArray<Issue> = []
  ) {
    super(message)
    this.name = "ApiError"
  }
}

const unauthorizedListeners = new Set<(error: ApiError) => void>()

/** Called with every 401 answer; returns a function removing the listener. */
export const onUnauthorized = (listener: (error: ApiError) => void): () => void => {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

export const notifyUnauthorized = (error: ApiError): void => {
  for (const listener of unauthorizedListeners) listener(error)
}

const describeFields = (body: Record<string, unknown>): string =>
  Object.entries(body)
    .filter(([key, value]) => key !== "_tag" && key !== "issues" && value !== null && typeof value !== "object")
    .map(([key, value]) => `${key}: ${String(value)}`)
    .join(", ")

/** The `ApiError` of an answer with a non-2xx status, from its body (JSON or text). */
export const toApiError = (status: number, statusText: string, text: string): ApiError => {
  let body: unknown = undefined
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON: reported as text below
  }
  if (typeof body === "object" && body !== null && typeof (body as any)._tag === "string") {
    const record = body as Record<string, unknown>
    const message = typeof record.message === "string" && record.message !== ""
      ? record.message
      : describeFields(record)
    const issues = Array.isArray(record.issues)
      ? (record.issues as Array<unknown>).filter((issue): issue is Issue =>
        typeof issue === "object" && issue !== null && Array.isArray((issue as Issue).path) &&
        typeof (issue as Issue).message === "string"
      )
      : []
    return new ApiError(status, record._tag as string, message, issues)
  }
  const snippet = text.trim().slice(0, 300)
  return new ApiError(status, `HTTP ${status}`, snippet === "" ? statusText || "request failed" : snippet)
}

const errorMessage = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** The query string of a request (empty values and empty lists left out). */
export const queryString = (query: Record<string, string | number | ReadonlyArray<string> | undefined>): string => {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue
    const text = Array.isArray(value) ? value.join(",") : String(value)
    if (text !== "") params.set(key, text)
  }
  const text = params.toString()
  return text === "" ? "" : `?${text}`
}

/** One request to the service; resolves with the decoded JSON of a 2xx answer. */
export const request = async <A>(
  method: "GET" | "POST",
  path: string,
  options: { readonly body?: unknown; readonly signal?: AbortSignal } = {}
): Promise<A> => {
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders() }
  if (options.body !== undefined) headers["content-type"] = "application/json"
  let response: Response
  try {
    response = await fetch(path, {
      method,
      headers,
      cache: "no-store",
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      ...(options.signal ? { signal: options.signal } : {})
    })
  } catch (error) {
    if (options.signal?.aborted) throw error
    throw new ApiError(0, "NetworkError", `the service did not answer ${method} ${path}: ${errorMessage(error)}`)
  }
  const text = await response.text()
  if (!response.ok) {
    const error = toApiError(response.status, response.statusText, text)
    if (response.status === 401) notifyUnauthorized(error)
    throw error
  }
  try {
    return (text === "" ? undefined : JSON.parse(text)) as A
  } catch (error) {
    throw new ApiError(response.status, "MalformedResponse", `${method} ${path}: ${errorMessage(error)}`)
  }
}

const taskPath = (id: string, action = ""): string => `v1/tasks/${encodeURIComponent(id)}${action}`
const queuePath = (name: string, action: string): string => `v1/queues/${encodeURIComponent(name)}/${action}`

/** The page size of the task table. */
export const pageSize = 25

export const api = {
  stats: (minutes = 60) => request<Stats>("GET", `v1/stats${queryString({ minutes })}`),
  queues: () => request<ReadonlyArray<Queue>>("GET", "v1/queues"),
  definitions: () => request<ReadonlyArray<Definition>>("GET", "v1/definitions"),
  listTasks: (query: ListQuery) =>
    request<TaskPage>(
      "GET",
      `v1/tasks${
        queryString({
          status: query.status,
          name: query.name,
          queue: query.queue,
          tag: query.tag,
          sort: query.sort,
          order: query.order,
          cursor: query.cursor,
          limit: query.limit ?? pageSize
        })
      }`
    ),
  task: (id: string) => request<Task>("GET", taskPath(id)),
  logs: (id: string) => request<TaskLogs>("GET", taskPath(id, "/logs")),
  cancel: (id: string) => request<Task>("POST", taskPath(id, "/cancel")),
  retry: (id: string) => request<Task>("POST", taskPath(id, "/retry"), { body: {} }),
  pause: (queue: string) => request<Queue>("POST", queuePath(queue, "pause")),
  resume: (queue: string) => request<Queue>("POST", queuePath(queue, "resume"))
}
