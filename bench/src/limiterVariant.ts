/**
 * One in-process limiter variant, run in a fresh child process:
 *
 *   node bench/dist/limiterVariant.js <variant> <tasks> <concurrency>
 *
 * Runs an untimed warm-up of 20,000 tasks, then times `tasks` no-op tasks at
 * the given concurrency and prints one JSON line
 * `{ variant, tasks, concurrency, seconds, opsPerSec }`.
 *
 * The no-op task of each variant:
 * - promise libraries (`p-limit`, `p-queue`, `promise-all-chunks`): `() => Promise.resolve()`;
 * - Effect variants (`effect-forEach`, `spindle-limiter`, `semaphore-per-fiber`): `Effect.void`.
 *
 * Every variant waits for all tasks and, where the library returns results,
 * collects them in an array (p-limit and p-queue via `Promise.all`, Effect via
 * `forEach`), so each does the same bookkeeping a caller would.
 *
 * @since 0.1.0
 */
import * as Limiter from "@spindle/core/Limiter"
import * as Effect from "effect/Effect"
import { performance } from "node:perf_hooks"
import pLimit from "p-limit"
import PQueue from "p-queue"

/**
 * The variants this runner knows.
 *
 * @since 0.1.0
 */
export const variants = [
  "promise-all-chunks",
  "p-limit",
  "p-queue",
  "effect-forEach",
  "spindle-limiter",
  "semaphore-per-fiber"
] as const

/**
 * @since 0.1.0
 */
export type Variant = typeof variants[number]

/**
 * The result line printed by a variant process.
 *
 * @since 0.1.0
 */
export interface VariantResult {
  readonly variant: Variant
  readonly tasks: number
  readonly concurrency: number
  readonly seconds: number
  readonly opsPerSec: number
}

const noopPromise = (): Promise<void> => Promise.resolve()
const noopEffect = (): Effect.Effect<void> => Effect.void

const runners: Record<Variant, (items: ReadonlyArray<number>, concurrency: number) => Promise<unknown>> = {
  "promise-all-chunks": async (items, concurrency) => {
    for (let start = 0; start < items.length; start += concurrency) {
      const end = Math.min(start + concurrency, items.length)
      const chunk = new Array<Promise<void>>(end - start)
      for (let i = start; i < end; i++) {
        chunk[i - start] = noopPromise()
      }
      await Promise.all(chunk)
    }
  },
  "p-limit": (items, concurrency) => {
    const limit = pLimit(concurrency)
    return Promise.all(items.map(() => limit(noopPromise)))
  },
  "p-queue": (items, concurrency) => {
    const queue = new PQueue({ concurrency })
    return Promise.all(items.map(() => queue.add(noopPromise)))
  },
  "effect-forEach": (items, concurrency) => Effect.runPromise(Effect.forEach(items, noopEffect, { concurrency })),
  "spindle-limiter": (items, concurrency) =>
    Effect.runPromise(
      Effect.flatMap(
        Limiter.make({ name: "bench", limit: concurrency }),
        (limiter) => limiter.forEach(items, noopEffect)
      )
    ),
  "semaphore-per-fiber": (items, concurrency) =>
    Effect.runPromise(
      Effect.flatMap(
        Effect.makeSemaphore(concurrency),
        (semaphore) => Effect.forEach(items, () => semaphore.withPermits(1)(Effect.void), { concurrency: "unbounded" })
      )
    )
}

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

/**
 * Runs one variant in this process: warm-up, then the timed run.
 *
 * @since 0.1.0
 */
export const runVariant = async (variant: Variant, tasks: number, concurrency: number): Promise<VariantResult> => {
  const runner = runners[variant]
  await runner(range(20_000), concurrency)
  const items = range(tasks)
  const start = performance.now()
  await runner(items, concurrency)
  const seconds = (performance.now() - start) / 1000
  return { variant, tasks, concurrency, seconds, opsPerSec: tasks / seconds }
}

const isVariant = (s: string | undefined): s is Variant => variants.includes(s as Variant)

const main = async (): Promise<void> => {
  const [variant, tasksArg, concurrencyArg] = process.argv.slice(2)
  const tasks = Number(tasksArg ?? 1_000_000)
  const concurrency = Number(concurrencyArg ?? 100)
  if (
    !isVariant(variant) || !Number.isInteger(tasks) || tasks < 1 || !Number.isInteger(concurrency) || concurrency < 1
  ) {
    process.stderr.write(`usage: limiterVariant.js <${variants.join("|")}> <tasks> <concurrency>\n`)
    process.exit(2)
  }
  const result = await runVariant(variant, tasks, concurrency)
  process.stdout.write(JSON.stringify(result) + "\n")
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    process.stderr.write(String(error?.stack ?? error) + "\n")
    process.exit(1)
  })
}
