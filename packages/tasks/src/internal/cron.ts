import { Cause, Clock, Cron as EffectCron, Effect, Either, Layer, Option } from "effect"
import type * as Cron from "../Cron.js"
import type * as Task from "../Task.js"
import { TaskStore } from "../TaskStore.js"
import { encodePayload, toNewTask } from "./task.js"

/** @internal */
export const TypeId: typeof Cron.TypeId = Symbol.for("@spindle/tasks/Cron/Schedule") as never

/** @internal */
export const schedule = <T extends Task.Task.Any>(
  task: T,
  options: Cron.Schedule.Options<T>
): Cron.Schedule<T> => {
  let cron: EffectCron.Cron
  if (typeof options.cron === "string") {
    const parsed = EffectCron.parse(options.cron, options.tz)
    if (Either.isLeft(parsed)) {
      throw new Cause.IllegalArgumentException(
        `Cron.schedule("${task.name}"): invalid cron expression "${options.cron}": ${parsed.left.message}`
      )
    }
    cron = parsed.right
  } else {
    cron = options.cron
  }
  return { [TypeId]: TypeId, task, cron, payload: options.payload }
}

/** @internal */
export const idempotencyKey = (schedule: Cron.Schedule, tick: Date): string =>
  `cron:${schedule.task.name}:${tick.toISOString()}`

/**
 * The tick's task gets the tick's key as its id too: the idempotency key dedupes ticks fired
 * while the task is unfinished, the id (unique for good) after it finished.
 *
 * @internal
 */
export const fire = (schedule: Cron.Schedule, tick: Date) =>
  Effect.gen(function*() {
    const store = yield* TaskStore
    const key = idempotencyKey(schedule, tick)
    const existing = yield* store.taskGet({ id: key })
    if (Option.isSome(existing)) return { task: existing.value, created: false }
    const payload = yield* encodePayload(schedule.task, schedule.payload)
    const [inserted] = yield* store.tasksInsert({
      tasks: [{ ...toNewTask(schedule.task, schedule.payload, payload, { idempotencyKey: key }), id: key }]
    }).pipe(
      Effect.catchTag("TaskStoreError", (error) =>
        // Another node inserted the same id between our read and our insert.
        Effect.flatMap(store.taskGet({ id: key }), (found) =>
          Option.isSome(found)
            ? Effect.succeed([{ task: found.value, created: false }])
            : Effect.fail(error)))
    )
    return inserted!
  })

const loop = (store: TaskStore["Type"], schedule: Cron.Schedule): Effect.Effect<never> =>
  Effect.gen(function*() {
    let last = yield* Clock.currentTimeMillis
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const next = EffectCron.next(schedule.cron, new Date(Math.max(now, last)))
      yield* Effect.sleep(Math.max(0, next.getTime() - now))
      yield* fire(schedule, next).pipe(
        Effect.provideService(TaskStore, store),
        Effect.tap(({ created }) =>
          Effect.logDebug(created ? "spindle: cron tick submitted" : "spindle: cron tick already submitted")
        ),
        Effect.catchAll((error) => Effect.logWarning(`spindle: cron tick not submitted: ${error.message}`)),
        Effect.annotateLogs({ taskName: schedule.task.name, tick: next.toISOString() })
      )
      last = next.getTime()
    }
  })

/** @internal */
export const runSchedules = (
  store: TaskStore["Type"],
  schedules: ReadonlyArray<Cron.Schedule>
): Effect.Effect<never> =>
  Effect.zipRight(
    Effect.forEach(schedules, (s) => loop(store, s), { concurrency: "unbounded", discard: true }),
    Effect.never
  )

/** @internal */
export const run = (schedules: ReadonlyArray<Cron.Schedule>): Effect.Effect<never, never, TaskStore> =>
  Effect.flatMap(TaskStore, (store) => runSchedules(store, schedules))

/** @internal */
export const layer = (...schedules: ReadonlyArray<Cron.Schedule>): Layer.Layer<never, never, TaskStore> =>
  Layer.scopedDiscard(Effect.forkScoped(run(schedules)))
