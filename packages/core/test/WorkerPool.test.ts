import { NodeWorker } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import * as WorkerPool from "@spindle/core/WorkerPool"
import { Cause, Context, Deferred, Effect, Exit, Fiber, FiberId, Metric, Schema, Scope } from "effect"
import { BroadcastChannel, Worker } from "node:worker_threads"

// These tests run real worker threads (test/fixtures/pool-worker.mjs): they use the live clock,
// and wait for workers through a BroadcastChannel handshake, never through sleeps.

// -----------------------------------------------------------------------------
// Requests, mirroring test/fixtures/pool-worker.mjs
// -----------------------------------------------------------------------------

const Probe = Schema.Struct({ threadId: Schema.Number, seq: Schema.Number, inFlight: Schema.Number })

class Boom extends Schema.TaggedError<Boom>()("Boom", { message: Schema.String }) {}

class Square extends Schema.TaggedRequest<Square>()("Square", {
  payload: { n: Schema.Number },
  success: Schema.Number,
  failure: Schema.Never
}) {}

class WhoAmI extends Schema.TaggedRequest<WhoAmI>()("WhoAmI", {
  payload: {},
  success: Probe,
  failure: Schema.Never
}) {}

class Hold extends Schema.TaggedRequest<Hold>()("Hold", {
  payload: { channel: Schema.String, key: Schema.String },
  success: Probe,
  failure: Schema.Never
}) {}

class Fail extends Schema.TaggedRequest<Fail>()("Fail", {
  payload: { message: Schema.String },
  success: Schema.Number,
  failure: Boom
}) {}

class Die extends Schema.TaggedRequest<Die>()("Die", {
  payload: { message: Schema.String },
  success: Schema.Number,
  failure: Schema.Never
}) {}

class Crash extends Schema.TaggedRequest<Crash>()("Crash", {
  payload: { mode: Schema.Literal("exit", "throw") },
  success: Schema.Number,
  failure: Schema.Never
}) {}

class Spin extends Schema.TaggedRequest<Spin>()("Spin", {
  payload: {},
  success: Schema.Number,
  failure: Schema.Never
}) {}

/** Same tag as `Square`, but expects a string: the worker's answer cannot be decoded. */
class SquareAsText extends Schema.TaggedRequest<SquareAsText>()("Square", {
  payload: { n: Schema.Number },
  success: Schema.String,
  failure: Schema.Never
}) {}

type Requests = Square | WhoAmI | Hold | Fail | Die | Crash | Spin | SquareAsText

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

const fixture = new URL("./fixtures/pool-worker.mjs", import.meta.url)

/** A `spawn` that records every thread it starts and every thread that exits. */
const recorder = (url: URL = fixture) => {
  const threads: Array<number> = []
  const byWorkerId = new Map<number, number>()
  const exited: Array<number> = []
  const spawn = (id: number) => {
    const worker = new Worker(url)
    const threadId = worker.threadId
    threads.push(threadId)
    byWorkerId.set(id, threadId)
    worker.once("exit", () => exited.push(threadId))
    return worker
  }
  return { threads, byWorkerId, exited, spawn }
}

let poolCounter = 0

const makePool = (options: Omit<WorkerPool.WorkerPool.Options, "name">) => {
  const name = `test-pool-${poolCounter++}`
  return WorkerPool.make<Requests>({ name, ...options }).pipe(Effect.provide(NodeWorker.layerManager))
}

/**
 * The main-thread end of the `Hold` handshake: `ready(key)` waits until a worker
 * holds the task `key` (and returns its thread id), `release(key)` lets it finish.
 */
const makeGate = Effect.acquireRelease(
  Effect.sync(() => {
    const name = `worker-pool-gate-${Math.random().toString(36).slice(2)}`
    const channel = new BroadcastChannel(name)
    const readies = new Map<string, Deferred.Deferred<number>>()
    const readyOf = (key: string) => {
      let deferred = readies.get(key)
      if (deferred === undefined) {
        deferred = Deferred.unsafeMake<number>(FiberId.none)
        readies.set(key, deferred)
      }
      return deferred
    }
    channel.onmessage = (event) => {
      const data = (event as MessageEvent).data as { ready?: string; threadId?: number }
      if (typeof data.ready === "string") {
        Deferred.unsafeDone(readyOf(data.ready), Exit.succeed(data.threadId ?? -1))
      }
    }
    const gate = {
      hold: (key: string) => new Hold({ channel: name, key }),
      ready: (key: string) => Deferred.await(readyOf(key)),
      release: (key: string) => Effect.sync(() => channel.postMessage({ go: key }))
    }
    return { channel, gate }
  }),
  ({ channel }) => Effect.sync(() => channel.close())
).pipe(Effect.map(({ gate }) => gate))

const counterValue = (name: string, tags: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    for (const pair of pairs) {
      if (pair.metricKey.name !== name) continue
      const pairTags = Object.fromEntries(pair.metricKey.tags.map((tag) => [tag.key, tag.value]))
      if (Object.entries(tags).every(([key, value]) => pairTags[key] === value)) {
        return (pair.metricState as unknown as { readonly count: number }).count
      }
    }
    return 0
  })

// -----------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------

class TestPool extends Context.Tag("test/WorkerPool/TestPool")<TestPool, WorkerPool.WorkerPool<Requests>>() {}

const sharedThreads = recorder()

// three tests share one pool of 2, provided by `layerNode` (thread start-up is the slow part)
layer(WorkerPool.layerNode(TestPool, { name: "test-shared", size: 2, spawn: sharedThreads.spawn }), {
  excludeTestServices: true
})("WorkerPool (shared pool of 2)", (it) => {
  it.effect("runs many typed requests and decodes every result", () =>
    Effect.gen(function*() {
      const pool = yield* TestPool
      const before = yield* pool.stats
      const inputs = Array.from({ length: 40 }, (_, i) => i)
      const results: ReadonlyArray<number> = yield* Effect.forEach(
        inputs,
        (n) => pool.execute(new Square({ n })),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results, inputs.map((n) => n * n))

      const probe = yield* pool.execute(new WhoAmI())
      assert.include(sharedThreads.threads, probe.threadId)
      assert.strictEqual(sharedThreads.threads.length, 2)

      const stats = yield* pool.stats
      assert.strictEqual(stats.completed - before.completed, 41)
      assert.strictEqual(stats.failed, before.failed)
      assert.strictEqual(stats.busy, 0)
      assert.strictEqual(stats.queued, 0)
      const successes = yield* counterValue("spindle_worker_pool_tasks_total", { pool: pool.name, outcome: "success" })
      assert.strictEqual(successes, stats.completed)
    }))

  it.scoped("runs at most `size` tasks at once, one per worker, and serves waiting callers in FIFO order", () =>
    Effect.gen(function*() {
      const gate = yield* makeGate
      const pool = yield* TestPool
      const before = yield* pool.stats
      const keys = ["h0", "h1", "h2", "h3"]
      const fiber = yield* Effect.forEach(keys, (key) => pool.execute(gate.hold(key)), {
        concurrency: "unbounded"
      }).pipe(Effect.fork)

      const first = yield* gate.ready("h0")
      const second = yield* gate.ready("h1")
      assert.notStrictEqual(first, second)
      const full = yield* pool.stats
      assert.strictEqual(full.busy, 2)
      assert.strictEqual(full.idle, 0)
      assert.strictEqual(full.workers, 2)
      assert.strictEqual(full.queued, 2)

      // the oldest waiter gets the freed worker
      yield* gate.release("h0")
      assert.strictEqual(yield* gate.ready("h2"), first)
      yield* gate.release("h1")
      assert.strictEqual(yield* gate.ready("h3"), second)
      yield* gate.release("h2")
      yield* gate.release("h3")

      const probes = yield* Fiber.join(fiber)
      assert.deepStrictEqual(probes.map((probe) => probe.inFlight), [1, 1, 1, 1])
      assert.deepStrictEqual(probes.map((probe) => probe.threadId), [first, second, first, second])
      const stats = yield* pool.stats
      assert.strictEqual(stats.completed - before.completed, 4)
      assert.strictEqual(stats.busy, 0)
      assert.strictEqual(stats.queued, 0)
    }))

  it.effect("decodes typed failures, propagates defects, and reports undecodable answers", () =>
    Effect.gen(function*() {
      const pool = yield* TestPool
      const before = yield* pool.stats

      const boom = yield* Effect.flip(pool.execute(new Fail({ message: "no" })))
      assert.instanceOf(boom, Boom)
      assert.strictEqual(boom._tag, "Boom")
      if (boom._tag === "Boom") assert.strictEqual(boom.message, "no")

      const died = yield* Effect.exit(pool.execute(new Die({ message: "bug" })))
      assert.isTrue(Exit.isFailure(died) && Cause.isDie(died.cause))

      const undecodable = yield* Effect.flip(pool.execute(new SquareAsText({ n: 3 })))
      assert.instanceOf(undecodable, WorkerPool.WorkerTaskError)
      assert.strictEqual(undecodable.reason, "decode")
      assert.strictEqual(undecodable.taskName, "Square")

      // the workers are still fine
      assert.strictEqual(yield* pool.execute(new Square({ n: 7 })), 49)
      const stats = yield* pool.stats
      assert.strictEqual(stats.failed - before.failed, 3)
      assert.strictEqual(stats.completed - before.completed, 1)
      assert.strictEqual(stats.crashed, 0)
      assert.strictEqual(stats.workers, 2)
      assert.strictEqual(sharedThreads.threads.length, 2)
      const decodes = yield* counterValue("spindle_worker_pool_tasks_total", { pool: pool.name, outcome: "decode" })
      assert.strictEqual(decodes, 1)
    }))
})

describe("WorkerPool", () => {
  it.scopedLive("a crashed worker fails only its task, is replaced, and the pool recovers to full size", () =>
    Effect.gen(function*() {
      const gate = yield* makeGate
      const spawned = recorder()
      const pool = yield* makePool({ size: 2, spawn: spawned.spawn })

      for (const mode of ["exit", "throw"] as const) {
        // a task in flight on the other worker during the crash
        const held = yield* Effect.fork(pool.execute(gate.hold(`busy-${mode}`)))
        const heldThread = yield* gate.ready(`busy-${mode}`)

        const error = yield* Effect.flip(pool.execute(new Crash({ mode })))
        assert.instanceOf(error, WorkerPool.WorkerTaskError)
        assert.strictEqual(error.reason, "crashed")
        assert.strictEqual(error.taskName, "Crash")
        const crashedThread = spawned.byWorkerId.get(error.workerId!)!
        assert.include(spawned.exited, crashedThread)
        assert.notStrictEqual(crashedThread, heldThread)

        // the task on the other worker was not affected
        yield* gate.release(`busy-${mode}`)
        const probe = yield* Fiber.join(held)
        assert.strictEqual(probe.threadId, heldThread)

        // back to full size: two tasks run at once, on live threads
        const both = yield* Effect.fork(
          Effect.all([pool.execute(gate.hold(`a-${mode}`)), pool.execute(gate.hold(`b-${mode}`))], {
            concurrency: "unbounded"
          })
        )
        const threads = [yield* gate.ready(`a-${mode}`), yield* gate.ready(`b-${mode}`)]
        assert.notInclude(threads, crashedThread)
        assert.strictEqual((yield* pool.stats).workers, 2)
        yield* gate.release(`a-${mode}`)
        yield* gate.release(`b-${mode}`)
        yield* Fiber.join(both)
      }

      const stats = yield* pool.stats
      assert.strictEqual(stats.crashed, 2)
      assert.strictEqual(stats.failed, 2)
      assert.strictEqual(stats.completed, 6)
      assert.strictEqual(spawned.threads.length, 4)
      const restarts = yield* counterValue("spindle_worker_pool_restarts_total", { pool: pool.name, reason: "crashed" })
      assert.strictEqual(restarts, 2)
    }))

  it.scopedLive("a task stuck in a CPU loop times out, and its thread is terminated and replaced", () =>
    Effect.gen(function*() {
      const spawned = recorder()
      const pool = yield* makePool({ size: 1, spawn: spawned.spawn, taskTimeout: "300 millis" })
      const before = yield* pool.execute(new WhoAmI())

      const error = yield* Effect.flip(pool.execute(new Spin()))
      assert.instanceOf(error, WorkerPool.WorkerTaskError)
      assert.strictEqual(error.reason, "timeout")
      assert.strictEqual(error.taskName, "Spin")
      // the stuck thread really is gone
      assert.include(spawned.exited, before.threadId)

      const after = yield* pool.execute(new WhoAmI())
      assert.notStrictEqual(after.threadId, before.threadId)
      assert.strictEqual(after.seq, 1)
      const stats = yield* pool.stats
      assert.strictEqual(stats.timedOut, 1)
      assert.strictEqual(stats.workers, 1)
      const restarts = yield* counterValue("spindle_worker_pool_restarts_total", { pool: pool.name, reason: "timeout" })
      assert.strictEqual(restarts, 1)
    }))

  it.scopedLive("recycleAfter replaces a worker after N tasks", () =>
    Effect.gen(function*() {
      const spawned = recorder()
      const pool = yield* makePool({ size: 1, spawn: spawned.spawn, recycleAfter: 3 })
      const probes = yield* Effect.forEach(Array.from({ length: 5 }), () => pool.execute(new WhoAmI()))
      assert.deepStrictEqual(probes.map((probe) => probe.seq), [1, 2, 3, 1, 2])
      const [a, b] = [probes[0].threadId, probes[3].threadId]
      assert.deepStrictEqual(probes.map((probe) => probe.threadId), [a, a, a, b, b])
      assert.notStrictEqual(a, b)
      // a retired worker is closed before its replacement starts
      assert.include(spawned.exited, a)
      const stats = yield* pool.stats
      assert.strictEqual(stats.recycled, 1)
      assert.strictEqual(stats.completed, 5)
      assert.strictEqual(stats.crashed, 0)
    }))

  it.scopedLive("interrupting a running task terminates its worker and a fresh one takes over", () =>
    Effect.gen(function*() {
      const gate = yield* makeGate
      const spawned = recorder()
      const pool = yield* makePool({ size: 1, spawn: spawned.spawn })
      const fiber = yield* Effect.fork(pool.execute(gate.hold("stuck")))
      const thread = yield* gate.ready("stuck")
      yield* Fiber.interrupt(fiber)
      assert.include(spawned.exited, thread)

      const after = yield* pool.execute(new WhoAmI())
      assert.notStrictEqual(after.threadId, thread)
      const stats = yield* pool.stats
      assert.strictEqual(stats.interrupted, 1)
      assert.strictEqual(stats.busy, 0)
    }))

  it.scopedLive("closing the scope terminates every worker, idle or busy", () =>
    Effect.gen(function*() {
      const gate = yield* makeGate
      const spawned = recorder()
      const scope = yield* Scope.make()
      const pool = yield* makePool({ size: 2, spawn: spawned.spawn }).pipe(Scope.extend(scope))

      // one worker busy (never released), one idle
      const busy = yield* Effect.fork(pool.execute(gate.hold("forever")))
      const done = yield* Effect.fork(pool.execute(gate.hold("done")))
      yield* gate.ready("forever")
      yield* gate.ready("done")
      yield* gate.release("done")
      yield* Fiber.join(done)
      assert.strictEqual(spawned.threads.length, 2)

      yield* Scope.close(scope, Exit.void)
      assert.sameMembers(spawned.exited, spawned.threads)
      const exit = yield* Fiber.await(busy)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.strictEqual((yield* pool.stats).workers, 0)
      // a closed pool takes no more tasks
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(pool.execute(new Square({ n: 1 })))))
    }))

  it.scopedLive("a worker that cannot start fails the task with reason spawn", () =>
    Effect.gen(function*() {
      const broken = recorder(new URL("./fixtures/broken-worker.mjs", import.meta.url))
      const pool = yield* makePool({ size: 1, spawn: broken.spawn })
      const error = yield* Effect.flip(pool.execute(new Square({ n: 2 })))
      assert.strictEqual(error.reason, "spawn")
      assert.strictEqual((yield* pool.stats).workers, 0)

      const throwing = yield* makePool({
        size: 1,
        spawn: () => {
          throw new Error("no threads today")
        }
      })
      const thrown = yield* Effect.flip(throwing.execute(new Square({ n: 2 })))
      assert.strictEqual(thrown.reason, "spawn")
      assert.instanceOf(thrown.cause, Error)
    }))

  it.scoped("rejects a size or recycleAfter that is not a positive integer, before spawning anything", () =>
    Effect.gen(function*() {
      let spawned = 0
      const spawn = () => {
        spawned++
        throw new Error("never called")
      }
      for (const options of [{ size: 0 }, { size: 1.5 }, { size: 1, recycleAfter: 0 }]) {
        const exit = yield* Effect.exit(makePool({ spawn, ...options }))
        const defect = Exit.isFailure(exit) ? Cause.dieOption(exit.cause) : undefined
        assert.isTrue(
          defect !== undefined && defect._tag === "Some" && Cause.isIllegalArgumentException(defect.value),
          JSON.stringify(options)
        )
      }
      assert.strictEqual(spawned, 0)
    }))
})
