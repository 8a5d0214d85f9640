import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as MutableHashMap from "effect/MutableHashMap"
import * as Option from "effect/Option"
import { pipeArguments } from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import type * as Scope from "effect/Scope"
import type * as KeyedLimiter from "../KeyedLimiter.js"
import type * as Limiter from "../Limiter.js"
import { MetricSink, Permits, Tally, validateLimit } from "./limiter.js"
import type { LinkedQueue } from "./shared.js"
import { append, unlink } from "./shared.js"

/** @internal */
export const TypeId: KeyedLimiter.TypeId = Symbol.for("@spindle/core/KeyedLimiter") as KeyedLimiter.TypeId

/**
 * The permits of one key. While the key is idle (nothing in flight, nobody
 * queued) and a time to live is set, the entry sits in the idle list, oldest
 * first, until it is used again or swept.
 */
class KeyedEntry<K> extends Permits {
  idleSince = 0
  /** links of the idle list */
  prev: KeyedEntry<K> | undefined = undefined
  next: KeyedEntry<K> | undefined = undefined
  inIdleList = false
  constructor(
    readonly key: K,
    limit: number,
    clock: Clock.Clock,
    totals: Tally
  ) {
    super(limit, clock, new Tally(undefined), totals)
  }
}

class KeyedLimiterImpl<K> implements KeyedLimiter.KeyedLimiter<K> {
  readonly [TypeId]: KeyedLimiter.TypeId = TypeId
  readonly entries = MutableHashMap.empty<K, KeyedEntry<K>>()
  readonly totals: Tally
  /** idle keys, oldest first */
  readonly idle: LinkedQueue<KeyedEntry<K>> = { head: undefined, tail: undefined }
  readonly stats: Effect.Effect<KeyedLimiter.KeyedLimiter.Stats>

  constructor(
    readonly name: string,
    readonly limitPerKey: number,
    readonly idleTimeToLiveMillis: number,
    readonly clock: Clock.Clock,
    readonly sink: MetricSink
  ) {
    // bound, so that point-free use such as `effect.pipe(x.run)` works
    this.run = this.run.bind(this)
    this.statsFor = this.statsFor.bind(this)
    this.totals = new Tally(sink)
    this.stats = Effect.sync(() => this.unsafeStats())
  }

  /** the entry of `key`, created on first use and taken out of the idle list */
  entry(key: K): KeyedEntry<K> {
    const found = MutableHashMap.get(this.entries, key)
    if (found._tag === "Some") {
      const entry = found.value
      if (entry.inIdleList) this.unlinkIdle(entry)
      return entry
    }
    const entry = new KeyedEntry(key, this.limitPerKey, this.clock, this.totals)
    entry.onIdle = this.onIdle
    MutableHashMap.set(this.entries, key, entry)
    this.sink.keyCount++
    this.sink.mark()
    return entry
  }

  readonly onIdle = (permits: Permits): void => {
    const entry = permits as KeyedEntry<K>
    if (this.idleTimeToLiveMillis <= 0) {
      this.evict(entry)
      return
    }
    entry.idleSince = this.clock.unsafeCurrentTimeMillis()
    entry.inIdleList = true
    append(this.idle, entry)
  }

  unlinkIdle(entry: KeyedEntry<K>): void {
    unlink(this.idle, entry)
    entry.inIdleList = false
  }

  evict(entry: KeyedEntry<K>): void {
    if (entry.inIdleList) this.unlinkIdle(entry)
    MutableHashMap.remove(this.entries, entry.key)
    this.sink.keyCount--
    this.sink.evictedCount++
    this.sink.mark()
  }

  /** drops the keys idle for at least the time to live */
  sweep(): void {
    const now = this.clock.unsafeCurrentTimeMillis()
    let entry = this.idle.head
    while (entry !== undefined && entry.idleSince + this.idleTimeToLiveMillis <= now) {
      const next = entry.next
      this.evict(entry)
      entry = next
    }
  }

  run<A, E, R>(key: K, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    // the lookup and the acquisition (or the enqueue) happen in one synchronous
    // step, so an entry is never evicted between the two
    return Effect.uninterruptibleMask((restore) => this.entry(key).runMasked(restore, effect))
  }

  statsFor(key: K): Effect.Effect<Option.Option<Limiter.Limiter.Stats>> {
    return Effect.sync(() =>
      Option.map(MutableHashMap.get(this.entries, key), (entry) => entry.tally.stats(this.name, this.limitPerKey))
    )
  }

  unsafeStats(): KeyedLimiter.KeyedLimiter.Stats {
    const totals = this.totals.stats(this.name, this.limitPerKey)
    return {
      name: this.name,
      limitPerKey: this.limitPerKey,
      keys: this.sink.keyCount,
      evicted: this.sink.evictedCount,
      inFlight: totals.inFlight,
      peak: totals.peak,
      waiting: totals.waiting,
      completed: totals.completed,
      failed: totals.failed,
      interrupted: totals.interrupted,
      meanWait: totals.meanWait,
      maxWait: totals.maxWait
    }
  }

  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }
}

/** @internal */
export const make = <K = string>(
  options: KeyedLimiter.KeyedLimiter.Options
): Effect.Effect<KeyedLimiter.KeyedLimiter<K>, never, Scope.Scope> =>
  Effect.gen(function*() {
    validateLimit("KeyedLimiter.make", "limitPerKey", options.limitPerKey)
    const ttl = options.idleTimeToLive === undefined ? Duration.zero : Duration.decode(options.idleTimeToLive)
    const scheduler = yield* FiberRef.get(FiberRef.currentScheduler)
    const clock = yield* Effect.clock
    const sink = new MetricSink("spindle_keyed_limiter", options.name, scheduler, true)
    const limiter = new KeyedLimiterImpl<K>(options.name, options.limitPerKey, Duration.toMillis(ttl), clock, sink)
    sink.flush()
    if (Duration.greaterThan(ttl, Duration.zero) && Duration.isFinite(ttl)) {
      yield* Effect.sync(() => limiter.sweep()).pipe(
        Effect.delay(ttl),
        Effect.forever,
        Effect.interruptible,
        Effect.forkScoped
      )
    }
    return limiter
  })

/** @internal */
export const layer = <I, K>(
  tag: Context.Tag<I, KeyedLimiter.KeyedLimiter<K>>,
  options: KeyedLimiter.KeyedLimiter.Options
): Layer.Layer<I> => Layer.scoped(tag, make<K>(options))

/** @internal */
export const isKeyedLimiter = (u: unknown): u is KeyedLimiter.KeyedLimiter<unknown> => hasProperty(u, TypeId)

/** @internal */
export const run: {
  <K>(
    limiter: KeyedLimiter.KeyedLimiter<K>,
    key: K
  ): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <K, A, E, R>(limiter: KeyedLimiter.KeyedLimiter<K>, key: K, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
} = (...args: Array<any>): any =>
  args.length === 2
    ? (effect: Effect.Effect<any, any, any>) => (args[0] as KeyedLimiter.KeyedLimiter<unknown>).run(args[1], effect)
    : (args[0] as KeyedLimiter.KeyedLimiter<unknown>).run(args[1], args[2])
