/**
 * The durable benchmark: Spindle's stores (`spindle-sqlite`, `spindle-pg`, see
 * durableSpindle.ts) beside graphile-worker, BullMQ and pg-boss (durablePeers.ts), measured in
 * one run by the method of `shared/BENCHMARKS.md` (each measurement in a fresh child process,
 * systems interleaved and rotated each round), then the goals of issue 3 checked against the
 * medians.
 *
 *   node bench/dist/durable.js [--jobs 20000] [--concurrency 10,50] [--rounds 3]
 *     [--latency-samples 50] [--systems spindle-sqlite,spindle-pg,graphile-worker,bullmq,pg-boss]
 *
 * @since 0.1.0
 */
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { DurableBenchOptions, DurableMetric, DurableSamples, DurableSystem } from "./durablePeers.js"
import {
  cleanupPeers,
  ensurePeersInstalled,
  parseDurableBenchArgs,
  peerNames,
  peerSystems,
  renderDurableReport,
  runDurableBench
} from "./durablePeers.js"
import { median } from "./report.js"

const distDir = fileURLToPath(new URL(".", import.meta.url))

/**
 * Spindle's systems: the same runner on each store.
 *
 * @since 0.1.0
 */
export const spindleSystems: ReadonlyArray<DurableSystem> = [
  { system: "spindle-sqlite", args: [join(distDir, "durableSpindle.js"), "sqlite"] },
  { system: "spindle-pg", args: [join(distDir, "durableSpindle.js"), "pg"] }
]

/**
 * Every system the durable benchmark knows, Spindle's first.
 *
 * @since 0.1.0
 */
export const durableSystemNames: ReadonlyArray<string> = [
  ...spindleSystems.map((s) => s.system),
  ...peerNames
]

/**
 * The goals of issue 3, for each Spindle store (SQLite must be at least as fast as the Postgres
 * goal): drain at least 24,000 jobs/s (at every concurrency measured), bulk enqueue at least
 * 50,000 jobs/s, idle latency p50 at most 2 ms.
 *
 * @since 0.1.0
 */
export const DURABLE_GOALS = {
  drainPerSecond: 24_000,
  enqueuePerSecond: 50_000,
  latencyP50Ms: 2
} as const

/**
 * One line per goal and Spindle store: `met ` or `MISS`, the median measured and the goal; `n/a`
 * when the metric was not measured.
 *
 * @since 0.1.0
 */
export const renderDurableGoals = (samples: ReadonlyArray<DurableSamples>): string => {
  const medianOf = (system: string, metric: DurableMetric): number | undefined => {
    const values = samples.find((s) => s.system === system && s.metric === metric)?.samples
    return values === undefined || values.length === 0 ? undefined : median(values)
  }
  const drains = [...new Set(samples.map((s) => s.metric).filter((m) => m.startsWith("drain@")))]
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)))
  const lines: Array<string> = ["Goals (issue 3)"]
  const check = (label: string, value: number | undefined, goal: number, atMost: boolean, unit: string) => {
    const met = value !== undefined && (atMost ? value <= goal : value >= goal)
    const shown = value === undefined
      ? "n/a"
      : unit === "ms"
      ? `${value.toFixed(2)} ms`
      : `${Math.round(value).toLocaleString("en-US")} jobs/s`
    const goalShown = unit === "ms" ? `<= ${goal} ms` : `>= ${goal.toLocaleString("en-US")} jobs/s`
    lines.push(`${met ? "met " : "MISS"}  ${label}: ${shown} (goal ${goalShown})`)
  }
  for (const system of spindleSystems.map((s) => s.system)) {
    if (!samples.some((s) => s.system === system)) continue
    for (const drain of drains) {
      check(
        `${system} drain at concurrency ${drain.slice(6)}`,
        medianOf(system, drain),
        DURABLE_GOALS.drainPerSecond,
        false,
        "jobs"
      )
    }
    check(`${system} bulk enqueue`, medianOf(system, "enqueue"), DURABLE_GOALS.enqueuePerSecond, false, "jobs")
    check(`${system} idle latency p50`, medianOf(system, "latency-p50"), DURABLE_GOALS.latencyP50Ms, true, "ms")
  }
  return lines.join("\n")
}

/**
 * Runs the durable benchmark over `systems` (default: all; the peers are installed on demand
 * and skipped when that fails) and returns the printed report.
 *
 * @since 0.1.0
 */
export const runDurableSuite = async (
  options: DurableBenchOptions & { readonly systems?: ReadonlyArray<string> | undefined }
): Promise<string> => {
  const wanted = options.systems ?? durableSystemNames
  const unknown = wanted.filter((s) => !durableSystemNames.includes(s))
  if (unknown.length > 0) {
    throw new RangeError(`unknown systems ${unknown.join(", ")}; known: ${durableSystemNames.join(", ")}`)
  }
  const spindle = spindleSystems.filter((s) => wanted.includes(s.system))
  const peersWanted = peerSystems.filter((s) => wanted.includes(s.system))
  const peers = peersWanted.length > 0 && (await ensurePeersInstalled()) ? peersWanted : []
  let samples: Array<DurableSamples>
  try {
    samples = await runDurableBench([...spindle, ...peers], options)
  } finally {
    await cleanupPeers()
  }
  return [
    renderDurableReport(samples, options),
    "",
    renderDurableGoals(samples),
    "",
    "The machine may be shared: compare systems within one run, not across runs."
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runDurableSuite(parseDurableBenchArgs(process.argv.slice(2))).then(
    (report) => console.log(report),
    (error) => {
      process.stderr.write(String(error?.stack ?? error) + "\n")
      process.exit(1)
    }
  )
}
