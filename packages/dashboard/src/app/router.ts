/**
 * The hash router: `#/` the overview, `#/tasks?status=failed,dead&queue=emails` the task table,
 * `#/tasks/<id>` a task. The page is one document, so the server only ever serves `/`.
 */
import { statuses } from "./types.js"
import type { ListQuery, TaskStatus } from "./types.js"

export type Route =
  | { readonly _tag: "overview" }
  | { readonly _tag: "tasks"; readonly query: ListQuery }
  | { readonly _tag: "task"; readonly id: string }
  | { readonly _tag: "notFound"; readonly path: string }

const sorts = ["createdAt", "updatedAt", "runAt", "finishedAt", "priority"] as const

const nonEmpty = (value: string | null): string | undefined => {
  const trimmed = value?.trim()
  return trimmed === undefined || trimmed === "" ? undefined : trimmed
}

export const parseQuery = (params: URLSearchParams): ListQuery => {
  const status = (params.get("status") ?? "").split(",").filter((s): s is TaskStatus =>
    (statuses as ReadonlyArray<string>).includes(s)
  )
  const sort = params.get("sort")
  const order = params.get("order")
  const limit = Number(params.get("limit") ?? "")
  return {
    status: status.length === 0 ? undefined : status,
    name: nonEmpty(params.get("name")),
    queue: nonEmpty(params.get("queue")),
    tag: nonEmpty(params.get("tag")),
    sort: (sorts as ReadonlyArray<string | null>).includes(sort) ? sort as ListQuery["sort"] : undefined,
    order: order === "asc" || order === "desc" ? order : undefined,
    limit: Number.isInteger(limit) && limit >= 1 && limit <= 1000 ? limit : undefined,
    cursor: nonEmpty(params.get("cursor"))
  }
}

/** The route of a location hash. */
export const parse = (hash: string): Route => {
  const raw = hash.replace(/^#/, "")
  const [path = "", search = ""] = raw.split("?", 2)
  const segments = path.split("/").filter((segment) => segment !== "")
  if (segments.length === 0) return { _tag: "overview" }
  if (segments[0] === "tasks" && segments.length === 1) {
    return { _tag: "tasks", query: parseQuery(new URLSearchParams(search)) }
  }
  if (segments[0] === "tasks" && segments.length === 2) {
    try {
      return { _tag: "task", id: decodeURIComponent(segments[1]!) }
    } catch {
      return { _tag: "notFound", path }
    }
  }
  return { _tag: "notFound", path }
}

export const href = {
  overview: (): string => "#/",
  tasks: (query: ListQuery = {}): string => {
    const params = new URLSearchParams()
    if (query.status && query.status.length > 0) params.set("status", query.status.join(","))
    if (query.name) params.set("name", query.name)
    if (query.queue) params.set("queue", query.queue)
    if (query.tag) params.set("tag", query.tag)
    if (query.sort) params.set("sort", query.sort)
    if (query.order) params.set("order", query.order)
    if (query.limit) params.set("limit", String(query.limit))
    if (query.cursor) params.set("cursor", query.cursor)
    const search = params.toString().replace(/%2C/g, ",")
    return search === "" ? "#/tasks" : `#/tasks?${search}`
  },
  task: (id: string): string => `#/tasks/${encodeURIComponent(id)}`
}
