import type { Api } from "@spindle/server"
import { TaskStatus } from "@spindle/tasks"

/**
 * Compact JSON of a value, `undefined` as `null`.
 *
 * @internal
 */
export const json = (value: unknown): string => JSON.stringify(value) ?? "null"

/**
 * Cuts a string to `max` characters (ending with `…`), on one line.
 *
 * @internal
 */
export const truncate = (text: string, max: number): string => {
  const line = text.replace(/\s*\n\s*/g, " ")
  return line.length <= max ? line : max <= 1 ? "…" : `${line.slice(0, max - 1)}…`
}

/**
 * Aligned columns: every column but the last padded to its widest cell, two spaces apart.
 *
 * @internal
 */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>
): string => {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ").trimEnd()
  return [line(headers), ...rows.map(line)].join("\n")
}

/**
 * `key: value` lines with the values aligned.
 *
 * @internal
 */
export const keyValues = (entries: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(0, ...entries.map(([key]) => key.length)) + 1
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width)} ${value}`.trimEnd()).join("\n")
}

/**
 * A duration in milliseconds for people: `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
 *
 * @internal
 */
export const duration = (ms: number): string => {
  if (!Number.isFinite(ms)) return "-"
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const totalSeconds = Math.round(ms / 1000)
  if (totalSeconds < 3600) {
    return `${Math.floor(totalSeconds / 60)}m ${String(totalSeconds % 60).padStart(2, "0")}s`
  }
  const minutes = Math.floor(totalSeconds / 60)
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`
}

/**
 * A rate for people: `1234/s`, `12.5/s`.
 *
 * @internal
 */
export const rate = (count: number, ms: number): string => {
  if (ms <= 0) return "-"
  const perSecond = (count * 1000) / ms
  return perSecond >= 100 ? `${Math.round(perSecond)}/s` : `${perSecond.toFixed(1)}/s`
}

const time = (date: Date | null): string => date === null ? "-" : date.toISOString()

/**
 * The table of `spindle list`.
 *
 * @internal
 */
export const taskTable = (tasks: ReadonlyArray<Api.TaskView>, payloadWidth = 40): string =>
  table(
    ["ID", "NAME", "QUEUE", "STATUS", "PRIORITY", "ATTEMPT", "CREATED", "PAYLOAD"],
    tasks.map((task) => [
      task.id,
      task.name,
      task.queue,
      task.status,
      task.priority,
      `${task.attempt}/${task.maxAttempts}`,
      time(task.createdAt),
      truncate(json(task.payload), payloadWidth)
    ])
  )

/**
 * One task as `key: value` lines (`spindle get`).
 *
 * @internal
 */
export const taskDetails = (task: Api.TaskView): string => {
  const entries: Array<readonly [string, string]> = [
    ["id", task.id],
    ["name", task.name],
    ["queue", task.queue],
    ["status", task.cancelRequested && task.status === "running" ? "running (cancel requested)" : task.status],
    ["priority", task.priority],
    ["attempt", `${task.attempt}/${task.maxAttempts}`]
  ]
  if (task.progress > 0 || task.progressMessage !== null) {
    const percent = `${Math.round(task.progress * 100)}%`
    entries.push(["progress", task.progressMessage === null ? percent : `${percent} ${task.progressMessage}`])
  }
  entries.push(
    ["created", time(task.createdAt)],
    ["run at", time(task.runAt)],
    ["started", time(task.startedAt)],
    ["finished", time(task.finishedAt)]
  )
  if (task.startedAt !== null && task.finishedAt !== null) {
    entries.push(["duration", duration(task.finishedAt.getTime() - task.startedAt.getTime())])
  }
  if (task.tags.length > 0) entries.push(["tags", task.tags.join(", ")])
  if (task.idempotencyKey !== null) entries.push(["idempotency key", task.idempotencyKey])
  if (task.parentId !== null) entries.push(["parent", task.parentId])
  if (task.leaseOwner !== null) entries.push(["worker", task.leaseOwner])
  entries.push(["payload", json(task.payload)])
  if (task.status === "succeeded") entries.push(["result", json(task.result)])
  if (task.error !== null) entries.push(["error", `${task.error.tag}: ${task.error.message}`])
  return keyValues(entries)
}

/**
 * The counts of a queue, in lifecycle order.
 *
 * @internal
 */
export const queueTable = (queues: ReadonlyArray<Api.QueueView>): string =>
  table(
    ["QUEUE", "PAUSED", ...TaskStatus.all.map((status) => status.toUpperCase())],
    queues.map((queue) => [
      queue.queue,
      queue.paused ? "yes" : "no",
      ...TaskStatus.all.map((status) => String(queue.counts[status]))
    ])
  )

/**
 * `spindle stats` for people.
 *
 * @internal
 */
export const stats = (view: Api.StatsView): string => {
  const summary = keyValues([
    ["total", String(view.total)],
    ["success rate", `${(view.successRate * 100).toFixed(1)}%`],
    ["mean duration", duration(view.meanDurationMs)],
    ["p95 duration", duration(view.p95DurationMs)],
    [
      "last minute",
      (() => {
        const last = view.throughput.at(-1)
        return last === undefined ? "-" : `${last.succeeded} succeeded, ${last.failed} failed`
      })()
    ]
  ])
  const byStatus = table(
    ["STATUS", "COUNT"],
    TaskStatus.all.map((status) => [status, String(view.byStatus[status])])
  )
  const sections = [summary, byStatus]
  if (view.byQueue.length > 0) sections.push(queueTable(view.byQueue))
  if (view.byName.length > 0) {
    sections.push(table(
      ["NAME", ...TaskStatus.all.map((status) => status.toUpperCase())],
      view.byName.map((entry) => [entry.name, ...TaskStatus.all.map((status) => String(entry.counts[status]))])
    ))
  }
  return sections.join("\n\n")
}

/**
 * Where an issue is: its path joined with dots (`body.payload.to`, `body.tasks.3.name`).
 *
 * @internal
 */
export const issuePath = (path: ReadonlyArray<string | number>): string => path.join(".")

/**
 * `error: <tag>: <message>` and one `  at <path>: <message>` line per issue.
 *
 * @internal
 */
export const errorLines = (
  tag: string,
  message: string,
  issues: ReadonlyArray<{ readonly path: ReadonlyArray<string | number>; readonly message: string }> = []
): Array<string> => [
  `error: ${tag}: ${message}`,
  ...issues.map((issue) =>
    issue.path.length === 0 ? `  ${issue.message}` : `  at ${issuePath(issue.path)}: ${issue.message}`
  )
]
