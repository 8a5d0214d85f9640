import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Prometheus } from "@spindle/core"
import { TaskClient, TaskMetrics, TaskStatus, TaskStore } from "@spindle/tasks"
import type { TaskRecord } from "@spindle/tasks"
import type { ParseResult } from "effect"
import type { Context } from "effect"
import { Cause, Duration, Effect, Either, FiberSet, JSONSchema, Layer, Metric, Option, Schema } from "effect"
import {
  type DefinitionView,
  type ListQuery,
  NotReady,
  type QueueView,
  RetryRequest,
  SpindleApi,
  SubmitBatchRequest,
  SubmitRequest,
  type TaskResult
} from "../Api.js"
import { TaskCatalog } from "../TaskCatalog.js"
import type { Config } from "./config.js"
import * as FastLane from "./fastLane.js"
import { badRequest, issuesOf, readJson } from "./request.js"
import { decodeBody, locateParams, makeInserter, submitBatch, submitOne } from "./submission.js"
import { encodeTask } from "./wire.js"

// -----------------------------------------------------------------------------
// Hoisted codecs
// -----------------------------------------------------------------------------

const decodeSubmit = decodeBody(SubmitRequest)
const decodeBatch = decodeBody(SubmitBatchRequest)
const decodeRetry = decodeBody(RetryRequest)

const created = (body: unknown) => HttpServerResponse.unsafeJson(body, { status: 201 })

const decodeOrFail = <A>(result: Either.Either<A, ParseResult.ParseError>) =>
  Either.isRight(result)
    ? Effect.succeed(result.right)
    : Effect.fail(badRequest(issuesOf(result.left, ["body"]), "invalid body"))

// -----------------------------------------------------------------------------
// Tasks
// -----------------------------------------------------------------------------

const DEFAULT_WAIT_MS = 30_000

const notFound = (id: string) => new TaskStore.TaskNotFound({ taskId: id })

const getOrNotFound = (store: TaskStore.TaskStore["Type"], id: string) =>
  Effect.flatMap(
    store.taskGet({ id }),
    Option.match({ onNone: () => Effect.fail(notFound(id)), onSome: Effect.succeed })
  )

const resultOf = (record: TaskRecord.TaskRecord): TaskResult => ({
  id: record.id,
  status: record.status,
  finished: TaskStatus.isFinished(record.status),
  result: record.status === "succeeded" ? record.result : null,
  error: record.error,
  task: record
})

/** How often a waiting `result` re-reads the task besides following events. */
const RESULT_RECHECK = Duration.seconds(1)

/** The store's listing parameters of a query. */
const listParams = (query: ListQuery): TaskStore.TaskStore.ListParams => {
  const filter: TaskStore.TaskStore.Filter = {
    status: query.status,
    name: query.name,
    queue: query.queue,
    tag: query.tag
  }
  return {
    filter,
    sortBy: query.sort,
    order: query.order,
    limit: query.limit,
    cursor: query.cursor
  }
}

/** The definitions as the API shows them, computed once. */
const definitionViews = (catalog: TaskCatalog["Type"]): ReadonlyArray<DefinitionView> =>
  catalog.all.map((task) => {
    let payloadSchema: unknown = {}
    try {
      payloadSchema = JSONSchema.make(task.payload as Schema.Schema<unknown, unknown>)
    } catch {
      payloadSchema = {}
    }
    return {
      name: task.name,
      queue: task.queue,
      priority: task.priority,
      maxAttempts: task.maxAttempts,
      timeoutMs: task.timeout === undefined ? null : Duration.toMillis(task.timeout),
      softTimeoutMs: task.softTimeout === undefined ? null : Duration.toMillis(task.softTimeout),
      tags: task.tags,
      payloadSchema
    }
  })

/**
 * Fills the fast lane of `POST /v1/tasks` for as long as the handlers run; when they stop, new
 * requests go the platform path again and the submissions in flight are waited for (before the
 * inserter, acquired earlier, closes).
 */
const installFastLane = (
  config: Config,
  lane: FastLane.FastLane,
  store: TaskStore.TaskStore["Type"],
  catalog: Context.Tag.Service<TaskCatalog>
) =>
  Effect.gen(function*() {
    const set = yield* FiberSet.make()
    const run = yield* FiberSet.runtime(set)<never>()
    // Released before the set closes (registered after it): the lane is emptied, then what it runs is waited for.
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const fast = FastLane.handler({ config, store, catalog, run })
        lane.current = fast.handle
        return fast
      }),
      (fast) =>
        Effect.suspend(() => {
          lane.current = undefined
          fast.flush()
          return FiberSet.awaitEmpty(set)
        })
    )
  })

/** @internal */
export const tasksLayer = (config: Config) =>
  HttpApiBuilder.group(SpindleApi, "tasks", (handlers) =>
    Effect.gen(function*() {
      const client = yield* TaskClient.TaskClient
      const store = yield* TaskStore.TaskStore
      const catalog = yield* TaskCatalog
      const definitions = definitionViews(catalog)
      const inserter = yield* makeInserter(store, config.coalesceWindow)
      if (config.fastLane !== undefined) yield* installFastLane(config, config.fastLane, store, catalog)
      const limit = config.bodyLimitBytes
      return handlers
        .handleRaw("submit", ({ request }) =>
          readJson(request, limit, false).pipe(
            Effect.flatMap((body) => decodeOrFail(decodeSubmit(body))),
            Effect.flatMap((body) => submitOne(inserter, catalog, body)),
            Effect.map((inserted) =>
              created({ id: inserted.task.id, created: inserted.created, task: encodeTask(inserted.task) })
            )
          ))
        .handleRaw("submitBatch", ({ request }) =>
          readJson(request, limit, false).pipe(
            Effect.flatMap((body) => decodeOrFail(decodeBatch(body))),
            Effect.flatMap((body) => submitBatch(store, catalog, body)),
            Effect.map((inserted) =>
              created({
                items: inserted.map((one) => ({ id: one.task.id, created: one.created, task: encodeTask(one.task) }))
              })
            )
          ))
        .handle("list", ({ urlParams }) =>
          client.list(listParams(urlParams)).pipe(
            Effect.mapError((error) => error._tag === "InvalidParams" ? locateParams(error, "query") : error),
            Effect.map((page) =>
              page.nextCursor === undefined ? { items: page.items } : { items: page.items, nextCursor: page.nextCursor }
            )
          ))
        .handle("get", ({ path }) => getOrNotFound(store, path.id))
        .handle("result", ({ path, urlParams }) => {
          const waitMs = urlParams.waitMs ?? DEFAULT_WAIT_MS
          const current = getOrNotFound(store, path.id)
          if (waitMs === 0) return Effect.map(current, resultOf)
          return client.awaitRecord(path.id, {
            timeout: Duration.millis(waitMs),
            // Events of other processes do not reach an SQLite store's subscribers: re-read often.
            recheckInterval: RESULT_RECHECK
          }).pipe(
            Effect.catchTag("AwaitTimeout", () => current),
            Effect.map(resultOf)
          )
        })
        .handle("logs", ({ path }) =>
          Effect.gen(function*() {
            const lines = yield* store.taskLogs({ id: path.id })
            if (lines.length === 0) yield* getOrNotFound(store, path.id)
            return { items: lines }
          }))
        .handle("cancel", ({ path }) => client.cancel(path.id))
        .handleRaw("retry", ({ path, request }) =>
          readJson(request, limit, true).pipe(
            Effect.flatMap((body) => decodeOrFail(decodeRetry(body ?? {}))),
            Effect.flatMap((body) => {
              if (body.runAt !== undefined && body.delayMs !== undefined) {
                return Effect.fail(
                  new TaskClient.InvalidParams({ parameter: "body.runAt", message: "give runAt or delayMs, not both" })
                )
              }
              return client.retry(path.id, {
                runAt: body.runAt,
                delay: body.delayMs === undefined ? undefined : Duration.millis(body.delayMs),
                extraAttempts: body.extraAttempts
              }).pipe(
                Effect.mapError((error) => error._tag === "InvalidParams" ? locateParams(error, "body") : error)
              )
            }),
            Effect.map((record) => HttpServerResponse.unsafeJson(encodeTask(record)))
          ))
        .handle("definitions", () => Effect.succeed(definitions))
    }))

// -----------------------------------------------------------------------------
// Queues
// -----------------------------------------------------------------------------

const queueViews = (
  counts: TaskStore.TaskStore.Counts,
  queues: ReadonlyArray<TaskStore.TaskStore.QueueInfo>
): Array<QueueView> => {
  const byName = new Map<string, QueueView>()
  for (const queue of counts.byQueue) byName.set(queue.queue, queue)
  for (const queue of queues) {
    const known = byName.get(queue.queue)
    byName.set(queue.queue, {
      queue: queue.queue,
      paused: queue.paused,
      counts: known?.counts ?? TaskStatus.emptyCounts()
    })
  }
  return Array.from(byName.values()).sort((a, b) => a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0)
}

/** @internal */
export const queuesLayer = HttpApiBuilder.group(SpindleApi, "queues", (handlers) =>
  Effect.gen(function*() {
    const client = yield* TaskClient.TaskClient
    const store = yield* TaskStore.TaskStore
    const list = Effect.map(
      Effect.zip(store.tasksCount(), store.queuesList(), { concurrent: true }),
      ([counts, queues]) => queueViews(counts, queues)
    )
    const one = (name: string) =>
      Effect.map(list, (views): QueueView =>
        views.find((view) => view.queue === name) ??
          { queue: name, paused: false, counts: TaskStatus.emptyCounts() })
    return handlers
      .handle("stats", ({ urlParams }) =>
        client.stats({ minutes: urlParams.minutes }).pipe(
          Effect.mapError((error) => error._tag === "InvalidParams" ? locateParams(error, "query") : error)
        ))
      .handle("list", () => list)
      .handle("pause", ({ path }) => Effect.zipRight(store.queuePause({ queue: path.name }), one(path.name)))
      .handle("resume", ({ path }) => Effect.zipRight(store.queueResume({ queue: path.name }), one(path.name)))
  }))

// -----------------------------------------------------------------------------
// System
// -----------------------------------------------------------------------------

const READY_TIMEOUT = Duration.seconds(5)

/** The task metrics, registered so that `/metrics` lists them before their first sample. */
const taskMetrics = [
  TaskMetrics.completedTotal,
  TaskMetrics.durationSeconds,
  TaskMetrics.queueWaitSeconds,
  TaskMetrics.activeHandlers,
  TaskMetrics.activeWorkers,
  TaskMetrics.claimedTotal,
  TaskMetrics.rescuedTotal,
  TaskMetrics.releasedTotal,
  TaskMetrics.submittedTotal,
  TaskMetrics.queueDepth
] as const

/** Sets `spindle_tasks_queue_depth{queue,status}` from the store's counts (on each scrape). */
const refreshQueueDepth = (store: TaskStore.TaskStore["Type"]) =>
  Effect.flatMap(
    store.tasksCount(),
    (counts) =>
      Effect.forEach(counts.byQueue, ({ counts, queue }) =>
        Effect.forEach(TaskStatus.all, (status) =>
          Metric.set(
            TaskMetrics.queueDepth.pipe(Metric.tagged("queue", queue), Metric.tagged("status", status)),
            counts[status]
          ), { discard: true }), { discard: true })
  )

/** @internal */
export const systemLayer = (config: Config) =>
  HttpApiBuilder.group(SpindleApi, "system", (handlers) =>
    Effect.gen(function*() {
      const store = yield* TaskStore.TaskStore
      yield* Effect.forEach(taskMetrics, (metric) => Metric.value(metric as Metric.Metric<any, any, any>), {
        discard: true
      })
      const ready = store.queuesList().pipe(
        Effect.timeoutFail({
          duration: READY_TIMEOUT,
          onTimeout: () =>
            new TaskStore.TaskStoreError({ operation: "queuesList", message: "the store did not answer within 5s" })
        }),
        Effect.matchCauseEffect({
          onFailure: (cause) => {
            const failure = Cause.squash(cause)
            const message = failure instanceof Error ? failure.message : String(failure)
            return Effect.fail(
              new NotReady({
                ready: false,
                store: config.storeName,
                checks: [{ name: "store", ok: false, message }]
              })
            )
          },
          onSuccess: () =>
            Effect.succeed({ ready: true, store: config.storeName, checks: [{ name: "store", ok: true }] })
        })
      )
      return handlers
        .handle("health", () => Effect.succeed({ status: "ok" as const }))
        .handle("ready", () => ready)
        .handle("metrics", () =>
          refreshQueueDepth(store).pipe(
            // The process's own metrics are still worth answering when the store is not.
            Effect.catchAll((error) => Effect.logWarning("queue depth not refreshed", error)),
            Effect.zipRight(Prometheus.render())
          ))
    }))

/** @internal */
export const handlersLayer = (config: Config) => Layer.mergeAll(tasksLayer(config), queuesLayer, systemLayer(config))
