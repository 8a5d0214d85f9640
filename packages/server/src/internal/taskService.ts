import type { TaskStore } from "@spindle/tasks"
import { Layer } from "effect"
import type { Options, TaskService, TaskServiceError } from "../TaskService.js"

// CONTRACT STUB: the server helper replaces this file.

/** @internal */
export const layerStore = (_db: string): Layer.Layer<TaskStore.TaskStore, TaskServiceError> =>
  Layer.die("TaskService.layerStore: not implemented yet")

/** @internal */
export const layer = (_options?: Options): Layer.Layer<TaskService, TaskServiceError> =>
  Layer.die("TaskService.layer: not implemented yet")
