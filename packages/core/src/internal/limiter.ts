import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import { pipeArguments } from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import type * as Scheduler from "effect/Scheduler"
import type * as Limiter from "../Limiter.js"
import { append, isPositiveInteger, nanosToDuration, unlink } from "./shared.js"

/** @internal */
export const TypeId: Limiter.TypeId = Symbol.for("@spindle/core/Limiter") as Limiter.TypeId

// -----------------------------------------------------------------------------
// Outcomes
// -----------------------------------------------------------------------------

/** @internal */
export const COMPLETED = 0
/** @internal */
export const FAILED = 1
/** @internal */
export const INTERRUPTED = 2

/** @internal */
export type Outcome = typeof COMPLETED | typeof FAILED | typeof INTERRUPTED

/** @internal */
export const outcomeOfCause = (cause: Cause.Cause<unknown>): Outcome =>
  Cause.isInterruptedOnly(cause) ? INTERRUPTED : FAILED

/** @internal */
export const outcomeOfExit = (exit: Exit.Exit<unknown, unknown>): Outcome =>
  exit._tag === "Success" ? COMPLETED : outcomeOfCause(exit.cause)

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

const waitBoundaries = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 })

const NO_TAGS: ReadonlyArray<never> = []

/**
 * The metric instruments of one limiter (or of the totals of one keyed limiter).
 *
 * Metric updates are coalesced: a state change only marks the sink dirty, and
 * the first change after a flush schedules one flush task on the scheduler.
 * Every change made in between (often thousands of items in a tight
 * `forEach`) costs a boolean test. The wait histogram observes only
 * acquisitions that actually queued, when they are granted (they are on the
 * slow path already): the fast path never touches it.
 *
 * @internal
 */
export class MetricSink {
  readonly inFlight: Metric.Metric.Gauge<number>
  readonly waiting: Metric.Metric.Gauge<number>
  readonly completed: Metric.Metric.Counter<number>
  readonly failed: Metric.Metric.Counter<number>
  readonly interrupted: Metric.Metric.Counter<number>
  readonly waitSeconds: Metric.Metric.Histogram<number>
  readonly keys: Metric.Metric.Gauge<number> | undefined
  readonly evicted: Metric.Metric.Counter<number> | undefined
  tally!: Tally
  scheduled = false
  flushedCompleted = 0
  flushedFailed = 0
  flushedInterrupted = 0
  flushedEvicted = 0
  /** how many keys the owner holds (keyed limiters only) */
  keyCount = 0
  evictedCount = 0

  constructor(
    prefix: string,
    name: string,
    readonly scheduler: Scheduler.Scheduler,
    keyed: boolean
  ) {
    const tag = <K extends MetricKey.MetricKey<any>>(key: K): K => MetricKey.tagged(key, "limiter", name) as K
    this.inFlight = Metric.fromMetricKey(tag(MetricKey.gauge(`${prefix}_in_flight`, {
      description: "Effects currently holding a permit"
    })))
    this.waiting = Metric.fromMetricKey(tag(MetricKey.gauge(`${prefix}_waiting`, {
      description: "Effects queued for a permit"
    })))
    this.completed = Metric.fromMetricKey(tag(MetricKey.counter(`${prefix}_completed_total`, {
      description: "Effects that ran under the limiter and succeeded"
    })))
    this.failed = Metric.fromMetricKey(tag(MetricKey.counter(`${prefix}_failed_total`, {
      description: "Effects that ran under the limiter and failed or died"
    })))
    this.interrupted = Metric.fromMetricKey(tag(MetricKey.counter(`${prefix}_interrupted_total`, {
      description: "Effects that were interrupted while holding a permit"
    })))
    this.waitSeconds = Metric.fromMetricKey(tag(MetricKey.histogram(
      `${prefix}_wait_seconds`,
      waitBoundaries,
      "Time spent queued for a permit by acquisitions that had to wait, in seconds"
    )))
    if (keyed) {
      this.keys = Metric.fromMetricKey(tag(MetricKey.gauge(`${prefix}_keys`, {
        description: "Keys currently held by the keyed limiter"
      })))
      this.evicted = Metric.fromMetricKey(tag(MetricKey.counter(`${prefix}_evicted_total`, {
        description: "Idle keys dropped by the keyed limiter"
      })))
    } else {
      this.keys = undefined
      this.evicted = undefined
    }
  }

  mark(): void {
    if (!this.scheduled) {
      this.scheduled = true
      this.scheduler.scheduleTask(this.flush, 0)
    }
  }

  observeWait(nanos: number): void {
    this.waitSeconds.unsafeUpdate(nanos / 1e9, NO_TAGS)
  }

  readonly flush = (): void => {
    this.scheduled = false
    const t = this.tally
    this.inFlight.unsafeUpdate(t.inFlight, NO_TAGS)
    this.waiting.unsafeUpdate(t.waiting, NO_TAGS)
    if (t.completed !== this.flushedCompleted) {
      this.completed.unsafeUpdate(t.completed - this.flushedCompleted, NO_TAGS)
      this.flushedCompleted = t.completed
    }
    if (t.failed !== this.flushedFailed) {
      this.failed.unsafeUpdate(t.failed - this.flushedFailed, NO_TAGS)
      this.flushedFailed = t.failed
    }
    if (t.interrupted !== this.flushedInterrupted) {
      this.interrupted.unsafeUpdate(t.interrupted - this.flushedInterrupted, NO_TAGS)
      this.flushedInterrupted = t.interrupted
    }
    if (this.keys !== undefined) {
      this.keys.unsafeUpdate(this.keyCount, NO_TAGS)
    }
    if (this.evicted !== undefined && this.evictedCount !== this.flushedEvicted) {
      this.evicted.unsafeUpdate(this.evictedCount - this.flushedEvicted, NO_TAGS)
      this.flushedEvicted = this.evictedCount
    }
  }
}

// -----------------------------------------------------------------------------
// Tally: the live statistics of a limiter
// -----------------------------------------------------------------------------

/**
 * Plain counters updated synchronously on every state change. Reading them is
 * always exact; metrics are derived from them lazily by a `MetricSink`.
 *
 * @internal
 */
export class Tally {
  inFlight = 0
  peak = 0
  waiting = 0
  completed = 0
  failed = 0
  interrupted = 0
  /** acquisitions that found a free permit */
  immediate = 0
  /** acquisitions that were granted a permit after queueing */
  waited = 0
  totalWaitNanos = 0
  maxWaitNanos = 0

  constructor(readonly sink: MetricSink | undefined) {
    if (sink !== undefined) {
      sink.tally = this
    }
  }

  acquired(): void {
    const n = ++this.inFlight
    if (n > this.peak) this.peak = n
    this.immediate++
    if (this.sink !== undefined) this.sink.mark()
  }

  enqueued(): void {
    this.waiting++
    if (this.sink !== undefined) this.sink.mark()
  }

  /** a queued waiter received the permit of a finishing effect (in flight is unchanged) */
  granted(waitNanos: number): void {
    this.waiting--
    this.waited++
    this.totalWaitNanos += waitNanos
    if (waitNanos > this.maxWaitNanos) this.maxWaitNanos = waitNanos
    if (this.sink !== undefined) {
      this.sink.observeWait(waitNanos)
      this.sink.mark()
    }
  }

  /** a queued waiter gave up (interrupted) */
  cancelled(): void {
    this.waiting--
    if (this.sink !== undefined) this.sink.mark()
  }

  finished(outcome: Outcome): void {
    if (outcome === COMPLETED) this.completed++
    else if (outcome === FAILED) this.failed++
    else this.interrupted++
  }

  freed(): void {
    this.inFlight--
    if (this.sink !== undefined) this.sink.mark()
  }

  stats(name: string, limit: number): Limiter.Limiter.Stats {
    if (this.sink !== undefined) this.sink.flush()
    const acquisitions = this.immediate + this.waited
    return {
      name,
      limit,
      inFlight: this.inFlight,
      peak: this.peak,
      waiting: this.waiting,
      completed: this.completed,
      failed: this.failed,
      interrupted: this.interrupted,
      meanWait: acquisitions === 0 ? Duration.zero : nanosToDuration(this.totalWaitNanos / acquisitions),
      maxWait: nanosToDuration(this.maxWaitNanos)
    }
  }
}

// -----------------------------------------------------------------------------
// Permits: a FIFO semaphore with direct hand-over
// -----------------------------------------------------------------------------

const WAITING = 0
const GRANTED = 1
const DONE = 2

/**
 * A queued acquisition. It is linked into the queue as soon as it is created
 * (synchronously, in the caller's fiber), so the decision "wait or not" and
 * the enqueue are atomic; the fiber then suspends until `resume` is called.
 *
 * @internal
 */
export class Waiter {
  state: typeof WAITING | typeof GRANTED | typeof DONE = WAITING
  prev: Waiter | undefined = undefined
  next: Waiter | undefined = undefined
  resume: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  constructor(readonly start: bigint) {}
}

/**
 * The permit machinery shared by `Limiter` and every key of a `KeyedLimiter`.
 *
 * - Fast path: a free permit and nobody queued → one increment, no clock read,
 *   no allocation.
 * - Slow path: a `Waiter` is appended to a doubly linked FIFO queue and the
 *   clock is read once.
 * - A finishing effect hands its permit directly to the head of the queue
 *   (the clock is read once to know how long it waited), so a permit is never
 *   observable as free while someone waits, and there is no thundering herd.
 * - An interrupted waiter unlinks itself in O(1); a waiter interrupted after
 *   it was granted passes the permit on.
 *
 * @internal
 */
export class Permits {
  head: Waiter | undefined = undefined
  tail: Waiter | undefined = undefined
  /** called when the last permit is returned and nobody waits */
  onIdle: ((permits: Permits) => void) | undefined = undefined

  constructor(
    readonly limit: number,
    readonly clock: Clock.Clock,
    readonly tally: Tally,
    readonly group: Tally | undefined
  ) {}

  get idle(): boolean {
    return this.tally.inFlight === 0 && this.head === undefined
  }

  tryAcquire(): boolean {
    if (this.tally.inFlight < this.limit && this.head === undefined) {
      this.tally.acquired()
      if (this.group !== undefined) this.group.acquired()
      return true
    }
    return false
  }

  enqueue(): Waiter {
    const waiter = new Waiter(this.clock.unsafeCurrentTimeNanos())
    append<Waiter>(this, waiter)
    this.tally.enqueued()
    if (this.group !== undefined) this.group.enqueued()
    return waiter
  }

  /** suspends until the waiter is granted a permit */
  wait(waiter: Waiter): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (waiter.state === GRANTED) {
        resume(Effect.void)
      } else {
        waiter.resume = resume
      }
    })
  }

  /** returns the permit of an effect that ran to the given outcome */
  release(outcome: Outcome): void {
    this.tally.finished(outcome)
    if (this.group !== undefined) this.group.finished(outcome)
    this.releasePermit()
  }

  /** returns a permit, handing it to the oldest waiter if there is one */
  releasePermit(): void {
    const waiter = this.head
    if (waiter === undefined) {
      this.tally.freed()
      if (this.group !== undefined) this.group.freed()
      if (this.tally.inFlight === 0 && this.onIdle !== undefined) this.onIdle(this)
      return
    }
    unlink<Waiter>(this, waiter)
    const waited = Number(this.clock.unsafeCurrentTimeNanos() - waiter.start)
    this.tally.granted(waited)
    if (this.group !== undefined) this.group.granted(waited)
    waiter.state = GRANTED
    const resume = waiter.resume
    if (resume !== undefined) {
      waiter.resume = undefined
      resume(Effect.void)
    }
  }

  /**
   * Cleans up after a waiter whose fiber stopped waiting (interrupted): a
   * queued waiter leaves the queue, a granted one passes its permit on.
   */
  abandon(waiter: Waiter): void {
    const state = waiter.state
    waiter.state = DONE
    waiter.resume = undefined
    if (state === WAITING) {
      unlink<Waiter>(this, waiter)
      this.tally.cancelled()
      if (this.group !== undefined) this.group.cancelled()
      if (this.onIdle !== undefined && this.idle) this.onIdle(this)
    } else if (state === GRANTED) {
      this.releasePermit()
    }
  }

  /** the granted waiter starts running: it now owns its permit like a fast-path acquisition */
  started(waiter: Waiter): void {
    waiter.state = DONE
  }

  readonly releaseExit = <A, E>(exit: Exit.Exit<A, E>): Exit.Exit<A, E> => {
    this.release(outcomeOfExit(exit))
    return exit
  }

  /**
   * Runs `effect` holding one permit. The permit is taken and returned in
   * uninterruptible regions; only the wait and the effect itself are
   * interruptible.
   */
  run<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) => this.runMasked(restore, effect))
  }

  /**
   * The body of `run`, called inside `uninterruptibleMask`: the decision to
   * take a free permit or to queue is made synchronously, right here.
   */
  runMasked<A, E, R>(
    restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> {
    if (this.tryAcquire()) {
      return Effect.flatMap(Effect.exit(restore(effect)), this.releaseExit)
    }
    const waiter = this.enqueue()
    return Effect.matchCauseEffect(restore(this.wait(waiter)), {
      onFailure: (cause) => {
        this.abandon(waiter)
        return Effect.failCause(cause)
      },
      onSuccess: () => {
        this.started(waiter)
        return Effect.flatMap(Effect.exit(restore(effect)), this.releaseExit)
      }
    })
  }
}

// -----------------------------------------------------------------------------
// forEach: at most `limit` worker fibers pulling indices
// -----------------------------------------------------------------------------

/**
 * The shared state of one `forEach` call. Each worker fiber pulls the next
 * index, takes a permit for that item only (fast path when one is free),
 * writes the result into the preallocated array and returns the permit.
 * A worker holds at most one permit or one queued waiter at a time, and a
 * single finalizer per worker returns it when the worker is interrupted or
 * fails: there is no per-item mask or finalizer.
 */
class ForEachRun<A, B, E, R> {
  cursor = 0
  stopped = false
  readonly results: Array<unknown>
  constructor(
    readonly permits: Permits,
    readonly items: ReadonlyArray<A>,
    readonly f: (item: A, index: number) => Effect.Effect<B, E, R>,
    readonly settle: boolean
  ) {
    this.results = new Array(items.length)
  }

  readonly worker = (): Effect.Effect<void, E, R> => {
    const worker = new ForEachWorker(this)
    return Effect.onExit(worker.step, worker.finalize)
  }
}

class ForEachWorker<A, B, E, R> {
  index = -1
  holding = false
  waiter: Waiter | undefined = undefined

  constructor(readonly run: ForEachRun<A, B, E, R>) {}

  readonly step: Effect.Effect<void, E, R> = Effect.suspend(() => {
    const run = this.run
    if (run.stopped || run.cursor >= run.items.length) {
      return Effect.void
    }
    const index = run.cursor++
    this.index = index
    if (run.permits.tryAcquire()) {
      this.holding = true
      return this.item(index)
    }
    const waiter = run.permits.enqueue()
    this.waiter = waiter
    return Effect.flatMap(run.permits.wait(waiter), this.start)
  })

  readonly start = (): Effect.Effect<void, E, R> => {
    this.run.permits.started(this.waiter!)
    this.waiter = undefined
    this.holding = true
    return this.item(this.index)
  }

  item(index: number): Effect.Effect<void, E, R> {
    const run = this.run
    const effect = run.f(run.items[index]!, index)
    return run.settle
      ? Effect.matchCauseEffect(effect, this.settleHandlers)
      : Effect.flatMap(effect, this.onSuccess)
  }

  readonly onSuccess = (value: B): Effect.Effect<void, E, R> => {
    this.run.results[this.index] = value
    this.holding = false
    this.run.permits.release(COMPLETED)
    return this.step
  }

  readonly settleHandlers = {
    onFailure: (cause: Cause.Cause<E>): Effect.Effect<void, E, R> => {
      const failure = Cause.failureOrCause(cause)
      if (failure._tag === "Right") {
        // a defect or an interruption: not a typed failure, let it propagate
        return Effect.failCause(failure.right)
      }
      this.run.results[this.index] = Either.left(failure.left)
      this.holding = false
      this.run.permits.release(FAILED)
      return this.step
    },
    onSuccess: (value: B): Effect.Effect<void, E, R> => {
      this.run.results[this.index] = Either.right(value)
      this.holding = false
      this.run.permits.release(COMPLETED)
      return this.step
    }
  }

  readonly finalize = (exit: Exit.Exit<void, E>): Effect.Effect<void> =>
    Effect.sync(() => {
      if (exit._tag === "Failure") {
        this.run.stopped = true
      }
      if (this.holding) {
        this.holding = false
        this.run.permits.release(exit._tag === "Success" ? COMPLETED : outcomeOfCause(exit.cause))
      } else if (this.waiter !== undefined) {
        const waiter = this.waiter
        this.waiter = undefined
        this.run.permits.abandon(waiter)
      }
    })
}

/** @internal */
export const forEach = <A, B, E, R>(
  permits: Permits,
  items: Iterable<A>,
  f: (item: A, index: number) => Effect.Effect<B, E, R>,
  options?: { readonly mode?: Limiter.Limiter.Mode | undefined } | undefined
): Effect.Effect<Array<unknown>, E, R> =>
  Effect.suspend(() => {
    const array: ReadonlyArray<A> = Array.isArray(items) ? items : Array.from(items)
    if (array.length === 0) {
      return Effect.succeed([])
    }
    const run = new ForEachRun(permits, array, f, options?.mode === "settle")
    const workers = Math.min(permits.limit, array.length)
    if (workers === 1) {
      return Effect.as(run.worker(), run.results)
    }
    return Effect.as(
      Effect.forEach(new Array<void>(workers), run.worker, { concurrency: "unbounded", discard: true }),
      run.results
    )
  })

// -----------------------------------------------------------------------------
// Limiter
// -----------------------------------------------------------------------------

class LimiterImpl implements Limiter.Limiter {
  readonly [TypeId]: Limiter.TypeId = TypeId
  readonly stats: Effect.Effect<Limiter.Limiter.Stats>
  readonly forEach: Limiter.Limiter.ForEach
  constructor(
    readonly name: string,
    readonly limit: number,
    readonly permits: Permits
  ) {
    // bound, so that point-free use such as `effect.pipe(x.run)` works
    this.run = this.run.bind(this)
    this.stats = Effect.sync(() => permits.tally.stats(name, limit))
    this.forEach = ((items, f, options) => forEach(permits, items, f, options)) as Limiter.Limiter.ForEach
  }

  run<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return this.permits.run(effect)
  }

  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }
}

/** @internal */
export const validateLimit = (module: string, field: string, limit: number): void => {
  if (!isPositiveInteger(limit)) {
    throw new Cause.IllegalArgumentException(`${module}: ${field} must be a positive integer, got ${limit}`)
  }
}

/** @internal */
export const make = (options: Limiter.Limiter.Options): Effect.Effect<Limiter.Limiter> =>
  Effect.flatMap(FiberRef.get(FiberRef.currentScheduler), (scheduler) =>
    Effect.clockWith((clock) =>
      Effect.sync(() => {
        validateLimit("Limiter.make", "limit", options.limit)
        const sink = new MetricSink("spindle_limiter", options.name, scheduler, false)
        const permits = new Permits(options.limit, clock, new Tally(sink), undefined)
        sink.flush()
        return new LimiterImpl(options.name, options.limit, permits)
      })
    ))

/** @internal */
export const layer = <I>(
  tag: Context.Tag<I, Limiter.Limiter>,
  options: Limiter.Limiter.Options
): Layer.Layer<I> => Layer.effect(tag, make(options))

/** @internal */
export const isLimiter = (u: unknown): u is Limiter.Limiter => hasProperty(u, TypeId)

/** @internal */
export const run: {
  (limiter: Limiter.Limiter): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(limiter: Limiter.Limiter, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
} = (...args: Array<any>): any =>
  args.length === 1
    ? (effect: Effect.Effect<any, any, any>) => (args[0] as Limiter.Limiter).run(effect)
    : (args[0] as Limiter.Limiter).run(args[1])
