/**
 * The child-process side of the durable benchmark, for runners written in TypeScript (Spindle's
 * own stores): the same protocol and method as the peers' `bench/peers/common.mjs`, which stays
 * plain JavaScript because the peers' package is not compiled with the repository.
 *
 *   node bench/dist/<runner>.js <probe|enqueue|drain|latency> <jobs> <concurrency>
 *
 * prints one JSON line: `{ system, mode, jobs, concurrency, seconds, perSecond }` for enqueue and
 * drain, `{ …, samplesMs }` for latency, `{ system, mode, unavailable }` (exit code 3) when the
 * store cannot be reached. A runner is then listed as a `DurableSystem` (durablePeers.ts).
 *
 * @example
 * import { durableRunnerMain } from "./durableRunner.js"
 *
 * await durableRunnerMain("spindle-sqlite", {
 *   probe: async () => ({}),
 *   enqueue: async ({ jobs }) => ({ seconds: 1, perSecond: jobs }),
 *   drain: async ({ jobs }) => ({ seconds: 1, perSecond: jobs }),
 *   latency: async () => ({ samplesMs: [1] })
 * })
 *
 * @since 0.1.0
 */
import { performance } from "node:perf_hooks"

/**
 * Untimed warm-up before every measurement.
 *
 * @since 0.1.0
 */
export const WARMUP_JOBS = 2_000

/**
 * Bulk calls are made in chunks of this many jobs.
 *
 * @since 0.1.0
 */
export const CHUNK = 1_000

/**
 * Sizes of the bulk calls for `n` jobs.
 *
 * @since 0.1.0
 */
export const chunkSizes = (n: number): Array<number> => {
  const sizes: Array<number> = []
  for (let left = n; left > 0; left -= CHUNK) sizes.push(Math.min(CHUNK, left))
  return sizes
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A random idle gap between latency samples: 20–520 ms.
 *
 * @since 0.1.0
 */
export const randomGap = (): number => 20 + Math.random() * 500

/**
 * A counter of handler runs whose `reached(n)` resolves once it has counted `n`.
 *
 * @since 0.1.0
 */
export interface Counter {
  readonly count: number
  add(n?: number): void
  reached(target: number, timeoutMs?: number): Promise<void>
}

/**
 * @since 0.1.0
 */
export const makeCounter = (): Counter => {
  let count = 0
  let waiters: Array<{ target: number; resolve: () => void }> = []
  return {
    get count() {
      return count
    },
    add(n = 1) {
      count += n
      const ready = waiters.filter((w) => count >= w.target)
      if (ready.length > 0) {
        waiters = waiters.filter((w) => count < w.target)
        for (const w of ready) w.resolve()
      }
    },
    reached(target, timeoutMs = 240_000) {
      if (count >= target) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out: ${count} of ${target} jobs handled`)), timeoutMs)
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
 * Idle enqueue-to-start latency: `measure(samples, enqueueOne)` sleeps a random gap, takes the
 * time just before `enqueueOne(sample)` and waits for the handler to call `started(sample)` on
 * its first line. Returns the samples in ms.
 *
 * @since 0.1.0
 */
export interface LatencyProbe {
  started(sample: number | undefined): void
  measure(samples: number, enqueueOne: (sample: number) => Promise<unknown>): Promise<Array<number>>
}

/**
 * @since 0.1.0
 */
export const makeLatencyProbe = (): LatencyProbe => {
  const pending = new Map<number, (at: number) => void>()
  return {
    started(sample) {
      if (sample === undefined) return
      const resolve = pending.get(sample)
      if (resolve !== undefined) {
        pending.delete(sample)
        resolve(performance.now())
      }
    },
    async measure(samples, enqueueOne) {
      const results: Array<number> = []
      for (let i = 0; i < samples; i++) {
        await sleep(randomGap())
        const startedAt = new Promise<number>((resolve) => pending.set(i, resolve))
        const t0 = performance.now()
        await enqueueOne(i)
        let timer: ReturnType<typeof setTimeout> | undefined
        const t1 = await Promise.race([
          startedAt,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`latency sample ${i} never started`)), 30_000)
          })
        ]).finally(() => clearTimeout(timer))
        results.push(t1 - t0)
      }
      return results
    }
  }
}

/**
 * A store that cannot be reached: the runner prints `unavailable` and exits with 3, and the
 * harness skips the system with this message.
 *
 * @since 0.1.0
 */
export class DurableUnavailable extends Error {}

/**
 * The fields a mode returns for its result line.
 *
 * @since 0.1.0
 */
export type DurableModeResult =
  | { readonly seconds: number; readonly perSecond: number }
  | { readonly samplesMs: ReadonlyArray<number> }
  | {}

/**
 * The entry point of a runner: parses `<mode> <jobs> <concurrency>`, runs the mode under a
 * watchdog (`BENCH_PEER_WATCHDOG_MS`, default 300 s), prints its result line and exits.
 *
 * @since 0.1.0
 */
export const durableRunnerMain = async (
  system: string,
  modes: Record<
    "probe" | "enqueue" | "drain" | "latency",
    (options: { readonly jobs: number; readonly concurrency: number }) => Promise<DurableModeResult>
  >
): Promise<void> => {
  const [mode, jobsArg = "20000", concurrencyArg = "10"] = process.argv.slice(2)
  const jobs = Number(jobsArg)
  const concurrency = Number(concurrencyArg)
  const write = (line: object) =>
    new Promise<void>((resolve) => process.stdout.write(JSON.stringify(line) + "\n", () => resolve()))
  if (
    (mode !== "probe" && mode !== "enqueue" && mode !== "drain" && mode !== "latency") ||
    !Number.isInteger(jobs) || jobs < 1 || !Number.isInteger(concurrency) || concurrency < 1
  ) {
    process.stderr.write(`usage: ${system} <probe|enqueue|drain|latency> <jobs> <concurrency>\n`)
    process.exit(2)
  }
  const watchdogMs = Number(process.env.BENCH_PEER_WATCHDOG_MS ?? 300_000)
  setTimeout(() => {
    process.stderr.write(`${system} ${mode}: watchdog fired after ${watchdogMs} ms\n`)
    process.exit(4)
  }, watchdogMs).unref()
  try {
    const result = await modes[mode]({ jobs, concurrency })
    await write({ system, mode, jobs, concurrency, ...result })
    process.exit(0)
  } catch (error) {
    if (error instanceof DurableUnavailable) {
      await write({ system, mode, unavailable: error.message })
      process.exit(3)
    }
    process.stderr.write(`${system} ${mode}: ${(error as Error)?.stack ?? String(error)}\n`)
    const detail = error as { operation?: unknown; cause?: { cause?: unknown } }
    if (detail?.operation !== undefined) {
      process.stderr.write(`operation ${String(detail.operation)}: ${String(detail.cause?.cause ?? detail.cause)}\n`)
    }
    process.exit(1)
  }
}
