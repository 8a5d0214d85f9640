/**
 * In-process limiter benchmark: `Limiter.forEach` against raw `Effect.forEach`,
 * p-limit, p-queue, a `Promise.all`-over-chunks ceiling and the
 * one-fiber-per-item `Semaphore` anti-pattern. Each sample runs one variant in
 * a fresh child process (`limiterVariant.js`: warm-up, then the timed run);
 * rounds are interleaved so machine noise spreads over every variant.
 *
 *   node bench/dist/limiter.js [--tasks 1000000] [--concurrency 100] [--rounds 3]
 *
 * @since 0.1.0
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { parseArgs, promisify } from "node:util"
import { type Variant, type VariantResult, variants } from "./limiterVariant.js"

const execFileAsync = promisify(execFile)

const variantPath = fileURLToPath(new URL("./limiterVariant.js", import.meta.url))

/**
 * `semaphore-per-fiber` parks one fiber per item and manages only a few
 * thousand items per second: it runs on at most this many tasks (its ops/s is
 * still comparable).
 *
 * @since 0.1.0
 */
export const semaphorePerFiberMaxTasks = 100_000

/**
 * The samples of one variant.
 *
 * @since 0.1.0
 */
export interface LimiterSamples {
  readonly variant: string
  /** tasks per timed run (smaller for `semaphore-per-fiber`) */
  readonly tasks: number
  readonly opsPerSec: Array<number>
}

/**
 * Runs one variant in a fresh Node process and returns its result line.
 *
 * @since 0.1.0
 */
export const runVariantProcess = async (
  variant: Variant,
  tasks: number,
  concurrency: number
): Promise<VariantResult> => {
  const { stdout } = await execFileAsync(process.execPath, [variantPath, variant, String(tasks), String(concurrency)], {
    maxBuffer: 1024 * 1024
  })
  const line = stdout.trim().split("\n").at(-1) ?? ""
  return JSON.parse(line) as VariantResult
}

/**
 * Runs every variant `rounds` times, each in a fresh child process, rounds
 * interleaved (the order rotates each round), and returns the samples.
 *
 * @since 0.1.0
 */
export const runLimiterBench = async (options: {
  readonly tasks: number
  readonly concurrency: number
  readonly rounds: number
  readonly variants?: ReadonlyArray<Variant> | undefined
  readonly onSample?: ((result: VariantResult) => void) | undefined
}): Promise<Array<LimiterSamples>> => {
  const selected = options.variants ?? variants
  const tasksOf = (variant: Variant) =>
    variant === "semaphore-per-fiber" ? Math.min(options.tasks, semaphorePerFiberMaxTasks) : options.tasks
  const samples = new Map<Variant, Array<number>>(selected.map((v) => [v, []]))
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < selected.length; i++) {
      const variant = selected[(i + round) % selected.length]!
      const result = await runVariantProcess(variant, tasksOf(variant), options.concurrency)
      samples.get(variant)!.push(result.opsPerSec)
      options.onSample?.(result)
    }
  }
  return selected.map((variant) => ({ variant, tasks: tasksOf(variant), opsPerSec: samples.get(variant)! }))
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * A small text table: median ops/s per variant and its ratio to raw
 * `Effect.forEach` and to p-limit.
 *
 * @since 0.1.0
 */
export const renderLimiterTable = (samples: ReadonlyArray<LimiterSamples>): string => {
  const medians = new Map(samples.map((s) => [s.variant, median(s.opsPerSec)]))
  const ratio = (variant: string, base: string) => {
    const a = medians.get(variant)
    const b = medians.get(base)
    return a === undefined || b === undefined ? "n/a" : `${(a / b).toFixed(2)}x`
  }
  const header = ["variant", "tasks", "median ops/s", "min–max ops/s", "vs effect-forEach", "vs p-limit"]
  const rows = samples.map((s) => [
    s.variant,
    s.tasks.toLocaleString("en-US"),
    Math.round(medians.get(s.variant)!).toLocaleString("en-US"),
    `${Math.round(Math.min(...s.opsPerSec)).toLocaleString("en-US")}–${
      Math.round(Math.max(...s.opsPerSec)).toLocaleString("en-US")
    }`,
    ratio(s.variant, "effect-forEach"),
    ratio(s.variant, "p-limit")
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

const main = async (): Promise<void> => {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      tasks: { type: "string", default: "1000000" },
      concurrency: { type: "string", default: "100" },
      rounds: { type: "string", default: "3" },
      variants: { type: "string" }
    }
  })
  const positive = (name: string, value: string) => {
    const n = Number(value)
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`--${name} must be a positive integer, got ${value}`)
    return n
  }
  const selected = values.variants?.split(",").map((v) => {
    if (!variants.includes(v as Variant)) throw new RangeError(`unknown variant ${v}; known: ${variants.join(", ")}`)
    return v as Variant
  })
  const tasks = positive("tasks", values.tasks)
  const concurrency = positive("concurrency", values.concurrency)
  const rounds = positive("rounds", values.rounds)
  const samples = await runLimiterBench({
    tasks,
    concurrency,
    rounds,
    variants: selected,
    onSample: (r) => process.stderr.write(`  ${r.variant}: ${Math.round(r.opsPerSec).toLocaleString("en-US")} ops/s\n`)
  })
  console.log(
    `In-process limiter: ${tasks.toLocaleString("en-US")} no-op tasks, concurrency ${concurrency}, ${rounds} rounds`
  )
  console.log(renderLimiterTable(samples))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    process.stderr.write(String(error?.stack ?? error) + "\n")
    process.exit(1)
  })
}
