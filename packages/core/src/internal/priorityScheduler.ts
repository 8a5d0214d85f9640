import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as Option from "effect/Option"
import { pipeArguments } from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type * as PS from "../PriorityScheduler.js"
import { SchedulerClosed, SchedulerFull } from "../PriorityScheduler.js"
import { illegalArgument, isPositiveInteger } from "./shared.js"

/** @internal */
export const TypeId: PS.TypeId = Symbol.for("@spindle/core/PriorityScheduler") as PS.TypeId

/** @internal */
export const priorities: readonly ["critical", "high", "normal", "low"] = ["critical", "high", "normal", "low"]

/** @internal */
export const defaultWeights: PS.Weights = { critical: 4, high: 3, normal: 2, low: 1 }

const LEVELS = 4
const CRITICAL = 0

const levelOf: Record<PS.Priority, number> = { critical: 0, high: 1, normal: 2, low: 3 }

// -----------------------------------------------------------------------------
// Entries and queues
// -----------------------------------------------------------------------------

const WAITING = 0 // waiting for room in the queue (backpressure)
const QUEUED = 1
const RUNNING = 2
const DONE = 3

// Error kinds, indexes into the scheduler's error cache
const CLOSED = 0
const DROPPED = 1
const INTERRUPTED = 2
const FULL = 3
const closedReasons: ReadonlyArray<PS.SchedulerClosedReason> = ["Closed", "Dropped", "Interrupted"]

type State = typeof WAITING | typeof QUEUED | typeof RUNNING | typeof DONE

/**
 * One submitted task. Its state only moves forward:
 * WAITING → QUEUED → RUNNING → DONE, or to DONE from any state.
 */
class Entry {
  state: State = QUEUED
  /** The level of the queue it sits in (it rises with aging). */
  level: number
  /** When it entered its current level (aging counts from there). */
  enteredAt = 0
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined = undefined
  /** Set when the scheduler's close interrupts it. */
  closing = false
  /** Only for `fork` under backpressure: resumes the forker on admission into the queue (or refusal). */
  onAdmit: ((exit: Exit.Exit<void, SchedulerClosed>) => void) | undefined = undefined
  /** Callbacks waiting for the outcome (the submitter, `Task.await` callers). */
  listeners: Array<(exit: Exit.Exit<any, any>) => void> | undefined = undefined
  exit: Exit.Exit<unknown, unknown> | undefined = undefined

  constructor(
    readonly effect: Effect.Effect<unknown, unknown, any>,
    readonly runtime: Runtime.Runtime<any>,
    readonly base: number,
    readonly submittedAt: number
  ) {
    this.level = base
  }
}

/**
 * A FIFO queue over an array with a head index. Entries are removed lazily: a
 * withdrawn or promoted entry stays in the array until it reaches the head, and
 * is skipped there (`alive` says whether an entry still belongs to the queue).
 */
class Fifo {
  private items: Array<Entry | undefined> = []
  private head = 0

  constructor(private readonly alive: (entry: Entry) => boolean) {}

  push(entry: Entry): void {
    this.items.push(entry)
  }

  peek(): Entry | undefined {
    const items = this.items
    while (this.head < items.length) {
      const entry = items[this.head]!
      if (this.alive(entry)) return entry
      items[this.head++] = undefined
    }
    this.reset()
    return undefined
  }

  shift(): Entry | undefined {
    const entry = this.peek()
    if (entry !== undefined) {
      this.items[this.head++] = undefined
      if (this.head === this.items.length) {
        this.reset()
      } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
        this.items = this.items.slice(this.head)
        this.head = 0
      }
    }
    return entry
  }

  /** Drops dead entries when they outnumber the live ones (after many withdrawals). */
  compact(live: number): void {
    const size = this.items.length - this.head
    if (size > 1024 && size > 2 * live) {
      const items: Array<Entry | undefined> = []
      for (let i = this.head; i < this.items.length; i++) {
        const entry = this.items[i]!
        if (this.alive(entry)) items.push(entry)
      }
      this.items = items
      this.head = 0
    }
  }

  private reset(): void {
    this.items = []
    this.head = 0
  }
}

// -----------------------------------------------------------------------------
// Statistics and metrics
// -----------------------------------------------------------------------------

class Counters {
  running = 0
  dispatched = 0
  completed = 0
  failed = 0
  interrupted = 0
  cancelled = 0
  rejected = 0
  promoted = 0
  waitSum = 0
  maxWait = 0
}

const waitBoundaries = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 24 })

class LevelMetrics {
  readonly queued: Metric.Metric.Gauge<number>
  readonly dispatched: Metric.Metric.Counter<number>
  readonly waitSeconds: Metric.Metric.Histogram<number>
  readonly promoted: Metric.Metric.Counter<number>
  readonly rejected: Metric.Metric.Counter<number>

  constructor(scheduler: string, level: PS.Priority) {
    const tag = <K extends MetricKey.MetricKey<any>>(key: K): K =>
      MetricKey.tagged(MetricKey.tagged(key, "scheduler", scheduler), "level", level) as K
    this.queued = Metric.fromMetricKey(tag(MetricKey.gauge("spindle_scheduler_queued", {
      description: "Tasks queued in a priority level (after aging)"
    })))
    this.dispatched = Metric.fromMetricKey(tag(MetricKey.counter("spindle_scheduler_dispatched_total", {
      description: "Tasks handed a slot, by submitted level"
    })))
    this.waitSeconds = Metric.fromMetricKey(tag(MetricKey.histogram(
      "spindle_scheduler_wait_seconds",
      waitBoundaries,
      "Time from submission to dispatch, in seconds, by submitted level"
    )))
    this.promoted = Metric.fromMetricKey(tag(MetricKey.counter("spindle_scheduler_promoted_total", {
      description: "Promotions by aging, by the level the task left"
    })))
    this.rejected = Metric.fromMetricKey(tag(MetricKey.counter("spindle_scheduler_rejected_total", {
      description: "Submissions refused because the queue was full"
    })))
  }
}

const noTags: ReadonlyArray<never> = []

const levelStats = (counters: Counters, queued: number): PS.PriorityScheduler.LevelStats => ({
  queued,
  running: counters.running,
  dispatched: counters.dispatched,
  completed: counters.completed,
  failed: counters.failed,
  interrupted: counters.interrupted,
  cancelled: counters.cancelled,
  rejected: counters.rejected,
  promoted: counters.promoted,
  meanWait: Duration.millis(counters.dispatched === 0 ? 0 : counters.waitSum / counters.dispatched),
  maxWait: Duration.millis(counters.maxWait)
})

// -----------------------------------------------------------------------------
// Scheduler
// -----------------------------------------------------------------------------

interface Config {
  readonly name: string
  readonly concurrency: number
  readonly capacity: number
  readonly policy: PS.Policy
  readonly weights: PS.Weights
  readonly agingMillis: number
  readonly reject: boolean
  readonly drain: boolean
  readonly drainTimeout: Duration.Duration | undefined
}

/**
 * All the state is plain mutable fields changed by synchronous methods, so
 * every transition is atomic with respect to other fibers. Task fibers are
 * started with `immediate: false`, so no user code runs inside a transition.
 */
class SchedulerImpl implements PS.PriorityScheduler {
  readonly [TypeId]: PS.TypeId = TypeId
  readonly name: string
  readonly concurrency: number

  private readonly weights: Array<number>
  private readonly queues: Array<Fifo> = []
  private readonly waiters = new Fifo((entry) => entry.state === WAITING)
  /** Queued tasks by current level. */
  private readonly queued = [0, 0, 0, 0]
  private queuedTotal = 0
  private waitingCount = 0
  private runningCount = 0
  private readonly running = new Set<Entry>()
  /** Current weights of the smooth weighted round-robin. */
  private readonly current = [0, 0, 0, 0]
  private paused = false
  private closed = false
  private idle: Deferred.Deferred<void> | undefined = undefined
  private agingWake: Deferred.Deferred<void> | undefined = undefined

  private readonly counters: Array<Counters> = []
  private readonly metrics: Array<LevelMetrics> = []
  private readonly runningGauge: Metric.Metric.Gauge<number>
  private readonly publishedQueued = [0, 0, 0, 0]
  private publishedRunning = 0

  constructor(private readonly config: Config, private readonly clock: Clock.Clock) {
    // bound, so that point-free use such as `effect.pipe(x.submit)` works
    this.submit = this.submit.bind(this)
    this.fork = this.fork.bind(this)
    this.name = config.name
    this.concurrency = config.concurrency
    this.weights = priorities.map((p) => config.weights[p])
    for (let level = 0; level < LEVELS; level++) {
      this.queues.push(new Fifo((entry) => entry.state === QUEUED && entry.level === level))
      this.counters.push(new Counters())
      this.metrics.push(new LevelMetrics(config.name, priorities[level]))
      this.metrics[level].queued.unsafeUpdate(0, noTags)
    }
    this.runningGauge = Metric.fromMetricKey(
      MetricKey.tagged(
        MetricKey.gauge("spindle_scheduler_running", { description: "Tasks running now" }),
        "scheduler",
        config.name
      )
    )
    this.runningGauge.unsafeUpdate(0, noTags)
  }

  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }

  // ---------------------------------------------------------------------------
  // Public operations
  // ---------------------------------------------------------------------------

  submit<A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: PS.PriorityScheduler.SubmitOptions | undefined
  ): Effect.Effect<A, E | PS.SchedulerFull | PS.SchedulerClosed, R> {
    const base = levelOf[options?.priority ?? "normal"]
    // The task is offered inside `async`'s registration: if the caller is
    // interrupted before it, nothing was queued; after it, the canceler
    // withdraws or interrupts the task.
    return Effect.flatMap(
      Effect.runtime<R>(),
      (runtime) =>
        Effect.async<A, E | PS.SchedulerFull | PS.SchedulerClosed>((resume) => {
          const entry = this.offer(effect, runtime, base)
          if (!(entry instanceof Entry)) return resume(Exit.fail(entry))
          entry.listeners = [resume as (exit: Exit.Exit<any, any>) => void]
          return this.cancel(entry)
        })
    )
  }

  fork<A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: PS.PriorityScheduler.SubmitOptions | undefined
  ): Effect.Effect<PS.Task<A, E>, PS.SchedulerFull | PS.SchedulerClosed, R> {
    const base = levelOf[options?.priority ?? "normal"]
    return Effect.flatMap(
      Effect.runtime<R>(),
      (runtime) =>
        Effect.async<PS.Task<A, E>, PS.SchedulerFull | PS.SchedulerClosed>((resume) => {
          const entry = this.offer(effect, runtime, base)
          if (!(entry instanceof Entry)) return resume(Exit.fail(entry))
          const task = new TaskImpl<A, E>(this, entry)
          if (entry.state !== WAITING) return resume(Exit.succeed(task))
          entry.onAdmit = (exit) => resume(Exit.as(exit, task))
          return this.cancel(entry)
        })
    )
  }

  readonly pause: Effect.Effect<void> = Effect.sync(() => {
    // A closing scheduler in drain mode must not be stopped half-way.
    if (!this.closed) this.paused = true
  })

  readonly resume: Effect.Effect<void> = Effect.sync(() => {
    this.paused = false
    this.pump(undefined)
  })

  readonly stats: Effect.Effect<PS.PriorityScheduler.Stats> = Effect.sync(() => {
    const total = new Counters()
    const levels = {} as Record<PS.Priority, PS.PriorityScheduler.LevelStats>
    for (let level = 0; level < LEVELS; level++) {
      const counters = this.counters[level]
      levels[priorities[level]] = levelStats(counters, this.queued[level])
      total.running += counters.running
      total.dispatched += counters.dispatched
      total.completed += counters.completed
      total.failed += counters.failed
      total.interrupted += counters.interrupted
      total.cancelled += counters.cancelled
      total.rejected += counters.rejected
      total.promoted += counters.promoted
      total.waitSum += counters.waitSum
      total.maxWait = Math.max(total.maxWait, counters.maxWait)
    }
    return {
      name: this.name,
      policy: this.config.policy,
      weights: this.config.weights,
      concurrency: this.concurrency,
      capacity: Number.isFinite(this.config.capacity) ? Option.some(this.config.capacity) : Option.none(),
      paused: this.paused,
      closed: this.closed,
      waiting: this.waitingCount,
      levels,
      total: levelStats(total, this.queuedTotal)
    }
  })

  // ---------------------------------------------------------------------------
  // Transitions (synchronous)
  // ---------------------------------------------------------------------------

  /** Admits a new task into the queue, the waiting line, or refuses it. */
  private offer(
    effect: Effect.Effect<unknown, unknown, any>,
    runtime: Runtime.Runtime<any>,
    base: number
  ): Entry | PS.SchedulerFull | PS.SchedulerClosed {
    if (this.closed) return this.closedError(base, CLOSED)
    if (this.waitingCount === 0 && this.queuedTotal < this.config.capacity) {
      const now = this.clock.unsafeCurrentTimeMillis()
      const entry = new Entry(effect, runtime, base, now)
      this.enqueue(entry, now)
      this.pump(now)
      return entry
    }
    if (this.config.reject) {
      this.counters[base].rejected++
      this.metrics[base].rejected.unsafeUpdate(1, noTags)
      return this.fullError(base)
    }
    const entry = new Entry(effect, runtime, base, this.clock.unsafeCurrentTimeMillis())
    entry.state = WAITING
    this.waiters.push(entry)
    this.waitingCount++
    return entry
  }

  private enqueue(entry: Entry, now: number): void {
    const level = entry.base
    entry.state = QUEUED
    entry.level = level
    entry.enteredAt = now
    this.queues[level].push(entry)
    this.queued[level]++
    this.queuedTotal++
    if (level > CRITICAL && this.agingWake !== undefined) {
      const wake = this.agingWake
      this.agingWake = undefined
      Deferred.unsafeDone(wake, Exit.void)
    }
  }

  /**
   * Admits waiters while there is room and dispatches while there are free
   * slots, then publishes the gauges. Reads the clock at most once.
   */
  private pump(now: number | undefined): void {
    const capacity = this.config.capacity
    for (;;) {
      while (this.waitingCount > 0 && this.queuedTotal < capacity) {
        const entry = this.waiters.shift()!
        this.waitingCount--
        if (now === undefined) now = this.clock.unsafeCurrentTimeMillis()
        this.enqueue(entry, now)
        if (entry.onAdmit !== undefined) entry.onAdmit(Exit.void)
      }
      if (this.paused || this.runningCount >= this.concurrency || this.queuedTotal === 0) break
      const level = this.config.policy === "strict" ? this.pickStrict() : this.pickWeighted()
      const entry = this.queues[level].shift()!
      this.queued[level]--
      this.queuedTotal--
      if (now === undefined) now = this.clock.unsafeCurrentTimeMillis()
      this.start(entry, now)
    }
    if (this.queuedTotal === 0) {
      // Nothing queued: forget the round-robin history.
      this.current.fill(0)
    }
    this.publish()
    this.checkIdle()
  }

  private pickStrict(): number {
    let level = 0
    while (this.queued[level] === 0) level++
    return level
  }

  /** nginx's smooth weighted round-robin over the non-empty levels. */
  private pickWeighted(): number {
    const current = this.current
    let best = -1
    let total = 0
    for (let level = 0; level < LEVELS; level++) {
      if (this.queued[level] === 0) continue
      const weight = this.weights[level]
      current[level] += weight
      total += weight
      if (best === -1 || current[level] > current[best]) best = level
    }
    current[best] -= total
    return best
  }

  private start(entry: Entry, now: number): void {
    entry.state = RUNNING
    this.runningCount++
    this.running.add(entry)
    const counters = this.counters[entry.base]
    const metrics = this.metrics[entry.base]
    const wait = Math.max(0, now - entry.submittedAt)
    counters.running++
    counters.dispatched++
    counters.waitSum += wait
    if (wait > counters.maxWait) counters.maxWait = wait
    metrics.dispatched.unsafeUpdate(1, noTags)
    metrics.waitSeconds.unsafeUpdate(wait / 1000, noTags)
    const fiber = Runtime.runFork(entry.runtime)(Effect.interruptible(entry.effect), { immediate: false })
    entry.fiber = fiber
    fiber.addObserver((exit) => this.finish(entry, exit))
  }

  private finish(entry: Entry, exit: Exit.Exit<unknown, unknown>): void {
    this.runningCount--
    this.running.delete(entry)
    const counters = this.counters[entry.base]
    counters.running--
    let outcome = exit
    if (Exit.isSuccess(exit)) {
      counters.completed++
    } else if (Cause.isInterruptedOnly(exit.cause)) {
      counters.interrupted++
      if (entry.closing) outcome = Exit.fail(this.closedError(entry.base, INTERRUPTED))
    } else {
      counters.failed++
    }
    this.complete(entry, outcome)
    this.pump(undefined)
  }

  private complete(entry: Entry, exit: Exit.Exit<unknown, unknown>): void {
    entry.state = DONE
    entry.exit = exit
    const listeners = entry.listeners
    if (listeners !== undefined) {
      entry.listeners = undefined
      for (const listener of listeners) listener(exit)
    }
  }

  /** Withdraws a task that has not run yet, or interrupts it if it runs. */
  cancel(entry: Entry): Effect.Effect<void> {
    return Effect.fiberIdWith((by) => {
      switch (entry.state) {
        case WAITING: {
          this.waitingCount--
          this.counters[entry.base].cancelled++
          this.complete(entry, Exit.interrupt(by))
          if (entry.onAdmit !== undefined) entry.onAdmit(Exit.interrupt(by))
          this.waiters.compact(this.waitingCount)
          return Effect.void
        }
        case QUEUED: {
          this.queued[entry.level]--
          this.queuedTotal--
          this.counters[entry.base].cancelled++
          this.complete(entry, Exit.interrupt(by))
          this.queues[entry.level].compact(this.queued[entry.level])
          this.pump(undefined)
          return Effect.void
        }
        case RUNNING:
          return Fiber.interrupt(entry.fiber!)
        default:
          return Effect.void
      }
    }).pipe(Effect.asVoid)
  }

  /** Promotes every task that has waited `aging` in its level, lowest levels first. */
  private promote(now: number): void {
    const after = this.config.agingMillis
    let moved = false
    for (let level = LEVELS - 1; level > CRITICAL; level--) {
      const queue = this.queues[level]
      for (;;) {
        const head = queue.peek()
        if (head === undefined || head.enteredAt + after > now) break
        queue.shift()
        head.level = level - 1
        head.enteredAt += after
        this.queued[level]--
        this.queued[level - 1]++
        this.queues[level - 1].push(head)
        this.counters[head.base].promoted++
        this.metrics[level].promoted.unsafeUpdate(1, noTags)
        moved = true
      }
    }
    if (moved) this.publish()
  }

  /** When the next promotion falls due, if any task can still be promoted. */
  private nextPromotion(): number | undefined {
    let due: number | undefined = undefined
    for (let level = CRITICAL + 1; level < LEVELS; level++) {
      const head = this.queues[level].peek()
      if (head !== undefined) {
        const at = head.enteredAt + this.config.agingMillis
        if (due === undefined || at < due) due = at
      }
    }
    return due
  }

  /** The aging fiber: sleeps until the next promotion falls due, or until a task can age. */
  readonly agingLoop: Effect.Effect<never> = Effect.forever(Effect.suspend(() => {
    const now = this.clock.unsafeCurrentTimeMillis()
    this.promote(now)
    const due = this.nextPromotion()
    if (due === undefined) {
      const wake = Deferred.unsafeMake<void>(FiberId.none)
      this.agingWake = wake
      return Deferred.await(wake)
    }
    return Effect.sleep(Duration.millis(due - now))
  }))

  private publish(): void {
    for (let level = 0; level < LEVELS; level++) {
      const queued = this.queued[level]
      if (queued !== this.publishedQueued[level]) {
        this.publishedQueued[level] = queued
        this.metrics[level].queued.unsafeUpdate(queued, noTags)
      }
    }
    if (this.runningCount !== this.publishedRunning) {
      this.publishedRunning = this.runningCount
      this.runningGauge.unsafeUpdate(this.runningCount, noTags)
    }
  }

  private checkIdle(): void {
    if (this.idle !== undefined && this.queuedTotal === 0 && this.runningCount === 0) {
      const idle = this.idle
      this.idle = undefined
      Deferred.unsafeDone(idle, Exit.void)
    }
  }

  /**
   * Errors are immutable data: one instance per level and reason is shared by
   * every task it concerns (capturing a stack trace per dropped task would make
   * closing a large queue slow).
   */
  private readonly errors: Array<SchedulerClosed | SchedulerFull | undefined> = []

  private closedError(base: number, reason: number): SchedulerClosed {
    const index = reason * LEVELS + base
    return (this.errors[index] ??= new SchedulerClosed({
      reason: closedReasons[reason],
      scheduler: this.name,
      priority: priorities[base]
    })) as SchedulerClosed
  }

  private fullError(base: number): SchedulerFull {
    const index = FULL * LEVELS + base
    return (this.errors[index] ??= new SchedulerFull({
      scheduler: this.name,
      priority: priorities[base],
      capacity: this.config.capacity
    })) as SchedulerFull
  }

  // ---------------------------------------------------------------------------
  // Shutdown
  // ---------------------------------------------------------------------------

  private readonly awaitIdle: Effect.Effect<void> = Effect.suspend(() => {
    if (this.queuedTotal === 0 && this.runningCount === 0) return Effect.void
    if (this.idle === undefined) this.idle = Deferred.unsafeMake(FiberId.none)
    return Deferred.await(this.idle)
  })

  /** Fails every queued task with `Dropped`, interrupts the running ones and waits for them. */
  private readonly interruptAll: Effect.Effect<void> = Effect.suspend(() => {
    for (let level = 0; level < LEVELS; level++) {
      const queue = this.queues[level]
      let entry: Entry | undefined
      while ((entry = queue.shift()) !== undefined) {
        this.counters[entry.base].cancelled++
        this.complete(entry, Exit.fail(this.closedError(entry.base, DROPPED)))
      }
      this.queued[level] = 0
    }
    this.queuedTotal = 0
    this.publish()
    const fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
    for (const entry of this.running) {
      entry.closing = true
      fibers.push(entry.fiber!)
    }
    return Fiber.interruptAll(fibers)
  })

  /** Stops intake, then drains or interrupts. */
  readonly shutdown: Effect.Effect<void> = Effect.suspend(() => {
    if (this.closed) return Effect.void
    this.closed = true
    let entry: Entry | undefined
    while ((entry = this.waiters.shift()) !== undefined) {
      this.waitingCount--
      const error = this.closedError(entry.base, CLOSED)
      this.complete(entry, Exit.fail(error))
      if (entry.onAdmit !== undefined) entry.onAdmit(Exit.fail(error))
    }
    if (!this.config.drain) return this.interruptAll
    this.paused = false
    this.pump(undefined)
    const timeout = this.config.drainTimeout
    if (timeout === undefined) return this.awaitIdle
    return Effect.flatMap(
      Effect.timeoutOption(Effect.interruptible(this.awaitIdle), timeout),
      (drained) => Option.isSome(drained) ? Effect.void : this.interruptAll
    )
  })
}

class TaskImpl<A, E> implements PS.Task<A, E> {
  readonly priority: PS.Priority

  constructor(private readonly scheduler: SchedulerImpl, private readonly entry: Entry) {
    this.priority = priorities[entry.base]
  }

  get await(): Effect.Effect<A, E | PS.SchedulerClosed> {
    return Effect.async<A, E | PS.SchedulerClosed>((resume) => {
      const entry = this.entry
      if (entry.exit !== undefined) return resume(entry.exit as Exit.Exit<A, E | PS.SchedulerClosed>)
      const listener = resume as (exit: Exit.Exit<any, any>) => void
      const listeners = (entry.listeners ??= [])
      listeners.push(listener)
      return Effect.sync(() => {
        const index = listeners.indexOf(listener)
        if (index !== -1) listeners.splice(index, 1)
      })
    })
  }

  get poll(): Effect.Effect<Option.Option<Exit.Exit<A, E | PS.SchedulerClosed>>> {
    return Effect.sync(() => Option.fromNullable(this.entry.exit as Exit.Exit<A, E | PS.SchedulerClosed> | undefined))
  }

  get status(): Effect.Effect<PS.TaskStatus> {
    return Effect.sync(() => {
      switch (this.entry.state) {
        case WAITING:
        case QUEUED:
          return "queued"
        case RUNNING:
          return "running"
        default:
          return "done"
      }
    })
  }

  get cancel(): Effect.Effect<void> {
    return this.scheduler.cancel(this.entry)
  }
}

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

const invalid = (name: string, message: string): Effect.Effect<never> =>
  illegalArgument(`PriorityScheduler "${name}": ${message}`)

/** @internal */
export const make = (
  options: PS.PriorityScheduler.Options
): Effect.Effect<PS.PriorityScheduler, never, Scope.Scope> =>
  Effect.gen(function*() {
    const name = options.name
    if (!isPositiveInteger(options.concurrency)) {
      return yield* invalid(name, `concurrency must be a positive integer, got ${options.concurrency}`)
    }
    const capacity = options.capacity ?? Infinity
    if (options.capacity !== undefined && !isPositiveInteger(options.capacity)) {
      return yield* invalid(name, `capacity must be a positive integer, got ${options.capacity}`)
    }
    const weights: PS.Weights = { ...defaultWeights, ...stripUndefined(options.weights) }
    for (const priority of priorities) {
      const weight = weights[priority]
      if (!(Number.isFinite(weight) && weight > 0)) {
        return yield* invalid(name, `weight of ${priority} must be a positive finite number, got ${weight}`)
      }
    }
    let agingMillis = 0
    if (options.aging !== undefined) {
      agingMillis = Duration.toMillis(Duration.decode(options.aging.after))
      if (!(Number.isFinite(agingMillis) && agingMillis > 0)) {
        return yield* invalid(name, `aging.after must be a positive finite duration`)
      }
    }
    const config: Config = {
      name,
      concurrency: options.concurrency,
      capacity,
      policy: options.policy ?? "weighted",
      weights,
      agingMillis,
      reject: options.onFull === "reject",
      drain: options.onClose !== "interrupt",
      drainTimeout: options.drainTimeout === undefined ? undefined : Duration.decode(options.drainTimeout)
    }
    const clock = yield* Effect.clock
    const scheduler = new SchedulerImpl(config, clock)
    if (agingMillis > 0) yield* Effect.forkScoped(scheduler.agingLoop)
    // Added after the aging fiber, so it runs first: aging goes on while draining.
    yield* Effect.addFinalizer(() => scheduler.shutdown)
    return scheduler
  })

const stripUndefined = (weights: Partial<PS.Weights> | undefined): Partial<PS.Weights> => {
  const out: { -readonly [P in PS.Priority]?: number } = {}
  if (weights !== undefined) {
    for (const priority of priorities) {
      const weight = weights[priority]
      if (weight !== undefined) out[priority] = weight
    }
  }
  return out
}

/** @internal */
export const layer = <I>(
  tag: Context.Tag<I, PS.PriorityScheduler>,
  options: PS.PriorityScheduler.Options
): Layer.Layer<I> => Layer.scoped(tag, make(options))

/** @internal */
export const submit: {
  (
    scheduler: PS.PriorityScheduler,
    options?: PS.PriorityScheduler.SubmitOptions | undefined
  ): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PS.SchedulerFull | PS.SchedulerClosed, R>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    scheduler: PS.PriorityScheduler,
    options?: PS.PriorityScheduler.SubmitOptions | undefined
  ): Effect.Effect<A, E | PS.SchedulerFull | PS.SchedulerClosed, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    scheduler: PS.PriorityScheduler,
    options?: PS.PriorityScheduler.SubmitOptions | undefined
  ): Effect.Effect<A, E | PS.SchedulerFull | PS.SchedulerClosed, R> => scheduler.submit(effect, options)
)

/** @internal */
export const isPriorityScheduler = (u: unknown): u is PS.PriorityScheduler => hasProperty(u, TypeId)
