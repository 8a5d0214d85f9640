/**
 * `#/tasks?…`: the task table with its filters (status, name, queue, tag), sort and cursor
 * pagination, all kept in the address so a view can be bookmarked. Re-read when events arrive
 * (at most once a second); rows that appear are highlighted.
 */
import { api, ApiError, pageSize } from "../api.js"
import { coalesce, h, replace, throttle } from "../dom.js"
import * as format from "../format.js"
import { href } from "../router.js"
import { statuses } from "../types.js"
import type { ListQuery, Task, TaskPage, TaskStatus } from "../types.js"
import { showError, statusBadge } from "../ui.js"
import type { View } from "./view.js"

const sortLabels: ReadonlyArray<readonly [NonNullable<ListQuery["sort"]>, string]> = [
  ["createdAt", "Created"],
  ["updatedAt", "Updated"],
  ["runAt", "Run at"],
  ["finishedAt", "Finished"],
  ["priority", "Priority"]
]

/** Cursors of the pages before the current one, per filter: "Previous" pops one. */
const earlierCursors = new Map<string, Array<string | undefined>>()

const filterKey = (query: ListQuery): string => href.tasks({ ...query, cursor: undefined })

const navigate = (query: ListQuery) => {
  location.hash = href.tasks(query)
}

const filters = (query: ListQuery, names: ReadonlyArray<string>, queues: ReadonlyArray<string>) => {
  const selected = new Set(query.status ?? [])
  const form: HTMLFormElement = h(
    "form",
    {
      class: "filters card",
      "data-testid": "filters",
      onsubmit: (event: SubmitEvent) => {
        event.preventDefault()
        apply()
      },
      onchange: (event: Event) => {
        if (!(event.target instanceof HTMLInputElement && event.target.type === "text")) apply()
      }
    },
    h(
      "fieldset",
      { class: "status-filter" },
      h("legend", null, "Status"),
      statuses.map((status) =>
        h(
          "label",
          { class: `chip status-${status}` },
          h("input", { type: "checkbox", name: "status", value: status, checked: selected.has(status) }),
          status
        )
      )
    ),
    h(
      "div",
      { class: "filter-fields" },
      h(
        "label",
        null,
        "Name",
        h(
          "select",
          { name: "name", "data-testid": "filter-name" },
          h("option", { value: "" }, "any"),
          [...new Set([...names, ...(query.name ? [query.name] : [])])].sort().map((name) =>
            h("option", { value: name, selected: name === query.name }, name)
          )
        )
      ),
      h(
        "label",
        null,
        "Queue",
        h("input", {
          type: "text",
          name: "queue",
          list: "queue-names",
          value: query.queue ?? "",
          placeholder: "any",
          "data-testid": "filter-queue"
        }),
        h("datalist", { id: "queue-names" }, queues.map((queue) => h("option", { value: queue })))
      ),
      h(
        "label",
        null,
        "Tag",
        h("input", {
          type: "text",
          name: "tag",
          value: query.tag ?? "",
          placeholder: "any",
          "data-testid": "filter-tag"
        })
      ),
      h(
        "label",
        null,
        "Sort",
        h(
          "select",
          { name: "sort" },
          sortLabels.map(([value, label]) =>
            h("option", { value, selected: value === (query.sort ?? "createdAt") }, label)
          )
        )
      ),
      h(
        "label",
        null,
        "Order",
        h(
          "select",
          { name: "order" },
          h("option", { value: "desc", selected: query.order !== "asc" }, "newest first"),
          h("option", { value: "asc", selected: query.order === "asc" }, "oldest first")
        )
      ),
      h(
        "label",
        null,
        "Per page",
        h(
          "select",
          { name: "limit", "data-testid": "filter-limit" },
          [...new Set([10, 25, 50, 100, query.limit ?? pageSize])].sort((a, b) => a - b).map((limit) =>
            h("option", { value: limit, selected: limit === (query.limit ?? pageSize) }, String(limit))
          )
        )
      ),
      h(
        "div",
        { class: "filter-buttons" },
        h("button", { type: "submit", class: "button primary" }, "Apply"),
        h("a", { class: "button", href: href.tasks() }, "Clear")
      )
    )
  )
  const apply = () => {
    const data = new FormData(form)
    const text = (key: string) => {
      const value = data.get(key)
      return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined
    }
    navigate({
      status: data.getAll("status").filter((s): s is TaskStatus =>
        typeof s === "string" && (statuses as ReadonlyArray<string>).includes(s)
      ),
      name: text("name"),
      queue: text("queue"),
      tag: text("tag"),
      sort: text("sort") === "createdAt" ? undefined : text("sort") as ListQuery["sort"],
      order: text("order") === "desc" ? undefined : text("order") as ListQuery["order"],
      limit: Number(text("limit")) === pageSize ? undefined : Number(text("limit"))
    })
  }
  return form
}

const progressCell = (task: Task) =>
  task.status === "running" || task.progress > 0
    ? h(
      "span",
      { class: "mini-progress", title: format.percent(task.progress) },
      h("span", { class: "mini-progress-bar", "data-width": Math.round(task.progress * 100) })
    )
    : h("span", { class: "muted" }, "–")

const row = (task: Task, fresh: boolean) => {
  const link = href.task(task.id)
  return h(
    "tr",
    {
      class: fresh ? "fresh" : null,
      "data-testid": "task-row",
      "data-task-id": task.id,
      "data-status": task.status
    },
    h("td", { class: "id opt" }, h("a", { href: link, title: task.id }, task.id)),
    h("td", null, h("a", { href: link }, task.name)),
    h("td", { class: "opt" }, task.queue),
    h("td", null, statusBadge(task.status), task.cancelRequested && task.status === "running" ? " ⏹" : null),
    h("td", { class: "opt" }, task.priority),
    h("td", { class: "num opt-narrow" }, `${task.attempt}/${task.maxAttempts}`),
    h("td", { class: "opt" }, progressCell(task)),
    h("td", { class: "opt", title: format.iso(task.createdAt) }, format.time(task.createdAt)),
    h("td", { title: format.iso(task.updatedAt) }, format.relative(task.updatedAt))
  )
}

const table = (page: TaskPage, seen: Set<string> | undefined) =>
  page.items.length === 0
    ? h("p", { class: "empty", "data-testid": "no-tasks" }, "No tasks match these filters.")
    : h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "table tasks", "data-testid": "tasks" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col", class: "opt" }, "ID"),
            h("th", { scope: "col" }, "Name"),
            h("th", { scope: "col", class: "opt" }, "Queue"),
            h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col", class: "opt" }, "Priority"),
            h("th", { scope: "col", class: "num opt-narrow" }, "Attempts"),
            h("th", { scope: "col", class: "opt" }, "Progress"),
            h("th", { scope: "col", class: "opt" }, "Created"),
            h("th", { scope: "col" }, "Updated")
          )
        ),
        h("tbody", null, page.items.map((task) => row(task, seen !== undefined && !seen.has(task.id))))
      )
    )

/** The widths of the progress bars, set through the CSSOM (the CSP forbids inline styles). */
const sizeBars = (root: HTMLElement) => {
  for (const bar of root.querySelectorAll<HTMLElement>("[data-width]")) bar.style.width = `${bar.dataset.width}%`
}

export const tasks = (query: ListQuery): View => {
  const key = filterKey(query)
  const stack = earlierCursors.get(key) ?? []
  earlierCursors.clear()
  earlierCursors.set(key, stack)
  if (query.cursor === undefined) stack.length = 0

  const filtersHost = h("div")
  const tableHost = h("div", { "data-testid": "tasks-table" }, h("p", { class: "loading" }, "Loading…"))
  const pager = h("nav", { class: "pager", "aria-label": "Pages" })
  const updated = h("span", { class: "muted" })
  const element = h(
    "div",
    { class: "page tasks-page" },
    h("header", { class: "page-header" }, h("h1", null, "Tasks"), updated),
    filtersHost,
    h("section", { class: "card" }, tableHost, pager)
  )
  let disposed = false
  let seen: Set<string> | undefined
  let filtersShown = false

  const renderPager = (page: TaskPage) => {
    replace(
      pager,
      h(
        "button",
        {
          type: "button",
          class: "button",
          disabled: query.cursor === undefined,
          onclick: () => navigate({ ...query, cursor: undefined })
        },
        "« First"
      ),
      h(
        "button",
        {
          type: "button",
          class: "button",
          disabled: stack.length === 0,
          "data-testid": "page-previous",
          onclick: () => navigate({ ...query, cursor: stack.pop() })
        },
        "‹ Previous"
      ),
      h(
        "button",
        {
          type: "button",
          class: "button",
          disabled: page.nextCursor === undefined,
          "data-testid": "page-next",
          onclick: () => {
            stack.push(query.cursor)
            navigate({ ...query, cursor: page.nextCursor })
          }
        },
        "Next ›"
      )
    )
  }

  const load = async () => {
    try {
      const [page, definitions, queues] = await Promise.all([
        api.listTasks(query),
        filtersShown ? undefined : api.definitions(),
        filtersShown ? undefined : api.queues()
      ])
      if (disposed) return
      if (definitions !== undefined && queues !== undefined) {
        replace(
          filtersHost,
          filters(query, definitions.map((definition) => definition.name), queues.map((queue) => queue.queue))
        )
        filtersShown = true
      }
      replace(tableHost, table(page, seen))
      sizeBars(tableHost)
      renderPager(page)
      seen = new Set(page.items.map((task) => task.id))
      updated.textContent = `updated ${format.time(new Date().toISOString())}`
    } catch (error) {
      if (disposed || (error instanceof ApiError && error.status === 401)) return
      showError(error, "Loading tasks")
    }
  }
  const refresh = coalesce(load)
  const live = throttle(1000, () => void refresh())

  return {
    element,
    title: "Tasks",
    refresh,
    onEvent: live,
    dispose: () => {
      disposed = true
      live.cancel()
    }
  }
}
