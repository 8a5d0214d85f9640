import * as NodeWorker from "@effect/platform-node/NodeWorker"
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import * as Worker from "@effect/platform/Worker"
import { isWorkerError, WorkerError } from "@effect/platform/WorkerError"
import * as WorkerRunner from "@effect/platform/WorkerRunner"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Option from "effect/Option"
import { pipeArguments } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type { EventEmitter } from "node:events"
import type * as WorkerPool from "../WorkerPool.js"
import { WorkerTaskError } from "../WorkerPool.js"
import { illegalArgument, isPositiveInteger } from "./shared.js"

/** @internal */
export const TypeId: WorkerPool.TypeId = Symbol.for("@spindle/core/WorkerPool") as WorkerPool.TypeId

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

/** @internal */
export const busyMetric = Metric.gauge("spindle_worker_pool_busy", {
  description: "Tasks running on a worker now"
})

/** @internal */
export const tasksMetric = Metric.counter("spindle_worker_pool_tasks_total", {
  description: "Tasks executed, by outcome",
  incremental: true
})

/** @internal */
export const taskSecondsMetric = Metric.histogram(
  "spindle_worker_pool_task_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 18 }),
  "Time tasks ran on a worker, in seconds"
)

/** @internal */
export const restartsMetric = Metric.counter("spindle_worker_pool_restarts_total", {
  description: "Workers replaced, by reason",
  incremental: true
})

/** @internal */
export type Outcome = "success" | "failure" | "defect" | "interrupted" | WorkerPool.WorkerTaskErrorReason

/** @internal */
export type RestartReason = "crashed" | "timeout" | "recycled" | "interrupted"

const outcomes: ReadonlyArray<Outcome> = [
  "success",
  "failure",
  "defect",
  "interrupted",
  "crashed",
  "timeout",
  "spawn",
  "encode",
  "decode"
]

const restartReasons: ReadonlyArray<RestartReason> = ["crashed", "timeout", "recycled", "interrupted"]

// -----------------------------------------------------------------------------
// Workers
// -----------------------------------------------------------------------------

type Thread = ReturnType<WorkerPool.WorkerPool.Spawn>

type AnyResult = Schema.WithResult<unknown, unknown, unknown, unknown, unknown>

/** What the raw worker is sent: the request, and the caller's context to encode it with. */
interface Envelope {
  readonly request: Schema.TaggedRequest.All
  readonly context: Context.Context<never>
}

/** One worker: its thread, the `@effect/platform` worker speaking to it, and the scope holding both. */
interface Live {
  readonly id: number
  readonly scope: Scope.CloseableScope
  worker: Worker.Worker<Envelope, unknown, unknown> | undefined
  thread: Thread | undefined
  /** Set when the thread errored or exited: the worker is gone. */
  isDown: boolean
  downCause: unknown
  readonly down: Deferred.Deferred<void>
  /** Completed by the thread's `exit` event. */
  readonly exited: Deferred.Deferred<void>
  tasks: number
  busy: boolean
}

/** A place for one worker; slots circulate through the idle queue. */
interface Slot {
  live: Live | undefined
}

class SpawnFailure {
  constructor(readonly workerId: number, readonly cause: unknown) {}
}

const markDown = (live: Live, cause: unknown): void => {
  if (live.isDown) return
  live.isDown = true
  live.downCause = cause
  Deferred.unsafeDone(live.down, Exit.void)
}

const terminate = (thread: Thread): void => {
  if ("terminate" in thread) {
    void thread.terminate()
  } else {
    thread.kill("SIGKILL")
  }
}

const encodeEnvelope = (envelope: Envelope): Effect.Effect<unknown, WorkerError> =>
  Schema.serialize(envelope.request as Schema.Serializable<unknown, unknown, unknown>).pipe(
    Effect.provide(envelope.context as Context.Context<unknown>),
    Effect.mapError((cause) => new WorkerError({ reason: "encode", cause }))
  )

/** How long to wait for a terminated thread's `exit` event before giving up on it. */
const killTimeout = Duration.seconds(5)

// -----------------------------------------------------------------------------
// Pool
// -----------------------------------------------------------------------------

class WorkerPoolImpl<I extends Schema.TaggedRequest.All> implements WorkerPool.WorkerPool<I> {
  readonly [TypeId]: WorkerPool.TypeId = TypeId
  readonly name: string
  readonly size: number
  readonly recycleAfter: number | undefined
  readonly taskTimeout: Duration.Duration | undefined

  readonly workers = new Set<Live>()
  shuttingDown = false
  nextWorkerId = 0
  nextTaskId = 0
  busy = 0
  queued = 0
  completed = 0
  failed = 0
  interrupted = 0
  crashed = 0
  recycled = 0
  timedOut = 0

  readonly busyGauge: Metric.Metric.Gauge<number>
  readonly taskSeconds: Metric.Metric.Histogram<number>
  readonly tasksBy: Record<Outcome, Metric.Metric.Counter<number>>
  readonly restartsBy: Record<RestartReason, Metric.Metric.Counter<number>>

  constructor(
    readonly options: WorkerPool.WorkerPool.Options,
    readonly manager: Worker.WorkerManager,
    readonly idle: Queue.Queue<Slot>,
    readonly fibers: FiberSet.FiberSet<void, never>
  ) {
    this.name = options.name ?? "default"
    this.size = options.size
    this.recycleAfter = options.recycleAfter
    this.taskTimeout = options.taskTimeout === undefined ? undefined : Duration.decode(options.taskTimeout)
    this.busyGauge = Metric.tagged(busyMetric, "pool", this.name)
    this.taskSeconds = Metric.tagged(taskSecondsMetric, "pool", this.name)
    const tasksBy: Partial<Record<Outcome, Metric.Metric.Counter<number>>> = {}
    for (const outcome of outcomes) {
      tasksBy[outcome] = tasksMetric.pipe(Metric.tagged("pool", this.name), Metric.tagged("outcome", outcome))
    }
    this.tasksBy = tasksBy as Record<Outcome, Metric.Metric.Counter<number>>
    const restartsBy: Partial<Record<RestartReason, Metric.Metric.Counter<number>>> = {}
    for (const reason of restartReasons) {
      restartsBy[reason] = restartsMetric.pipe(Metric.tagged("pool", this.name), Metric.tagged("reason", reason))
    }
    this.restartsBy = restartsBy as Record<RestartReason, Metric.Metric.Counter<number>>
  }

  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }

  get stats(): Effect.Effect<WorkerPool.WorkerPool.Stats> {
    return Effect.sync(() => ({
      name: this.name,
      size: this.size,
      workers: this.workers.size,
      busy: this.busy,
      idle: Math.max(0, this.workers.size - this.busy),
      queued: this.queued,
      completed: this.completed,
      failed: this.failed,
      interrupted: this.interrupted,
      crashed: this.crashed,
      recycled: this.recycled,
      timedOut: this.timedOut
    }))
  }

  // ---------------------------------------------------------------------------
  // Worker lifecycle
  // ---------------------------------------------------------------------------

  /**
   * Starts one worker and waits for its ready handshake. The thread's own
   * `error` and `exit` events are watched: a thread that dies while starting
   * fails the spawn instead of being respawned forever by the `WorkerManager`.
   */
  readonly spawnWorker: Effect.Effect<Live, SpawnFailure> = Effect.uninterruptibleMask((restore) =>
    Effect.gen(this, function*() {
      const id = this.nextWorkerId++
      const live: Live = {
        id,
        scope: yield* Scope.make(),
        worker: undefined,
        thread: undefined,
        isDown: false,
        downCause: undefined,
        down: Deferred.unsafeMake(FiberId.none),
        exited: Deferred.unsafeMake(FiberId.none),
        tasks: 0,
        busy: false
      }
      const spawner: Worker.SpawnerFn = () => {
        let thread: Thread
        try {
          thread = this.options.spawn(id)
        } catch (cause) {
          markDown(live, cause)
          throw cause
        }
        live.thread = thread
        const emitter = thread as EventEmitter
        emitter.once("error", (cause: unknown) => markDown(live, cause))
        emitter.once("exit", (code: number | null) => {
          markDown(live, new Error(`worker ${id} exited with code ${code}`))
          Deferred.unsafeDone(live.exited, Exit.void)
        })
        return thread
      }
      const spawned = this.manager.spawn<Envelope, unknown, unknown>({ encode: encodeEnvelope }).pipe(
        Effect.provideService(Worker.Spawner, spawner),
        Scope.extend(live.scope)
      )
      const died = Deferred.await(live.down).pipe(
        Effect.zipRight(Effect.suspend(() => Effect.fail(new WorkerError({ reason: "spawn", cause: live.downCause }))))
      )
      const exit = yield* Effect.exit(restore(Effect.raceFirst(spawned, died)))
      if (exit._tag === "Failure") {
        yield* this.closeWorker(live, true)
        return yield* Effect.failCause(
          Cause.map(exit.cause, (error) => new SpawnFailure(id, error.reason === "spawn" ? error.cause : error))
        )
      }
      live.worker = exit.value
      if (this.shuttingDown) {
        // the pool closed while this worker was starting
        yield* this.closeWorker(live, true)
        return yield* Effect.interrupt
      }
      this.workers.add(live)
      return live
    })
  )

  /**
   * Closes a worker's scope: the `WorkerManager` asks the worker to stop and
   * waits for its thread to exit. With `kill`, the thread is terminated first
   * (a thread stuck in a synchronous loop never reads the stop message).
   */
  closeWorker(live: Live, kill: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.workers.delete(live)
      const thread = live.thread
      const killed = kill && thread !== undefined
        ? Effect.sync(() => terminate(thread)).pipe(
          Effect.zipRight(Effect.timeoutOption(Deferred.await(live.exited), killTimeout)),
          Effect.asVoid
        )
        : Effect.void
      return Effect.zipRight(killed, Scope.close(live.scope, Exit.void))
    })
  }

  /**
   * Closes the pool: waiting callers are interrupted, background spawns are
   * stopped, idle workers are closed gracefully and busy ones terminated (their
   * callers are interrupted).
   */
  shutdown(fibersScope: Scope.CloseableScope): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.shuttingDown = true
      return Queue.shutdown(this.idle).pipe(
        Effect.zipRight(Scope.close(fibersScope, Exit.void)),
        Effect.zipRight(Effect.forEach(
          Array.from(this.workers),
          (live) => this.closeWorker(live, live.busy),
          { concurrency: "unbounded", discard: true }
        ))
      )
    })
  }

  /** Gives a slot back to the idle queue (unless the pool is closing). */
  release(slot: Slot): Effect.Effect<void> {
    return Effect.suspend(() => this.shuttingDown ? Effect.void : Queue.offer(this.idle, slot))
  }

  /** Starts a worker for an empty slot in the background, then gives the slot back. */
  fill(slot: Slot): Effect.Effect<void> {
    return this.spawnWorker.pipe(
      Effect.matchCauseEffect({
        onFailure: (cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.logWarning(
            `worker pool "${this.name}": could not start a worker, the next task will try again`,
            Cause.map(cause, (failure) => failure.cause)
          ),
        onSuccess: (live) =>
          Effect.sync(() => {
            slot.live = live
          })
      }),
      Effect.zipRight(this.release(slot))
    )
  }

  /**
   * Replaces the worker of a slot in the background: `retire` (if given) is
   * closed gracefully first, so the pool never holds more than `size` threads.
   */
  replace(slot: Slot, retire: Live | undefined, reason: RestartReason): Effect.Effect<void> {
    return Effect.suspend(() => {
      slot.live = undefined
      const refill = retire === undefined
        ? this.fill(slot)
        : Effect.zipRight(this.closeWorker(retire, false), this.fill(slot))
      return Effect.zipRight(
        Metric.increment(this.restartsBy[reason]),
        this.shuttingDown ? Effect.void : this.background(refill)
      )
    })
  }

  /** Forks `effect` in the pool's scope, interruptible whatever the caller's region. */
  background(effect: Effect.Effect<void>): Effect.Effect<void> {
    return Effect.asVoid(FiberSet.run(this.fibers, Effect.interruptible(effect)))
  }

  // ---------------------------------------------------------------------------
  // Tasks
  // ---------------------------------------------------------------------------

  taskError(
    request: Schema.TaggedRequest.All,
    taskId: number,
    reason: WorkerPool.WorkerTaskErrorReason,
    workerId: number | undefined,
    cause?: unknown
  ): WorkerTaskError {
    return new WorkerTaskError({ reason, pool: this.name, taskId, taskName: request._tag, workerId, cause })
  }

  /** Counts the final outcome of one `execute`, once. */
  account(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      let outcome: Outcome
      if (exit._tag === "Success") {
        this.completed++
        outcome = "success"
      } else if (Cause.isInterruptedOnly(exit.cause)) {
        this.interrupted++
        outcome = "interrupted"
      } else {
        this.failed++
        const failure = Cause.failureOption(exit.cause)
        outcome = failure._tag === "None"
          ? "defect"
          : failure.value instanceof WorkerTaskError
          ? failure.value.reason
          : "failure"
      }
      return Metric.increment(this.tasksBy[outcome])
    })
  }

  readonly execute = (request: Schema.TaggedRequest.All): Effect.Effect<any, any, any> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(this, function*() {
        const taskId = this.nextTaskId++
        const context = yield* Effect.context<never>()

        // 1. wait (FIFO) for a slot
        this.queued++
        const taken = yield* Effect.exit(restore(Queue.take(this.idle)))
        this.queued--
        if (taken._tag === "Failure") return yield* taken
        const slot = taken.value

        // 2. make sure the slot holds a live worker
        let live = slot.live
        if (live !== undefined && live.isDown) {
          // died while idle
          this.crashed++
          yield* this.closeWorker(live, true)
          yield* Metric.increment(this.restartsBy.crashed)
          slot.live = live = undefined
        }
        if (live === undefined) {
          const spawned = yield* Effect.exit(restore(this.spawnWorker))
          if (spawned._tag === "Failure") {
            yield* this.release(slot)
            const failure = Cause.failureOption(spawned.cause)
            return yield* failure._tag === "None"
              ? Effect.failCause(spawned.cause as Cause.Cause<never>)
              : Effect.fail(this.taskError(request, taskId, "spawn", failure.value.workerId, failure.value.cause))
          }
          slot.live = live = spawned.value
        }

        // 3. run the task
        const worker = live.worker!
        live.busy = true
        this.busy++
        yield* Metric.set(this.busyGauge, this.busy)
        const startedAt = yield* Clock.currentTimeMillis
        const running = Effect.exit(worker.executeEffect({ request, context }))
        const outcome = yield* Effect.exit(restore(
          this.taskTimeout === undefined ? Effect.asSome(running) : Effect.timeoutOption(running, this.taskTimeout)
        ))
        const finishedAt = yield* Clock.currentTimeMillis
        live.busy = false
        live.tasks++
        this.busy--
        yield* Metric.set(this.busyGauge, this.busy)
        yield* Metric.update(this.taskSeconds, (finishedAt - startedAt) / 1000)

        // 4. decide what happens to the worker, then to the caller
        if (outcome._tag === "Failure") {
          // the caller was interrupted: the worker may be stuck in the task
          yield* this.closeWorker(live, true)
          yield* this.replace(slot, undefined, "interrupted")
          return yield* outcome
        }
        if (Option.isNone(outcome.value)) {
          this.timedOut++
          yield* this.closeWorker(live, true)
          yield* this.replace(slot, undefined, "timeout")
          return yield* Effect.fail(this.taskError(request, taskId, "timeout", live.id))
        }
        const exit = outcome.value.value
        const failure = exit._tag === "Failure" ? Cause.failureOption(exit.cause) : Option.none()
        const workerError = Option.isSome(failure) && isWorkerError(failure.value) ? failure.value : undefined
        // a success, a typed failure, a defect raised by the handler or a codec error is an answer;
        // an error of the channel itself, or no answer from a thread that went down, is a crash
        const lost = exit._tag === "Failure" && (
          workerError?.reason === "unknown" || workerError?.reason === "send" ||
          (live.isDown && (workerError !== undefined || Option.isNone(failure)))
        )
        if (lost || live.isDown) {
          yield* this.closeWorker(live, true)
          if (this.shuttingDown) return yield* Effect.interrupt
          this.crashed++
          yield* this.replace(slot, undefined, "crashed")
          if (lost) {
            return yield* Effect.fail(
              this.taskError(request, taskId, "crashed", live.id, live.downCause ?? workerError)
            )
          }
        } else if (this.recycleAfter !== undefined && live.tasks >= this.recycleAfter) {
          this.recycled++
          yield* this.replace(slot, live, "recycled")
        } else {
          yield* this.release(slot)
        }

        // 5. decode the answer with the request's schemas
        if (exit._tag === "Success") {
          return yield* restore(Schema.deserializeSuccess(request as AnyResult, exit.value)).pipe(
            Effect.provide(context),
            Effect.mapError((cause) => this.taskError(request, taskId, "decode", live.id, cause))
          )
        }
        if (workerError !== undefined) {
          const reason = workerError.reason === "encode"
            ? "encode"
            : workerError.reason === "spawn"
            ? "spawn"
            : "decode"
          return yield* Effect.fail(this.taskError(request, taskId, reason, live.id, workerError))
        }
        if (Option.isSome(failure)) {
          const decoded = yield* restore(Schema.deserializeFailure(request as AnyResult, failure.value)).pipe(
            Effect.provide(context),
            Effect.mapError((cause) => this.taskError(request, taskId, "decode", live.id, cause))
          )
          return yield* Effect.fail(decoded)
        }
        return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
      })
    ).pipe(Effect.onExit((exit) => this.account(exit)))
}

const validate = (options: WorkerPool.WorkerPool.Options): Effect.Effect<void> => {
  if (!isPositiveInteger(options.size)) {
    return illegalArgument(`WorkerPool: size must be a positive integer, got ${options.size}`)
  }
  if (options.recycleAfter !== undefined && !isPositiveInteger(options.recycleAfter)) {
    return illegalArgument(`WorkerPool: recycleAfter must be a positive integer, got ${options.recycleAfter}`)
  }
  return Effect.void
}

/** @internal */
export const make = <I extends Schema.TaggedRequest.All>(
  options: WorkerPool.WorkerPool.Options
): Effect.Effect<WorkerPool.WorkerPool<I>, never, Scope.Scope | Worker.WorkerManager> =>
  Effect.gen(function*() {
    yield* validate(options)
    const manager = yield* Worker.WorkerManager
    const idle = yield* Queue.bounded<Slot>(options.size)
    // the background spawns live in a scope of their own, so that shutting down can stop them
    // before the workers are closed
    const fibersScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const fibers = yield* Scope.extend(FiberSet.make<void, never>(), fibersScope)
    const self = new WorkerPoolImpl<I>(options, manager, idle, fibers)
    yield* Effect.addFinalizer(() => self.shutdown(fibersScope))
    for (let i = 0; i < options.size; i++) {
      yield* self.background(self.fill({ live: undefined }))
    }
    return self
  })

/** @internal */
export const layer = <Id, I extends Schema.TaggedRequest.All>(
  tag: Context.Tag<Id, WorkerPool.WorkerPool<I>>,
  options: WorkerPool.WorkerPool.Options
): Layer.Layer<Id, never, Worker.WorkerManager> => Layer.scoped(tag, make<I>(options))

/** @internal */
export const layerNode = <Id, I extends Schema.TaggedRequest.All>(
  tag: Context.Tag<Id, WorkerPool.WorkerPool<I>>,
  options: WorkerPool.WorkerPool.Options
): Layer.Layer<Id> => Layer.provide(layer(tag, options), NodeWorker.layerManager)

/** @internal */
export const runner = <
  A extends Schema.TaggedRequest.All,
  I,
  R,
  const Handlers extends WorkerRunner.SerializedRunner.Handlers<A>
>(
  schema: Schema.Schema<A, I, R>,
  handlers: Handlers
): Effect.Effect<void, WorkerError, R | WorkerRunner.SerializedRunner.HandlersContext<Handlers>> =>
  WorkerRunner.launch(
    WorkerRunner.layerSerialized(schema, handlers).pipe(Layer.provide(NodeWorkerRunner.layer))
  )
