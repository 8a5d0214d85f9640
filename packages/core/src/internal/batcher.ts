/**
 * Machinery of `Batcher`.
 *
 * Hot path: `submit` suspends the caller in `Effect.async` and appends the item and the
 * resume callback to the open batch (plain arrays, in one synchronous step: JavaScript runs one
 * fiber step at a time, so no lock is needed): lighter than a Deferred per caller. The first
 * item of a batch reads the clock once and offers the batch to the timer fiber; the item that
 * fills a batch seals it and offers it to the workers. Everything
 * else (merging bookkeeping aside) happens once per batch: running `run`, resuming the
 * callers, updating metrics.
 *
 * Fibers: one timer fiber (flushes a batch `maxWait` after its first item; batches open in
 * time order, so their deadlines are monotonic and one sequential fiber serves them all) and
 * `concurrency` worker fibers taking sealed batches from a queue. They live in a scope of their
 * own, closed by the batcher's finalizer once the pending work is drained, whatever the
 * execution strategy of the caller's scope.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import type * as Batcher from "../Batcher.js"
import { BatchError } from "../Batcher.js"

/** @internal */
export const TypeId: Batcher.TypeId = Symbol.for("@spindle/core/Batcher") as Batcher.TypeId

// -----------------------------------------------------------------------------
// Metrics (global registry, tagged per instance at construction)
// -----------------------------------------------------------------------------

/** @internal */
export const batchSizeMetric = Metric.histogram(
  "spindle_batcher_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
  "Items passed to run per batch (after merging identical keys)"
)

/** @internal */
export const flushLatencyMetric = Metric.histogram(
  "spindle_batcher_flush_latency_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 18 }),
  "Seconds from the first item of a batch being enqueued to the batch being completed"
)

/** @internal */
export const flushesMetric = Metric.counter("spindle_batcher_flushes_total", {
  description: "Batches flushed, tagged by reason (size, time, close)",
  incremental: true
})

/** @internal */
export const mergedMetric = Metric.counter("spindle_batcher_merged_total", {
  description: "Submissions merged into an item with the same key in the same batch",
  incremental: true
})

// -----------------------------------------------------------------------------
// Batches
// -----------------------------------------------------------------------------

type FlushReason = "size" | "time" | "close"

type Resume<B, E> = (exit: Exit.Exit<B, BatchError<E>>) => void

/**
 * One batch: the items `run` will see, the resume callback of each item's caller, and the
 * callbacks of the callers merged into an item (`mergedIndex[i]` is the item whose result
 * `mergedCallbacks[i]` gets).
 */
class Batch<A, B, E> {
  readonly items: Array<A> = []
  readonly callbacks: Array<Resume<B, E>> = []
  keys: Map<string, number> | undefined = undefined
  mergedIndex: Array<number> | undefined = undefined
  mergedCallbacks: Array<Resume<B, E>> | undefined = undefined
  sealed = false
  reason: FlushReason = "size"
  constructor(readonly startNanos: bigint) {}

  get callers(): number {
    return this.callbacks.length + (this.mergedCallbacks?.length ?? 0)
  }

  merge(index: number, resume: Resume<B, E>): void {
    if (this.mergedIndex === undefined) {
      this.mergedIndex = []
      this.mergedCallbacks = []
    }
    this.mergedIndex.push(index)
    this.mergedCallbacks!.push(resume)
  }

  /** Completes every caller with the same exit. */
  done(exit: Exit.Exit<B, BatchError<E>>): void {
    for (let i = 0; i < this.callbacks.length; i++) {
      this.callbacks[i](exit)
    }
    if (this.mergedCallbacks !== undefined) {
      for (let i = 0; i < this.mergedCallbacks.length; i++) {
        this.mergedCallbacks[i](exit)
      }
    }
  }

  /** Completes every caller with its own result (`results.length === items.length`). */
  succeed(results: ReadonlyArray<B>): void {
    for (let i = 0; i < this.callbacks.length; i++) {
      this.callbacks[i](Exit.succeed(results[i]))
    }
    if (this.mergedCallbacks !== undefined) {
      for (let i = 0; i < this.mergedCallbacks.length; i++) {
        this.mergedCallbacks[i](Exit.succeed(results[this.mergedIndex![i]]))
      }
    }
  }
}

class BatcherImpl<A, B, E> implements Batcher.Batcher<A, B, E> {
  readonly [TypeId]: Batcher.TypeId = TypeId
  constructor(
    readonly name: string,
    readonly submit: (item: A) => Effect.Effect<B, BatchError<E>>,
    readonly stats: Effect.Effect<Batcher.Stats>
  ) {}
}

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/** @internal */
export const make = <A, B, E = never, R = never>(
  options: Batcher.Options<A, B, E, R>
): Effect.Effect<Batcher.Batcher<A, B, E>, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const name = options.name
    const maxSize = Math.max(1, Math.floor(options.maxSize))
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1))
    const maxWait = Duration.decode(options.maxWait)
    const timed = Duration.isFinite(maxWait)
    const maxWaitNanos = timed ? Duration.unsafeToNanos(maxWait) : 0n
    const keyOf = options.key
    const run = options.run
    const clock: Clock.Clock = yield* Effect.clock

    const batchSize = Metric.tagged(batchSizeMetric, "batcher", name)
    const flushLatency = Metric.tagged(flushLatencyMetric, "batcher", name)
    const flushesBy: Record<FlushReason, Metric.Metric.Counter<number>> = {
      size: flushesMetric.pipe(Metric.tagged("batcher", name), Metric.tagged("reason", "size")),
      time: flushesMetric.pipe(Metric.tagged("batcher", name), Metric.tagged("reason", "time")),
      close: flushesMetric.pipe(Metric.tagged("batcher", name), Metric.tagged("reason", "close"))
    }
    const merged = Metric.tagged(mergedMetric, "batcher", name)

    // Mutable state, only touched in synchronous steps.
    let current: Batch<A, B, E> | undefined = undefined
    let closed = false
    const stats = {
      submitted: 0,
      batches: 0,
      flushedBySize: 0,
      flushedByTime: 0,
      flushedByClose: 0,
      merged: 0,
      failed: 0,
      pending: 0,
      running: 0
    }

    const opened = yield* Queue.unbounded<Batch<A, B, E>>()
    // `null` tells a worker to stop, once the batches queued before it are done.
    const ready = yield* Queue.unbounded<Batch<A, B, E> | null>()

    const seal = (batch: Batch<A, B, E>, reason: FlushReason): void => {
      batch.sealed = true
      batch.reason = reason
      if (current === batch) {
        current = undefined
      }
      if (reason === "size") stats.flushedBySize++
      else if (reason === "time") stats.flushedByTime++
      else stats.flushedByClose++
      Queue.unsafeOffer(ready, batch)
    }

    const closedError = new BatchError<E>({ reason: "Closed", batcher: name, batchSize: 0 })
    const closedExit: Exit.Exit<never, BatchError<E>> = Exit.fail(closedError)

    // The caller's fiber suspends in `Effect.async`; its resume callback is what the batch keeps.
    // If the caller is interrupted first, Effect ignores the later resume.
    const submit = (item: A): Effect.Effect<B, BatchError<E>> =>
      Effect.async<B, BatchError<E>>((resume) => {
        if (closed) {
          return resume(closedExit)
        }
        const key = keyOf === undefined ? undefined : keyOf(item)
        let batch = current
        if (batch === undefined) {
          batch = current = new Batch<A, B, E>(clock.unsafeCurrentTimeNanos())
          if (timed) {
            Queue.unsafeOffer(opened, batch)
          }
        }
        stats.submitted++
        stats.pending++
        if (key !== undefined) {
          const keys = batch.keys ?? (batch.keys = new Map())
          const index = keys.get(key)
          if (index !== undefined) {
            stats.merged++
            return batch.merge(index, resume)
          }
          keys.set(key, batch.items.length)
        }
        batch.items.push(item)
        batch.callbacks.push(resume)
        if (batch.items.length >= maxSize) {
          seal(batch, "size")
        }
      })

    const complete = (batch: Batch<A, B, E>, exit: Exit.Exit<ReadonlyArray<B>, E>): void => {
      const size = batch.items.length
      if (Exit.isSuccess(exit)) {
        const results = exit.value
        if (results.length === size) {
          batch.succeed(results)
          return
        }
        stats.failed++
        batch.done(Exit.fail(
          new BatchError<E>({
            reason: "ResultCountMismatch",
            batcher: name,
            batchSize: size,
            expected: size,
            actual: results.length
          })
        ))
        return
      }
      stats.failed++
      const failure = Cause.failureOrCause(exit.cause)
      batch.done(
        Either.isLeft(failure)
          ? Exit.fail(new BatchError<E>({ reason: "RunFailed", batcher: name, batchSize: size, cause: failure.left }))
          // Defects (and interruptions) of `run` reach its callers as they are.
          : Exit.failCause(failure.right)
      )
    }

    const runBatch = (batch: Batch<A, B, E>): Effect.Effect<void, never, R> =>
      Effect.suspend(() => {
        stats.running++
        return Effect.exit(Effect.suspend(() => run(batch.items))).pipe(
          // Only reachable if the workers are interrupted mid-batch: nobody is left waiting.
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              stats.running--
              stats.pending -= batch.callers
              batch.done(closedExit)
            })
          ),
          Effect.flatMap((exit) => {
            complete(batch, exit)
            const callers = batch.callers
            const mergedCount = callers - batch.items.length
            stats.pending -= callers
            stats.running--
            stats.batches++
            const seconds = Number(clock.unsafeCurrentTimeNanos() - batch.startNanos) / 1e9
            return Effect.all([
              Metric.update(batchSize, batch.items.length),
              Metric.update(flushLatency, seconds),
              Metric.increment(flushesBy[batch.reason]),
              mergedCount > 0 ? Metric.incrementBy(merged, mergedCount) : Effect.void
            ], { discard: true })
          })
        )
      })

    const worker: Effect.Effect<void, never, R> = Effect.gen(function*() {
      while (true) {
        const batch = yield* Queue.take(ready)
        if (batch === null) {
          return
        }
        yield* runBatch(batch)
      }
    })

    const timer: Effect.Effect<never> = Queue.take(opened).pipe(
      Effect.flatMap((batch) => {
        if (batch.sealed) {
          return Effect.void
        }
        const flush = Effect.sync(() => {
          if (!batch.sealed) {
            seal(batch, "time")
          }
        })
        const remaining = batch.startNanos + maxWaitNanos - clock.unsafeCurrentTimeNanos()
        return remaining > 0n ? Effect.zipRight(Effect.sleep(Duration.nanos(remaining)), flush) : flush
      }),
      Effect.forever
    )

    // The fibers get a scope of their own, closed by the batcher's finalizer once the pending
    // batches have run, so that they are never interrupted before (whatever the execution
    // strategy of the caller's scope). Closing: refuse new items, seal the open batch, queue one
    // stop signal per worker behind the pending batches, wait for the workers, stop the timer.
    const workers: Array<Fiber.RuntimeFiber<void>> = []
    const fibers = yield* Effect.acquireRelease(
      Scope.make(ExecutionStrategy.sequential),
      (fibers) =>
        Effect.suspend(() => {
          closed = true
          if (current !== undefined) {
            seal(current, "close")
          }
          for (let i = 0; i < concurrency; i++) {
            Queue.unsafeOffer(ready, null)
          }
          return Fiber.awaitAll(workers)
        }).pipe(Effect.zipRight(Scope.close(fibers, Exit.void)))
    )
    for (let i = 0; i < concurrency; i++) {
      workers.push(yield* Effect.forkIn(worker, fibers))
    }
    if (timed) {
      yield* Effect.forkIn(timer, fibers)
    }

    return new BatcherImpl<A, B, E>(
      name,
      submit,
      Effect.sync((): Batcher.Stats => ({ ...stats }))
    )
  })

/** @internal */
export const layer = <I, A, B, E = never, R = never>(
  tag: Context.Tag<I, Batcher.Batcher<A, B, E>>,
  options: Batcher.Options<A, B, E, R>
): Layer.Layer<I, never, R> => Layer.scoped(tag, make(options))

// -----------------------------------------------------------------------------
// Offline lists
// -----------------------------------------------------------------------------

/** @internal */
export const batchProcess: {
  <A, B, E, R>(
    options: Batcher.BatchProcessOptions,
    f: (chunk: ReadonlyArray<A>, index: number) => Effect.Effect<ReadonlyArray<B>, E, R>
  ): (items: Iterable<A>) => Effect.Effect<Array<B>, BatchError<E>, R>
  <A, B, E, R>(
    items: Iterable<A>,
    options: Batcher.BatchProcessOptions,
    f: (chunk: ReadonlyArray<A>, index: number) => Effect.Effect<ReadonlyArray<B>, E, R>
  ): Effect.Effect<Array<B>, BatchError<E>, R>
} = dual(3, <A, B, E, R>(
  items: Iterable<A>,
  options: Batcher.BatchProcessOptions,
  f: (chunk: ReadonlyArray<A>, index: number) => Effect.Effect<ReadonlyArray<B>, E, R>
): Effect.Effect<Array<B>, BatchError<E>, R> =>
  Effect.suspend(() => {
    const name = options.name ?? "batchProcess"
    const all = Array.from(items)
    const size = Math.max(1, Math.floor(options.size))
    const chunks: Array<ReadonlyArray<A>> = []
    for (let i = 0; i < all.length; i += size) {
      chunks.push(all.slice(i, i + size))
    }
    return Effect.forEach(
      chunks,
      (chunk, index) =>
        Effect.suspend(() => f(chunk, index)).pipe(
          Effect.mapError((cause) =>
            new BatchError<E>({ reason: "RunFailed", batcher: name, batchSize: chunk.length, cause })
          ),
          Effect.flatMap((results) =>
            results.length === chunk.length ? Effect.succeed(results) : Effect.fail(
              new BatchError<E>({
                reason: "ResultCountMismatch",
                batcher: name,
                batchSize: chunk.length,
                expected: chunk.length,
                actual: results.length
              })
            )
          )
        ),
      { concurrency: options.concurrency ?? 1 }
    ).pipe(Effect.map((parts) => parts.flat() as Array<B>))
  }))
