/**
 * Spindle's own runner of the durable benchmark: the same child-process protocol as the peers'
 * (see durableRunner.ts), on `SqliteTaskStore` (a fresh temporary file per run) or `PgTaskStore`
 * (a fresh schema per run, dropped afterwards).
 *
 *   node bench/dist/durableSpindle.js <sqlite|pg> <probe|enqueue|drain|latency> <jobs> <concurrency>
 *
 * - enqueue: `TaskClient.submitMany` in chunks of 1,000, after an untimed warm-up of 2,000.
 * - drain: a `TaskWorker` with a no-op handler at the given concurrency, with the options a user
 *   following our docs would set (`prefetch: 500`, the local queue `TaskWorker.Options.prefetch`
 *   advises for many short tasks, the same size as graphile-worker's `localQueue` in its runner;
 *   otherwise the defaults: `claimBatchSize` = concurrency + prefetch, push wake-ups with the
 *   1 s polling backstop), timed from worker start until the
 *   store's succeeded count (`tasksStats`) covers every job; stopping the worker is not timed.
 *   `BENCH_PREFETCH` and `BENCH_CLAIM_BATCH` override the two for experiments.
 * - latency: a running worker on an empty queue; from just before `submit` to the handler's
 *   first line, random 20–520 ms gaps.
 *
 * Postgres is `BENCH_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`); the schema is
 * named `bench_peer_spindle_<pid>_<random>` so `bench/peers/cleanup.mjs` drops what a killed run
 * left behind.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { PgTaskStore, SqliteTaskStore } from "@spindle/sql"
import { Task, TaskClient, TaskHandlers, TaskStore, TaskWorker } from "@spindle/tasks"
import type { Context, Scope } from "effect"
import { Cause, Duration, Effect, Exit, Layer, Redacted, Schedule, Schema } from "effect"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import type { Counter, LatencyProbe } from "./durableRunner.js"
import {
  chunkSizes,
  durableRunnerMain,
  DurableUnavailable,
  makeCounter,
  makeLatencyProbe,
  WARMUP_JOBS
} from "./durableRunner.js"
import { PG_URL } from "./env.js"

/**
 * The stores this runner measures.
 *
 * @since 0.1.0
 */
export type SpindleStoreKind = "sqlite" | "pg"

/**
 * The system name of a store in the tables.
 *
 * @since 0.1.0
 */
export const spindleSystemName = (kind: SpindleStoreKind): string => `spindle-${kind}`

const freshSuffix = (): string => `${process.pid}_${Math.random().toString(36).slice(2, 8)}`

/** The no-op task; `sample` is set only by the latency probe. */
const Noop = Task.make("noop", {
  payload: Schema.Struct({ sample: Schema.optional(Schema.Number) }),
  success: Schema.Void,
  failure: Schema.Never
})

/** What a mode receives: the store, a client on it, and the handler's hooks. */
interface Ctx {
  readonly store: TaskStore.TaskStore["Type"]
  readonly client: TaskClient.TaskClient.Service
  readonly handled: Counter
  readonly probe: LatencyProbe
  /** The no-op handler, counting its runs and telling the latency probe it started. */
  readonly handlers: Context.Context<TaskHandlers.TaskHandlers>
}

const sqliteStore = (): Layer.Layer<TaskStore.TaskStore, unknown> => {
  const filename = join(tmpdir(), `spindle-bench-${freshSuffix()}.db`)
  const remove = () => {
    for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(filename + suffix, { force: true })
  }
  // acquired first, so the file is removed after the store has closed
  return SqliteTaskStore.layer({ filename }).pipe(
    Layer.provide(Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(remove))))
  )
}

const pgStore = (): Layer.Layer<TaskStore.TaskStore, unknown> => {
  const schema = `bench_peer_spindle_${freshSuffix()}`
  const client = PgClient.layer({ url: Redacted.make(PG_URL), maxConnections: 10, applicationName: "spindle-bench" })
  // the schema is dropped on a connection of its own, after the store's has closed
  const drop = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    yield* sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  }).pipe(
    Effect.provide(client),
    Effect.catchAllCause((cause) => Effect.sync(() => process.stderr.write(`cleanup of ${schema}: ${cause}\n`)))
  )
  const reachable = Layer.effectDiscard(
    Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe("SELECT 1")).pipe(
      Effect.provide(client),
      Effect.mapError((error) => new DurableUnavailable(`PostgreSQL at ${PG_URL}: ${String(error)}`))
    )
  )
  // acquired first, so the schema is dropped after the store has closed
  return PgTaskStore.layer({ url: PG_URL, schema, maxConnections: 10, applicationName: "spindle-bench" }).pipe(
    Layer.provide(Layer.scopedDiscard(Effect.addFinalizer(() => drop))),
    Layer.provide(reachable)
  )
}

const storeLayer = (kind: SpindleStoreKind): Layer.Layer<TaskStore.TaskStore, unknown> =>
  kind === "sqlite" ? sqliteStore() : pgStore()

/**
 * Runs `body` with a fresh store of `kind` (deleted or dropped afterwards) and a client on it;
 * rejects with the first failure or defect (a `DurableUnavailable` when PostgreSQL is down).
 */
const withStore = async <A>(
  kind: SpindleStoreKind,
  body: (ctx: Ctx) => Effect.Effect<A, unknown, Scope.Scope>
): Promise<A> => {
  const program = Effect.gen(function*() {
    const store = yield* TaskStore.TaskStore
    const client = yield* TaskClient.make(store)
    const handled = makeCounter()
    const probe = makeLatencyProbe()
    const handlers = yield* Layer.build(TaskHandlers.layer(
      TaskHandlers.handler(Noop, (payload) =>
        Effect.sync(() => {
          probe.started(payload.sample)
          handled.add()
        }))
    ))
    return yield* body({ store, client, handled, probe, handlers })
  }).pipe(Effect.scoped, Effect.provide(storeLayer(kind)))
  const exit = await Effect.runPromiseExit(program)
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

const enqueue = (client: TaskClient.TaskClient.Service, n: number) =>
  Effect.forEach(chunkSizes(n), (size) => client.submitMany(Noop, Array.from({ length: size }, () => ({}))), {
    discard: true
  })

const timedEffect = <A, E, R>(jobs: number, body: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(body), ([duration]) => {
    const seconds = Duration.toMillis(duration) / 1000
    return { seconds, perSecond: jobs / seconds }
  })

/** Polls the store until its succeeded count reaches `total` (every 5 ms, as the peers poll). */
const storeConfirms = (store: TaskStore.TaskStore["Type"], total: number) =>
  // the counts alone (one grouped count, as the peers' checks count their jobs: `tasksStats` also
  // computes throughput windows and percentiles, 30-40 ms a call at 22,000 tasks)
  store.tasksCount().pipe(
    Effect.map((counts) => counts.byStatus.succeeded),
    Effect.repeat({ until: (succeeded) => succeeded >= total, schedule: Schedule.spaced("5 millis") }),
    Effect.timeoutFail({
      duration: "240 seconds",
      onTimeout: () => new Error(`timed out waiting for ${total} tasks to succeed`)
    })
  )

/** Calls, rows and time of one store method, for `BENCH_STORE_CALLS`. */
interface CallStats {
  calls: number
  rows: number
  ms: number
}

/** `BENCH_STORE_CALLS`: `1` counts the measured drain's store calls, `timeline` lists them too. */
const callsMode = process.env.BENCH_STORE_CALLS === "1" || process.env.BENCH_STORE_CALLS === "timeline"
  ? process.env.BENCH_STORE_CALLS
  : undefined
const callStats = new Map<string, CallStats>()
/** Every call of the measured drain, with `BENCH_STORE_CALLS=timeline`: method, start, end (ms), rows. */
const callTimeline: Array<readonly [string, number, number, number]> = []

/**
 * With `BENCH_STORE_CALLS=1`, the worker's store counts its calls per method (how many, rows
 * returned, time inside), and the measured drain prints them per task on stderr.
 */
const countingStore = (store: TaskStore.TaskStore["Type"]): TaskStore.TaskStore["Type"] => {
  if (callsMode === undefined) return store
  const wrapped: Record<string, unknown> = { ...store }
  for (const [key, value] of Object.entries(store)) {
    if (typeof value !== "function") continue
    wrapped[key] = (...args: Array<unknown>) => {
      const effect = (value as (...args: Array<unknown>) => Effect.Effect<unknown, unknown>)(...args)
      return Effect.suspend(() => {
        const start = performance.now()
        return Effect.tap(effect, (result) =>
          Effect.sync(() => {
            const entry = callStats.get(key) ?? { calls: 0, rows: 0, ms: 0 }
            entry.calls++
            entry.rows += Array.isArray(result) ? result.length : 1
            const end = performance.now()
            entry.ms += end - start
            callStats.set(key, entry)
            if (callsMode === "timeline") {
              callTimeline.push([key, start, end, Array.isArray(result) ? result.length : 1])
            }
          }))
      })
    }
  }
  return wrapped as unknown as TaskStore.TaskStore["Type"]
}

const reportCalls = (jobs: number) =>
  Effect.sync(() => {
    if (callsMode === undefined) return
    if (callsMode === "timeline" && callTimeline.length > 0) {
      const t0 = callTimeline[0]![1]
      const rows = callTimeline.map(([key, start, end, n]) =>
        `  ${(start - t0).toFixed(1).padStart(8)} ${(end - t0).toFixed(1).padStart(8)} ${key.padEnd(16)} ${n}`
      )
      process.stderr.write(`store calls of the measured drain, in order (start, end ms):\n${rows.join("\n")}\n`)
    }
    const lines = [...callStats].sort((a, b) => b[1].ms - a[1].ms).map(([key, s]) =>
      `  ${key.padEnd(16)} ${(s.calls / jobs).toFixed(3)} calls/task, ${
        (s.rows / Math.max(1, s.calls)).toFixed(1)
      } rows/call, ${(s.ms / s.calls).toFixed(3)} ms/call, ${(s.ms / jobs).toFixed(3)} ms/task (wall, overlapping)`
    )
    process.stderr.write(`store calls of the measured drain:\n${lines.join("\n")}\n`)
  })

/** The local queue of the drain: graphile-worker's runner uses `localQueue: { size: 500 }`. */
const PREFETCH = 500

/**
 * The worker options: the documented defaults at this concurrency, plus `prefetch` as our docs
 * advise for throughput (`BENCH_PREFETCH=<n>` overrides it; 0 turns it off).
 */
const workerOptions = (concurrency: number): TaskWorker.TaskWorker.Options => ({
  concurrency,
  prefetch: process.env.BENCH_PREFETCH === undefined ? PREFETCH : Number(process.env.BENCH_PREFETCH),
  ...(process.env.BENCH_CLAIM_BATCH === undefined ? {} : { claimBatchSize: Number(process.env.BENCH_CLAIM_BATCH) })
})

/** Starts a worker in the current scope. */
const startWorker = (ctx: Ctx, concurrency: number) =>
  TaskWorker.make(workerOptions(concurrency)).pipe(
    Effect.provide(ctx.handlers),
    Effect.provideService(TaskStore.TaskStore, countingStore(ctx.store))
  )

/**
 * With `BENCH_CPU_PROFILE=<file>`, the measured drain or enqueue (not the warm-up or start-up)
 * is CPU-profiled in process and the profile written to `<file>` (open it in Chrome DevTools or
 * summarize its self times), so the profile shows the measured work alone. With
 * `BENCH_HEAP_PROFILE=<file>`, its allocations are sampled instead (a `.heapprofile`: where the
 * garbage the collector spends its time on comes from).
 */
const profiled = <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const cpuFile = process.env.BENCH_CPU_PROFILE
  const heapFile = process.env.BENCH_HEAP_PROFILE
  if (!cpuFile && !heapFile) return body
  const session = new Session()
  return Effect.acquireUseRelease(
    Effect.promise(async () => {
      session.connect()
      if (cpuFile) {
        await session.post("Profiler.enable")
        await session.post("Profiler.setSamplingInterval", { interval: 100 })
        await session.post("Profiler.start")
      } else {
        await session.post("HeapProfiler.enable")
        await session.post("HeapProfiler.startSampling", {
          samplingInterval: 1024,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true
        })
      }
    }),
    () => body,
    () =>
      Effect.promise(async () => {
        if (cpuFile) {
          const { profile } = await session.post("Profiler.stop")
          writeFileSync(cpuFile, JSON.stringify(profile))
        } else {
          const { profile } = await session.post("HeapProfiler.stopSampling")
          writeFileSync(heapFile!, JSON.stringify(profile))
        }
        session.disconnect()
      })
  )
}

/** The busy time of every core so far, in seconds (from /proc/stat; 0 where it is missing). */
const machineCpuSeconds = (): number => {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait
    const busy = fields.slice(0, 8).reduce((sum, n, i) => (i === 3 || i === 4 ? sum : sum + n), 0)
    return busy / 100
  } catch {
    return 0
  }
}

/**
 * Starts a worker, waits until the handler ran `total` times in all and the store confirms
 * `total` succeeded tasks, and returns the time from worker start to that confirmation
 * (stopping the worker excluded).
 */
const drainWith = (ctx: Ctx, n: number, total: number, concurrency: number) =>
  Effect.scoped(Effect.gen(function*() {
    const start = performance.now()
    yield* startWorker(ctx, concurrency)
    yield* Effect.promise(() => ctx.handled.reached(total))
    yield* storeConfirms(ctx.store, total)
    const seconds = (performance.now() - start) / 1000
    return { seconds, perSecond: n / seconds }
  }))

const modes = (kind: SpindleStoreKind) => ({
  probe: () => withStore(kind, () => Effect.succeed({ ok: true })),

  enqueue: ({ jobs }: { readonly jobs: number }) =>
    withStore(kind, ({ client }) =>
      Effect.gen(function*() {
        yield* enqueue(client, WARMUP_JOBS)
        const cpuBefore = process.cpuUsage()
        const result = yield* profiled(timedEffect(jobs, enqueue(client, jobs)))
        const cpu = process.cpuUsage(cpuBefore)
        // as for the drain: this process's CPU time (the SQLite store's included)
        return { ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
      })),

  drain: ({ concurrency, jobs }: { readonly jobs: number; readonly concurrency: number }) =>
    withStore(kind, (ctx) =>
      Effect.gen(function*() {
        yield* enqueue(ctx.client, WARMUP_JOBS)
        yield* drainWith(ctx, WARMUP_JOBS, WARMUP_JOBS, concurrency)
        yield* enqueue(ctx.client, jobs)
        callStats.clear()
        callTimeline.length = 0
        const cpuBefore = process.cpuUsage()
        const machineBefore = machineCpuSeconds()
        const result = yield* profiled(drainWith(ctx, jobs, WARMUP_JOBS + jobs, concurrency))
        const cpu = process.cpuUsage(cpuBefore)
        const machine = machineCpuSeconds() - machineBefore
        yield* reportCalls(jobs)
        // CPU time of this process during the drain: on a shared machine, `cpuSeconds` well below
        // `seconds` means the process waited (for the database or for a core); `machineCpuSeconds`
        // is every core's busy time (this process, the database, anything else running)
        return { ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6, machineCpuSeconds: machine }
      })),

  latency: ({ concurrency, jobs: samples }: { readonly jobs: number; readonly concurrency: number }) =>
    withStore(kind, (ctx) =>
      Effect.gen(function*() {
        yield* startWorker(ctx, concurrency)
        yield* enqueue(ctx.client, WARMUP_JOBS)
        yield* Effect.promise(() => ctx.handled.reached(WARMUP_JOBS))
        yield* storeConfirms(ctx.store, WARMUP_JOBS)
        const samplesMs = yield* Effect.promise(() =>
          ctx.probe.measure(samples, (sample) => Effect.runPromise(ctx.client.submit(Noop, { sample })))
        )
        return { samplesMs }
      }))
})

if (import.meta.url === `file://${process.argv[1]}`) {
  // `<store>` comes first; durableRunnerMain reads `<mode> <jobs> <concurrency>` after it
  const kind = process.argv[2]
  if (kind !== "sqlite" && kind !== "pg") {
    process.stderr.write("usage: durableSpindle <sqlite|pg> <probe|enqueue|drain|latency> <jobs> <concurrency>\n")
    process.exit(2)
  }
  process.argv.splice(2, 1)
  await durableRunnerMain(spindleSystemName(kind), modes(kind))
}
