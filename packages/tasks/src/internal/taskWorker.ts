import { Deadline, KeyedLimiter, Limiter, RateLimiter, RetryPolicy } from "@spindle/core"
import type { Exit } from "effect"
import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  ExecutionStrategy,
  Fiber,
  Metric,
  Option,
  Queue,
  Random,
  Schedule,
  Scope,
  Stream
} from "effect"
import * as os from "node:os"
import type { TaskContext } from "../TaskContext.js"
import { TaskHandlers } from "../TaskHandlers.js"
import type { HandlerError } from "../TaskHandlers.js"
import * as Metrics from "../TaskMetrics.js"
import type { TaskError, TaskRecord } from "../TaskRecord.js"
import type { LeaseLost, TaskStoreError } from "../TaskStore.js"
import { TaskStore } from "../TaskStore.js"
import type * as TaskWorker from "../TaskWorker.js"
import { runSchedules } from "./cron.js"
import { makeReporter } from "./taskContext.js"

// -----------------------------------------------------------------------------
// Configuration
// -----------------------------------------------------------------------------

interface Group {
  readonly queues: ReadonlyArray<string> | undefined
  readonly limit: number
  active: number
}

interface Config {
  readonly workerId: string
  readonly concurrency: number
  readonly groups: ReadonlyArray<Group>
  readonly leaseMs: number
  readonly heartbeatMs: number
  readonly pollMs: number
  readonly rescueMs: number
  readonly graceMs: number
  readonly batchSize: number
  readonly progressMs: number
}

const millis = (input: Duration.DurationInput | undefined, fallback: number, field: string): number => {
  if (input === undefined) return fallback
  const ms = Duration.toMillis(Duration.decode(input))
  if (!Number.isFinite(ms) || ms < 0) {
    throw new Cause.IllegalArgumentException(`TaskWorker: ${field} must be a finite, non-negative duration`)
  }
  return ms
}

const positiveInt = (value: number | undefined, fallback: number, field: string): number => {
  const n = value ?? fallback
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Cause.IllegalArgumentException(`TaskWorker: ${field} must be an integer >= 1`)
  }
  return n
}

/** @internal */
export const defaultWorkerId = (): string =>
  `${os.hostname()}-${process.pid}-${Math.floor(Math.random() * 36 ** 6).toString(36).padStart(6, "0")}`

const resolve = (options: TaskWorker.TaskWorker.Options): Config => {
  const concurrency = positiveInt(options.concurrency, 10, "concurrency")
  const leaseMs = millis(options.lease, 30_000, "lease")
  if (leaseMs <= 0) throw new Cause.IllegalArgumentException("TaskWorker: lease must be positive")
  const heartbeatMs = millis(options.heartbeatInterval, Math.max(1, Math.floor(leaseMs / 3)), "heartbeatInterval")
  if (heartbeatMs <= 0 || heartbeatMs >= leaseMs) {
    throw new Cause.IllegalArgumentException(
      "TaskWorker: heartbeatInterval must be positive and shorter than the lease"
    )
  }
  const queues = options.queues
  let groups: Array<Group>
  if (queues === undefined) groups = [{ queues: undefined, limit: concurrency, active: 0 }]
  else if (Array.isArray(queues)) {
    groups = [{ queues: queues as ReadonlyArray<string>, limit: concurrency, active: 0 }]
  } else {
    const record = queues as { readonly [queue: string]: TaskWorker.TaskWorker.QueueOptions }
    groups = Object.keys(record).map((queue) => ({
      queues: [queue],
      limit: positiveInt(record[queue]!.concurrency, concurrency, `queues.${queue}.concurrency`),
      active: 0
    }))
  }
  return {
    workerId: options.workerId ?? defaultWorkerId(),
    concurrency,
    groups,
    leaseMs,
    heartbeatMs,
    pollMs: Math.max(1, millis(options.pollInterval, 1_000, "pollInterval")),
    rescueMs: Math.max(1, millis(options.rescueInterval, 5_000, "rescueInterval")),
    graceMs: millis(options.shutdownGrace, 30_000, "shutdownGrace"),
    batchSize: positiveInt(options.claimBatchSize, concurrency, "claimBatchSize"),
    progressMs: Math.max(1, millis(options.progressInterval, 1_000, "progressInterval"))
  }
}

// -----------------------------------------------------------------------------
// Limits
// -----------------------------------------------------------------------------

type Apply = (payload: unknown, effect: Effect.Effect<unknown, unknown>) => Effect.Effect<unknown, unknown>

const makeLimits = (
  name: string,
  limits: TaskWorker.TaskWorker.Limits
): Effect.Effect<Apply, never, Scope.Scope> =>
  Effect.gen(function*() {
    const limiter = limits.concurrency === undefined
      ? undefined
      : yield* Limiter.make({ name: `task:${name}`, limit: positiveInt(limits.concurrency, 1, "concurrency") })
    const keyed = limits.keyConcurrency === undefined ? undefined : {
      key: limits.keyConcurrency.key,
      limiter: yield* KeyedLimiter.make<string>({
        name: `task:${name}`,
        limitPerKey: positiveInt(limits.keyConcurrency.limit, 1, "keyConcurrency.limit")
      })
    }
    const rate = limits.rateLimit === undefined ? undefined : {
      key: limits.rateLimit.key,
      limiter: yield* RateLimiter.make({
        name: `task:${name}`,
        algorithm: "sliding-window",
        limit: positiveInt(limits.rateLimit.limit, 1, "rateLimit.limit"),
        window: limits.rateLimit.interval,
        onExceeded: "delay"
      })
    }
    return (payload, effect) => {
      let run = effect
      if (rate !== undefined) run = Effect.zipRight(rate.limiter.take(rate.key?.(payload)), run)
      if (limiter !== undefined) run = limiter.run(run)
      if (keyed !== undefined) run = keyed.limiter.run(keyed.key(payload), run)
      return run
    }
  })

// -----------------------------------------------------------------------------
// Outcomes
// -----------------------------------------------------------------------------

interface Decision {
  readonly error: TaskError
  readonly outcome: TaskStore.FailOutcome
}

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" ? u._tag : undefined

const messageOf = (u: unknown): string => {
  if (typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && u.message !== "") {
    return u.message
  }
  if (typeof u === "string") return u
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

type AttemptError = HandlerError | Deadline.DeadlineExceeded | { readonly _tag: "ParseError"; readonly message: string }

/** @internal */
export const decide = (
  record: TaskRecord,
  cause: Cause.Cause<AttemptError>,
  now: number,
  random: number
): Decision => {
  const policy = record.retry
  const failure = Cause.failureOption(cause)
  let error: TaskError
  let retryable: boolean
  let timeout = false
  if (Option.isSome(failure)) {
    const e = failure.value
    switch (e._tag) {
      case "ParseError": {
        error = { tag: "ParseError", message: `invalid payload: ${e.message}`, cause: Cause.pretty(cause) }
        retryable = false
        break
      }
      case "DeadlineExceeded": {
        error = { tag: "Timeout", message: e.message, cause: Cause.pretty(cause) }
        retryable = true
        timeout = true
        break
      }
      case "HandlerError": {
        const pretty = Cause.pretty(Cause.map(cause, (x) => x._tag === "HandlerError" ? x.error : x))
        if (e.reason === "result") {
          error = { tag: "ResultInvalid", message: `invalid result: ${messageOf(e.error)}`, cause: pretty }
          retryable = false
        } else {
          error = {
            tag: tagOf(e.error) ?? "Failure",
            message: messageOf(e.error),
            cause: pretty,
            ...(e.encoded === undefined ? {} : { value: e.encoded })
          }
          retryable = policy === null || RetryPolicy.isRetryable(policy, e.error)
        }
        break
      }
    }
  } else {
    const tag = Cause.isInterruptedOnly(cause) ? "Interrupted" : "Defect"
    const defect = Cause.squash(cause)
    error = { tag, message: tag === "Interrupted" ? "interrupted" : messageOf(defect), cause: Cause.pretty(cause) }
    retryable = policy === null || RetryPolicy.isRetryable(policy, { _tag: tag })
  }
  if (!retryable) return { error, outcome: { _tag: "failed" } }
  const exhausted: TaskStore.FailOutcome = timeout ? { _tag: "timed-out" } : { _tag: "dead" }
  if (record.attempt >= record.maxAttempts) return { error, outcome: exhausted }
  const delay = policy === null ? Option.some(Duration.zero) : RetryPolicy.nextDelay(policy, record.attempt, { random })
  if (Option.isNone(delay)) return { error, outcome: exhausted }
  return {
    error,
    outcome: { _tag: "retry", runAt: new Date(now + Math.max(0, Math.round(Duration.toMillis(delay.value)))) }
  }
}

// -----------------------------------------------------------------------------
// Worker
// -----------------------------------------------------------------------------

type Stop = "lost" | "cancel" | "shutdown"

interface Running {
  readonly record: TaskRecord
  readonly group: Group
  handler: Fiber.RuntimeFiber<unknown, AttemptError> | undefined
  stop: Stop | undefined
}

const storeRetry = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(3)))

/** @internal */
export const make = (
  options: TaskWorker.TaskWorker.Options = {}
): Effect.Effect<TaskWorker.TaskWorker, never, Scope.Scope | TaskStore | TaskHandlers> =>
  Effect.gen(function*() {
    const config = resolve(options)
    const { concurrency, groups, workerId } = config
    const store = yield* TaskStore
    const handlers = yield* TaskHandlers
    const scope = yield* Effect.scope
    // Task fibers live in a child scope closed after the shutdown finalizer below has run.
    const tasksScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)

    const names = handlers.names
    const limits = new Map<string, Apply>()
    for (const [name, l] of Object.entries(options.limits ?? {})) {
      limits.set(name, yield* makeLimits(name, l))
    }
    const reporter = makeReporter({ store, workerId, intervalMs: config.progressMs })
    const running = new Map<string, Running>()
    const releasable: Array<string> = []
    const counts = {
      claimed: 0,
      succeeded: 0,
      retried: 0,
      failed: 0,
      dead: 0,
      timedOut: 0,
      cancelled: 0,
      lost: 0,
      released: 0,
      rescued: 0
    }
    let stopping = false
    const stopSignal = yield* Deferred.make<void>()
    const slotSignal = yield* Queue.sliding<void>(1)

    const jitter = (ms: number) => Effect.map(Random.next, (r) => Math.max(1, Math.round(ms * (0.8 + 0.4 * r))))

    const logAnnotations = (record: TaskRecord) => ({
      taskId: record.id,
      taskName: record.name,
      attempt: record.attempt,
      workerId
    })

    // --- settling an attempt -------------------------------------------------

    const write = <A>(
      record: TaskRecord,
      effect: Effect.Effect<A, LeaseLost | TaskStoreError>
    ): Effect.Effect<boolean> =>
      effect.pipe(
        Effect.retry({ schedule: storeRetry, while: (e) => e._tag === "TaskStoreError" }),
        Effect.as(true),
        Effect.catchAll((error) => {
          if (error._tag === "LeaseLost") counts.lost++
          return Effect.as(
            (error._tag === "LeaseLost" ? Effect.logDebug : Effect.logWarning)(
              `spindle: the outcome of an attempt was not recorded: ${error.message}`
            ).pipe(Effect.annotateLogs(logAnnotations(record))),
            false
          )
        })
      )

    // Tagged metrics are built once per task name (and outcome), not once per task.
    const metricsByName = new Map<string, {
      readonly duration: Metric.Metric.Histogram<number>
      readonly wait: Metric.Metric.Histogram<number>
      readonly outcomes: Map<string, Metric.Metric.Counter<number>>
    }>()
    const metricsFor = (name: string) => {
      let metrics = metricsByName.get(name)
      if (metrics === undefined) {
        metrics = {
          duration: Metric.tagged(Metrics.durationSeconds, "name", name),
          wait: Metric.tagged(Metrics.queueWaitSeconds, "name", name),
          outcomes: new Map()
        }
        metricsByName.set(name, metrics)
      }
      return metrics
    }
    const outcomeMetric = (name: string, outcome: string) => {
      const outcomes = metricsFor(name).outcomes
      let counter = outcomes.get(outcome)
      if (counter === undefined) {
        counter = Metric.tagged(Metric.tagged(Metrics.completedTotal, "name", name), "outcome", outcome)
        outcomes.set(outcome, counter)
      }
      return Metric.increment(counter)
    }

    const settle = (entry: Running, exit: Exit.Exit<unknown, AttemptError>): Effect.Effect<void> =>
      Effect.gen(function*() {
        const record = entry.record
        const stop = entry.stop
        if (stop === "lost") {
          counts.lost++
          return yield* Effect.logDebug("spindle: lease lost, the attempt is dropped").pipe(
            Effect.annotateLogs(logAnnotations(record))
          )
        }
        if (exit._tag === "Success") {
          if (yield* write(record, store.taskComplete({ id: record.id, workerId, result: exit.value }))) {
            counts.succeeded++
            yield* outcomeMetric(record.name, "succeeded")
          }
          return
        }
        if (stop === "shutdown") {
          releasable.push(record.id)
          return
        }
        const now = yield* Clock.currentTimeMillis
        if (stop === "cancel") {
          const error: TaskError = {
            tag: "Cancelled",
            message: "cancelled while running",
            cause: Cause.pretty(exit.cause)
          }
          if (
            yield* write(record, store.taskFail({ id: record.id, workerId, error, outcome: { _tag: "cancelled" } }))
          ) {
            counts.cancelled++
            yield* outcomeMetric(record.name, "cancelled")
          }
          return
        }
        const random = yield* Random.next
        const { error, outcome } = decide(record, exit.cause, now, random)
        if (yield* write(record, store.taskFail({ id: record.id, workerId, error, outcome }))) {
          switch (outcome._tag) {
            case "retry":
              counts.retried++
              break
            case "failed":
              counts.failed++
              break
            case "dead":
              counts.dead++
              break
            case "timed-out":
              counts.timedOut++
              break
            case "cancelled":
              counts.cancelled++
              break
          }
          yield* outcomeMetric(record.name, outcome._tag)
        }
      })

    // --- running one attempt -------------------------------------------------

    const body = (
      entry: TaskHandlers.Entry,
      record: TaskRecord,
      ctx: TaskContext.Service
    ): Effect.Effect<unknown, AttemptError> => {
      const apply = limits.get(record.name)
      const hard = record.timeoutMs ?? undefined
      const soft = record.softTimeoutMs ?? undefined
      return entry.decode(record.payload).pipe(
        Effect.flatMap((payload) => {
          let run: Effect.Effect<unknown, AttemptError> = entry.run(payload, ctx)
          if (hard !== undefined || soft !== undefined) {
            run = Deadline.timeout(run, {
              hard,
              soft,
              name: record.name,
              onSoft: (info) =>
                ctx.log(
                  `still running after the soft timeout of ${Duration.format(info.soft)}`,
                  "warn"
                )
            })
          }
          return apply === undefined ? run : (apply(payload, run) as Effect.Effect<unknown, AttemptError>)
        }),
        Effect.withSpan(`spindle.task ${record.name}`, {
          kind: "consumer",
          attributes: {
            "task.id": record.id,
            "task.name": record.name,
            "task.queue": record.queue,
            "task.attempt": record.attempt
          }
        }),
        Effect.annotateLogs(logAnnotations(record))
      )
    }

    const execute = (entry: Running): Effect.Effect<void> =>
      Effect.gen(function*() {
        const record = entry.record
        const registered = handlers.entries.get(record.name)
        const attempt = reporter.attempt(record)
        const start = yield* Clock.currentTimeMillis
        const wait = Math.max(0, (record.startedAt?.getTime() ?? start) - record.runAt.getTime())
        yield* Metric.update(metricsFor(record.name).wait, wait / 1000)
        if (registered === undefined) {
          const error: TaskError = {
            tag: "NoHandler",
            message: `worker ${workerId} has no handler for task "${record.name}"`,
            cause: ""
          }
          yield* write(record, store.taskFail({ id: record.id, workerId, error, outcome: { _tag: "failed" } }))
          return
        }
        yield* Metric.increment(Metrics.activeHandlers)
        const fiber = yield* Effect.fork(body(registered, record, attempt.context))
        entry.handler = fiber
        if (entry.stop !== undefined) yield* Fiber.interruptFork(fiber)
        const exit = yield* Fiber.await(fiber)
        entry.handler = undefined
        const end = yield* Clock.currentTimeMillis
        yield* Metric.incrementBy(Metrics.activeHandlers, -1)
        yield* Metric.update(metricsFor(record.name).duration, (end - start) / 1000)
        yield* attempt.flush
        yield* settle(entry, exit)
      })

    const start = (record: TaskRecord, group: Group): Effect.Effect<void> => {
      const entry: Running = { record, group, handler: undefined, stop: undefined }
      // Claimed again while an old attempt still runs here (its lease lapsed): stop the old one.
      const previous = running.get(record.id)
      if (previous !== undefined) {
        previous.stop = "lost"
        if (previous.handler !== undefined) previous.handler.unsafeInterruptAsFork(previous.handler.id())
      }
      running.set(record.id, entry)
      group.active++
      // Claims run uninterruptibly: the task fiber must not inherit that.
      return Effect.asVoid(Effect.forkIn(
        Effect.ensuring(
          Effect.interruptible(execute(entry)),
          Effect.sync(() => {
            if (running.get(record.id) === entry) running.delete(record.id)
            group.active--
            Queue.unsafeOffer(slotSignal, undefined)
          })
        ),
        tasksScope
      ))
    }

    const stopTask = (id: string, reason: Stop): Effect.Effect<void> =>
      Effect.suspend(() => {
        const entry = running.get(id)
        if (entry === undefined || entry.stop !== undefined) return Effect.void
        entry.stop = reason
        return entry.handler === undefined ? Effect.void : Fiber.interruptFork(entry.handler)
      })

    // --- claim loop ----------------------------------------------------------

    const claimOnce: Effect.Effect<{ readonly full: boolean; readonly free: boolean }, TaskStoreError> = Effect
      .gen(function*() {
        let full = false
        let free = false
        for (const group of groups) {
          const limit = Math.min(concurrency - running.size, group.limit - group.active, config.batchSize)
          if (limit <= 0) continue
          free = true
          const records = yield* store.tasksClaim({
            workerId,
            limit,
            leaseMs: config.leaseMs,
            queues: group.queues,
            names
          })
          if (records.length > 0) {
            counts.claimed += records.length
            yield* Metric.incrementBy(Metrics.claimedTotal, records.length)
            for (const record of records) yield* start(record, group)
          }
          if (records.length === limit) full = true
        }
        return { full, free }
      }).pipe(Effect.uninterruptible)

    const waitFor = (free: boolean): Effect.Effect<void> => {
      const waits: Array<Effect.Effect<void>> = [Queue.take(slotSignal), Deferred.await(stopSignal)]
      if (free) {
        waits.push(Effect.flatMap(jitter(config.pollMs), (timeoutMs) => store.awaitWork({ timeoutMs })))
      }
      return Effect.raceAll(waits)
    }

    const claimLoop: Effect.Effect<void> = Effect.suspend(() => {
      if (stopping) return Effect.void
      if (names.length === 0) return Deferred.await(stopSignal)
      return claimOnce.pipe(
        Effect.matchEffect({
          onFailure: (error) =>
            Effect.logWarning(`spindle: claim failed: ${error.message}`).pipe(
              Effect.annotateLogs({ workerId }),
              Effect.zipRight(Effect.raceFirst(
                Effect.flatMap(jitter(config.pollMs), (ms) => Effect.sleep(ms)),
                Deferred.await(stopSignal)
              ))
            ),
          onSuccess: ({ free, full }) => full ? Effect.yieldNow() : waitFor(free)
        }),
        Effect.zipRight(claimLoop)
      )
    })

    // --- maintenance fibers --------------------------------------------------

    const every = (ms: number, effect: Effect.Effect<void>) =>
      Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.flatMap(jitter(ms), (d) => Effect.sleep(d)), effect)))

    const heartbeat = Effect.suspend(() => {
      if (running.size === 0) return Effect.void
      return store.tasksHeartbeat({ workerId, ids: Array.from(running.keys()), leaseMs: config.leaseMs }).pipe(
        Effect.flatMap((beat) =>
          Effect.zipRight(
            Effect.forEach(beat.lost, (id) => stopTask(id, "lost"), { discard: true }),
            Effect.forEach(beat.cancelRequested, (id) => stopTask(id, "cancel"), { discard: true })
          )
        ),
        Effect.catchAll((error) =>
          Effect.logWarning(`spindle: heartbeat failed: ${error.message}`).pipe(Effect.annotateLogs({ workerId }))
        )
      )
    })

    const rescue = store.tasksRescue({}).pipe(
      Effect.flatMap((rescued) => {
        if (rescued.length === 0) return Effect.void
        counts.rescued += rescued.length
        return Effect.zipRight(
          Metric.incrementBy(Metrics.rescuedTotal, rescued.length),
          Effect.logInfo(`spindle: rescued ${rescued.length} task(s) whose lease expired`).pipe(
            Effect.annotateLogs({ workerId })
          )
        )
      }),
      Effect.catchAll((error) =>
        Effect.logWarning(`spindle: rescue failed: ${error.message}`).pipe(Effect.annotateLogs({ workerId }))
      )
    )

    // Cancellation requests arrive as events (from other nodes too, where the store shares
    // them); the heartbeat's `cancelRequested` is the backstop.
    yield* Effect.forkScoped(Stream.runForEach(
      Stream.filter(store.events, (event) => event.type === "cancel-requested" && running.has(event.taskId)),
      (event) => stopTask(event.taskId, "cancel")
    ))
    // Fixed-interval heartbeat (not jittered: it must stay well inside the lease).
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(config.heartbeatMs), heartbeat)))
    yield* every(config.rescueMs, rescue)
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(config.progressMs), reporter.flushAll)))
    const retention = options.retention
    if (retention !== undefined) {
      const olderThan = millis(retention.olderThan, 0, "retention.olderThan")
      const interval = millis(retention.interval, 60_000, "retention.interval")
      yield* every(
        Math.max(1, interval),
        Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) =>
            store.tasksDelete({ finishedBefore: new Date(now - olderThan), statuses: retention.statuses })
          ),
          Effect.catchAll((error) => Effect.logWarning(`spindle: retention clean-up failed: ${error.message}`)),
          Effect.asVoid
        )
      )
    }
    if (options.cron !== undefined && options.cron.length > 0) {
      yield* Effect.forkScoped(runSchedules(store, options.cron))
    }
    const loopFiber = yield* Effect.forkIn(claimLoop, tasksScope)

    // --- shutdown ------------------------------------------------------------

    const waitIdle: Effect.Effect<void> = Effect.suspend(() =>
      running.size === 0 ? Effect.void : Effect.zipRight(Queue.take(slotSignal), waitIdle)
    )

    const shutdown = Effect.gen(function*() {
      stopping = true
      yield* Deferred.succeed(stopSignal, undefined)
      yield* Fiber.await(loopFiber)
      // Phase 1: let running tasks finish within the grace period.
      // Finalizers run uninterruptibly: the waits must be interruptible for their timeouts.
      yield* Effect.timeoutOption(Effect.interruptible(waitIdle), config.graceMs)
      // Phase 2: interrupt the rest and give them back.
      if (running.size > 0) {
        yield* Effect.forEach(Array.from(running.keys()), (id) => stopTask(id, "shutdown"), { discard: true })
        yield* Effect.timeoutOption(Effect.interruptible(waitIdle), Math.max(config.graceMs, 1_000))
      }
      if (releasable.length > 0) {
        const ids = releasable.splice(0, releasable.length)
        const released = yield* store.tasksRelease({ workerId, ids }).pipe(
          Effect.catchAll((error) =>
            Effect.as(
              Effect.logWarning(`spindle: release at shutdown failed (the rescuer will return them): ${error.message}`),
              0
            )
          )
        )
        counts.released += released
        yield* Metric.incrementBy(Metrics.releasedTotal, released)
      }
      yield* reporter.flushAll
    })
    yield* Effect.addFinalizer(() => shutdown)

    const worker: TaskWorker.TaskWorker = {
      workerId,
      stats: Effect.sync(() => ({ workerId, running: running.size, ...counts })),
      pause: (queue) => store.queuePause({ queue }),
      resume: (queue) => store.queueResume({ queue })
    }
    return worker
  })
