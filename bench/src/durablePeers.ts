/**
 * The durable benchmark's harness and its peers: graphile-worker, pg-boss and BullMQ (Redis),
 * measured the way `shared/BENCHMARKS.md` says (20,000 no-op jobs, fresh schema or key prefix each
 * round, producer and worker in one process, untimed warm-up of 2,000 jobs, bulk enqueue in chunks
 * of 1,000, drain from worker start until the store confirms every job done at concurrency 10 and
 * 50, idle enqueue-to-start latency over random 20–520 ms gaps).
 *
 * Every measurement runs in a fresh child process speaking one small protocol (see
 * `bench/peers/common.mjs`): `node <entry…> <mode> <jobs> <concurrency>` with mode `probe`,
 * `enqueue`, `drain` or `latency`, printing one JSON line. A system is a `DurableSystem` (its
 * name and entry), so Spindle's own stores (`spindle-sqlite`, `spindle-pg`) slot in next to the
 * peers by giving `runDurableBench` one more entry that speaks the same protocol.
 *
 * The peers live in `bench/peers/`, a package of its own (not a workspace), installed on demand
 * with `npm ci --prefix bench/peers` so the main install is neither slowed nor broken. The
 * entry point is durable.ts (`--systems graphile-worker,pg-boss,bullmq` for the peers alone).
 *
 * @since 0.1.0
 */
import { execFile, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { median, renderTable, summarize } from "./report.js"

/**
 * What one sample measures: bulk enqueue and drain at a concurrency in jobs/s (higher is
 * better); the median and 95th percentile of one round's idle latency samples in ms (lower is
 * better).
 *
 * @since 0.1.0
 */
export type DurableMetric = "enqueue" | `drain@${number}` | "latency-p50" | "latency-p95"

/**
 * The samples of one system and metric, one per round.
 *
 * @since 0.1.0
 */
export interface DurableSamples {
  readonly system: string
  readonly metric: DurableMetric
  readonly samples: Array<number>
}

/**
 * A system under test: its name in the tables and the arguments given to this Node before
 * `<mode> <jobs> <concurrency>` (a script path, then any fixed arguments such as a store name).
 *
 * @since 0.1.0
 */
export interface DurableSystem {
  readonly system: string
  readonly args: ReadonlyArray<string>
}

/**
 * The mode of one child-process run.
 *
 * @since 0.1.0
 */
export type DurableMode = "probe" | "enqueue" | "drain" | "latency"

/**
 * The JSON line a run prints (`perSecond` for enqueue and drain, `samplesMs` for latency,
 * `unavailable` when its store cannot be reached).
 *
 * @since 0.1.0
 */
export interface DurableRunLine {
  readonly system: string
  readonly mode: DurableMode
  readonly jobs?: number
  readonly concurrency?: number
  readonly seconds?: number
  readonly perSecond?: number
  readonly samplesMs?: ReadonlyArray<number>
  readonly unavailable?: string
}

/**
 * The outcome of one child-process run.
 *
 * @since 0.1.0
 */
export type DurableRunResult =
  | { readonly _tag: "Ok"; readonly line: DurableRunLine }
  | { readonly _tag: "Unavailable"; readonly reason: string }
  | { readonly _tag: "Failed"; readonly reason: string }

/**
 * Where the peers' package lives (`bench/peers`, beside `src` and `dist`).
 *
 * @since 0.1.0
 */
export const peersDir: string = fileURLToPath(new URL("../peers/", import.meta.url))

/**
 * The peers, in the order of the tables' ratio columns.
 *
 * @since 0.1.0
 */
export const peerSystems: ReadonlyArray<DurableSystem> = [
  { system: "graphile-worker", args: [join(peersDir, "graphile.mjs")] },
  { system: "bullmq", args: [join(peersDir, "bullmq.mjs")] },
  { system: "pg-boss", args: [join(peersDir, "pgboss.mjs")] }
]

/**
 * The peers' names, the default baselines of the ratio columns.
 *
 * @since 0.1.0
 */
export const peerNames: ReadonlyArray<string> = peerSystems.map((s) => s.system)

const log = (message: string): void => {
  process.stderr.write(`${message}\n`)
}

const installedVersion = (name: string): string | undefined => {
  const path = join(peersDir, "node_modules", name, "package.json")
  if (!existsSync(path)) return undefined
  return (JSON.parse(readFileSync(path, "utf8")) as { version?: string }).version
}

/**
 * True when every pinned dependency (and override) of `bench/peers/package.json` is installed
 * at its pinned version.
 *
 * @since 0.1.0
 */
export const peersInstalled = (): boolean => {
  const manifest = JSON.parse(readFileSync(join(peersDir, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>
    overrides?: Record<string, string>
  }
  const pins = { ...manifest.dependencies, ...manifest.overrides }
  return Object.entries(pins).every(([name, version]) => installedVersion(name) === version)
}

/**
 * Installs the peers with `npm ci --prefix bench/peers` unless they are installed already (it
 * says so on stderr). Resolves to false, with the reason on stderr, when the install fails.
 *
 * @since 0.1.0
 */
export const ensurePeersInstalled = async (): Promise<boolean> => {
  if (peersInstalled()) return true
  log(`installing the durable benchmark's peers: npm ci --prefix ${peersDir}`)
  const npm = process.platform === "win32" ? "npm.cmd" : "npm"
  const code = await new Promise<number | string>((resolve) => {
    const child = spawn(npm, ["ci", "--no-audit", "--no-fund", "--prefix", peersDir], {
      stdio: ["ignore", process.stderr, process.stderr],
      timeout: 600_000
    })
    child.on("error", (error) => resolve(error.message))
    child.on("exit", (status, signal) => resolve(status ?? signal ?? "killed"))
  })
  if (code === 0 && peersInstalled()) return true
  log(`could not install the peers (npm ci exited with ${code}): skipping graphile-worker, pg-boss and BullMQ`)
  return false
}

/**
 * How long a run may take before it is killed: generous, but bounded.
 *
 * @since 0.1.0
 */
export const runTimeoutMs = (mode: DurableMode, jobs: number): number => {
  switch (mode) {
    case "probe":
      return 60_000
    case "enqueue":
      return 60_000 + jobs * 3
    case "drain":
      return 60_000 + jobs * 8
    case "latency":
      return 60_000 + jobs * 1_000
  }
}

const lastLines = (text: string, n: number): string => text.trim().split("\n").slice(-n).join("\n")

/**
 * Runs one system in a fresh Node process, killed after `runTimeoutMs`, and returns its result
 * line, or why there is none.
 *
 * @since 0.1.0
 */
export const runSystemProcess = (
  system: DurableSystem,
  mode: DurableMode,
  jobs: number,
  concurrency: number
): Promise<DurableRunResult> => {
  const timeout = runTimeoutMs(mode, jobs)
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...system.args, mode, String(jobs), String(concurrency)],
      {
        timeout,
        killSignal: "SIGKILL",
        maxBuffer: 16 * 1024 * 1024,
        // the child's own watchdog fires first and exits with a message
        env: { ...process.env, BENCH_PEER_WATCHDOG_MS: String(timeout - 5_000) }
      },
      (error, stdout, stderr) => {
        const jsonLine = stdout.trim().split("\n").reverse().find((l) => l.startsWith("{"))
        let line: DurableRunLine | undefined
        try {
          line = jsonLine === undefined ? undefined : (JSON.parse(jsonLine) as DurableRunLine)
        } catch {
          line = undefined
        }
        if (line?.unavailable !== undefined) {
          resolve({ _tag: "Unavailable", reason: line.unavailable })
        } else if (error === null && line !== undefined) {
          resolve({ _tag: "Ok", line })
        } else {
          const why = error?.killed === true
            ? `killed after ${timeout} ms`
            : error?.message.split("\n")[0] ?? "no result"
          resolve({ _tag: "Failed", reason: `${why}\n${lastLines(stderr, 8)}` })
        }
      }
    )
  })
}

/**
 * The `p`th percentile (0–100) of a non-empty list, by the nearest-rank method.
 *
 * @since 0.1.0
 */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) throw new RangeError("percentile of an empty list")
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/**
 * Options of a durable benchmark run.
 *
 * @since 0.1.0
 */
export interface DurableBenchOptions {
  readonly jobs: number
  readonly concurrencies: ReadonlyArray<number>
  readonly rounds: number
  /** idle latency samples per round, taken at the first concurrency */
  readonly latencySamples: number
}

const formatSample = (metric: DurableMetric, value: number): string =>
  metric.startsWith("latency") ? `${value.toFixed(2)} ms` : `${Math.round(value).toLocaleString("en-US")} jobs/s`

/**
 * Runs every system's measurements `rounds` times, each in a fresh child process, rounds and
 * systems interleaved (each measurement runs every system in turn, the order rotating each round),
 * and returns the samples. A system whose store cannot be reached is skipped with a message; a
 * run that fails or times out loses its sample (with a message), never the whole benchmark.
 *
 * @since 0.1.0
 */
export const runDurableBench = async (
  systems: ReadonlyArray<DurableSystem>,
  options: DurableBenchOptions
): Promise<Array<DurableSamples>> => {
  const ready: Array<DurableSystem> = []
  for (const system of systems) {
    const probe = await runSystemProcess(system, "probe", 1, 1)
    if (probe._tag === "Ok") ready.push(system)
    else log(`skipping ${system.system}: ${probe.reason}`)
  }
  const samples = new Map<string, DurableSamples>()
  const record = (system: string, metric: DurableMetric, value: number) => {
    const key = `${system}\u0000${metric}`
    const entry = samples.get(key) ?? { system, metric, samples: [] }
    entry.samples.push(value)
    samples.set(key, entry)
    log(`  ${system} ${metric}: ${formatSample(metric, value)}`)
  }
  const latencyConcurrency = options.concurrencies[0] ?? 10
  const tasks: ReadonlyArray<{ mode: DurableMode; jobs: number; concurrency: number }> = [
    { mode: "enqueue", jobs: options.jobs, concurrency: latencyConcurrency },
    ...options.concurrencies.map((concurrency) => ({ mode: "drain" as const, jobs: options.jobs, concurrency })),
    ...(options.latencySamples > 0
      ? [{ mode: "latency" as const, jobs: options.latencySamples, concurrency: latencyConcurrency }]
      : [])
  ]
  for (let round = 0; round < options.rounds; round++) {
    log(`round ${round + 1} of ${options.rounds}`)
    for (const task of tasks) {
      for (let i = 0; i < ready.length; i++) {
        const system = ready[(i + round) % ready.length]!
        const result = await runSystemProcess(system, task.mode, task.jobs, task.concurrency)
        if (result._tag !== "Ok") {
          log(`  ${system.system} ${task.mode}@${task.concurrency} lost its sample: ${result.reason}`)
          continue
        }
        const line = result.line
        if (task.mode === "latency" && line.samplesMs !== undefined && line.samplesMs.length > 0) {
          record(system.system, "latency-p50", percentile(line.samplesMs, 50))
          record(system.system, "latency-p95", percentile(line.samplesMs, 95))
        } else if (line.perSecond !== undefined) {
          record(system.system, task.mode === "drain" ? `drain@${task.concurrency}` : "enqueue", line.perSecond)
        }
      }
    }
  }
  return [...samples.values()]
}

/**
 * Cleans what killed runs left behind (schemas, Redis keys of dead processes).
 *
 * @since 0.1.0
 */
export const cleanupPeers = (): Promise<void> =>
  new Promise((resolve) => {
    execFile(process.execPath, [join(peersDir, "cleanup.mjs")], { timeout: 60_000 }, (_error, stdout) => {
      const line = stdout.trim()
      if (line !== "" && !line.includes("\"schemas\":[],\"redisPrefixes\":[]")) log(`cleaned up: ${line}`)
      resolve()
    })
  })

const metricOrder = (metric: DurableMetric): number =>
  metric === "enqueue"
    ? 0
    : metric.startsWith("drain@")
    ? 1 + Number(metric.slice("drain@".length)) / 1e6
    : metric === "latency-p50"
    ? 2
    : 3

const formatMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2))

/**
 * The idle latency table: p50 and p95 in ms (median of the rounds, min–max), and the p50 ratio
 * to each baseline (lower is better).
 *
 * @since 0.1.0
 */
export const renderLatencyTable = (
  title: string,
  samples: ReadonlyArray<DurableSamples>,
  baselines: ReadonlyArray<string>
): string => {
  const of = (system: string, metric: DurableMetric) =>
    samples.find((s) => s.system === system && s.metric === metric)?.samples
  const systems = [...new Set(samples.filter((s) => s.metric.startsWith("latency")).map((s) => s.system))]
  const cell = (values: ReadonlyArray<number> | undefined) =>
    values === undefined || values.length === 0
      ? ""
      : `${formatMs(median(values))} (${formatMs(Math.min(...values))}–${formatMs(Math.max(...values))})`
  const p50 = new Map(systems.map((s) => [s, of(s, "latency-p50")]))
  const present = baselines.filter((b) => p50.get(b) !== undefined)
  const header = ["system", "p50 ms median (min–max)", "p95 ms median (min–max)", ...present.map((b) => `p50 vs ${b}`)]
  const body = systems.map((system) => {
    const mine = p50.get(system)
    return [
      system,
      cell(mine),
      cell(of(system, "latency-p95")),
      ...present.map((b) => {
        const base = p50.get(b)
        return mine === undefined || base === undefined ? "" : `${(median(mine) / median(base)).toFixed(2)}x`
      })
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  return [title, line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}

/**
 * The printed report: one throughput table per metric (enqueue, then drain at each concurrency)
 * with ratio columns against each baseline present, then the latency table.
 *
 * @since 0.1.0
 */
export const renderDurableReport = (
  samples: ReadonlyArray<DurableSamples>,
  options: {
    readonly jobs: number
    readonly rounds: number
    readonly latencySamples: number
    readonly baselines?: ReadonlyArray<string> | undefined
  }
): string => {
  const baselines = options.baselines ?? peerNames
  const metrics = [...new Set(samples.map((s) => s.metric))].sort((a, b) => metricOrder(a) - metricOrder(b))
  const sections: Array<string> = []
  for (const metric of metrics.filter((m) => !m.startsWith("latency"))) {
    const rows = samples.filter((s) => s.metric === metric && s.samples.length > 0)
    const present = baselines.filter((b) => rows.some((r) => r.system === b))
    const title = metric === "enqueue"
      ? `Bulk enqueue: ${options.jobs.toLocaleString("en-US")} jobs in chunks of 1,000, ${options.rounds} rounds`
      : `Drain at concurrency ${metric.slice("drain@".length)}: ${
        options.jobs.toLocaleString("en-US")
      } no-op jobs, worker start to store confirmation, ${options.rounds} rounds`
    sections.push(
      renderTable(
        title,
        "jobs",
        summarize(rows.map((r) => ({ variant: r.system, perSecond: r.samples })), present),
        present
      )
    )
  }
  if (metrics.some((m) => m.startsWith("latency"))) {
    sections.push(
      renderLatencyTable(
        `Idle enqueue-to-start latency: ${options.latencySamples} samples per round, 20–520 ms gaps, ${options.rounds} rounds`,
        samples,
        baselines
      )
    )
  }
  return sections.join("\n\n")
}

/**
 * Command-line flags of the durable benchmark, with the defaults of `shared/BENCHMARKS.md`.
 *
 * @since 0.1.0
 */
export const parseDurableBenchArgs = (
  args: ReadonlyArray<string>
): DurableBenchOptions & { readonly systems: ReadonlyArray<string> | undefined } => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      jobs: { type: "string", default: "20000" },
      concurrency: { type: "string", default: "10,50" },
      rounds: { type: "string", default: "3" },
      "latency-samples": { type: "string", default: "50" },
      systems: { type: "string" }
    },
    strict: false
  })
  const positive = (name: string, value: unknown, allowZero = false) => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) {
      throw new RangeError(`--${name} must be a ${allowZero ? "non-negative" : "positive"} integer, got ${value}`)
    }
    return n
  }
  return {
    jobs: positive("jobs", values.jobs),
    concurrencies: String(values.concurrency).split(",").map((c) => positive("concurrency", c)),
    rounds: positive("rounds", values.rounds),
    latencySamples: positive("latency-samples", values["latency-samples"], true),
    systems: typeof values.systems === "string" ? values.systems.split(",") : undefined
  }
}
