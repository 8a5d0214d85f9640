/**
 * Machinery of `ResourcePool`.
 *
 * The underlying `Pool` holds `Entry` records rather than the user's resources: an entry is
 * registered by the wrapped `acquire` once the user's `acquire` succeeds, and unregistered by a
 * finalizer of the same scope that runs before the user's release, so the set of entries is
 * exactly the set of live resources, which `effect/Pool` does not expose. Each entry records
 * whether a caller has it checked out (set when `Pool.get` hands it over, cleared by a
 * finalizer of the caller's scope) and whether a background health check is running on it. The
 * idle resources are the entries not checked out.
 *
 * A background check marks its entry with a `Deferred` verdict before checking. A caller that
 * receives an entry under check waits for that verdict instead of using the resource
 * concurrently, and the entry's destruction waits for it too, so a resource is never checked
 * while in use nor released while checked. The verdict is completed before the entry is
 * invalidated, since invalidating an idle entry runs its release at once.
 *
 * `acquireTimeout` runs the acquisition disconnected (`Effect.disconnect`), because `Pool.get`
 * waits uninterruptibly for a resource being acquired; that costs two fibers per `get`, so
 * when an idle resource is ready and no check has to run first (no waiters, no background
 * check running, no check on acquire), `get` takes it directly: it cannot block.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import { pipeArguments } from "effect/Pipeable"
import * as Pool from "effect/Pool"
import * as Scope from "effect/Scope"
import * as Api from "../ResourcePool.js"
import { illegalArgument, isPositiveInteger } from "./shared.js"

/** @internal */
export const TypeId: Api.TypeId = Symbol.for("@spindle/core/ResourcePool") as Api.TypeId

const defaultIdleTimeToLive = Duration.seconds(60)
const defaultHealthCheckMaxAttempts = 3

/** @internal */
export const metrics = {
  size: Metric.gauge("spindle_pool_size", { description: "Live resources in the pool" }),
  inUse: Metric.gauge("spindle_pool_in_use", { description: "Resources checked out of the pool" }),
  waiters: Metric.gauge("spindle_pool_waiters", { description: "Callers waiting for a resource" }),
  utilization: Metric.gauge("spindle_pool_utilization", { description: "Resources in use divided by max (0..1)" }),
  healthCheckFailures: Metric.counter("spindle_pool_health_check_failures_total", {
    description: "Health checks that found a resource unhealthy",
    incremental: true
  }),
  acquireTimeouts: Metric.counter("spindle_pool_acquire_timeouts_total", {
    description: "Acquisitions that failed with PoolAcquireTimeout",
    incremental: true
  }),
  acquireWaitSeconds: Metric.histogram(
    "spindle_pool_acquire_wait_seconds",
    MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 }),
    "Time for a get to obtain a healthy resource"
  )
}

interface Entry<A> {
  readonly value: A
  checkedOut: boolean
  /** Set while a background health check runs; completed with `true` when healthy. */
  check: Deferred.Deferred<boolean> | undefined
  /** Set once the entry is being destroyed. */
  closing: boolean
}

type Verdict =
  | { readonly healthy: true }
  | { readonly healthy: false; readonly cause: Cause.Cause<unknown> | undefined }

const healthy: Verdict = { healthy: true }

/** Counters of one pool, mirrored to its tagged gauges when they change. */
class PoolState<A> {
  readonly entries = new Set<Entry<A>>()
  inUse = 0
  waiters = 0
  /** Background checks running. */
  checking = 0
  created = 0
  destroyed = 0
  healthCheckFailures = 0
  acquireTimeouts = 0
  readonly size: Metric.Metric.Gauge<number>
  readonly inUseGauge: Metric.Metric.Gauge<number>
  readonly waitersGauge: Metric.Metric.Gauge<number>
  readonly utilization: Metric.Metric.Gauge<number>
  readonly failures: Metric.Metric.Counter<number>
  readonly timeouts: Metric.Metric.Counter<number>
  readonly wait: Metric.Metric.Histogram<number>

  constructor(readonly name: string, readonly min: number, readonly max: number) {
    this.size = Metric.tagged(metrics.size, "pool", name)
    this.inUseGauge = Metric.tagged(metrics.inUse, "pool", name)
    this.waitersGauge = Metric.tagged(metrics.waiters, "pool", name)
    this.utilization = Metric.tagged(metrics.utilization, "pool", name)
    this.failures = Metric.tagged(metrics.healthCheckFailures, "pool", name)
    this.timeouts = Metric.tagged(metrics.acquireTimeouts, "pool", name)
    this.wait = Metric.tagged(metrics.acquireWaitSeconds, "pool", name)
  }

  get stats(): Api.ResourcePool.Stats {
    const size = this.entries.size
    return {
      min: this.min,
      max: this.max,
      size,
      inUse: this.inUse,
      idle: size - this.inUse,
      waiters: this.waiters,
      utilization: this.inUse / this.max,
      created: this.created,
      destroyed: this.destroyed,
      healthCheckFailures: this.healthCheckFailures,
      acquireTimeouts: this.acquireTimeouts
    }
  }

  register(value: A): Entry<A> {
    const entry: Entry<A> = { value, checkedOut: false, check: undefined, closing: false }
    this.entries.add(entry)
    this.created++
    this.size.unsafeUpdate(this.entries.size, [])
    return entry
  }

  /** Unregisters an entry about to be released, once a background check on it is over. */
  destroy(entry: Entry<A>): Effect.Effect<void> {
    const unregister = Effect.sync(() => {
      if (this.entries.delete(entry)) {
        this.destroyed++
        this.size.unsafeUpdate(this.entries.size, [])
      }
    })
    return Effect.suspend(() => {
      entry.closing = true
      return entry.check === undefined ? unregister : Effect.zipRight(Deferred.await(entry.check), unregister)
    })
  }

  /** An idle resource can be handed out at once, without waiting nor checking first. */
  get readyIdle(): boolean {
    return this.waiters === 0 && this.checking === 0 && this.entries.size > this.inUse
  }

  addWaiter(delta: 1 | -1): void {
    this.waiters += delta
    this.waitersGauge.unsafeUpdate(this.waiters, [])
  }

  checkOut(entry: Entry<A>, out: boolean): void {
    entry.checkedOut = out
    this.inUse += out ? 1 : -1
    this.inUseGauge.unsafeUpdate(this.inUse, [])
    this.utilization.unsafeUpdate(this.inUse / this.max, [])
  }

  healthCheckFailed(): void {
    this.healthCheckFailures++
    this.failures.unsafeUpdate(1, [])
  }

  acquireTimedOut(): void {
    this.acquireTimeouts++
    this.timeouts.unsafeUpdate(1, [])
  }
}

/** Outcome of one checkout attempt inside `get`. */
type Attempt<A> =
  | { readonly _tag: "Healthy"; readonly value: A }
  | { readonly _tag: "Unhealthy"; readonly cause: Cause.Cause<unknown> | undefined }

class ResourcePoolImpl<A, E> implements Api.ResourcePool<A, E> {
  readonly [TypeId]: Api.TypeId = TypeId
  readonly name: string
  readonly get: Effect.Effect<A, E | Api.PoolAcquireTimeout | Api.PoolUnhealthy, Scope.Scope>
  readonly stats: Effect.Effect<Api.ResourcePool.Stats>

  constructor(
    readonly state: PoolState<A>,
    readonly pool: Pool.Pool<Entry<A>, E>,
    readonly clock: Clock.Clock,
    /** The health check, when one is given. */
    readonly runCheck: ((resource: A) => Effect.Effect<Verdict>) | undefined,
    /** The health check, when it runs on acquire. */
    readonly acquireCheck: ((resource: A) => Effect.Effect<Verdict>) | undefined,
    readonly maxAttempts: number,
    readonly acquireTimeout: Duration.Duration | undefined
  ) {
    // bound, so that point-free use such as `effect.pipe(x.use)` works
    this.use = this.use.bind(this)
    this.invalidate = this.invalidate.bind(this)
    this.name = state.name
    this.stats = Effect.sync(() => state.stats)
    this.get = Effect.flatMap(Effect.scope, (scope) => this.getIn(scope))
  }

  getIn(parent: Scope.Scope): Effect.Effect<A, E | Api.PoolAcquireTimeout | Api.PoolUnhealthy> {
    return Effect.suspend(() => {
      const start = this.clock.unsafeCurrentTimeMillis()
      const loop = (attempt: number): Effect.Effect<A, E | Api.PoolUnhealthy> =>
        Effect.flatMap(this.attempt(parent), (result) => {
          if (result._tag === "Healthy") return Effect.succeed(result.value)
          return attempt >= this.maxAttempts
            ? Effect.fail(new Api.PoolUnhealthy({ pool: this.name, attempts: attempt, cause: result.cause }))
            : loop(attempt + 1)
        })
      const timeout = this.acquireTimeout
      const acquired: Effect.Effect<A, E | Api.PoolAcquireTimeout | Api.PoolUnhealthy> =
        timeout === undefined || (this.state.readyIdle && this.acquireCheck === undefined)
          ? loop(1)
          : Effect.flatten(Effect.timeoutTo(
            // `Pool.get` waits for a resource being acquired without letting itself be interrupted:
            // disconnect so that the timeout fires on time; the abandoned attempt returns what it gets.
            Effect.disconnect(loop(1)),
            {
              duration: timeout,
              onSuccess: Effect.succeed,
              onTimeout: () =>
                Effect.suspend(() => {
                  this.state.acquireTimedOut()
                  return Effect.fail(new Api.PoolAcquireTimeout({ pool: this.name, timeout, stats: this.state.stats }))
                })
            }
          ))
      return Effect.tap(acquired, () => {
        this.state.wait.unsafeUpdate((this.clock.unsafeCurrentTimeMillis() - start) / 1000, [])
      })
    })
  }

  /**
   * Takes an entry from the pool in a child scope of the caller's and checks it. A healthy
   * entry stays checked out until the caller's scope closes; an unhealthy one is invalidated
   * and returned at once, which destroys it.
   */
  attempt(parent: Scope.Scope): Effect.Effect<Attempt<A>, E> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Scope.fork(parent, ExecutionStrategy.sequential), (child) => {
        this.state.addWaiter(1)
        return restore(Scope.extend(this.pool.get, child)).pipe(
          Effect.ensuring(Effect.sync(() => this.state.addWaiter(-1))),
          Effect.flatMap((entry) => {
            this.state.checkOut(entry, true)
            return Scope.addFinalizer(child, Effect.sync(() => this.state.checkOut(entry, false))).pipe(
              Effect.zipRight(restore(this.verify(entry))),
              Effect.flatMap((verdict): Effect.Effect<Attempt<A>> =>
                verdict.healthy
                  ? Effect.succeed({ _tag: "Healthy", value: entry.value })
                  : Effect.as(
                    Effect.zipRight(this.pool.invalidate(entry), Scope.close(child, Exit.void)),
                    { _tag: "Unhealthy", cause: verdict.cause }
                  )
              )
            )
          }),
          Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(child, exit) : Effect.void)
        )
      })
    )
  }

  /** The verdict on an entry just checked out: a running background check's, or a new check's. */
  verify(entry: Entry<A>): Effect.Effect<Verdict> {
    return Effect.suspend(() => {
      if (entry.check !== undefined) {
        // The background check counts the failure and invalidates; this caller only moves on.
        return Effect.map(
          Deferred.await(entry.check),
          (ok): Verdict => ok ? healthy : { healthy: false, cause: undefined }
        )
      }
      if (this.acquireCheck === undefined) return Effect.succeed(healthy)
      return Effect.tap(this.acquireCheck(entry.value), (verdict) => {
        if (!verdict.healthy) this.state.healthCheckFailed()
      })
    })
  }

  /** Checks every idle entry, one after another. */
  get checkIdle(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const idle: Array<Entry<A>> = []
      for (const entry of this.state.entries) {
        if (!entry.checkedOut && !entry.closing && entry.check === undefined) idle.push(entry)
      }
      return Effect.forEach(idle, (entry) => this.checkInBackground(entry), { discard: true })
    })
  }

  checkInBackground(entry: Entry<A>): Effect.Effect<void> {
    const runCheck = this.runCheck
    if (runCheck === undefined) return Effect.void
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Deferred.make<boolean>(), (deferred) => {
        // The entry may have been checked out or destroyed since the idle list was taken.
        if (entry.checkedOut || entry.closing || entry.check !== undefined) return Effect.void
        entry.check = deferred
        this.state.checking++
        return Effect.flatMap(Effect.exit(restore(runCheck(entry.value))), (exit) => {
          // Interrupted (the pool is closing): no verdict, keep the resource.
          const verdict = Exit.isSuccess(exit) ? exit.value : healthy
          entry.check = undefined
          this.state.checking--
          if (!verdict.healthy) this.state.healthCheckFailed()
          return Deferred.succeed(deferred, verdict.healthy).pipe(
            Effect.zipRight(verdict.healthy ? Effect.void : this.pool.invalidate(entry))
          )
        })
      })
    )
  }

  use<B, E2, R2>(
    f: (resource: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | Api.PoolAcquireTimeout | Api.PoolUnhealthy, Exclude<R2, Scope.Scope>> {
    return Effect.scoped(Effect.flatMap(this.get, f))
  }

  invalidate(resource: A): Effect.Effect<void> {
    return Effect.suspend(() => {
      const matching: Array<Entry<A>> = []
      for (const entry of this.state.entries) {
        if (entry.value === resource) matching.push(entry)
      }
      return Effect.forEach(matching, (entry) => this.pool.invalidate(entry), { discard: true })
    })
  }

  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }
}

const checkOptions = (options: Api.ResourcePool.Options<any, any, any>): string | undefined => {
  const { healthCheckMaxAttempts, max, min } = options
  if (!Number.isInteger(min) || min < 0) return `min must be an integer >= 0, got ${min}`
  if (!isPositiveInteger(max)) return `max must be an integer >= 1, got ${max}`
  if (min > max) return `min (${min}) must not exceed max (${max})`
  if (healthCheckMaxAttempts !== undefined && !isPositiveInteger(healthCheckMaxAttempts)) {
    return `healthCheckMaxAttempts must be an integer >= 1, got ${healthCheckMaxAttempts}`
  }
  return undefined
}

/** @internal */
export const make = <A, E = never, R = never>(
  options: Api.ResourcePool.Options<A, E, R>
): Effect.Effect<Api.ResourcePool<A, E>, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const invalid = checkOptions(options)
    if (invalid !== undefined) {
      return yield* illegalArgument(`ResourcePool "${options.name}": ${invalid}`)
    }
    const { healthCheck, max, min, name } = options
    const context = yield* Effect.context<R>()
    const clock = yield* Effect.clock
    const state = new PoolState<A>(name, min, max)

    // One entry per live resource, registered once `acquire` succeeds, destroyed by a finalizer
    // of the resource's scope added after (so run before) the resource's own release.
    const acquireEntry = Effect.flatMap(options.acquire, (value) =>
      Effect.uninterruptible(Effect.suspend(() => {
        const entry = state.register(value)
        return Effect.as(Effect.addFinalizer(() => state.destroy(entry)), entry)
      })))

    const pool = yield* Pool.makeWithTTL({
      acquire: acquireEntry,
      min,
      max,
      timeToLive: options.idleTimeToLive ?? defaultIdleTimeToLive,
      timeToLiveStrategy: "usage"
    })

    const runCheck = healthCheck === undefined ? undefined : (resource: A): Effect.Effect<Verdict> =>
      Effect.map(
        Effect.exit(Effect.provide(Effect.suspend(() => healthCheck(resource)), context)),
        (exit): Verdict =>
          Exit.isSuccess(exit)
            ? exit.value === false ? { healthy: false, cause: undefined } : healthy
            : { healthy: false, cause: exit.cause }
      )

    const acquireTimeout = options.acquireTimeout === undefined ? undefined : Duration.decode(options.acquireTimeout)
    const self = new ResourcePoolImpl<A, E>(
      state,
      pool,
      clock,
      runCheck,
      options.healthCheckOnAcquire === false ? undefined : runCheck,
      options.healthCheckMaxAttempts ?? defaultHealthCheckMaxAttempts,
      acquireTimeout
    )

    // Acquire `min` resources before handing the pool out. Failures are left to `get`.
    if (min > 0) {
      const warmUp = Effect.scoped(
        Effect.forEach(Array.from({ length: min }), () => Effect.exit(pool.get), {
          concurrency: "unbounded",
          discard: true
        })
      )
      yield* acquireTimeout === undefined
        ? warmUp
        : Effect.ignore(Effect.timeout(Effect.disconnect(warmUp), acquireTimeout))
    }

    if (runCheck !== undefined && options.healthCheckInterval !== undefined) {
      yield* Effect.forkScoped(Effect.forever(Effect.delay(self.checkIdle, options.healthCheckInterval)))
    }
    return self
  })

/** @internal */
export const layer = <I, A, E = never, R = never>(
  tag: Context.Tag<I, Api.ResourcePool<A, E>>,
  options: Api.ResourcePool.Options<A, E, R>
): Layer.Layer<I, never, Exclude<R, Scope.Scope>> => Layer.scoped(tag, make(options))

/** @internal */
export const get = <A, E>(
  self: Api.ResourcePool<A, E>
): Effect.Effect<A, E | Api.PoolAcquireTimeout | Api.PoolUnhealthy, Scope.Scope> => self.get

/** @internal */
export const use: {
  <A, B, E2, R2>(
    f: (resource: A) => Effect.Effect<B, E2, R2>
  ): <E>(
    self: Api.ResourcePool<A, E>
  ) => Effect.Effect<B, E | E2 | Api.PoolAcquireTimeout | Api.PoolUnhealthy, Exclude<R2, Scope.Scope>>
  <A, E, B, E2, R2>(
    self: Api.ResourcePool<A, E>,
    f: (resource: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | Api.PoolAcquireTimeout | Api.PoolUnhealthy, Exclude<R2, Scope.Scope>>
} = dual(2, <A, E, B, E2, R2>(
  self: Api.ResourcePool<A, E>,
  f: (resource: A) => Effect.Effect<B, E2, R2>
) => self.use(f))

/** @internal */
export const invalidate: {
  <A>(resource: A): <E>(self: Api.ResourcePool<A, E>) => Effect.Effect<void>
  <A, E>(self: Api.ResourcePool<A, E>, resource: A): Effect.Effect<void>
} = dual(2, <A, E>(self: Api.ResourcePool<A, E>, resource: A) => self.invalidate(resource))

/** @internal */
export const stats = <A, E>(self: Api.ResourcePool<A, E>): Effect.Effect<Api.ResourcePool.Stats> => self.stats
