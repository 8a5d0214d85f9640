/**
 * A `TaskStore` kept in memory: for unit tests, examples and small single-process deployments
 * that do not need tasks to survive a restart. It implements the whole store contract (the
 * conformance suite `test/TaskStoreSuite.ts` runs against it): the state machine, leases,
 * idempotency keys, claims ordered by priority, runAt and id, paused queues, listing with
 * cursors, statistics, events and the in-process `awaitWork` signal.
 *
 * Time comes from the `Clock`, so `TestClock` drives leases, delayed tasks and statistics.
 * Every method is atomic (one lock), and events are published in `sequence` order.
 * `awaitWork` also wakes up when the next scheduled task falls due.
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import { Layer } from "effect"
import * as internal from "./internal/memoryStore.js"
import { TaskStore } from "./TaskStore.js"

/**
 * Makes a memory store; its event hub shuts down when the scope closes.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* MemoryStore.make
 *   const [inserted] = yield* store.tasksInsert({ tasks: [{ name: "send-email", payload: { to: "ada@example.com" } }] })
 *   const claimed = yield* store.tasksClaim({ workerId: "w1", limit: 10, leaseMs: 30_000 })
 *   return { id: inserted?.task.id, claimed: claimed.length }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<TaskStore["Type"], never, Scope.Scope> = internal.make

/**
 * A fresh memory store as the `TaskStore` service.
 *
 * @example
 * ```ts
 * import { MemoryStore, TaskStore } from "@spindle/tasks"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* TaskStore.TaskStore
 *   return yield* store.tasksList({ limit: 10 })
 * }).pipe(Effect.provide(MemoryStore.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<TaskStore> = Layer.scoped(TaskStore, internal.make)
