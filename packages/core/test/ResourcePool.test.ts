import { assert, describe, it } from "@effect/vitest"
import * as ResourcePool from "@spindle/core/ResourcePool"
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  ExecutionStrategy,
  Exit,
  Fiber,
  Metric,
  Option,
  Scope,
  TestClock
} from "effect"

interface Conn {
  readonly id: number
  healthy: boolean
}

/** A resource factory that records every acquisition and every release. */
const makeFactory = (options?: { readonly slowAfter?: number; readonly delay?: Duration.DurationInput }) => {
  const conns: Array<Conn> = []
  const released: Array<number> = []
  const acquire = Effect.acquireRelease(
    Effect.suspend(() => {
      const conn: Conn = { id: conns.length + 1, healthy: true }
      conns.push(conn)
      return options?.slowAfter !== undefined && conn.id > options.slowAfter
        ? Effect.as(Effect.sleep(options.delay ?? "10 seconds"), conn)
        : Effect.succeed(conn)
    }),
    (conn) => Effect.sync(() => released.push(conn.id))
  )
  return { acquire, conns, released }
}

/** Lets the other fibers run until the pool's stats satisfy `predicate`. */
const statsWhen = <A, E>(
  pool: ResourcePool.ResourcePool<A, E>,
  predicate: (stats: ResourcePool.ResourcePool.Stats) => boolean
) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const stats = yield* pool.stats
      if (predicate(stats)) return stats
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`stats never matched: ${JSON.stringify(yield* pool.stats)}`)
  })

/**
 * Checks a resource out into a scope the test can close itself; the scope is a child of the
 * test's, so a resource still held at the end is returned before the pool closes.
 */
const hold = <A, E>(pool: ResourcePool.ResourcePool<A, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const resource = yield* Scope.extend(pool.get, scope)
    return { resource, release: Scope.close(scope, Exit.void) }
  })

const gaugeValue = (gauge: Metric.Metric.Gauge<number>, pool: string) =>
  Effect.map(Metric.value(Metric.tagged(gauge, "pool", pool)), (state) => state.value)

const counterValue = (counter: Metric.Metric.Counter<number>, pool: string) =>
  Effect.map(Metric.value(Metric.tagged(counter, "pool", pool)), (state) => state.count)

describe("ResourcePool", () => {
  it.scoped("acquires min resources before make completes", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({ name: "rp-min", acquire: factory.acquire, min: 2, max: 4 })
      const stats = yield* pool.stats
      assert.deepStrictEqual(stats, {
        min: 2,
        max: 4,
        size: 2,
        inUse: 0,
        idle: 2,
        waiters: 0,
        utilization: 0,
        created: 2,
        destroyed: 0,
        healthCheckFailures: 0,
        acquireTimeouts: 0
      })
      assert.strictEqual(factory.conns.length, 2)
    }))

  it.scoped("grows to max under demand, never beyond; the next getter waits for a returned resource", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({ name: "rp-grow", acquire: factory.acquire, min: 1, max: 3 })
      const a = yield* hold(pool)
      const b = yield* hold(pool)
      const c = yield* hold(pool)
      assert.deepStrictEqual([a.resource.id, b.resource.id, c.resource.id].sort(), [1, 2, 3])
      let stats = yield* pool.stats
      assert.strictEqual(stats.size, 3)
      assert.strictEqual(stats.inUse, 3)
      assert.strictEqual(stats.utilization, 1)

      const waiter = yield* Effect.fork(hold(pool))
      const waiter2 = yield* Effect.fork(hold(pool))
      stats = yield* statsWhen(pool, (s) => s.waiters === 2)
      assert.strictEqual(stats.size, 3)
      assert.strictEqual(stats.created, 3)
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))

      yield* b.release
      const got = yield* Fiber.join(waiter)
      assert.strictEqual(got.resource, b.resource)
      stats = yield* statsWhen(pool, (s) => s.waiters === 1)
      assert.strictEqual(stats.inUse, 3)
      assert.strictEqual(stats.size, 3)
      assert.strictEqual(stats.created, 3)

      yield* a.release
      const got2 = yield* Fiber.join(waiter2)
      assert.strictEqual(got2.resource, a.resource)
      assert.strictEqual(factory.conns.length, 3)
      assert.deepStrictEqual(factory.released, [])
    }))

  it.scoped("fails with PoolAcquireTimeout exactly at acquireTimeout", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({
        name: "rp-timeout",
        acquire: factory.acquire,
        min: 1,
        max: 1,
        acquireTimeout: "5 seconds"
      })
      yield* hold(pool)
      const waiter = yield* Effect.fork(pool.use(Effect.succeed))
      yield* statsWhen(pool, (s) => s.waiters === 1)
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.instanceOf(error, ResourcePool.PoolAcquireTimeout)
      assert.strictEqual(error._tag, "PoolAcquireTimeout")
      if (error._tag !== "PoolAcquireTimeout") return
      assert.strictEqual(error.pool, "rp-timeout")
      assert.isTrue(Duration.equals(error.timeout, Duration.seconds(5)))
      assert.strictEqual(error.stats.inUse, 1)
      assert.strictEqual(error.stats.max, 1)
      assert.strictEqual(error.stats.acquireTimeouts, 1)

      const stats = yield* statsWhen(pool, (s) => s.waiters === 0)
      assert.strictEqual(stats.acquireTimeouts, 1)
      assert.strictEqual(stats.size, 1)
      assert.strictEqual(yield* counterValue(ResourcePool.metrics.acquireTimeouts, "rp-timeout"), 1)
    }))

  it.scoped("times out while a new resource is still being acquired, and takes that resource back", () =>
    Effect.gen(function*() {
      const factory = makeFactory({ slowAfter: 1, delay: "10 seconds" })
      const pool = yield* ResourcePool.make({
        name: "rp-slow",
        acquire: factory.acquire,
        min: 1,
        max: 2,
        acquireTimeout: "1 second"
      })
      yield* hold(pool)
      const waiter = yield* Effect.fork(pool.use(Effect.succeed))
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.strictEqual(error._tag, "PoolAcquireTimeout")
      assert.strictEqual(factory.conns.length, 2)

      yield* TestClock.adjust("9 seconds")
      const stats = yield* statsWhen(pool, (s) => s.size === 2 && s.waiters === 0)
      assert.strictEqual(stats.inUse, 1)
      assert.strictEqual(stats.idle, 1)
      const next = yield* pool.use((conn) => Effect.succeed(conn.id))
      assert.strictEqual(next, 2)
    }))

  it.scoped("replaces a resource that fails its health check on acquire", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const checked: Array<number> = []
      const pool = yield* ResourcePool.make({
        name: "rp-check-acquire",
        acquire: factory.acquire,
        min: 1,
        max: 1,
        healthCheck: (conn) => Effect.sync(() => (checked.push(conn.id), conn.healthy))
      })
      factory.conns[0]!.healthy = false
      const id = yield* pool.use((conn) => Effect.succeed(conn.id))
      assert.strictEqual(id, 2)
      assert.deepStrictEqual(checked, [1, 2])
      assert.deepStrictEqual(factory.released, [1])
      const stats = yield* pool.stats
      assert.strictEqual(stats.created, 2)
      assert.strictEqual(stats.destroyed, 1)
      assert.strictEqual(stats.size, 1)
      assert.strictEqual(stats.healthCheckFailures, 1)
      assert.strictEqual(yield* counterValue(ResourcePool.metrics.healthCheckFailures, "rp-check-acquire"), 1)
    }))

  it.scoped("fails with PoolUnhealthy after healthCheckMaxAttempts unhealthy resources", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({
        name: "rp-unhealthy",
        acquire: factory.acquire,
        min: 1,
        max: 2,
        healthCheck: (conn) => Effect.fail(`conn ${conn.id} is down`),
        healthCheckMaxAttempts: 3
      })
      const error = yield* Effect.flip(pool.use(Effect.succeed))
      assert.instanceOf(error, ResourcePool.PoolUnhealthy)
      if (error._tag !== "PoolUnhealthy") return
      assert.strictEqual(error.pool, "rp-unhealthy")
      assert.strictEqual(error.attempts, 3)
      assert.deepStrictEqual(error.cause, Cause.fail("conn 3 is down"))
      assert.deepStrictEqual(factory.released, [1, 2, 3])
      const stats = yield* statsWhen(pool, (s) => s.size === 1)
      assert.strictEqual(stats.healthCheckFailures, 3)
      assert.strictEqual(stats.destroyed, 3)
      assert.strictEqual(stats.inUse, 0)
    }))

  it.scoped("checks idle resources in the background, replacing unhealthy ones and skipping those in use", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const checked: Array<number> = []
      const pool = yield* ResourcePool.make({
        name: "rp-check-background",
        acquire: factory.acquire,
        min: 2,
        max: 2,
        healthCheck: (conn) => Effect.sync(() => (checked.push(conn.id), conn.healthy)),
        healthCheckInterval: "30 seconds",
        healthCheckOnAcquire: false
      })
      const held = yield* hold(pool)
      const idle = factory.conns.find((conn) => conn !== held.resource)!
      idle.healthy = false
      held.resource.healthy = false

      yield* TestClock.adjust("29 seconds")
      assert.deepStrictEqual(checked, [])
      yield* TestClock.adjust("1 second")
      const stats = yield* statsWhen(pool, (s) => s.destroyed === 1 && s.size === 2)
      assert.deepStrictEqual(checked, [idle.id])
      assert.deepStrictEqual(factory.released, [idle.id])
      assert.strictEqual(stats.created, 3)
      assert.strictEqual(stats.healthCheckFailures, 1)
      assert.strictEqual(stats.inUse, 1)
      assert.strictEqual(stats.idle, 1)

      // Once returned, the other unhealthy resource is caught by the next round.
      yield* held.release
      yield* TestClock.adjust("30 seconds")
      const after = yield* statsWhen(pool, (s) => s.destroyed === 2 && s.size === 2)
      assert.deepStrictEqual(factory.released, [idle.id, held.resource.id])
      assert.deepStrictEqual(checked, [idle.id, held.resource.id, 3])
      assert.strictEqual(after.created, 4)
      assert.strictEqual(after.healthCheckFailures, 2)
    }))

  it.scoped("a caller handed a resource under background check waits for the verdict", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const verdict = yield* Deferred.make<boolean>()
      const started = yield* Deferred.make<void>()
      const pool = yield* ResourcePool.make({
        name: "rp-check-race",
        acquire: factory.acquire,
        min: 1,
        max: 1,
        healthCheck: (conn) =>
          conn.id === 1 ? Effect.zipRight(Deferred.succeed(started, void 0), Deferred.await(verdict)) : Effect.void,
        healthCheckInterval: "10 seconds",
        healthCheckOnAcquire: false
      })
      yield* TestClock.adjust("10 seconds")
      yield* Deferred.await(started)
      const user = yield* Effect.fork(pool.use((conn) => Effect.succeed(conn.id)))
      yield* statsWhen(pool, (s) => s.inUse === 1)
      assert.isTrue(Option.isNone(yield* Fiber.poll(user)))
      assert.deepStrictEqual(factory.released, [])

      yield* Deferred.succeed(verdict, false)
      assert.strictEqual(yield* Fiber.join(user), 2)
      assert.deepStrictEqual(factory.released, [1])
      const stats = yield* pool.stats
      assert.strictEqual(stats.healthCheckFailures, 1)
      assert.strictEqual(stats.size, 1)
      assert.strictEqual(stats.inUse, 0)
    }))

  it.scoped("shrinks back to min after idleTimeToLive", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({
        name: "rp-ttl",
        acquire: factory.acquire,
        min: 1,
        max: 3,
        idleTimeToLive: "10 seconds"
      })
      const held = yield* Effect.all([hold(pool), hold(pool), hold(pool)])
      yield* Effect.forEach(held, (h) => h.release, { discard: true })
      assert.strictEqual((yield* pool.stats).size, 3)

      yield* TestClock.adjust("10 seconds")
      const stats = yield* statsWhen(pool, (s) => s.size === 1)
      assert.strictEqual(stats.destroyed, 2)
      assert.strictEqual(stats.created, 3)
      assert.strictEqual(factory.released.length, 2)
      assert.strictEqual(yield* gaugeValue(ResourcePool.metrics.size, "rp-ttl"), 1)

      yield* TestClock.adjust("60 seconds")
      assert.strictEqual((yield* pool.stats).size, 1)
    }))

  it.scoped("reports exact stats and metrics", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({ name: "rp-stats", acquire: factory.acquire, min: 1, max: 4 })
      const a = yield* hold(pool)
      const b = yield* hold(pool)
      let stats = yield* pool.stats
      assert.strictEqual(stats.size, 2)
      assert.strictEqual(stats.inUse, 2)
      assert.strictEqual(stats.idle, 0)
      assert.strictEqual(stats.utilization, 0.5)
      assert.strictEqual(yield* gaugeValue(ResourcePool.metrics.inUse, "rp-stats"), 2)
      assert.strictEqual(yield* gaugeValue(ResourcePool.metrics.utilization, "rp-stats"), 0.5)

      yield* a.release
      stats = yield* pool.stats
      assert.strictEqual(stats.inUse, 1)
      assert.strictEqual(stats.idle, 1)
      assert.strictEqual(stats.utilization, 0.25)
      assert.strictEqual(yield* gaugeValue(ResourcePool.metrics.size, "rp-stats"), 2)
      assert.strictEqual(yield* gaugeValue(ResourcePool.metrics.inUse, "rp-stats"), 1)
      assert.strictEqual(yield* gaugeValue(ResourcePool.metrics.utilization, "rp-stats"), 0.25)
      assert.strictEqual(yield* gaugeValue(ResourcePool.metrics.waiters, "rp-stats"), 0)
      yield* b.release

      const wait = yield* Metric.value(Metric.tagged(ResourcePool.metrics.acquireWaitSeconds, "pool", "rp-stats"))
      assert.strictEqual(wait.count, 2)
    }))

  it.scoped("invalidate destroys a checked-out resource when it is returned, and replaces it", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({ name: "rp-invalidate", acquire: factory.acquire, min: 1, max: 2 })
      const held = yield* hold(pool)
      yield* ResourcePool.invalidate(pool, held.resource)
      assert.deepStrictEqual(factory.released, [])
      assert.strictEqual((yield* pool.stats).size, 1)
      yield* held.release
      assert.deepStrictEqual(factory.released, [1])
      const stats = yield* statsWhen(pool, (s) => s.size === 1)
      assert.strictEqual(stats.created, 2)
      assert.strictEqual(stats.destroyed, 1)
      assert.strictEqual(yield* pool.use((conn) => Effect.succeed(conn.id)), 2)
    }))

  it.effect("closing the scope releases every resource", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(
        ResourcePool.make({
          name: "rp-close",
          acquire: factory.acquire,
          min: 2,
          max: 5,
          healthCheck: () => Effect.succeed(true),
          healthCheckInterval: "1 second"
        }),
        scope
      )
      // Grow to max, every resource checked out in the pool's own scope.
      yield* Scope.extend(Effect.all([pool.get, pool.get, pool.get, pool.get, pool.get]), scope)
      const stats = yield* pool.stats
      assert.strictEqual(stats.size, 5)
      assert.strictEqual(stats.inUse, 5)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual([...factory.released].sort(), [1, 2, 3, 4, 5])
      const after = yield* pool.stats
      assert.strictEqual(after.size, 0)
      assert.strictEqual(after.destroyed, 5)
      assert.strictEqual(after.inUse, 0)
    }))

  it.scoped("make tolerates a failing acquire; get reports the typed error and acquires again next time", () =>
    Effect.gen(function*() {
      let attempts = 0
      const released: Array<number> = []
      const acquire = Effect.acquireRelease(
        Effect.suspend(() =>
          ++attempts <= 2
            ? Effect.fail({ _tag: "ConnectRefused" as const, attempt: attempts })
            : Effect.succeed(attempts)
        ),
        (n) => Effect.sync(() => released.push(n))
      )
      const pool = yield* ResourcePool.make({ name: "rp-acquire-fails", acquire, min: 1, max: 1 })
      assert.strictEqual((yield* pool.stats).size, 0)
      const error = yield* Effect.flip(pool.use(Effect.succeed))
      assert.deepStrictEqual(error, { _tag: "ConnectRefused", attempt: 2 })
      assert.strictEqual(yield* pool.use(Effect.succeed), 3)
      const stats = yield* pool.stats
      assert.strictEqual(stats.size, 1)
      assert.strictEqual(stats.created, 1)
      assert.strictEqual(stats.inUse, 0)
      assert.strictEqual(stats.waiters, 0)
      assert.deepStrictEqual(released, [])
    }))

  it.scoped("hands out an idle resource at once when acquireTimeout is set", () =>
    Effect.gen(function*() {
      const factory = makeFactory()
      const pool = yield* ResourcePool.make({
        name: "rp-fast",
        acquire: factory.acquire,
        min: 2,
        max: 2,
        acquireTimeout: "1 second"
      })
      const ids = yield* Effect.all([pool.use((c) => Effect.succeed(c.id)), pool.use((c) => Effect.succeed(c.id))])
      assert.isTrue(ids.every((id) => id === 1 || id === 2))
      const both = yield* Effect.scoped(Effect.all([pool.get, pool.get]))
      assert.deepStrictEqual(both.map((c) => c.id).sort(), [1, 2])
      const stats = yield* pool.stats
      assert.strictEqual(stats.acquireTimeouts, 0)
      assert.strictEqual(stats.created, 2)
      assert.strictEqual(stats.inUse, 0)
    }))

  it.effect("layer provides a pool under a tag and closes it with the layer", () =>
    Effect.gen(function*() {
      class Db extends Context.Tag("test/Db")<Db, ResourcePool.ResourcePool<Conn>>() {}
      const factory = makeFactory()
      const id = yield* Effect.flatMap(Db, (db) => db.use((conn) => Effect.succeed(conn.id))).pipe(
        Effect.provide(ResourcePool.layer(Db, { name: "rp-layer", acquire: factory.acquire, min: 1, max: 2 }))
      )
      assert.strictEqual(id, 1)
      assert.deepStrictEqual(factory.released, [1])
    }))

  it.effect("rejects invalid sizes as defects", () =>
    Effect.gen(function*() {
      const invalid: ReadonlyArray<Partial<ResourcePool.ResourcePool.Options<number, never, never>>> = [
        { min: 3, max: 2 },
        { min: -1, max: 2 },
        { min: 0.5, max: 2 },
        { min: 0, max: 0 },
        { min: 0, max: 1.5 },
        { min: 0, max: 2, healthCheckMaxAttempts: 0 }
      ]
      for (const options of invalid) {
        const exit = yield* Effect.exit(
          Effect.scoped(ResourcePool.make({ name: "rp-bad", acquire: Effect.succeed(1), min: 0, max: 1, ...options }))
        )
        const defect = Exit.isFailure(exit) ? Cause.dieOption(exit.cause) : Option.none()
        assert.isTrue(
          Option.isSome(defect) && Cause.isIllegalArgumentException(defect.value),
          JSON.stringify(options)
        )
      }
    }))
})
