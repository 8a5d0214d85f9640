/**
 * The task definitions a service accepts, by name: what `POST /v1/tasks` validates a payload
 * against. Built from a list of definitions, or from the registered handlers.
 *
 * @since 0.1.0
 */
import type { Task } from "@spindle/tasks"
import { TaskHandlers } from "@spindle/tasks"
import type { Option } from "effect"
import { Context, Effect, Layer } from "effect"
import * as internal from "./internal/taskCatalog.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Every definition, sorted by name. */
  readonly all: ReadonlyArray<Task.Task.Any>
  readonly get: (name: string) => Option.Option<Task.Task.Any>
}

/**
 * The catalog service.
 *
 * @example
 * ```ts
 * import { TaskCatalog } from "@spindle/server"
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const Resize = Task.make("resize", { payload: Schema.Struct({ url: Schema.String }) })
 * const CatalogLive = TaskCatalog.layer([Resize])
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskCatalog extends Context.Tag("@spindle/server/TaskCatalog")<TaskCatalog, Service>() {}

/**
 * A catalog of these definitions; two definitions with one name is a defect.
 *
 * @example
 * ```ts
 * import { TaskCatalog } from "@spindle/server"
 * import { Task } from "@spindle/tasks"
 * import { Schema } from "effect"
 *
 * const catalog = TaskCatalog.make([Task.make("resize", { payload: Schema.Struct({ url: Schema.String }) })])
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (definitions: Iterable<Task.Task.Any>) => Service = internal.make

/**
 * @example
 * ```ts
 * import { TaskCatalog } from "@spindle/server"
 *
 * const Empty = TaskCatalog.layer([])
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (definitions: Iterable<Task.Task.Any>): Layer.Layer<TaskCatalog> =>
  Layer.sync(TaskCatalog, () => make(definitions))

/**
 * The catalog of the handlers registered in `TaskHandlers`, plus any extra definitions (tasks
 * this service accepts but other workers run).
 *
 * @example
 * ```ts
 * import { TaskCatalog } from "@spindle/server"
 *
 * const FromHandlers = TaskCatalog.layerFromHandlers()
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromHandlers = (
  extra: Iterable<Task.Task.Any> = []
): Layer.Layer<TaskCatalog, never, TaskHandlers.TaskHandlers> =>
  Layer.effect(
    TaskCatalog,
    Effect.map(TaskHandlers.TaskHandlers, (registry) =>
      make([...Array.from(registry.entries.values(), (entry) => entry.task), ...extra]))
  )
