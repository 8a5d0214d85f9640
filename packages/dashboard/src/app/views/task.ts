/**
 * `#/tasks/<id>`: one task — its state and actions (cancel, retry), progress, error with its
 * cause or result, payload, a timeline and its log lines. Re-read when one of its events
 * arrives (at most twice a second), so a running task's page follows it live.
 *
 * The API keeps no per-task event history, so the timeline merges the steps the task's record
 * tells (submitted, started, finished) with the events seen on the live stream since the page
 * was loaded.
 */
import { api, ApiError } from "../api.js"
import { coalesce, h, replace, throttle } from "../dom.js"
import * as format from "../format.js"
import { href } from "../router.js"
import { cancellable, retryable } from "../types.js"
import type { LogLine, Task, TaskEvent } from "../types.js"
import { action, field, showError, statusBadge } from "../ui.js"
import type { Shell, View } from "./view.js"

interface Step {
  readonly at: string
  readonly label: string
  readonly detail?: string | undefined
  readonly attempt?: number | undefined
  readonly live: boolean
}

const timelineLimit = 200

/** The steps of a task's life, oldest first. */
export const timeline = (task: Task, events: ReadonlyArray<TaskEvent>): Array<Step> => {
  const observed = events.filter((event) => event.taskId === task.id)
  const seen = (type: string, attempt?: number) =>
    observed.some((event) => event.type === type && (attempt === undefined || event.attempt === attempt))
  const steps: Array<Step> = []
  if (!seen("submitted")) {
    steps.push({
      at: task.createdAt,
      label: "submitted",
      detail: `queue ${task.queue}, priority ${task.priority}`,
      live: false
    })
  }
  if (task.startedAt !== null && !seen("started", task.attempt)) {
    steps.push({ at: task.startedAt, label: "started", attempt: task.attempt, live: false })
  }
  if (task.finishedAt !== null && !seen(task.status)) {
    steps.push({
      at: task.finishedAt,
      label: task.status,
      attempt: task.attempt,
      detail: task.error ? `${task.error.tag}: ${task.error.message}` : undefined,
      live: false
    })
  }
  for (const event of observed) {
    steps.push({
      at: event.at,
      label: event.type,
      attempt: event.attempt,
      live: true,
      detail: event.type === "progress"
        ? `${format.percent(event.progress ?? 0)}${event.message ? ` · ${event.message}` : ""}`
        : event.error
        ? `${event.error.tag}: ${event.error.message}`
        : event.message
    })
  }
  return steps
    .map((step, index) => ({ step, index }))
    .sort((a, b) => new Date(a.step.at).getTime() - new Date(b.step.at).getTime() || a.index - b.index)
    .map(({ step }) => step)
}

const section = (title: string, testId: string, ...children: Array<Node | string | null>) =>
  h("section", { class: "card", "data-testid": testId }, h("h2", null, title), ...children)

const pre = (value: unknown, testId?: string) => h("pre", { class: "json", "data-testid": testId }, format.json(value))

const durationOf = (task: Task): string => {
  if (task.startedAt === null) return "–"
  const end = task.finishedAt === null ? Date.now() : new Date(task.finishedAt).getTime()
  const text = format.duration(end - new Date(task.startedAt).getTime())
  return task.finishedAt === null && task.status === "running" ? `${text} so far` : text
}

const details = (task: Task) =>
  h(
    "dl",
    { class: "details" },
    field("Queue", h("a", { href: href.tasks({ queue: task.queue }) }, task.queue)),
    field("Priority", task.priority),
    field("Attempts", h("span", { "data-testid": "task-attempts" }, `${task.attempt} of ${task.maxAttempts}`)),
    field("Created", h("time", { title: format.iso(task.createdAt) }, format.time(task.createdAt))),
    field(
      "Run at",
      h("time", { title: format.iso(task.runAt) }, `${format.time(task.runAt)} (${format.relative(task.runAt)})`)
    ),
    field("Started", h("time", { title: format.iso(task.startedAt) }, format.time(task.startedAt))),
    field("Finished", h("time", { title: format.iso(task.finishedAt) }, format.time(task.finishedAt))),
    field("Duration", durationOf(task)),
    field("Timeout", task.timeoutMs === null ? "none" : format.duration(task.timeoutMs)),
    task.leaseOwner === null ? null : field("Worker", h("code", null, task.leaseOwner)),
    task.idempotencyKey === null ? null : field("Idempotency key", h("code", null, task.idempotencyKey)),
    task.parentId === null ? null : field("Parent", h("a", { href: href.task(task.parentId) }, task.parentId)),
    field(
      "Tags",
      task.tags.length === 0 ? h("span", { class: "muted" }, "none") : h(
        "span",
        { class: "tags" },
        ...task.tags.map((tag) => h("a", { class: "tag", href: href.tasks({ tag }) }, tag))
      )
    )
  )

const progress = (task: Task) => {
  const bar = h("div", { class: "progress-bar" })
  bar.style.width = `${Math.round(Math.min(Math.max(task.progress, 0), 1) * 100)}%`
  return section(
    "Progress",
    "task-progress",
    h(
      "div",
      {
        class: `progress ${task.status === "running" ? "active" : ""}`,
        role: "progressbar",
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": Math.round(task.progress * 100),
        "aria-label": "Progress"
      },
      bar
    ),
    h(
      "p",
      { class: "progress-text" },
      h("strong", { "data-testid": "progress-value" }, format.percent(task.progress)),
      task.progressMessage ? ` · ${task.progressMessage}` : null
    )
  )
}

const errorSection = (task: Task) =>
  task.error === null ? null : h(
    "section",
    { class: "card error-card", "data-testid": "task-error" },
    h("h2", null, "Error"),
    h(
      "p",
      null,
      h("strong", { class: "error-tag", "data-testid": "task-error-tag" }, task.error.tag),
      " — ",
      h("span", { "data-testid": "task-error-message" }, task.error.message)
    ),
    h("h3", null, "Cause"),
    h("pre", { class: "cause", "data-testid": "task-error-cause" }, task.error.cause),
    task.error.value === undefined ? null : [h("h3", null, "Value"), pre(task.error.value)]
  )

const steps = (task: Task, events: ReadonlyArray<TaskEvent>) => {
  const all = timeline(task, events)
  const shown = all.slice(-timelineLimit)
  return section(
    "Timeline",
    "task-timeline",
    all.length > shown.length
      ? h("p", { class: "muted" }, `${all.length - shown.length} earlier steps not shown`)
      : null,
    h(
      "ol",
      { class: "timeline" },
      shown.map((step) =>
        h(
          "li",
          { class: `step step-${step.label}`, "data-step": step.label },
          h("time", { title: format.iso(step.at) }, format.time(step.at)),
          h(
            "span",
            { class: "step-body" },
            h("strong", null, step.label),
            step.attempt === undefined ? null : h("span", { class: "muted" }, ` · attempt ${step.attempt}`),
            step.detail ? h("span", { class: "step-detail" }, step.detail) : null
          )
        )
      )
    ),
    h(
      "p",
      { class: "muted small" },
      "Steps from the task's record, and the events seen live since this page was opened."
    )
  )
}

const levelClass = (line: LogLine) => `log-${line.level}`

const logs = (lines: ReadonlyArray<LogLine>) =>
  section(
    "Logs",
    "task-logs",
    lines.length === 0 ? h("p", { class: "empty" }, "No log lines.") : h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "table logs" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, "Time"),
            h("th", { scope: "col", class: "num opt" }, "Attempt"),
            h("th", { scope: "col" }, "Level"),
            h("th", { scope: "col" }, "Message")
          )
        ),
        h(
          "tbody",
          null,
          lines.map((line) =>
            h(
              "tr",
              { class: levelClass(line), "data-testid": "log-line" },
              h("td", { class: "nowrap", title: format.iso(line.at) }, format.time(line.at)),
              h("td", { class: "num opt" }, String(line.attempt)),
              h("td", null, h("span", { class: `level level-${line.level}` }, line.level)),
              h("td", { class: "message" }, line.message)
            )
          )
        )
      )
    )
  )

const actions = (task: Task, refresh: () => void) =>
  h(
    "div",
    { class: "task-actions" },
    cancellable.includes(task.status)
      ? action({
        label: task.cancelRequested ? "Cancel again" : "Cancel",
        className: "danger",
        testId: "task-cancel",
        run: () => api.cancel(task.id),
        done: refresh,
        confirm: {
          title: `Cancel task ${task.name}?`,
          body: task.status === "running"
            ? "Its worker is asked to interrupt it. This cannot be undone (it can be retried afterwards)."
            : "It will not run. This cannot be undone (it can be retried afterwards).",
          confirm: "Cancel task"
        }
      })
      : null,
    retryable.includes(task.status)
      ? action({
        label: "Retry",
        className: "primary",
        testId: "task-retry",
        run: () => api.retry(task.id),
        done: refresh
      })
      : null
  )

export const task = (id: string, shell: Shell): View => {
  const element = h("div", { class: "page task-page" }, h("p", { class: "loading" }, "Loading…"))
  let disposed = false

  const render = (task: Task, lines: ReadonlyArray<LogLine>) => {
    replace(
      element,
      h(
        "nav",
        { class: "breadcrumbs", "aria-label": "Breadcrumbs" },
        h("a", { href: href.tasks() }, "Tasks"),
        " › ",
        h("a", { href: href.tasks({ name: task.name }) }, task.name)
      ),
      h(
        "header",
        { class: "page-header task-header" },
        h(
          "div",
          null,
          h("h1", null, task.name, " ", h("span", { "data-testid": "task-status" }, statusBadge(task.status))),
          h("p", { class: "task-id" }, h("code", { "data-testid": "task-id" }, task.id)),
          task.cancelRequested && task.status === "running"
            ? h(
              "p",
              { class: "note", "data-testid": "cancel-requested" },
              "Cancellation requested: waiting for the worker."
            )
            : null
        ),
        actions(task, () => void refresh())
      ),
      task.status === "running" || task.progress > 0 ? progress(task) : null,
      errorSection(task),
      task.status === "succeeded" ? section("Result", "task-result", pre(task.result, "task-result-json")) : null,
      h(
        "div",
        { class: "columns" },
        h("section", { class: "card" }, h("h2", null, "Details"), details(task)),
        section("Payload", "task-payload", pre(task.payload, "task-payload-json"))
      ),
      steps(task, shell.recentEvents()),
      logs(lines)
    )
  }

  const load = async () => {
    try {
      const [current, lines] = await Promise.all([api.task(id), api.logs(id)])
      if (!disposed) render(current, lines.items)
    } catch (error) {
      if (disposed || (error instanceof ApiError && error.status === 401)) return
      if (error instanceof ApiError && error.status === 404) {
        replace(
          element,
          h("h1", null, "Task not found"),
          h("p", { "data-testid": "task-not-found" }, "No task has the id ", h("code", null, id), "."),
          h("p", null, h("a", { href: href.tasks() }, "All tasks"))
        )
      }
      showError(error, "Loading the task")
    }
  }
  const refresh = coalesce(load)
  const live = throttle(500, () => void refresh())

  return {
    element,
    title: `Task ${id}`,
    refresh,
    onEvent: (event) => {
      if (event.taskId === id) live()
    },
    dispose: () => {
      disposed = true
      live.cancel()
    }
  }
}
