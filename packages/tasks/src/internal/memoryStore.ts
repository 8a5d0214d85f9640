import type { Scope } from "effect"
import { Clock, Deferred, Effect, Either, Exit, Option } from "effect"
import type { TaskEvent, TaskEventType } from "../TaskEvent.js"
import type { NewTask, TaskError, TaskLogLine, TaskRecord } from "../TaskRecord.js"
import { makeId } from "../TaskRecord.js"
import type { TaskStatus } from "../TaskStatus.js"
import * as Status from "../TaskStatus.js"
import type { TaskStore } from "../TaskStore.js"
import { claimedRecord, makeCounter, makeEventHub, makeHandoffs } from "../TaskStore.js"
import {
  compareClaimOrder,
  failEventType,
  failStatus,
  LeaseLost,
  sortValue,
  TaskNotFound,
  TaskStoreError
} from "../TaskStore.js"

type Service = TaskStore["Type"]

const MINUTE = 60_000
const HOUR = 3_600_000

/** Deep copy through JSON, so that stored values behave as in a database (and callers cannot mutate them). */
const jsonCopy = (value: unknown): unknown => {
  if (value === undefined) return null
  const text = JSON.stringify(value)
  return text === undefined ? null : JSON.parse(text)
}

const isFailure = (status: TaskStatus): boolean => status === "failed" || status === "dead" || status === "timed-out"

const uniqueKey = (name: string, key: string): string => `${name}\u0000${key}`

/**
 * A listing cursor: the sort key and order it belongs to, and the sort value and id of the last
 * task of the page, as base64url JSON.
 *
 * @internal
 */
export const encodeCursor = (key: TaskStore.SortKey, order: "asc" | "desc", value: number, id: string): string =>
  Buffer.from(JSON.stringify([key, order, value, id]), "utf8").toString("base64url")

/** @internal */
export const decodeCursor = (
  cursor: string,
  key: TaskStore.SortKey,
  order: "asc" | "desc"
): readonly [number, string] | undefined => {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
    if (
      Array.isArray(parsed) && parsed.length === 4 && parsed[0] === key && parsed[1] === order &&
      typeof parsed[2] === "number" && typeof parsed[3] === "string"
    ) {
      return [parsed[2], parsed[3]]
    }
    return undefined
  } catch {
    return undefined
  }
}

const compareKeyId = (av: number, aid: string, bv: number, bid: string): number =>
  av !== bv ? av - bv : aid < bid ? -1 : aid > bid ? 1 : 0

/** p95 by the nearest-rank method (as Postgres' `percentile_disc(0.95)`). */
const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!

/** @internal */
export const make: Effect.Effect<Service, never, Scope.Scope> = Effect.gen(function*() {
  const hub = yield* makeEventHub
  // One permit: every method runs its change and publishes its events before the next starts,
  // so events come out in sequence order.
  const lock = yield* Effect.makeSemaphore(1)
  const fiberId = yield* Effect.fiberId

  const tasks = new Map<string, TaskRecord>()
  /** Ids of `pending` and `scheduled` tasks. */
  const claimable = new Set<string>()
  /** Ids of `running` tasks. */
  const running = new Set<string>()
  /** (name, idempotencyKey) of unfinished tasks → id. */
  const unique = new Map<string, string>()
  const logs = new Map<string, Array<TaskLogLine>>()
  const paused = new Set<string>()
  let sequence = 0
  let wakeUp = Deferred.unsafeMake<void>(fiberId)

  const signal = () => {
    const current = wakeUp
    wakeUp = Deferred.unsafeMake<void>(fiberId)
    Deferred.unsafeDone(current, Exit.void)
  }

  /** Stores a record, keeping the indexes in step with its status. */
  const put = (task: TaskRecord) => {
    const previous = tasks.get(task.id)
    tasks.set(task.id, task)
    if (previous !== undefined && previous.status !== task.status) {
      if (Status.claimable.includes(previous.status)) claimable.delete(task.id)
      if (previous.status === "running") running.delete(task.id)
    }
    if (Status.claimable.includes(task.status)) claimable.add(task.id)
    if (task.status === "running") running.add(task.id)
    if (task.idempotencyKey !== null) {
      const key = uniqueKey(task.name, task.idempotencyKey)
      if (Status.isFinished(task.status)) {
        if (unique.get(key) === task.id) unique.delete(key)
      } else {
        unique.set(key, task.id)
      }
    }
  }

  const remove = (task: TaskRecord) => {
    tasks.delete(task.id)
    claimable.delete(task.id)
    running.delete(task.id)
    logs.delete(task.id)
    if (task.idempotencyKey !== null) {
      const key = uniqueKey(task.name, task.idempotencyKey)
      if (unique.get(key) === task.id) unique.delete(key)
    }
  }

  const event = (
    type: TaskEventType,
    task: TaskRecord,
    extra?: Pick<TaskEvent, "progress" | "message" | "error" | "result">
  ): TaskEvent => ({
    sequence: ++sequence,
    type,
    taskId: task.id,
    name: task.name,
    queue: task.queue,
    status: task.status,
    attempt: task.attempt,
    at: task.updatedAt,
    ...extra
  })

  /**
   * Runs `body` under the lock with the current time; publishes the events it returns. The
   * body is synchronous, so each method is atomic.
   */
  const atomically = <A, E>(
    body: (now: number, events: Array<TaskEvent>) => Either.Either<A, E>
  ): Effect.Effect<A, E> =>
    lock.withPermits(1)(
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const events: Array<TaskEvent> = []
        const result = body(now, events)
        return events.length === 0 ? result : Effect.zipRight(hub.publish(events), result)
      })
    )

  /** The running task `id` held by `workerId`, or LeaseLost. */
  const held = (id: string, workerId: string): Either.Either<TaskRecord, LeaseLost> => {
    const task = tasks.get(id)
    return task !== undefined && task.status === "running" && task.leaseOwner === workerId
      ? Either.right(task)
      : Either.left(new LeaseLost({ taskId: id, workerId }))
  }

  /** Leaves `running` for `to` (checked against the state machine). */
  const leaveRunning = (
    task: TaskRecord,
    to: TaskStatus,
    now: number,
    fields: Partial<TaskRecord>
  ): Either.Either<TaskRecord, Status.IllegalTransition> =>
    Either.map(Status.transition(task.id, task.status, to), (status) => ({
      ...task,
      status,
      leaseOwner: null,
      leaseExpiresAt: null,
      cancelRequested: false,
      updatedAt: new Date(now),
      finishedAt: Status.isFinished(status) ? new Date(now) : null,
      ...fields
    }))

  /** The handoffs of the `awaitWork` calls waiting. */
  const handoffs = makeHandoffs()

  const tasksInsert: Service["tasksInsert"] = ({ tasks: inputs }) => {
    // set by the insert when a waiting worker takes the lone new task (`awaitWork`)
    let handedOff: { readonly handoff: TaskStore.Handoff; task: TaskRecord | undefined } | undefined
    return atomically((now, events) => {
      const results: Array<TaskStore.Inserted> = []
      const fresh: Array<TaskRecord> = []
      const ids = new Set<string>()
      const keys = new Map<string, TaskRecord>()
      for (const input of inputs) {
        const key = input.idempotencyKey ?? null
        if (key !== null) {
          const k = uniqueKey(input.name, key)
          const existing = keys.get(k) ?? (unique.has(k) ? tasks.get(unique.get(k)!) : undefined)
          if (existing !== undefined) {
            results.push({ task: existing, created: false })
            continue
          }
        }
        const id = input.id ?? makeId(now)
        if (tasks.has(id) || ids.has(id)) {
          return Either.left(
            new TaskStoreError({ operation: "tasksInsert", message: `a task with id ${id} already exists` })
          )
        }
        ids.add(id)
        const task = newRecord(input, id, now)
        if (key !== null) keys.set(uniqueKey(input.name, key), task)
        fresh.push(task)
        results.push({ task, created: true })
      }
      const handoff = fresh.length === 1 && !paused.has(fresh[0]!.queue)
        ? handoffs.take(inputs, now)
        : undefined
      if (handoff !== undefined) {
        const task = claimedRecord(fresh[0]!, handoff, now)
        put(task)
        events.push(event("submitted", fresh[0]!), event("started", task))
        handedOff = { handoff, task }
        return Either.right([{ task, created: true }])
      }
      for (const task of fresh) {
        put(task)
        events.push(event("submitted", task))
      }
      if (fresh.length > 0) signal()
      return Either.right(results)
    }).pipe(
      Effect.ensuring(Effect.sync(() => handedOff?.handoff.receive(handedOff.task)))
    )
  }

  const tasksClaim: Service["tasksClaim"] = ({ leaseMs, limit, names, queues, workerId }) =>
    atomically((now, events) => {
      if (limit <= 0) return Either.right([])
      // the first `limit` claimable tasks in claim order, kept sorted while scanning
      const chosen: Array<TaskRecord> = []
      for (const id of claimable) {
        const task = tasks.get(id)!
        if (
          task.runAt.getTime() > now || paused.has(task.queue) ||
          (queues !== undefined && !queues.includes(task.queue)) ||
          (names !== undefined && !names.includes(task.name))
        ) continue
        if (chosen.length >= limit && compareClaimOrder(task, chosen[chosen.length - 1]!) >= 0) continue
        let lo = 0
        let hi = chosen.length
        while (lo < hi) {
          const mid = (lo + hi) >>> 1
          if (compareClaimOrder(chosen[mid]!, task) < 0) lo = mid + 1
          else hi = mid
        }
        chosen.splice(lo, 0, task)
        if (chosen.length > limit) chosen.pop()
      }
      const taken: Array<TaskRecord> = []
      for (const task of chosen) {
        const next = claimedRecord(task, { workerId, leaseMs }, now)
        put(next)
        taken.push(next)
        // built only when someone listens (synchronous under the lock: a subscriber arriving
        // later reads the change itself)
        if (hub.wants("started")) events.push(event("started", next))
      }
      return Either.right(taken)
    })

  const tasksHeartbeat: Service["tasksHeartbeat"] = ({ ids, leaseMs, workerId }) =>
    atomically((now) => {
      const renewed: Array<string> = []
      const lost: Array<string> = []
      const cancelRequested: Array<string> = []
      for (const id of ids) {
        const task = tasks.get(id)
        if (task === undefined || task.status !== "running" || task.leaseOwner !== workerId) {
          lost.push(id)
          continue
        }
        put({ ...task, leaseExpiresAt: new Date(now + leaseMs) })
        renewed.push(id)
        if (task.cancelRequested) cancelRequested.push(id)
      }
      return Either.right({ renewed, lost, cancelRequested })
    })

  const taskComplete: Service["taskComplete"] = ({ id, result, workerId }) =>
    atomically((now, events) =>
      Either.flatMap(
        held(id, workerId),
        (task) =>
          Either.map(leaveRunning(task, "succeeded", now, { result: jsonCopy(result) }), (next) => {
            put(next)
            events.push(event("succeeded", next, { result: next.result }))
            return next
          })
      )
    ).pipe(Effect.catchTag("IllegalTransition", Effect.die))

  const taskFail: Service["taskFail"] = ({ error, id, outcome, workerId }) =>
    atomically((now, events) =>
      Either.flatMap(held(id, workerId), (task) => {
        const to: TaskStatus = failStatus(outcome)
        const stored = jsonCopy(error) as TaskError
        const fields: Partial<TaskRecord> = outcome._tag === "retry"
          ? { error: stored, runAt: new Date(outcome.runAt.getTime()) }
          : { error: stored }
        return Either.map(leaveRunning(task, to, now, fields), (next) => {
          put(next)
          events.push(event(failEventType(outcome), next, { error: stored }))
          if (outcome._tag === "retry") signal()
          return next
        })
      })
    ).pipe(Effect.catchTag("IllegalTransition", Effect.die))

  /** Settles each item with `apply` (which sees a task running under the item's lease). */
  const settleMany = <I extends { readonly id: string; readonly workerId: string }>(
    items: ReadonlyArray<I>,
    apply: (task: TaskRecord, item: I, now: number, events: Array<TaskEvent>) => void
  ) =>
    atomically<ReadonlyArray<TaskStore.BatchOutcome>, never>((now, events) => {
      const outcomes: Array<TaskStore.BatchOutcome> = []
      // Only the first item of an id applies (as the SQL stores, which update a row once).
      const seen = new Set<string>()
      for (const item of items) {
        const task = tasks.get(item.id)
        const first = !seen.has(item.id)
        seen.add(item.id)
        if (!first || task === undefined || task.status !== "running" || task.leaseOwner !== item.workerId) {
          outcomes.push("lease-lost")
          continue
        }
        apply(task, item, now, events)
        outcomes.push("settled")
      }
      return Either.right(outcomes)
    })

  const tasksComplete: Service["tasksComplete"] = ({ items }) =>
    settleMany(items, (task, item, now, events) => {
      const next = Either.getOrThrow(leaveRunning(task, "succeeded", now, { result: jsonCopy(item.result) }))
      put(next)
      if (hub.wants("succeeded")) events.push(event("succeeded", next, { result: next.result }))
    })

  const tasksFail: Service["tasksFail"] = ({ items }) =>
    settleMany(items, (task, { error, outcome }, now, events) => {
      const to: TaskStatus = failStatus(outcome)
      const stored = jsonCopy(error) as TaskError
      const fields: Partial<TaskRecord> = outcome._tag === "retry"
        ? { error: stored, runAt: new Date(outcome.runAt.getTime()) }
        : { error: stored }
      const next = Either.getOrThrow(leaveRunning(task, to, now, fields))
      put(next)
      events.push(event(failEventType(outcome), next, { error: stored }))
      if (outcome._tag === "retry") signal()
    })

  const tasksRelease: Service["tasksRelease"] = ({ ids, workerId }) =>
    atomically((now, events) => {
      let released = 0
      for (const id of ids) {
        const task = tasks.get(id)
        if (task === undefined || task.status !== "running" || task.leaseOwner !== workerId) continue
        // A task whose cancellation was requested is cancelled rather than run again.
        const next = Either.getOrThrow(
          task.cancelRequested
            ? leaveRunning(task, "cancelled", now, {})
            : leaveRunning(task, "pending", now, { attempt: Math.max(0, task.attempt - 1) })
        )
        put(next)
        events.push(event(next.status === "cancelled" ? "cancelled" : "released", next))
        released++
      }
      if (released > 0) signal()
      return Either.right(released)
    })

  const tasksRescue: Service["tasksRescue"] = (params) =>
    atomically((now, events) => {
      const expired: Array<TaskRecord> = []
      for (const id of running) {
        const task = tasks.get(id)!
        if (task.leaseExpiresAt !== null && task.leaseExpiresAt.getTime() < now) expired.push(task)
      }
      expired.sort((a, b) => a.leaseExpiresAt!.getTime() - b.leaseExpiresAt!.getTime())
      const limit = params.limit ?? expired.length
      const rescued: Array<TaskRecord> = []
      let wake = false
      for (const task of expired.slice(0, Math.max(0, limit))) {
        const error: TaskError = {
          tag: "LeaseExpired",
          message: `the lease of worker ${task.leaseOwner} expired`,
          cause: ""
        }
        const to: TaskStatus = task.cancelRequested
          ? "cancelled"
          : task.attempt >= task.maxAttempts
          ? "dead"
          : "pending"
        const next = Either.getOrThrow(leaveRunning(task, to, now, { error }))
        put(next)
        events.push(event(to === "pending" ? "rescued" : to, next, { error }))
        if (to === "pending") wake = true
        rescued.push(next)
      }
      if (wake) signal()
      return Either.right(rescued)
    })

  const taskCancel: Service["taskCancel"] = ({ id }) =>
    atomically<TaskRecord, TaskNotFound | Status.IllegalTransition>((now, events) => {
      const task = tasks.get(id)
      if (task === undefined) return Either.left(new TaskNotFound({ taskId: id }))
      if (task.status === "running") {
        if (task.cancelRequested) return Either.right(task)
        const next: TaskRecord = { ...task, cancelRequested: true, updatedAt: new Date(now) }
        put(next)
        events.push(event("cancel-requested", next))
        return Either.right(next)
      }
      return Either.map(Status.transition(task.id, task.status, "cancelled"), (status) => {
        const next: TaskRecord = { ...task, status, updatedAt: new Date(now), finishedAt: new Date(now) }
        put(next)
        events.push(event("cancelled", next))
        return next
      })
    })

  const taskRetry: Service["taskRetry"] = ({ extraAttempts, id, runAt }) =>
    atomically<TaskRecord, TaskNotFound | Status.IllegalTransition | TaskStoreError>((now, events) => {
      const task = tasks.get(id)
      if (task === undefined) return Either.left(new TaskNotFound({ taskId: id }))
      const at = runAt?.getTime() ?? now
      const to: TaskStatus = at > now ? "scheduled" : "pending"
      if (!Status.retryable.includes(task.status)) {
        return Either.left(new Status.IllegalTransition({ taskId: id, from: task.status, to }))
      }
      if (task.idempotencyKey !== null) {
        const other = unique.get(uniqueKey(task.name, task.idempotencyKey))
        if (other !== undefined && other !== task.id) {
          return Either.left(
            new TaskStoreError({
              operation: "taskRetry",
              message: `unfinished task ${other} has the same name and idempotency key`
            })
          )
        }
      }
      return Either.map(Status.transition(task.id, task.status, "pending"), () => {
        const next: TaskRecord = {
          ...task,
          status: to,
          runAt: new Date(at),
          maxAttempts: Math.max(task.maxAttempts, task.attempt + (extraAttempts ?? 1)),
          result: null,
          finishedAt: null,
          leaseOwner: null,
          leaseExpiresAt: null,
          cancelRequested: false,
          updatedAt: new Date(now)
        }
        put(next)
        events.push(event("retried", next))
        signal()
        return next
      })
    })

  const taskProgress: Service["taskProgress"] = ({ id, message, progress, workerId }) =>
    atomically((now, events) =>
      Either.map(held(id, workerId), (task) => {
        const next: TaskRecord = {
          ...task,
          progress,
          progressMessage: message ?? null,
          updatedAt: new Date(now)
        }
        put(next)
        events.push(event("progress", next, message === undefined ? { progress } : { progress, message }))
      })
    )

  const taskLogAppend: Service["taskLogAppend"] = ({ lines }) =>
    Effect.sync(() => {
      for (const line of lines) {
        const list = logs.get(line.taskId)
        if (list === undefined) logs.set(line.taskId, [line])
        else list.push(line)
      }
    })

  const taskLogs: Service["taskLogs"] = ({ id }) => Effect.sync(() => [...(logs.get(id) ?? [])])

  const taskGet: Service["taskGet"] = ({ id }) => Effect.sync(() => Option.fromNullable(tasks.get(id)))

  const matches = (task: TaskRecord, filter: TaskStore.Filter | undefined): boolean =>
    filter === undefined || (
      (filter.status === undefined || filter.status.includes(task.status)) &&
      (filter.name === undefined || filter.name.includes(task.name)) &&
      (filter.queue === undefined || filter.queue.includes(task.queue)) &&
      (filter.tag === undefined ||
        (typeof filter.tag === "string"
          ? task.tags.includes(filter.tag)
          : filter.tag.every((tag) => task.tags.includes(tag)))) &&
      (filter.parentId === undefined || task.parentId === filter.parentId)
    )

  const tasksList: Service["tasksList"] = (params) =>
    Effect.suspend(() => {
      const key = params.sortBy ?? "createdAt"
      const order = params.order ?? "desc"
      const direction = order === "asc" ? 1 : -1
      const requested = params.limit ?? 50
      const limit = Number.isFinite(requested) ? Math.min(1000, Math.max(1, Math.floor(requested))) : 50
      let after: readonly [number, string] | undefined
      if (params.cursor !== undefined) {
        after = decodeCursor(params.cursor, key, order)
        if (after === undefined) {
          return Effect.fail(
            new TaskStoreError({ operation: "tasksList", message: "invalid cursor (or one of another sort or order)" })
          )
        }
      }
      const rows: Array<{ readonly value: number; readonly task: TaskRecord }> = []
      for (const task of tasks.values()) {
        if (!matches(task, params.filter)) continue
        const value = sortValue(task, key)
        if (after !== undefined && direction * compareKeyId(value, task.id, after[0], after[1]) <= 0) continue
        rows.push({ value, task })
      }
      rows.sort((a, b) => direction * compareKeyId(a.value, a.task.id, b.value, b.task.id))
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return Effect.succeed({
        items: page.map((row) => row.task),
        nextCursor: rows.length > limit && last !== undefined
          ? encodeCursor(key, order, last.value, last.task.id)
          : undefined
      })
    })

  const tasksCount: Service["tasksCount"] = () =>
    Effect.sync(() => {
      const counter = makeCounter(paused)
      for (const task of tasks.values()) counter.add(task.name, task.queue, task.status, 1)
      return counter.counts()
    })

  const tasksStats: Service["tasksStats"] = (params) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const minutes = Math.max(1, Math.floor(params.minutes ?? 60))
      const currentMinute = Math.floor(now / MINUTE) * MINUTE
      const windowStart = currentMinute - (minutes - 1) * MINUTE
      const currentHour = Math.floor(now / HOUR) * HOUR
      const hoursStart = currentHour - 23 * HOUR
      const counter = makeCounter(paused)
      const throughput = Array.from({ length: minutes }, (_, i) => ({
        minute: new Date(windowStart + i * MINUTE),
        succeeded: 0,
        failed: 0
      }))
      const hourly = Array.from({ length: 24 }, (_, i) => ({
        hour: new Date(hoursStart + i * HOUR),
        succeeded: 0,
        failed: 0
      }))
      const durations: Array<number> = []
      let succeeded = 0
      let failed = 0
      for (const task of tasks.values()) {
        counter.add(task.name, task.queue, task.status, 1)
        const ok = task.status === "succeeded"
        if (task.finishedAt === null || !(ok || isFailure(task.status))) continue
        const finished = task.finishedAt.getTime()
        if (finished >= windowStart) {
          const bucket = throughput[Math.min(minutes - 1, Math.floor((finished - windowStart) / MINUTE))]!
          if (ok) {
            bucket.succeeded++
            succeeded++
          } else {
            bucket.failed++
            failed++
          }
          if (task.startedAt !== null) durations.push(finished - task.startedAt.getTime())
        }
        if (finished >= hoursStart) {
          const bucket = hourly[Math.min(23, Math.floor((finished - hoursStart) / HOUR))]!
          if (ok) bucket.succeeded++
          else bucket.failed++
        }
      }
      durations.sort((a, b) => a - b)
      const stats: TaskStore.Stats = {
        ...counter.counts(),
        throughput,
        successRate: succeeded + failed === 0 ? 1 : succeeded / (succeeded + failed),
        meanDurationMs: durations.length === 0 ? 0 : durations.reduce((sum, d) => sum + d, 0) / durations.length,
        p95DurationMs: percentile(durations, 0.95),
        hourly
      }
      return stats
    })

  const tasksDelete: Service["tasksDelete"] = ({ finishedBefore, statuses }) =>
    lock.withPermits(1)(Effect.sync(() => {
      const before = finishedBefore.getTime()
      let deleted = 0
      for (const task of [...tasks.values()]) {
        if (
          Status.isFinished(task.status) && task.finishedAt !== null && task.finishedAt.getTime() < before &&
          (statuses === undefined || statuses.includes(task.status))
        ) {
          remove(task)
          deleted++
        }
      }
      return deleted
    }))

  const queuePause: Service["queuePause"] = ({ queue }) =>
    lock.withPermits(1)(Effect.sync(() => {
      paused.add(queue)
    }))

  const queueResume: Service["queueResume"] = ({ queue }) =>
    lock.withPermits(1)(Effect.sync(() => {
      if (paused.delete(queue)) signal()
    }))

  const queuesList: Service["queuesList"] = () =>
    Effect.sync(() => {
      const queues = new Set(paused)
      for (const task of tasks.values()) queues.add(task.queue)
      return [...queues].sort().map((queue) => ({ queue, paused: paused.has(queue) }))
    })

  const awaitWork: Service["awaitWork"] = ({ handoff, timeoutMs }) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      // Wake up when the next scheduled task falls due, if that comes before the timeout.
      let wait = Math.max(0, timeoutMs)
      for (const id of claimable) {
        const due = tasks.get(id)!.runAt.getTime() - now
        if (due > 0 && due < wait) wait = due
      }
      return handoffs.offer(handoff, Deferred.await(wakeUp).pipe(Effect.timeoutOption(wait), Effect.asVoid))
    })

  const service: Service = {
    tasksInsert,
    tasksClaim,
    tasksHeartbeat,
    taskComplete,
    tasksComplete,
    taskFail,
    tasksFail,
    tasksRelease,
    tasksRescue,
    taskCancel,
    taskRetry,
    taskProgress,
    taskLogAppend,
    taskLogs,
    taskGet,
    tasksList,
    tasksCount,
    tasksStats,
    tasksDelete,
    queuePause,
    queueResume,
    queuesList,
    events: hub.events,
    eventsOf: hub.eventsOf,
    awaitWork
  }
  return service
})

const newRecord = (input: NewTask, id: string, now: number): TaskRecord => {
  const runAt = input.runAt?.getTime() ?? now
  return {
    id,
    name: input.name,
    queue: input.queue ?? "default",
    status: runAt > now ? "scheduled" : "pending",
    priority: input.priority ?? "normal",
    payload: jsonCopy(input.payload),
    result: null,
    error: null,
    attempt: 0,
    maxAttempts: input.maxAttempts ?? 1,
    retry: input.retry ?? null,
    timeoutMs: input.timeoutMs ?? null,
    softTimeoutMs: input.softTimeoutMs ?? null,
    runAt: new Date(runAt),
    createdAt: new Date(now),
    updatedAt: new Date(now),
    startedAt: null,
    finishedAt: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    cancelRequested: false,
    progress: 0,
    progressMessage: null,
    idempotencyKey: input.idempotencyKey ?? null,
    parentId: input.parentId ?? null,
    tags: [...(input.tags ?? [])]
  }
}
