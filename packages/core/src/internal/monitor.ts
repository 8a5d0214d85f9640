import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"
import { globalValue } from "effect/GlobalValue"
import * as List from "effect/List"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import type { Monitor } from "../Monitor.js"
import { nanosToDuration } from "./shared.js"

// -----------------------------------------------------------------------------
// metrics
// -----------------------------------------------------------------------------

/** @internal */
export const fibersLive = Metric.gauge("spindle_fibers_live", {
  description: "Fibers started under the Monitor's supervisor and not yet ended"
})

/** @internal */
export const longRunningFibersTotal = Metric.counter("spindle_monitor_long_running_fibers_total", {
  description: "Fibers found running longer than the Monitor's long-running threshold",
  incremental: true
})

/** @internal */
export const eventLoopDelaySeconds = Metric.gauge("spindle_event_loop_delay_seconds", {
  description: "Event loop delay over the last sample interval, by quantile (quantile 1 is the maximum)"
})

/** @internal */
export const eventLoopDelayMeanSeconds = Metric.gauge("spindle_event_loop_delay_mean_seconds", {
  description: "Mean event loop delay over the last sample interval"
})

/** @internal */
export const eventLoopUtilization = Metric.gauge("spindle_event_loop_utilization", {
  description: "Share of the last sample interval the event loop spent busy (0..1)"
})

/** @internal */
export const residentMemoryBytes = Metric.gauge("spindle_process_resident_memory_bytes", {
  description: "Resident set size of the process"
})

/** @internal */
export const heapUsedBytes = Metric.gauge("spindle_process_heap_used_bytes", {
  description: "V8 heap in use"
})

const delayP50 = Metric.tagged(eventLoopDelaySeconds, "quantile", "0.5")
const delayP99 = Metric.tagged(eventLoopDelaySeconds, "quantile", "0.99")
const delayMax = Metric.tagged(eventLoopDelaySeconds, "quantile", "1")

// -----------------------------------------------------------------------------
// fiber names
// -----------------------------------------------------------------------------

/** @internal */
export const currentFiberName: FiberRef.FiberRef<Option.Option<string>> = globalValue(
  Symbol.for("@spindle/core/Monitor/currentFiberName"),
  () => FiberRef.unsafeMake<Option.Option<string>>(Option.none())
)

/** @internal */
export const currentLongRunningAllowed: FiberRef.FiberRef<boolean> = globalValue(
  Symbol.for("@spindle/core/Monitor/currentLongRunningAllowed"),
  () => FiberRef.unsafeMake(false)
)

/** @internal */
export const withFiberName: {
  (name: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, name: string): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, name: string): Effect.Effect<A, E, R> =>
    Effect.locally(self, currentFiberName, Option.some(name))
)

/** @internal */
export const allowLongRunning = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(self, currentLongRunningAllowed, true)

/**
 * Resolves a fiber's display name when it is reported (never on the fork path): the name given by
 * `withFiberName`, else the current span's name, else the innermost log span's label, else the
 * fiber's thread name (`#<id>`).
 *
 * @internal
 */
export const fiberName = (fiber: Fiber.RuntimeFiber<unknown, unknown>): string => {
  const named = fiber.getFiberRef(currentFiberName)
  if (Option.isSome(named)) return named.value
  const span = fiber.currentSpan
  if (span !== undefined && span._tag === "Span") return span.name
  const logSpans = fiber.getFiberRef(FiberRef.currentLogSpan)
  if (List.isCons(logSpans)) return logSpans.head.label
  return FiberId.threadName(fiber.id())
}

// -----------------------------------------------------------------------------
// supervisor
// -----------------------------------------------------------------------------

class Entry {
  reported = false
  constructor(readonly fiber: Fiber.RuntimeFiber<unknown, unknown>, readonly startedAt: number) {}
}

/**
 * Keeps one entry per live fiber, keyed by fiber id. The start time is read synchronously from the
 * `Clock` in the child fiber's default services, so a `TestClock` governs it like any other time.
 *
 * @internal
 */
export class MonitorSupervisor
  extends Supervisor.AbstractSupervisor<ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>>
{
  readonly entries = new Map<number, Entry>()
  // most fibers share their parent's default services: remember the last lookup
  private services: Context.Context<DefaultServices.DefaultServices> | undefined = undefined
  private clock: Clock.Clock | undefined = undefined

  readonly value: Effect.Effect<ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>> = Effect.sync(() =>
    Array.from(this.entries.values(), (entry) => entry.fiber)
  )

  override onStart<A, E, R>(
    _context: Context.Context<R>,
    _effect: Effect.Effect<A, E, R>,
    _parent: Option.Option<Fiber.RuntimeFiber<any, any>>,
    fiber: Fiber.RuntimeFiber<A, E>
  ): void {
    const services = fiber.currentDefaultServices
    if (services !== this.services || this.clock === undefined) {
      this.services = services
      this.clock = Context.get(services, Clock.Clock)
    }
    this.entries.set(fiber.id().id, new Entry(fiber, this.clock.unsafeCurrentTimeMillis()))
  }

  override onEnd<A, E>(_value: unknown, fiber: Fiber.RuntimeFiber<A, E>): void {
    this.entries.delete(fiber.id().id)
  }
}

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

const info = (entry: Entry, now: number): Monitor.FiberInfo => ({
  id: entry.fiber.id().id,
  name: fiberName(entry.fiber),
  startedAt: entry.startedAt,
  age: Duration.millis(Math.max(0, now - entry.startedAt))
})

const toMillis = (input: Duration.DurationInput, fallback: number, min: number): number => {
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isFinite(millis) && millis >= min ? millis : fallback
}

/** @internal */
export const make = (options?: Monitor.Options): Effect.Effect<Monitor.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sampleInterval = Duration.decode(options?.sampleInterval ?? "5 seconds")
    const thresholdMillis = toMillis(options?.longRunningThreshold ?? "30 seconds", 30_000, 0)
    const resolution = Math.max(1, Math.round(toMillis(options?.resolution ?? "10 millis", 10, 1)))
    const supervisor = new MonitorSupervisor()
    const entries = supervisor.entries

    const histogram = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const histogram = monitorEventLoopDelay({ resolution })
        histogram.enable()
        return histogram
      }),
      (histogram) => Effect.sync(() => histogram.disable())
    )
    let lastUtilization = performance.eventLoopUtilization()

    const sample: Effect.Effect<Monitor.Sample> = Effect.suspend(() => {
      const current = performance.eventLoopUtilization()
      const delta = performance.eventLoopUtilization(current, lastUtilization)
      lastUtilization = current
      const utilization = Number.isFinite(delta.utilization) ? Math.min(1, Math.max(0, delta.utilization)) : 0
      const eventLoopDelay: Option.Option<Monitor.EventLoopDelay> = histogram.count > 0
        ? Option.some({
          p50: nanosToDuration(histogram.percentile(50)),
          p99: nanosToDuration(histogram.percentile(99)),
          max: nanosToDuration(histogram.max),
          mean: nanosToDuration(histogram.mean)
        })
        : Option.none()
      histogram.reset()
      const memory = process.memoryUsage()
      const result: Monitor.Sample = {
        fibersLive: entries.size,
        eventLoopDelay,
        eventLoopUtilization: utilization,
        residentMemoryBytes: memory.rss,
        heapUsedBytes: memory.heapUsed
      }
      const updates: Array<Effect.Effect<void>> = [
        Metric.set(fibersLive, result.fibersLive),
        Metric.set(eventLoopUtilization, utilization),
        Metric.set(residentMemoryBytes, memory.rss),
        Metric.set(heapUsedBytes, memory.heapUsed)
      ]
      if (Option.isSome(eventLoopDelay)) {
        const delay = eventLoopDelay.value
        updates.push(
          Metric.set(delayP50, Duration.toSeconds(delay.p50)),
          Metric.set(delayP99, Duration.toSeconds(delay.p99)),
          Metric.set(delayMax, Duration.toSeconds(delay.max)),
          Metric.set(eventLoopDelayMeanSeconds, Duration.toSeconds(delay.mean))
        )
      }
      return Effect.as(Effect.all(updates, { discard: true }), result)
    })

    const collect = (thresholdMillis: number, now: number, onlyNew: boolean): Array<Monitor.FiberInfo> => {
      const found: Array<Monitor.FiberInfo> = []
      for (const entry of entries.values()) {
        if (now - entry.startedAt < thresholdMillis) continue
        if (onlyNew && entry.reported) continue
        if (entry.fiber.getFiberRef(currentLongRunningAllowed)) continue
        if (onlyNew) entry.reported = true
        found.push(info(entry, now))
      }
      return found
    }

    const checkLongRunning: Effect.Effect<ReadonlyArray<Monitor.FiberInfo>> = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => {
        const found = collect(thresholdMillis, now, true)
        if (found.length === 0) return Effect.succeed(found)
        return Effect.as(
          Effect.zipRight(
            Effect.forEach(
              found,
              (fiber) =>
                Effect.logWarning("Fiber running longer than the long-running threshold").pipe(
                  Effect.annotateLogs({
                    fiberId: fiber.id,
                    fiberName: fiber.name,
                    age: Duration.format(fiber.age),
                    threshold: Duration.format(Duration.millis(thresholdMillis))
                  })
                ),
              { discard: true }
            ),
            Metric.incrementBy(longRunningFibersTotal, found.length)
          ),
          found
        )
      }
    )

    const service: Monitor.Service = {
      supervisor,
      liveFibers: Effect.sync(() => entries.size),
      fibers: Effect.map(Clock.currentTimeMillis, (now) => Array.from(entries.values(), (entry) => info(entry, now))),
      longRunning: (threshold) =>
        Effect.map(
          Clock.currentTimeMillis,
          (now) =>
            collect(threshold === undefined ? thresholdMillis : toMillis(threshold, thresholdMillis, 0), now, false)
        ),
      checkLongRunning,
      sample
    }

    // forked before the supervisor is installed, so the monitor does not watch itself
    yield* Effect.zipRight(sample, checkLongRunning).pipe(
      Effect.delay(sampleInterval),
      Effect.forever,
      Effect.forkScoped
    )
    return service
  })

/** @internal */
export const install = (options?: Monitor.Options): Effect.Effect<Monitor.Service, never, Scope.Scope> =>
  Effect.tap(make(options), (monitor) =>
    Effect.locallyScopedWith(
      FiberRef.currentSupervisor,
      (current) => current === Supervisor.none ? monitor.supervisor : current.zip(monitor.supervisor)
    ))
