// Shared machinery of the durable benchmark's peer runners (graphile.mjs, pgboss.mjs,
// bullmq.mjs). Each runner is a child-process entry:
//
//   node bench/peers/<peer>.mjs <mode> <jobs> <concurrency>
//
// mode: enqueue | drain | latency | probe. It prints ONE JSON line on stdout:
//   enqueue, drain: { system, mode, jobs, concurrency, seconds, perSecond }
//   latency:        { system, mode, jobs, concurrency, samplesMs: [...] }   (jobs = sample count)
//   probe:          { system, mode, ok: true }
//   store missing:  { system, mode, unavailable: "<reason>" }               (exit code 3)
// and everything else (library logs, errors) on stderr.
//
// Method (see shared BENCHMARKS.md): fresh schema / key prefix each run, producer and worker in
// one process, untimed warm-up of 2,000 jobs, bulk enqueue in chunks of 1,000, drain timed from
// worker start until the store confirms every job done, idle latency from just before the
// enqueue call to the handler's first line with random 20–520 ms gaps.
import { readFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import pg from "pg"

/** PostgreSQL used by graphile-worker and pg-boss. */
export const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
/** Redis used by BullMQ. */
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379"
/** Untimed warm-up before every measurement. */
export const WARMUP_JOBS = 2_000
/** Bulk calls are made in chunks of this many jobs. */
export const CHUNK = 1_000
/** Every schema and Redis key prefix the runners create starts with this (cleanup.mjs drops them). */
export const NAME_PREFIX = "bench_peer_"
/** A run that takes longer than this kills itself (the harness has its own, longer, timeout). */
const WATCHDOG_MS = Number(process.env.BENCH_PEER_WATCHDOG_MS ?? 300_000)

const MODES = ["enqueue", "drain", "latency", "probe"]

/** A store (Postgres, Redis) that cannot be reached: the runner reports it and exits with 3. */
export class Unavailable extends Error {}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A random idle gap between latency samples: 20–520 ms. */
export const randomGap = () => 20 + Math.random() * 500

/** Sizes of the bulk calls for `n` jobs: chunks of CHUNK. */
export const chunkSizes = (n) => {
  const sizes = []
  for (let left = n; left > 0; left -= CHUNK) sizes.push(Math.min(CHUNK, left))
  return sizes
}

/**
 * A fresh name for this run's schema or key prefix: `bench_peer_<system>_<pid>_<random>`. The pid
 * lets cleanup.mjs drop only what dead processes left behind.
 */
export const freshName = (system) =>
  `${NAME_PREFIX}${system}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`

/** Polls `check` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export const waitUntil = async (what, check, { intervalMs = 5, timeoutMs = 240_000 } = {}) => {
  const deadline = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/** A counter whose `reached(n)` resolves once it has counted `n` (in-process handler runs). */
export const makeCounter = () => {
  let count = 0
  let waiters = []
  return {
    get count() {
      return count
    },
    add(n = 1) {
      count += n
      if (waiters.length > 0) {
        const ready = waiters.filter((w) => count >= w.target)
        waiters = waiters.filter((w) => count < w.target)
        for (const w of ready) w.resolve()
      }
    },
    reached(target, timeoutMs = 240_000) {
      if (count >= target) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out: ${count} of ${target} jobs handled`)),
          timeoutMs
        )
        waiters.push({
          target,
          resolve: () => {
            clearTimeout(timer)
            resolve()
          }
        })
      })
    }
  }
}

/**
 * Idle enqueue-to-start latency. `enqueueOne(sample)` enqueues one job whose payload carries
 * `sample`; the handler calls `started(sample)` on its first line. Returns the samples in ms.
 */
export const makeLatencyProbe = () => {
  const pending = new Map()
  return {
    /** Call on the handler's first line with the job's `sample` (undefined for other jobs). */
    started(sample) {
      if (sample === undefined || sample === null) return
      const entry = pending.get(sample)
      if (entry !== undefined) {
        pending.delete(sample)
        entry.resolve(performance.now())
      }
    },
    async measure(samples, enqueueOne) {
      const results = []
      for (let i = 0; i < samples; i++) {
        await sleep(randomGap())
        let resolve
        const startedAt = new Promise((r) => (resolve = r))
        pending.set(i, { resolve })
        const t0 = performance.now()
        await enqueueOne(i)
        const t1 = await Promise.race([
          startedAt,
          sleep(30_000).then(() => {
            throw new Error(`latency sample ${i} never started`)
          })
        ])
        results.push(t1 - t0)
      }
      return results
    }
  }
}

/** Times `body` and returns `{ seconds, perSecond }` for `jobs` jobs. */
export const timed = async (jobs, body) => {
  const cpuBefore = process.cpuUsage()
  const machineBefore = machineCpuSeconds()
  const start = performance.now()
  await body()
  const seconds = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  // this process's CPU time, and every core's busy time (the database's included)
  return {
    seconds,
    perSecond: jobs / seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    machineCpuSeconds: machineCpuSeconds() - machineBefore
  }
}

/** The busy time of every core so far, in seconds (from /proc/stat; 0 where it is missing). */
export const machineCpuSeconds = () => {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait
    return fields.slice(0, 8).reduce((sum, n, i) => (i === 3 || i === 4 ? sum : sum + n), 0) / 100
  } catch {
    return 0
  }
}

/** A pg client on PG_URL, or Unavailable. */
export const connectPg = async () => {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 })
  try {
    await client.connect()
  } catch (error) {
    await client.end().catch(() => {})
    throw new Unavailable(`PostgreSQL at ${PG_URL} is not reachable: ${error?.message ?? error}`)
  }
  client.on("error", () => {})
  return client
}

/** Runs `body(client)` with a fresh pg client, then closes it. */
export const withPg = async (body) => {
  const client = await connectPg()
  try {
    return await body(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/** Drops a schema made by this run (its name is always one of ours). */
export const dropSchema = async (schema) => {
  if (!schema.startsWith(NAME_PREFIX)) throw new Error(`refusing to drop schema ${schema}`)
  await withPg((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
}

const write = (line) => new Promise((resolve) => process.stdout.write(JSON.stringify(line) + "\n", resolve))

/**
 * The entry point of a runner: parses `<mode> <jobs> <concurrency>`, runs `modes[mode]` under a
 * watchdog, prints its result line and exits (the libraries' timers never keep it alive).
 *
 * `modes[mode]({ jobs, concurrency })` returns the fields of the result line.
 */
export const main = async (system, modes) => {
  const [mode, jobsArg = "20000", concurrencyArg = "10"] = process.argv.slice(2)
  const jobs = Number(jobsArg)
  const concurrency = Number(concurrencyArg)
  if (
    !MODES.includes(mode) || !Number.isInteger(jobs) || jobs < 1 || !Number.isInteger(concurrency) || concurrency < 1
  ) {
    process.stderr.write(`usage: node ${system}.mjs <${MODES.join("|")}> <jobs> <concurrency>\n`)
    process.exit(2)
  }
  const watchdog = setTimeout(() => {
    process.stderr.write(`${system} ${mode}: watchdog fired after ${WATCHDOG_MS} ms\n`)
    process.exit(4)
  }, WATCHDOG_MS)
  watchdog.unref()
  try {
    const result = await modes[mode]({ jobs, concurrency })
    await write({ system, mode, jobs, concurrency, ...result })
    process.exit(0)
  } catch (error) {
    if (error instanceof Unavailable) {
      await write({ system, mode, unavailable: error.message })
      process.exit(3)
    }
    process.stderr.write(`${system} ${mode}: ${error?.stack ?? error}\n`)
    process.exit(1)
  }
}
