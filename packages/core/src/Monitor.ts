/**
 * Process monitoring: live fibers, long-running fibers, event loop delay and utilization, memory.
 *
 * The Monitor is a process-wide service. {@link layer} installs a fiber `Supervisor` for every
 * fiber the application forks under it and starts a sampler that, every `sampleInterval`:
 *
 * - samples the event loop (`perf_hooks.monitorEventLoopDelay` and
 *   `performance.eventLoopUtilization()`) and process memory into gauges;
 * - looks for fibers alive for longer than `longRunningThreshold` and, once per fiber, logs a
 *   warning (annotated with `fiberId`, `fiberName`, `age`, `threshold`) and increments
 *   `spindle_monitor_long_running_fibers_total`.
 *
 * The supervisor's per-fiber work is one `Map` insertion on start (fiber id → start time read from
 * the fiber's own `Clock`, so `TestClock` controls ages in tests) and one deletion on end. Fiber
 * names are only resolved when a fiber is reported, in this order:
 *
 * 1. the name given with {@link withFiberName};
 * 2. the name of the fiber's current span (`Effect.withSpan`, `Effect.fn`), which is the span it
 *    was forked in until it opens its own;
 * 3. the label of its innermost log span (`Effect.withLogSpan`);
 * 4. its thread name, `#<fiber id>`.
 *
 * Fibers that are meant to live long (servers, polling loops) can be wrapped in
 * {@link allowLongRunning}: they are still counted as live but never reported as long-running.
 *
 * Metrics (Prometheus form, see `Prometheus.render`):
 *
 * | name | type | meaning |
 * | --- | --- | --- |
 * | `spindle_fibers_live` | gauge | fibers started under the supervisor and not ended |
 * | `spindle_monitor_long_running_fibers_total` | counter | fibers found past the threshold (once each) |
 * | `spindle_event_loop_delay_seconds{quantile="0.5"\|"0.99"\|"1"}` | gauge | delay over the last interval; quantile 1 is the maximum |
 * | `spindle_event_loop_delay_mean_seconds` | gauge | mean delay over the last interval |
 * | `spindle_event_loop_utilization` | gauge | busy share of the last interval, 0..1 |
 * | `spindle_process_resident_memory_bytes` | gauge | resident set size |
 * | `spindle_process_heap_used_bytes` | gauge | V8 heap used |
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Supervisor from "effect/Supervisor"
import * as internal from "./internal/monitor.js"

/**
 * The process-wide Monitor service, provided by {@link layer}.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const monitor = yield* Monitor.Monitor
 *   const live = yield* monitor.liveFibers
 *   const slow = yield* monitor.longRunning("1 minute")
 *   yield* Effect.log(`${live} fibers, ${slow.length} running for over a minute`)
 * })
 *
 * Effect.runFork(program.pipe(Effect.provide(Monitor.layer({ sampleInterval: "10 seconds" }))))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export class Monitor extends Context.Tag("@spindle/core/Monitor")<Monitor, Monitor.Service>() {}

/**
 * The types that go with the `Monitor` service: its options, fiber reports and samples.
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace Monitor {
  /**
   * Options of {@link make} and {@link layer}.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /**
     * How often the event loop, memory and fiber gauges are sampled and long-running fibers
     * looked for. Defaults to 5 seconds.
     */
    readonly sampleInterval?: Duration.DurationInput | undefined
    /**
     * Age past which a fiber is reported as long-running. Defaults to 30 seconds.
     */
    readonly longRunningThreshold?: Duration.DurationInput | undefined
    /**
     * Sampling resolution of the event loop delay histogram (`monitorEventLoopDelay`), at least
     * 1 millisecond. Defaults to 10 milliseconds.
     */
    readonly resolution?: Duration.DurationInput | undefined
  }

  /**
   * A live fiber as the Monitor sees it.
   *
   * @since 0.1.0
   * @category models
   */
  export interface FiberInfo {
    /** The fiber id (the number in its thread name `#<id>`). */
    readonly id: number
    /** The fiber's name, resolved as described in the module documentation. */
    readonly name: string
    /** When the fiber started, in milliseconds of its `Clock`. */
    readonly startedAt: number
    /** How long the fiber has been alive. */
    readonly age: Duration.Duration
  }

  /**
   * Event loop delay statistics over one sample interval.
   *
   * @since 0.1.0
   * @category models
   */
  export interface EventLoopDelay {
    readonly p50: Duration.Duration
    readonly p99: Duration.Duration
    readonly max: Duration.Duration
    readonly mean: Duration.Duration
  }

  /**
   * One sample of the process, as written to the gauges.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Sample {
    /** Fibers started under the Monitor's supervisor and not yet ended. */
    readonly fibersLive: number
    /**
     * Event loop delay since the previous sample; `None` when the delay histogram recorded nothing
     * in that time (the gauges then keep their previous values).
     */
    readonly eventLoopDelay: Option.Option<EventLoopDelay>
    /** Share of the time since the previous sample the event loop spent busy, 0..1. */
    readonly eventLoopUtilization: number
    readonly residentMemoryBytes: number
    readonly heapUsedBytes: number
  }

  /**
   * The Monitor's operations.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /**
     * The supervisor that tracks fibers. {@link layer} installs it for the whole application;
     * with {@link make} it can be given to `Effect.supervised` for one part of a program. Its
     * value is the array of live fibers.
     */
    readonly supervisor: Supervisor.Supervisor<ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>>
    /** The number of live supervised fibers. */
    readonly liveFibers: Effect.Effect<number>
    /** Every live supervised fiber, oldest first. */
    readonly fibers: Effect.Effect<ReadonlyArray<FiberInfo>>
    /**
     * Live fibers older than `threshold` (defaults to the `longRunningThreshold` option), excluding
     * those run under {@link allowLongRunning}. Reporting here does not log or count anything.
     */
    readonly longRunning: (threshold?: Duration.DurationInput) => Effect.Effect<ReadonlyArray<FiberInfo>>
    /**
     * Runs the background check now: fibers past `longRunningThreshold` that were not reported
     * before are logged, counted and returned.
     */
    readonly checkLongRunning: Effect.Effect<ReadonlyArray<FiberInfo>>
    /**
     * Takes a sample now and writes it to the gauges. The event loop delay histogram is reset by
     * every sample, so each one covers the time since the previous.
     */
    readonly sample: Effect.Effect<Sample>
  }
}

/**
 * Creates a Monitor and starts its sampler in the current scope, without installing its
 * supervisor: give `monitor.supervisor` to `Effect.supervised` to watch part of a program, or use
 * {@link layer} to watch the whole application.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const monitor = yield* Monitor.make({ longRunningThreshold: "10 seconds" })
 *     yield* Effect.fork(Effect.never).pipe(Effect.supervised(monitor.supervisor))
 *     return yield* monitor.liveFibers // 1
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: Monitor.Options) => Effect.Effect<Monitor.Service, never, Scope.Scope> = internal.make

/**
 * Provides the {@link Monitor} and installs its supervisor for every fiber forked under the layer
 * (with `Effect.provide`, `ManagedRuntime` or `Layer.launch`). Closing the layer stops the
 * sampler, disables the event loop histogram and removes the supervisor.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const MonitorLive = Monitor.layer({
 *   sampleInterval: "5 seconds",
 *   longRunningThreshold: "2 minutes",
 *   resolution: "20 millis"
 * })
 *
 * const main = Effect.gen(function*() {
 *   const monitor = yield* Monitor.Monitor
 *   return yield* monitor.sample
 * }).pipe(Effect.provide(MonitorLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Monitor.Options): Layer.Layer<Monitor> =>
  Layer.scoped(Monitor, internal.install(options))

/**
 * Names the fibers running `self` (and the fibers they fork) in Monitor reports. Takes precedence
 * over span and log span names.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Effect } from "effect"
 *
 * const poller = Effect.never.pipe(Monitor.withFiberName("inbox-poller"), Effect.fork)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withFiberName: {
  (name: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, name: string): Effect.Effect<A, E, R>
} = internal.withFiberName

/**
 * Marks the fibers running `self` (and the fibers they fork) as expected to run for long: they
 * still count as live fibers but are never reported as long-running.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Effect, Schedule } from "effect"
 *
 * const heartbeat = Effect.log("tick").pipe(
 *   Effect.repeat(Schedule.spaced("1 second")),
 *   Monitor.allowLongRunning,
 *   Effect.fork
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const allowLongRunning: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R> =
  internal.allowLongRunning

/**
 * `spindle_fibers_live`: fibers started under the Monitor's supervisor and not yet ended, set at
 * every sample.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const live = Metric.value(Monitor.fibersLive)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const fibersLive: Metric.Metric.Gauge<number> = internal.fibersLive

/**
 * `spindle_monitor_long_running_fibers_total`: fibers found running past the long-running
 * threshold, each counted once.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const flagged = Metric.value(Monitor.longRunningFibersTotal)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const longRunningFibersTotal: Metric.Metric.Counter<number> = internal.longRunningFibersTotal

/**
 * `spindle_event_loop_delay_seconds`: event loop delay over the last sample interval, one series
 * per `quantile` tag: `"0.5"`, `"0.99"` and `"1"` (the maximum).
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const p99 = Metric.value(Metric.tagged(Monitor.eventLoopDelaySeconds, "quantile", "0.99"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventLoopDelaySeconds: Metric.Metric.Gauge<number> = internal.eventLoopDelaySeconds

/**
 * `spindle_event_loop_delay_mean_seconds`: mean event loop delay over the last sample interval.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const mean = Metric.value(Monitor.eventLoopDelayMeanSeconds)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventLoopDelayMeanSeconds: Metric.Metric.Gauge<number> = internal.eventLoopDelayMeanSeconds

/**
 * `spindle_event_loop_utilization`: share of the last sample interval the event loop was busy,
 * between 0 and 1.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const utilization = Metric.value(Monitor.eventLoopUtilization)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventLoopUtilization: Metric.Metric.Gauge<number> = internal.eventLoopUtilization

/**
 * `spindle_process_resident_memory_bytes`: resident set size of the process at the last sample.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const rss = Metric.value(Monitor.residentMemoryBytes)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const residentMemoryBytes: Metric.Metric.Gauge<number> = internal.residentMemoryBytes

/**
 * `spindle_process_heap_used_bytes`: V8 heap in use at the last sample.
 *
 * @example
 * ```ts
 * import { Monitor } from "@spindle/core"
 * import { Metric } from "effect"
 *
 * const heap = Metric.value(Monitor.heapUsedBytes)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const heapUsedBytes: Metric.Metric.Gauge<number> = internal.heapUsedBytes
