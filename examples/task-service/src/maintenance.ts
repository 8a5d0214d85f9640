/**
 * What `maintenance.cleanup` needs: a way to delete finished tasks from the task store.
 *
 * The task service provides its `TaskStore` to a module's handlers; the clean-up deletes from it.
 *
 * @since 0.1.0
 */
import { TaskStore } from "@spindle/tasks"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { CleanupFailed } from "./tasks.js"

/**
 * Deletes finished tasks.
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskRetention extends Context.Tag("task-service/TaskRetention")<TaskRetention, {
  /** Deletes the tasks (and their logs) that finished before `cutoff`; returns how many. */
  readonly deleteFinishedBefore: (cutoff: Date) => Effect.Effect<number, CleanupFailed>
}>() {}

const deleteWith = (store: TaskStore.TaskStore["Type"], cutoff: Date) =>
  store.tasksDelete({ finishedBefore: cutoff }).pipe(
    Effect.mapError((error) => new CleanupFailed({ message: `${error.operation}: ${error.message}` }))
  )

/**
 * Retention on the task store of the current context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore: Layer.Layer<TaskRetention, never, TaskStore.TaskStore> = Layer.effect(
  TaskRetention,
  Effect.map(TaskStore.TaskStore, (store) => ({ deleteFinishedBefore: (cutoff) => deleteWith(store, cutoff) }))
)
