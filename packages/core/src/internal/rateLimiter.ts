import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import type * as Scope from "effect/Scope"
import * as api from "../RateLimiter.js"
import { append, illegalArgument as die, isPositiveInteger, unlink as unlinkNode } from "./shared.js"

/** @internal */
export const TypeId: api.TypeId = Symbol.for("@spindle/core/RateLimiter") as api.TypeId

// -----------------------------------------------------------------------------
// metrics
// -----------------------------------------------------------------------------

/** @internal */
export const admittedTotal = Metric.counter("spindle_rate_limiter_admitted_total", {
  description: "Calls admitted by the rate limiter",
  incremental: true
})

/** @internal */
export const rejectedTotal = Metric.counter("spindle_rate_limiter_rejected_total", {
  description: "Calls rejected with RateLimitExceeded",
  incremental: true
})

/** @internal */
export const delayedTotal = Metric.counter("spindle_rate_limiter_delayed_total", {
  description: "Calls that waited for the rate limiter",
  incremental: true
})

/** @internal */
export const waitSeconds = Metric.histogram(
  "spindle_rate_limiter_wait_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 18 }),
  "Seconds a delayed call waited before admission"
)

// -----------------------------------------------------------------------------
// meters: the algorithms, one instance per key, pure arithmetic on millisecond time
// -----------------------------------------------------------------------------

/**
 * The rate state of one key. `take` consumes `cost` and returns 0 when the cost fits now, or
 * returns the milliseconds after which it will fit (consuming nothing).
 */
interface Meter {
  readonly take: (cost: number, now: number) => number
  readonly used: (now: number) => number
  readonly resetAfter: (now: number) => number
}

/**
 * A token bucket kept in integer "token-milliseconds": one token is `unit` (the interval in
 * ms) and the bucket gains `rate` (= limit) per ms. With millisecond clocks every value stays
 * an integer, so refills and waits are exact (no drift from fractions like 1/3 token per ms).
 */
class TokenBucket implements Meter {
  level: number
  updatedAt: number
  constructor(
    readonly unit: number,
    readonly rate: number,
    readonly capacity: number,
    now: number
  ) {
    this.level = capacity * unit
    this.updatedAt = now
  }
  refill(now: number): void {
    if (now > this.updatedAt) {
      this.level = Math.min(this.capacity * this.unit, this.level + (now - this.updatedAt) * this.rate)
      this.updatedAt = now
    }
  }
  take(cost: number, now: number): number {
    this.refill(now)
    const need = cost * this.unit
    if (this.level >= need) {
      this.level -= need
      return 0
    }
    return Math.ceil((need - this.level) / this.rate)
  }
  used(now: number): number {
    this.refill(now)
    return this.capacity - this.level / this.unit
  }
  resetAfter(now: number): number {
    this.refill(now)
    return Math.ceil((this.capacity * this.unit - this.level) / this.rate)
  }
}

/**
 * An exact sliding log: admission times with their costs, oldest first from `start`. An
 * entry admitted at `s` counts while `now < s + window`. Entries of the same millisecond are
 * merged, so the log never holds more than `limit` entries.
 */
class SlidingLog implements Meter {
  times: Array<number> = []
  costs: Array<number> = []
  start = 0
  total = 0
  constructor(readonly limit: number, readonly window: number) {}
  prune(now: number): void {
    const cutoff = now - this.window
    const times = this.times
    let start = this.start
    while (start < times.length && times[start]! <= cutoff) {
      this.total -= this.costs[start]!
      start++
    }
    if (start === times.length) {
      times.length = 0
      this.costs.length = 0
      start = 0
    } else if (start >= 32 && start * 2 >= times.length) {
      times.splice(0, start)
      this.costs.splice(0, start)
      start = 0
    }
    this.start = start
  }
  take(cost: number, now: number): number {
    this.prune(now)
    if (this.total + cost <= this.limit) {
      const last = this.times.length - 1
      if (last >= this.start && this.times[last] === now) {
        this.costs[last]! += cost
      } else {
        this.times.push(now)
        this.costs.push(cost)
      }
      this.total += cost
      return 0
    }
    // the oldest entries must expire until `cost` fits
    let excess = this.total + cost - this.limit
    let i = this.start
    while (excess > this.costs[i]!) {
      excess -= this.costs[i]!
      i++
    }
    return this.times[i]! + this.window - now
  }
  used(now: number): number {
    this.prune(now)
    return this.total
  }
  resetAfter(now: number): number {
    this.prune(now)
    return this.times.length === 0 ? 0 : this.times[this.times.length - 1]! + this.window - now
  }
}

// -----------------------------------------------------------------------------
// limiter
// -----------------------------------------------------------------------------

interface Waiter {
  readonly cost: number
  readonly since: number
  readonly wake: Deferred.Deferred<void>
  prev: Waiter | undefined
  next: Waiter | undefined
  settled: boolean
}

interface KeyState {
  readonly key: string | undefined
  readonly meter: Meter
  lastUsed: number
  /** FIFO of waiters; only the head sleeps on the clock, the others wait to become head. */
  head: Waiter | undefined
  tail: Waiter | undefined
  waiting: number
}

const positiveMillis = (name: string, input: Duration.DurationInput): number | string => {
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") return `RateLimiter: ${name} is not a duration`
  const millis = Duration.toMillis(decoded.value)
  return millis > 0 && Number.isFinite(millis) ? millis : `RateLimiter: ${name} must be a positive, finite duration`
}

interface Config {
  readonly capacity: number
  readonly recoveryMillis: number
  readonly makeMeter: (now: number) => Meter
}

const configure = (options: api.RateLimiter.Options): Config | string => {
  if (typeof options.name !== "string" || options.name.length === 0) return "RateLimiter: name must be non-empty"
  if (!isPositiveInteger(options.limit)) return "RateLimiter: limit must be a positive integer"
  if (options.onExceeded !== "delay" && options.onExceeded !== "fail") {
    return "RateLimiter: onExceeded must be \"delay\" or \"fail\""
  }
  if (options.maxKeys !== undefined && !isPositiveInteger(options.maxKeys)) {
    return "RateLimiter: maxKeys must be a positive integer"
  }
  const limit = options.limit
  switch (options.algorithm) {
    case "token-bucket": {
      const interval = positiveMillis("interval", options.interval)
      if (typeof interval === "string") return interval
      const capacity = options.capacity ?? limit
      if (!isPositiveInteger(capacity)) return "RateLimiter: capacity must be a positive integer"
      return {
        capacity,
        recoveryMillis: Math.ceil(capacity * interval / limit),
        makeMeter: (now) => new TokenBucket(interval, limit, capacity, now)
      }
    }
    case "sliding-window": {
      const window = positiveMillis("window", options.window)
      if (typeof window === "string") return window
      return {
        capacity: limit,
        recoveryMillis: window,
        makeMeter: () => new SlidingLog(limit, window)
      }
    }
    default:
      return "RateLimiter: algorithm must be \"token-bucket\" or \"sliding-window\""
  }
}

const makeLimiter = (
  options: api.RateLimiter.Options,
  config: Config,
  clock: Clock.Clock,
  idleMillis: number,
  latch: Effect.Latch
): {
  readonly limiter: api.RateLimiter
  /** Drops idle keys and returns how many keys remain. */
  readonly sweep: () => number
} => {
  const { name, onExceeded } = options
  const { capacity } = config
  const fail = onExceeded === "fail"
  const maxKeys = options.maxKeys ?? 100_000
  const tags = [MetricLabel.make("limiter", name)]
  const keys = new Map<string, KeyState>()
  const newState = (key: string | undefined, now: number): KeyState => ({
    key,
    meter: config.makeMeter(now),
    lastUsed: now,
    head: undefined,
    tail: undefined,
    waiting: 0
  })
  const global = newState(undefined, clock.unsafeCurrentTimeMillis())
  let admitted = 0
  let delayed = 0
  let rejected = 0
  let waiting = 0
  let evicted = 0

  // Map order is least recently used first: `touch` moves a key to the end.
  const touch = (state: KeyState, now: number): void => {
    state.lastUsed = now
    if (state.key !== undefined) {
      keys.delete(state.key)
      keys.set(state.key, state)
    }
  }

  // Drops idle keys from the front; keys with waiters are never dropped.
  const sweep = (): number => {
    const now = clock.unsafeCurrentTimeMillis()
    for (const [key, state] of keys) {
      if (state.head !== undefined) continue
      if (now - state.lastUsed < idleMillis) break
      keys.delete(key)
      evicted++
    }
    return keys.size
  }

  const stateFor = (key: string, now: number): KeyState => {
    const existing = keys.get(key)
    if (existing !== undefined) return existing
    sweep()
    if (keys.size >= maxKeys) {
      for (const [lru, state] of keys) {
        if (state.head !== undefined) continue
        keys.delete(lru)
        evicted++
        break
      }
    }
    const state = newState(key, now)
    keys.set(key, state)
    if (keys.size === 1) latch.unsafeOpen()
    return state
  }

  const admit = (state: KeyState, now: number): void => {
    admitted++
    admittedTotal.unsafeUpdate(1, tags)
    touch(state, now)
  }

  const wakeHead = (state: KeyState): void => {
    if (state.head !== undefined) Deferred.unsafeDone(state.head.wake, Exit.void)
  }

  const unlink = (state: KeyState, waiter: Waiter): void => {
    waiter.settled = true
    unlinkNode(state, waiter)
    state.waiting--
    waiting--
  }

  // Runs only while `waiter` is the head: sleeps on the clock until its cost fits, then takes
  // it. Tokens are consumed only here, in one synchronous step, so an interrupted waiter
  // never holds capacity.
  const admitHead = (
    state: KeyState,
    waiter: Waiter,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<void> =>
    Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const wait = state.meter.take(waiter.cost, now)
      if (wait > 0) {
        return Effect.zipRight(restore(clock.sleep(Duration.millis(wait))), admitHead(state, waiter, restore))
      }
      unlink(state, waiter)
      admit(state, now)
      waitSeconds.unsafeUpdate((now - waiter.since) / 1000, tags)
      wakeHead(state)
      return Effect.void
    })

  const enqueue = (state: KeyState, cost: number, now: number): Effect.Effect<void> => {
    const waiter: Waiter = {
      cost,
      since: now,
      wake: Deferred.unsafeMake<void>(FiberId.none),
      prev: undefined,
      next: undefined,
      settled: false
    }
    append(state, waiter)
    state.waiting++
    waiting++
    delayed++
    delayedTotal.unsafeUpdate(1, tags)
    if (state.head === waiter) wakeHead(state)
    return Effect.uninterruptibleMask((restore) =>
      Effect.onInterrupt(
        Effect.zipRight(restore(Deferred.await(waiter.wake)), admitHead(state, waiter, restore)),
        () =>
          Effect.sync(() => {
            if (waiter.settled) return
            const wasHead = state.head === waiter
            unlink(state, waiter)
            if (wasHead) wakeHead(state)
          })
      )
    )
  }

  const take = (key?: string, cost: number = 1): Effect.Effect<void, api.RateLimitExceeded> => {
    if (!isPositiveInteger(cost) || cost > capacity) {
      return die(`RateLimiter "${name}": cost must be an integer from 1 to ${capacity}, got ${cost}`)
    }
    return Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const state = key === undefined ? global : stateFor(key, now)
      if (state.head === undefined) {
        const wait = state.meter.take(cost, now)
        if (wait === 0) {
          admit(state, now)
          return Effect.void
        }
        if (fail) {
          rejected++
          rejectedTotal.unsafeUpdate(1, tags)
          touch(state, now)
          return Effect.fail(
            new api.RateLimitExceeded({ limiter: name, key, limit: options.limit, retryAfter: Duration.millis(wait) })
          )
        }
      }
      touch(state, now)
      return enqueue(state, cost, now)
    })
  }

  const limiter: api.RateLimiter = {
    [TypeId]: TypeId,
    name,
    algorithm: options.algorithm,
    onExceeded,
    limit: options.limit,
    capacity,
    take,
    run: (effect, runOptions) => Effect.zipRight(take(runOptions?.key, runOptions?.cost), effect),
    stats: Effect.sync(() => ({ admitted, delayed, rejected, waiting, keys: keys.size, evicted })),
    usage: (key) =>
      Effect.sync(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const state = key === undefined ? global : keys.get(key)
        if (state === undefined) {
          return { key, capacity, used: 0, available: capacity, waiting: 0, resetAfter: Duration.zero }
        }
        const used = state.meter.used(now)
        return {
          key,
          capacity,
          used,
          available: capacity - used,
          waiting: state.waiting,
          resetAfter: Duration.millis(state.meter.resetAfter(now))
        }
      })
  }
  return { limiter, sweep }
}

/** @internal */
export const make: {
  (
    options: api.RateLimiter.Options & { readonly onExceeded: "delay" }
  ): Effect.Effect<api.RateLimiter<never>, never, Scope.Scope>
  (options: api.RateLimiter.Options): Effect.Effect<api.RateLimiter, never, Scope.Scope>
} = (options: api.RateLimiter.Options) =>
  Effect.gen(function*() {
    const config = configure(options)
    if (typeof config === "string") return yield* die(config)
    let idleMillis = config.recoveryMillis
    if (options.idleTimeToLive !== undefined) {
      const ttl = positiveMillis("idleTimeToLive", options.idleTimeToLive)
      if (typeof ttl === "string") return yield* die(ttl)
      idleMillis = ttl
    }
    const clock = yield* Effect.clock
    const latch = yield* Effect.makeLatch(false)
    const { limiter, sweep } = makeLimiter(options, config, clock, idleMillis, latch)
    // While keys exist, sweep idle ones every `idleMillis`; sleep on the latch otherwise.
    yield* latch.await.pipe(
      Effect.zipRight(clock.sleep(Duration.millis(idleMillis))),
      Effect.zipRight(Effect.sync(() => {
        if (sweep() === 0) latch.unsafeClose()
      })),
      Effect.forever,
      Effect.interruptible,
      Effect.forkScoped
    )
    // In "delay" mode the error channel is empty: the overloads of `make` say so.
    return limiter as api.RateLimiter<never>
  })

/** @internal */
export const layer: {
  <I>(
    tag: Context.Tag<I, api.RateLimiter<never>>,
    options: api.RateLimiter.Options & { readonly onExceeded: "delay" }
  ): Layer.Layer<I>
  <I>(tag: Context.Tag<I, api.RateLimiter>, options: api.RateLimiter.Options): Layer.Layer<I>
  // tags are invariant: the overloads above tie the tag's error type to `onExceeded`
} = <I>(tag: Context.Tag<I, any>, options: api.RateLimiter.Options): Layer.Layer<I> => Layer.scoped(tag, make(options))

/** @internal */
export const withRateLimit = dual<
  <E2>(
    limiter: api.RateLimiter<E2>,
    options?: api.RateLimiter.RunOptions
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | E2, R>,
  <A, E, R, E2>(
    self: Effect.Effect<A, E, R>,
    limiter: api.RateLimiter<E2>,
    options?: api.RateLimiter.RunOptions
  ) => Effect.Effect<A, E | E2, R>
>(
  (args) => Effect.isEffect(args[0]),
  (self, limiter, options) => limiter.run(self, options)
)
