import { Deadline, KeyedLimiter, Limiter, RateLimiter, RetryPolicy } from "@spindle/core"
import type { Exit } from "effect"
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Fiber,
  FiberId,
  FiberRef,
  HashMap,
  Metric,
  MetricLabel,
  Option,
  Random,
  Runtime,
  Schedule,
  Scope,
  Stream,
  Tracer
} from "effect"
import * as os from "node:os"
import { TaskContext } from "../TaskContext.js"
import { TaskHandlers } from "../TaskHandlers.js"
import type { HandlerError } from "../TaskHandlers.js"
import * as Metrics from "../TaskMetrics.js"
import type { TaskError, TaskRecord } from "../TaskRecord.js"
import type { TaskStoreError } from "../TaskStore.js"
import { TaskStore } from "../TaskStore.js"
import type * as TaskWorker from "../TaskWorker.js"
import { runSchedules } from "./cron.js"
import * as internalTask from "./task.js"
import type { Attempt } from "./taskContext.js"
import { makeReporter } from "./taskContext.js"
import { attemptSpan } from "./taskSpan.js"

// -----------------------------------------------------------------------------
// Configuration
// -----------------------------------------------------------------------------

interface Group {
  readonly queues: ReadonlyArray<string> | undefined
  readonly limit: number
  active: number
  /** Tasks claimed ahead of free slots, in claim order (see `prefetch`). */
  readonly prefetched: Array<Running>
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
  readonly prefetch: number
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

const nonNegativeInt = (value: number | undefined, fallback: number, field: string): number => {
  const n = value ?? fallback
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Cause.IllegalArgumentException(`TaskWorker: ${field} must be an integer >= 0`)
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
  const prefetch = nonNegativeInt(options.prefetch, 0, "prefetch")
  const queues = options.queues
  let groups: Array<Group>
  if (queues === undefined) groups = [{ queues: undefined, limit: concurrency, active: 0, prefetched: [] }]
  else if (Array.isArray(queues)) {
    groups = [{ queues: queues as ReadonlyArray<string>, limit: concurrency, active: 0, prefetched: [] }]
  } else {
    const record = queues as { readonly [queue: string]: TaskWorker.TaskWorker.QueueOptions }
    groups = Object.keys(record).map((queue) => ({
      queues: [queue],
      limit: positiveInt(record[queue]!.concurrency, concurrency, `queues.${queue}.concurrency`),
      active: 0,
      prefetched: []
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
    batchSize: positiveInt(options.claimBatchSize, concurrency + prefetch, "claimBatchSize"),
    prefetch,
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
  /** Whether the entry still holds one of the worker's slots (until its handler ended). */
  slot: boolean
  /** Its attempt, readied before it was received (see `TaskStore.Handoff.prepare`). */
  ready?: Ready | undefined
}

/** What an attempt's fiber starts with, but its span: made before it starts, or as it starts. */
interface Ready {
  readonly record: TaskRecord
  readonly attempt: Attempt
  /** The attempt's services: the name's, with its TaskContext. */
  readonly services: Map<string, unknown>
  readonly annotations: HashMap.HashMap<string, unknown>
  /** The payload, decoded when its Schema decodes synchronously. */
  readonly payload: Either.Either<unknown, unknown>
}

/** An outcome waiting for the settler's next batch; `entry` is held until it is recorded or refused. */
type Settlement =
  | { readonly _tag: "complete"; readonly entry: Running; readonly item: TaskStore.Completion }
  | { readonly _tag: "fail"; readonly entry: Running; readonly item: TaskStore.Failure }

/** Outcomes recorded per round trip at most. */
const settleBatchMax = 1_000

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
    // The worker's clock, read synchronously on the hot path (a TestClock in tests).
    const clock = yield* Effect.clock
    // Handler fibers are forked from this runtime (the services and fiber refs of `make`).
    const runtime = yield* Effect.runtime<never>()
    const scope = yield* Effect.scope
    // Task fibers live in a child scope closed after the shutdown finalizer below has run.
    const tasksScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)

    const names = handlers.names
    const handled = new Set(names)
    const limits = new Map<string, Apply>()
    for (const [name, l] of Object.entries(options.limits ?? {})) {
      limits.set(name, yield* makeLimits(name, l))
    }
    const reporter = makeReporter({ store, workerId, intervalMs: config.progressMs })
    /** Tasks held by this worker: running, or waiting for their outcome to be recorded. */
    const running = new Map<string, Running>()
    // Handlers still running when the worker's scope closes (after the shutdown) are interrupted.
    yield* Scope.addFinalizer(
      tasksScope,
      Effect.suspend(() => {
        const fibers: Array<Fiber.RuntimeFiber<unknown, AttemptError>> = []
        for (const entry of running.values()) if (entry.handler !== undefined) fibers.push(entry.handler)
        return Fiber.interruptAll(fibers)
      })
    )
    /** Slots taken (tasks whose handler has not ended). */
    let active = 0
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

    // The wake-up of the worker's own waits (the claim loop's, then the shutdown's wait for
    // idle, never both at once): a freed slot, a task no longer held, the shutdown. A wake-up
    // while nobody waits is kept for the next wait (one at most). A callback rather than a
    // queue raced with the stop signal: an idle wait forks no fiber of its own.
    let waiter: (() => void) | undefined
    let woken = false
    const wake = (): void => {
      const resume = waiter
      if (resume === undefined) woken = true
      else {
        waiter = undefined
        resume()
      }
    }
    const nextWake: Effect.Effect<void> = Effect.async<void>((resume) => {
      if (woken) {
        woken = false
        return resume(Effect.void)
      }
      waiter = () => resume(Effect.void)
      return Effect.sync(() => {
        waiter = undefined
      })
    })

    const jitter = (ms: number) => Effect.map(Random.next, (r) => Math.max(1, Math.round(ms * (0.8 + 0.4 * r))))

    const logAnnotations = (record: TaskRecord) => ({
      taskId: record.id,
      taskName: record.name,
      attempt: record.attempt,
      workerId
    })

    // --- settling an attempt -------------------------------------------------

    // Metrics tagged by task name (and outcome), updated through their hooks: `Metric.tagged`
    // builds its tag array on every update, so the registry entry is looked up (hashing the
    // key) each time; an update with the same array is a cached lookup. The fiber's metric
    // labels (`Effect.tagMetrics` around the worker) are read once and kept.
    const fiberLabels = yield* FiberRef.get(FiberRef.currentMetricLabels)
    const labelsByName = new Map<string, {
      readonly name: ReadonlyArray<MetricLabel.MetricLabel>
      readonly outcomes: Map<string, ReadonlyArray<MetricLabel.MetricLabel>>
    }>()
    const labelsOf = (name: string) => {
      let labels = labelsByName.get(name)
      if (labels === undefined) {
        labels = { name: [MetricLabel.make("name", name), ...fiberLabels], outcomes: new Map() }
        labelsByName.set(name, labels)
      }
      return labels
    }
    const outcomeLabels = (name: string, outcome: string) => {
      const outcomes = labelsOf(name).outcomes
      let labels = outcomes.get(outcome)
      if (labels === undefined) {
        labels = [MetricLabel.make("name", name), MetricLabel.make("outcome", outcome), ...fiberLabels]
        outcomes.set(outcome, labels)
      }
      return labels
    }

    const countOutcome = (outcome: string) => {
      switch (outcome) {
        case "succeeded":
          counts.succeeded++
          break
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
    }

    // The settler: outcomes are recorded in batches (one round trip for all the outcomes that
    // arrived while the previous batch was being written: no added delay when idle, batches
    // under load). Nobody waits for an outcome: its task stays held (and heartbeated) until the
    // outcome is recorded or refused. Counters and metrics are updated once per batch and outcome.
    // The outcomes waiting for the settler, in arrival order: an array the settler takes whole
    // (a Queue copies its values into a Chunk built one value at a time, a tenth of what a drain
    // of short tasks allocated), and the settler's wake-up while it waits for the first.
    let pending: Array<Settlement> = []
    let settlerWaiting: (() => void) | undefined
    let settling = 0
    const takePending = (): Array<Settlement> => {
      if (pending.length <= settleBatchMax) {
        const batch = pending
        pending = []
        return batch
      }
      return pending.splice(0, settleBatchMax)
    }
    /** The outcomes waiting (at most `settleBatchMax`), once there is one. */
    const nextBatch: Effect.Effect<Array<Settlement>> = Effect.async((resume) => {
      if (pending.length > 0) return resume(Effect.sync(takePending))
      settlerWaiting = () => resume(Effect.sync(takePending))
      return Effect.sync(() => {
        settlerWaiting = undefined
      })
    })

    /** The settler is done with an entry's outcome (recorded or refused): the task is no longer held. */
    const settled = (entry: Running): void => {
      settling--
      unhold(entry)
    }

    const recordBatch = <S extends Settlement>(
      batch: ReadonlyArray<S>,
      call: (items: Array<S["item"]>) => Effect.Effect<ReadonlyArray<TaskStore.BatchOutcome>, TaskStoreError>
    ): Effect.Effect<void> =>
      call(batch.map((s) => s.item)).pipe(
        Effect.retry(storeRetry),
        Effect.matchEffect({
          onFailure: (error) =>
            Effect.sync(() => {
              for (const s of batch) settled(s.entry)
            }).pipe(
              Effect.zipRight(
                Effect.logWarning(
                  `spindle: the outcome of ${batch.length} attempt(s) was not recorded: ${error.message}`
                ).pipe(Effect.annotateLogs({ workerId, taskIds: batch.map((s) => s.entry.record.id).join(",") }))
              )
            ),
          onSuccess: (outcomes) =>
            Effect.suspend(() => {
              const byLabels = new Map<ReadonlyArray<MetricLabel.MetricLabel>, number>()
              const lost: Array<S> = []
              for (let i = 0; i < batch.length; i++) {
                const s = batch[i]!
                if (outcomes[i] === "settled") {
                  const outcome = s._tag === "complete"
                    ? "succeeded"
                    : (s.item as TaskStore.Failure).outcome._tag
                  countOutcome(outcome)
                  const labels = outcomeLabels(s.entry.record.name, outcome)
                  byLabels.set(labels, (byLabels.get(labels) ?? 0) + 1)
                  settled(s.entry)
                } else {
                  counts.lost++
                  lost.push(s)
                  settled(s.entry)
                }
              }
              for (const [labels, n] of byLabels) Metrics.completedTotal.unsafeUpdate(n, labels)
              if (lost.length === 0) return Effect.void
              const updates: Array<Effect.Effect<void>> = []
              for (const s of lost) {
                updates.push(
                  Effect.logDebug("spindle: the outcome of an attempt was not recorded: the lease was lost").pipe(
                    Effect.annotateLogs(logAnnotations(s.entry.record))
                  )
                )
              }
              return Effect.all(updates, { discard: true })
            })
        })
      )

    yield* Effect.gen(function*() {
      const batch = yield* nextBatch
      const completes: Array<Extract<Settlement, { _tag: "complete" }>> = []
      const fails: Array<Extract<Settlement, { _tag: "fail" }>> = []
      for (const s of batch) {
        if (s._tag === "complete") completes.push(s)
        else fails.push(s)
      }
      yield* Effect.all([
        completes.length === 0 ? Effect.void : recordBatch(completes, (items) => store.tasksComplete({ items })),
        fails.length === 0 ? Effect.void : recordBatch(fails, (items) => store.tasksFail({ items }))
      ], { concurrency: 2, discard: true })
    }).pipe(Effect.forever, Effect.forkScoped)

    /**
     * Queues an outcome for the settler. The task stays held (heartbeated) until the outcome is
     * recorded or refused (`settled`); nobody waits for it.
     */
    const recordOutcome = (settlement: Settlement): void => {
      settling++
      pending.push(settlement)
      const resume = settlerWaiting
      if (resume !== undefined) {
        settlerWaiting = undefined
        resume()
      }
    }

    /** Runs a rare follow-up of a handler's end (a log, a retry decision) in a fiber of its own. */
    const runAside = (effect: Effect.Effect<void>): void => {
      Runtime.runFork(runtime)(effect, { immediate: false })
    }

    /** Records how an attempt ended; called as the handler's fiber ends. */
    const settle = (entry: Running, exit: Exit.Exit<unknown, AttemptError>): void => {
      const record = entry.record
      const stop = entry.stop
      if (stop === "lost") {
        counts.lost++
        unhold(entry)
        return runAside(
          Effect.logDebug("spindle: lease lost, the attempt is dropped").pipe(
            Effect.annotateLogs(logAnnotations(record))
          )
        )
      }
      if (exit._tag === "Success") {
        return recordOutcome({ _tag: "complete", entry, item: { id: record.id, workerId, result: exit.value } })
      }
      if (stop === "shutdown" || (stopping && stop === undefined && Cause.isInterruptedOnly(exit.cause))) {
        // interrupted by the shutdown: given back (the scope closing after the shutdown drops
        // it: the lease expires and the rescuer returns it)
        releasable.push(record.id)
        return unhold(entry)
      }
      if (stop === "cancel") {
        const error: TaskError = {
          tag: "Cancelled",
          message: "cancelled while running",
          cause: Cause.pretty(exit.cause)
        }
        return recordOutcome({
          _tag: "fail",
          entry,
          item: { id: record.id, workerId, error, outcome: { _tag: "cancelled" } }
        })
      }
      runAside(Effect.map(Random.next, (random) => {
        const { error, outcome } = decide(record, exit.cause, clock.unsafeCurrentTimeMillis(), random)
        recordOutcome({ _tag: "fail", entry, item: { id: record.id, workerId, error, outcome } })
      }))
    }

    // --- running one attempt -------------------------------------------------

    // Each attempt runs in a fiber started with everything it needs already in place: its
    // context (the worker's services, the handler's, its `TaskContext` and its span as the
    // parent span) and its log annotations. Providing them around the handler instead
    // (`Effect.provide`, `Effect.withSpan`, `Effect.annotateLogs`) costs several copies of the
    // fiber's references per attempt, set and restored: most of the worker's own cost per task
    // when handlers are short. The span is made with the tracer of the worker's runtime (a
    // user's OpenTelemetry tracer included); attempts' spans are roots: a task is not part of
    // whatever span the worker was started in.
    const tracer = yield* Effect.tracer
    const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
    const timing = yield* FiberRef.get(FiberRef.currentTracerTimingEnabled)
    const baseAnnotations = HashMap.set(yield* FiberRef.get(FiberRef.currentLogAnnotations), "workerId", workerId)
    /** The worker's services with those of each task's handler, merged once per task name. */
    const contexts = new Map<string, Context.Context<never>>()
    const contextOf = (name: string, registered: TaskHandlers.Entry): Context.Context<never> => {
      let context = contexts.get(name)
      if (context === undefined) {
        context = Context.merge(runtime.context, registered.context)
        contexts.set(name, context)
      }
      return context
    }
    /** The worker's log annotations with a task name, made once per name. */
    const annotationsByName = new Map<string, HashMap.HashMap<string, unknown>>()
    const annotationsOf = (name: string): HashMap.HashMap<string, unknown> => {
      let annotations = annotationsByName.get(name)
      if (annotations === undefined) {
        annotations = HashMap.set(baseAnnotations, "taskName", name)
        annotationsByName.set(name, annotations)
      }
      return annotations
    }
    const nowNanos = (): bigint => timing ? clock.unsafeCurrentTimeNanos() : BigInt(0)

    /** The handler's effect for one attempt: payload decoding, deadline and limits around it. */
    const body = (
      entry: TaskHandlers.Entry,
      record: TaskRecord,
      ctx: TaskContext.Service,
      decoded: Either.Either<unknown, unknown>
    ): Effect.Effect<unknown, AttemptError> => {
      const apply = limits.get(record.name)
      const hard = record.timeoutMs ?? undefined
      const soft = record.softTimeoutMs ?? undefined
      const payload = Either.isRight(decoded) ? Effect.succeed(decoded.right) : entry.decode(record.payload)
      return Effect.flatMap(payload, (payload) => {
        // its requirements are in the context the attempt's fiber starts with
        let run = entry.run(payload, ctx) as Effect.Effect<unknown, AttemptError>
        if (hard !== undefined || soft !== undefined) {
          run = Deadline.timeout(run, {
            hard,
            soft,
            name: record.name,
            onSoft: (info) => ctx.log(`still running after the soft timeout of ${Duration.format(info.soft)}`, "warn")
          })
        }
        return apply === undefined ? run : (apply(payload, run) as Effect.Effect<unknown, AttemptError>)
      })
    }

    /** The time from due to started, of an attempt that started at `start`. */
    const observeQueueWait = (record: TaskRecord, start: number, labels: ReadonlyArray<MetricLabel.MetricLabel>) => {
      const wait = Math.max(0, (record.startedAt?.getTime() ?? start) - record.runAt.getTime())
      Metrics.queueWaitSeconds.unsafeUpdate(wait / 1000, labels)
    }

    /** Readies the attempt of `record` (see `Ready`). */
    const ready = (record: TaskRecord, registered: TaskHandlers.Entry): Ready => {
      const attempt = reporter.attempt(record)
      // one copy of the name's context, with the attempt's TaskContext (and span, as it starts)
      const services = new Map(contextOf(record.name, registered).unsafeMap)
      services.set(TaskContext.key, attempt.context)
      const annotations = HashMap.set(
        HashMap.set(annotationsOf(record.name), "taskId", record.id),
        "attempt",
        record.attempt
      )
      // decoded in the fiber instead when the Schema refuses it or decodes asynchronously
      const payload = internalTask.codecsOf(registered.task).decodePayloadEither(record.payload)
      return { record, attempt, services, annotations, payload }
    }

    /**
     * Starts the attempt of a task holding a slot: its handler runs in a fiber of its own (a
     * root fiber, interrupted by the shutdown), and everything after it happens as that fiber
     * ends, without a fiber of the worker waiting on it.
     */
    const execute = (entry: Running, immediate: boolean): void => {
      const record = entry.record
      const registered = handlers.entries.get(record.name)
      const start = clock.unsafeCurrentTimeMillis()
      const labels = labelsOf(record.name).name
      if (registered === undefined) {
        observeQueueWait(record, start, labels)
        const error: TaskError = {
          tag: "NoHandler",
          message: `worker ${workerId} has no handler for task "${record.name}"`,
          cause: ""
        }
        freeSlot(entry)
        return recordOutcome({
          _tag: "fail",
          entry,
          item: { id: record.id, workerId, error, outcome: { _tag: "failed" } }
        })
      }
      const { annotations, attempt, payload, services } = entry.ready?.record === record
        ? entry.ready
        : ready(record, registered)
      entry.ready = undefined
      const span = tracing ? attemptSpan(tracer, record, nowNanos()) : undefined
      if (span !== undefined) services.set(Tracer.ParentSpan.key, span)
      const context = Context.unsafeMake<never>(services)
      const fiber = Runtime.runFork(
        Runtime.make({ context, fiberRefs: runtime.fiberRefs, runtimeFlags: runtime.runtimeFlags })
      )(
        body(registered, record, attempt.context, payload),
        {
          immediate,
          // the fiber's references were just copied for it alone: its annotations are set in
          // place (`FiberRefs.updateManyAs` would copy every reference once more)
          updateRefs: (refs, fiberId) => {
            const stack = refs.locals.get(FiberRef.currentLogAnnotations)
            refs.locals.set(
              FiberRef.currentLogAnnotations,
              stack === undefined ? [[fiberId, annotations]] : [[fiberId, annotations], ...stack]
            )
            return refs
          }
        }
      )
      // recorded once the handler has started (before, they held its start back by a tenth of a
      // millisecond when the process had been idle: code that has not run lately runs slowly)
      observeQueueWait(record, start, labels)
      Metrics.activeHandlers.unsafeModify(1, fiberLabels)
      entry.handler = fiber
      if (entry.stop !== undefined) fiber.unsafeInterruptAsFork(fiber.id())
      fiber.addObserver((exit) => {
        span?.end(nowNanos(), exit)
        entry.handler = undefined
        Metrics.activeHandlers.unsafeModify(-1, fiberLabels)
        Metrics.durationSeconds.unsafeUpdate((clock.unsafeCurrentTimeMillis() - start) / 1000, labels)
        // The slot goes to the next task while the outcome is being recorded (the task stays
        // held, and heartbeated, until then).
        freeSlot(entry)
        // The attempt's logs and progress are written before its outcome.
        if (attempt.hasPending()) runAside(Effect.zipRight(attempt.flush, Effect.sync(() => settle(entry, exit))))
        else settle(entry, exit)
      })
    }

    /** The task is no longer held by this worker. */
    const unhold = (entry: Running) => {
      if (running.get(entry.record.id) === entry) running.delete(entry.record.id)
      wake()
    }

    /** Gives the entry's slot back (once), to a prefetched task when one waits. */
    const freeSlot = (entry: Running): void => {
      if (!entry.slot) return
      entry.slot = false
      active--
      entry.group.active--
      launchPrefetched()
      // The claim loop is woken only when it would claim (see `claimOnce`): not while every
      // group's prefetch buffer is more than half full, which would wake it for every task.
      if (groups.some((group) => group.prefetched.length <= config.prefetch / 2)) {
        wake()
      }
    }

    /** Starts prefetched tasks while slots are free (not once shutting down: they are released). */
    const launchPrefetched = (): void => {
      for (const group of groups) {
        while (!stopping && group.prefetched.length > 0 && active < concurrency && group.active < group.limit) {
          launch(group.prefetched.shift()!)
        }
      }
    }

    /** Holds a claimed task: heartbeated from now on. */
    const hold = (record: TaskRecord, group: Group): Running => {
      const entry: Running = { record, group, handler: undefined, stop: undefined, slot: false }
      // Claimed again while an old attempt still runs here (its lease lapsed): stop the old one.
      const previous = running.get(record.id)
      if (previous !== undefined) {
        previous.stop = "lost"
        if (previous.handler !== undefined) previous.handler.unsafeInterruptAsFork(previous.handler.id())
      }
      running.set(record.id, entry)
      return entry
    }

    /**
     * Runs a held task in a slot. `immediate` (from the claim loop) starts the handler on the
     * spot, until its first asynchronous step; from a handler's end (a prefetched task taking
     * the freed slot) it is scheduled instead, so that handlers ending at once do not nest.
     */
    const launch = (entry: Running, immediate = false): void => {
      if (entry.stop === "lost") {
        // its lease was lost while it waited in the prefetch buffer
        counts.lost++
        return unhold(entry)
      }
      entry.slot = true
      active++
      entry.group.active++
      execute(entry, immediate)
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
        // Backpressure: no claims while many outcomes wait to be recorded (a slow store). A
        // worker thus holds fewer than 3 × (concurrency + prefetch) tasks: those running or
        // prefetched, and those whose outcome is being recorded. The bound counts the prefetch
        // buffer: short tasks empty it faster than a claim returns, and a bound of outcomes below
        // a buffer's worth would hold every claim back until the buffer's outcomes were all
        // written (claims and completions one after the other, never at once).
        if (settling >= 2 * (concurrency + config.prefetch)) return { full: false, free: false }
        for (const group of groups) {
          let slots = Math.min(concurrency - active, group.limit - group.active)
          // Prefetched tasks first (a slot freed while the loop was waiting).
          while (slots > 0 && group.prefetched.length > 0) {
            launch(group.prefetched.shift()!, true)
            slots = Math.min(concurrency - active, group.limit - group.active)
          }
          // The prefetch buffer is topped up once half of it has gone (a local queue refilled in
          // batches): refilling it task by task as slots free would cost a claim per task.
          if (group.prefetched.length > config.prefetch / 2) continue
          const limit = Math.min(Math.max(0, slots) + config.prefetch - group.prefetched.length, config.batchSize)
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
            for (const record of records) {
              const entry = hold(record, group)
              if (active < concurrency && group.active < group.limit) launch(entry, true)
              else group.prefetched.push(entry)
            }
          }
          if (records.length === limit) full = true
        }
        return { full, free }
      }).pipe(Effect.uninterruptible)

    /**
     * The offer of an idle wait to take a task the moment this process submits it (see
     * `TaskStore.awaitWork`): one task, into a slot free now, and only while the wait lasts. The
     * task arrives claimed and runs at once; the wait then ends, so that the next wait offers
     * again. A task that arrives after the wait ended (the store had taken the offer) is still
     * run, or given back when the worker is stopping.
     */
    const makeHandoff = (): TaskStore.Handoff => {
      let open = true
      let readied: Ready | undefined
      return {
        workerId,
        leaseMs: config.leaseMs,
        accepts: ({ name, queue }) => {
          if (!open || stopping || active >= concurrency || !handled.has(name)) return false
          const group = groupOf(queue)
          if (group === undefined || group.active >= group.limit) return false
          open = false
          return true
        },
        prepare: (record) => {
          const registered = handlers.entries.get(record.name)
          if (registered !== undefined) readied = ready(record, registered)
        },
        receive: (record) => {
          const prepared = readied
          readied = undefined
          if (record === undefined) return
          counts.claimed++
          Metrics.claimedTotal.unsafeUpdate(1, fiberLabels)
          if (stopping) {
            releasable.push(record.id)
            return runAside(release)
          }
          const group = groupOf(record.queue)!
          const entry = hold(record, group)
          entry.ready = prepared
          // started on the spot, as a claimed task (scheduled instead, it waited for whatever the
          // submitter did next: 0.6 of the 1.5 ms from submit to start, on SQLite)
          if (active < concurrency && group.active < group.limit) launch(entry, true)
          else group.prefetched.push(entry)
          wake()
        }
      }
    }

    /** The group that claims from `queue`, if any. */
    const groupOf = (queue: string): Group | undefined =>
      groups.find((group) => group.queues === undefined || group.queues.includes(queue))

    /**
     * Waits for a wake-up, or for claimable work when there was room to claim, whichever comes
     * first. One callback serves both: the store's wait runs in a fiber of its own, interrupted
     * in the background when the wake-up comes first. (`Effect.raceFirst` forks both sides and
     * then waits for the loser's interruption: a third of a millisecond between the store's
     * signal and the claim, on the idle path that enqueue-to-start latency measures.)
     */
    const waitFor = (free: boolean): Effect.Effect<void> =>
      free ? Effect.flatMap(jitter(config.pollMs), waitForWork) : nextWake

    const waitForWork = (timeoutMs: number): Effect.Effect<void> =>
      Effect.async<void>((resume) => {
        if (woken) {
          woken = false
          return resume(Effect.void)
        }
        let done = false
        const storeWait = Runtime.runFork(runtime)(store.awaitWork({ timeoutMs, handoff: makeHandoff() }))
        const finish = () => {
          if (done) return
          done = true
          if (waiter === onWake) waiter = undefined
          resume(Effect.void)
        }
        const onWake = () => {
          storeWait.unsafeInterruptAsFork(FiberId.none)
          finish()
        }
        waiter = onWake
        storeWait.addObserver(finish)
        return Effect.sync(() => {
          done = true
          if (waiter === onWake) waiter = undefined
          storeWait.unsafeInterruptAsFork(FiberId.none)
        })
      })

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

    /** Runs `effect` now and then every `ms`, jittered ±20%. */
    const every = (ms: number, effect: Effect.Effect<void>) =>
      Effect.forkScoped(Effect.repeat(effect, Schedule.jittered(Schedule.spaced(ms))))

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
    // them); the heartbeat's `cancelRequested` is the backstop. Only those events: subscribed to
    // every event, the worker made the store build and deliver an event per start and outcome
    // (a tenth of the process's CPU in a drain of short tasks).
    yield* Effect.forkScoped(Stream.runForEachChunk(store.eventsOf(["cancel-requested"]), (events) => {
      let cancelled: Array<string> | undefined
      for (const event of events) {
        if (running.has(event.taskId)) (cancelled ??= []).push(event.taskId)
      }
      return cancelled === undefined
        ? Effect.void
        : Effect.forEach(cancelled, (id) => stopTask(id, "cancel"), { discard: true })
    }))
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
      running.size === 0 ? Effect.void : Effect.zipRight(nextWake, waitIdle)
    )

    /** Gives the tasks of `releasable` back to the store. */
    const release = Effect.suspend(() => {
      if (releasable.length === 0) return Effect.void
      const ids = releasable.splice(0, releasable.length)
      return store.tasksRelease({ workerId, ids }).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(`spindle: release at shutdown failed (the rescuer will return them): ${error.message}`),
            0
          )
        ),
        Effect.map((released) => {
          counts.released += released
          Metrics.releasedTotal.unsafeUpdate(released, fiberLabels)
        })
      )
    })

    const shutdown = Effect.gen(function*() {
      stopping = true
      yield* Deferred.succeed(stopSignal, undefined)
      wake()
      yield* Fiber.await(loopFiber)
      // Prefetched tasks never started: they go back at once.
      for (const group of groups) {
        for (const entry of group.prefetched.splice(0, group.prefetched.length)) {
          unhold(entry)
          releasable.push(entry.record.id)
        }
      }
      yield* release
      // Phase 1: let running tasks finish within the grace period.
      // Finalizers run uninterruptibly: the waits must be interruptible for their timeouts.
      yield* Effect.timeoutOption(Effect.interruptible(waitIdle), config.graceMs)
      // Phase 2: interrupt the rest and give them back.
      if (running.size > 0) {
        yield* Effect.forEach(Array.from(running.keys()), (id) => stopTask(id, "shutdown"), { discard: true })
        yield* Effect.timeoutOption(Effect.interruptible(waitIdle), Math.max(config.graceMs, 1_000))
      }
      yield* release
      yield* reporter.flushAll
    })
    // Counted until the shutdown below has finished (finalizers run in reverse order). Metrics
    // updated while shutting down use the labels read at the start: the fiber closing the scope
    // may carry them twice by then (fiber references inherited from the fibers it waited on).
    yield* Effect.acquireRelease(
      Effect.sync(() => Metrics.activeWorkers.unsafeModify(1, fiberLabels)),
      () => Effect.sync(() => Metrics.activeWorkers.unsafeModify(-1, fiberLabels))
    )
    yield* Effect.addFinalizer(() => shutdown)

    const worker: TaskWorker.TaskWorker = {
      workerId,
      stats: Effect.sync(() => ({ workerId, running: running.size, ...counts })),
      pause: (queue) => store.queuePause({ queue }),
      resume: (queue) => store.queueResume({ queue })
    }
    return worker
  })
