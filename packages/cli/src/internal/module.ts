import type { TaskService } from "@spindle/server"
import { Task } from "@spindle/tasks"
import { Effect, Layer, Predicate } from "effect"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { CliError } from "./error.js"

const allowedKeys = ["definitions", "handlers", "cron", "worker"] as const

const describe = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : typeof value

/**
 * Checks that a value is a `TaskService.TaskModule`; the problems found otherwise.
 *
 * @internal
 */
export const validate = (value: unknown): ReadonlyArray<string> => {
  if (!Predicate.isRecord(value)) {
    return [`expected an object with \`handlers\` and/or \`definitions\`, got ${describe(value)}`]
  }
  const problems: Array<string> = []
  for (const key of Object.keys(value)) {
    if (!(allowedKeys as ReadonlyArray<string>).includes(key)) {
      problems.push(`unknown key \`${key}\` (a task module has ${allowedKeys.map((k) => `\`${k}\``).join(", ")})`)
    }
  }
  if (value.handlers !== undefined && !Layer.isLayer(value.handlers)) {
    problems.push(
      `\`handlers\` must be a Layer providing TaskHandlers (TaskHandlers.layer(...)), got ${describe(value.handlers)}`
    )
  }
  if (value.definitions !== undefined) {
    if (!Array.isArray(value.definitions)) {
      problems.push(`\`definitions\` must be an array of tasks (Task.make), got ${describe(value.definitions)}`)
    } else {
      value.definitions.forEach((definition: unknown, i) => {
        if (!Task.isTask(definition)) problems.push(`\`definitions[${i}]\` is not a task (Task.make)`)
      })
    }
  }
  if (value.cron !== undefined && !Array.isArray(value.cron)) {
    problems.push(`\`cron\` must be an array of schedules, got ${describe(value.cron)}`)
  }
  if (value.worker !== undefined && !Predicate.isRecord(value.worker)) {
    problems.push(`\`worker\` must be an object of worker options, got ${describe(value.worker)}`)
  }
  if (value.handlers === undefined && value.definitions === undefined && problems.length === 0) {
    problems.push("it has neither `handlers` nor `definitions`")
  }
  return problems
}

/**
 * Imports a task module: `specifier` is resolved against `cwd`; its default export, or its
 * `tasks` export, must be a `TaskService.TaskModule`.
 *
 * @internal
 */
export const load = (
  specifier: string,
  cwd: string = process.cwd()
): Effect.Effect<TaskService.TaskModule, CliError> =>
  Effect.gen(function*() {
    const file = path.resolve(cwd, specifier)
    const failure = (lines: ReadonlyArray<string>, cause?: unknown) =>
      new CliError({ reason: "Module", lines: [`error: task module ${file}: ${lines[0]}`, ...lines.slice(1)], cause })
    const namespace = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(file).href) as Promise<Record<string, unknown>>,
      catch: (cause) => {
        const message = cause instanceof Error ? cause.message : String(cause)
        const code = Predicate.hasProperty(cause, "code") ? cause.code : undefined
        return failure(
          [code === "ERR_MODULE_NOT_FOUND" && message.includes(file) ? "file not found" : `cannot import: ${message}`],
          cause
        )
      }
    })
    const exported = namespace.default !== undefined ? "default" : namespace.tasks !== undefined ? "tasks" : undefined
    if (exported === undefined) {
      return yield* failure([
        "it has no default export and no `tasks` export (export default TaskService.module({ handlers }))"
      ])
    }
    const value = namespace[exported]
    const problems = validate(value)
    if (problems.length > 0) {
      return yield* failure([
        `its ${exported === "default" ? "default export" : "`tasks` export"} is not a task module`,
        ...problems.map((problem) => `  ${problem}`)
      ])
    }
    return value as TaskService.TaskModule
  })
