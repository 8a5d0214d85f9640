/**
 * `#/`: every queue with its counts by status and whether it is paused, the throughput of the
 * last hour (succeeded and failed per minute), success rate, mean and p95 duration. Re-read
 * when events arrive (at most once a second) and every 30 seconds (the window moves).
 */
import { api, ApiError } from "../api.js"
import { throughputChart } from "../chart.js"
import { coalesce, h, replace, throttle } from "../dom.js"
import * as format from "../format.js"
import { href } from "../router.js"
import { statuses } from "../types.js"
import type { Counts, Queue, Stats, TaskStatus } from "../types.js"
import { action, showError } from "../ui.js"
import type { View } from "./view.js"

const card = (label: string, value: string, testId: string, note?: string) =>
  h(
    "div",
    { class: "card metric" },
    h("div", { class: "metric-label" }, label),
    h("div", { class: "metric-value", "data-testid": testId }, value),
    note ? h("div", { class: "metric-note" }, note) : null
  )

const sum = (counts: Counts, which: ReadonlyArray<TaskStatus>): number =>
  which.reduce((total, status) => total + counts[status], 0)

const metrics = (stats: Stats) =>
  h(
    "section",
    { class: "metrics", "aria-label": "Summary" },
    card("Tasks", format.count(stats.total), "metric-total"),
    card("Running", format.count(stats.byStatus.running), "metric-running"),
    card(
      "Waiting",
      format.count(sum(stats.byStatus, ["pending", "scheduled"])),
      "metric-waiting",
      "pending + scheduled"
    ),
    card("Success rate", format.percent(stats.successRate), "metric-success-rate", "last hour"),
    card("Mean duration", format.duration(stats.meanDurationMs), "metric-mean", "last hour"),
    card("p95 duration", format.duration(stats.p95DurationMs), "metric-p95", "last hour")
  )

const statusCounts = (counts: Counts) =>
  h(
    "ul",
    { class: "status-counts", "aria-label": "Tasks by status" },
    statuses.map((status) =>
      h(
        "li",
        null,
        h(
          "a",
          { href: href.tasks({ status: [status] }), class: `status-count status-${status}`, "data-status": status },
          h("span", { class: "status-count-label" }, status),
          h(
            "span",
            { class: "status-count-value", "data-testid": `status-count-${status}` },
            format.count(counts[status])
          )
        )
      )
    )
  )

const queueRow = (queue: Queue, refresh: () => void) =>
  h(
    "tr",
    { "data-testid": "queue-row", "data-queue": queue.queue },
    h(
      "th",
      { scope: "row" },
      h("a", { href: href.tasks({ queue: queue.queue }) }, queue.queue)
    ),
    h(
      "td",
      null,
      h(
        "span",
        { class: `badge ${queue.paused ? "queue-paused" : "queue-running"}`, "data-testid": "queue-state" },
        queue.paused ? "paused" : "running"
      )
    ),
    statuses.map((status) =>
      h(
        "td",
        { class: `num ${queue.counts[status] === 0 ? "zero" : ""}`, "data-count": status },
        queue.counts[status] === 0 ? "0" : h(
          "a",
          { href: href.tasks({ queue: queue.queue, status: [status] }) },
          format.count(queue.counts[status])
        )
      )
    ),
    h(
      "td",
      { class: "actions" },
      queue.paused
        ? action({
          label: "Resume",
          testId: "queue-resume",
          run: () => api.resume(queue.queue),
          done: refresh
        })
        : action({
          label: "Pause",
          testId: "queue-pause",
          run: () => api.pause(queue.queue),
          done: refresh,
          confirm: {
            title: `Pause queue "${queue.queue}"?`,
            body: "Workers stop claiming its tasks until it is resumed. Running tasks go on.",
            confirm: "Pause queue"
          }
        })
    )
  )

const queuesTable = (queues: ReadonlyArray<Queue>, refresh: () => void) =>
  queues.length === 0
    ? h("p", { class: "empty" }, "No queues yet: submit a task and its queue appears here.")
    : h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "table queues", "data-testid": "queues" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, "Queue"),
            h("th", { scope: "col" }, "State"),
            statuses.map((status) => h("th", { scope: "col", class: "num" }, status)),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions"))
          )
        ),
        h("tbody", null, queues.map((queue) => queueRow(queue, refresh)))
      )
    )

export const overview = (): View => {
  const updated = h("span", { class: "muted", "data-testid": "updated" })
  const summary = h("div", { "data-testid": "overview-summary" }, h("p", { class: "loading" }, "Loading…"))
  const chartHost = h("div", { class: "chart", "data-testid": "throughput-chart" })
  const queuesHost = h("div")
  const element = h(
    "div",
    { class: "page overview" },
    h("header", { class: "page-header" }, h("h1", null, "Overview"), updated),
    summary,
    h(
      "section",
      { class: "card" },
      h("h2", null, "Throughput ", h("span", { class: "muted" }, "· tasks finished per minute, last hour")),
      chartHost
    ),
    h("section", { class: "card" }, h("h2", null, "Queues"), queuesHost)
  )
  const chart = throughputChart(chartHost)
  let disposed = false

  const load = async () => {
    try {
      const [stats, queues] = await Promise.all([api.stats(60), api.queues()])
      if (disposed) return
      replace(summary, metrics(stats), statusCounts(stats.byStatus))
      chart.update(stats.throughput)
      replace(queuesHost, queuesTable(queues, () => void refresh()))
      updated.textContent = `updated ${format.time(new Date().toISOString())}`
    } catch (error) {
      if (disposed || (error instanceof ApiError && error.status === 401)) return
      showError(error, "Loading the overview")
    }
  }
  const refresh = coalesce(load)
  const live = throttle(1000, () => void refresh())
  const timer = setInterval(() => void refresh(), 30_000)

  return {
    element,
    title: "Overview",
    refresh,
    onEvent: live,
    dispose: () => {
      disposed = true
      live.cancel()
      clearInterval(timer)
      chart.destroy()
    }
  }
}
