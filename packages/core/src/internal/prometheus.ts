import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import type * as Prometheus from "../Prometheus.js"

/** @internal */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

type FamilyType = "counter" | "gauge" | "histogram" | "summary"

interface Series {
  /** Rendered label set without the family-specific label (`le`, `quantile`), used to sort and dedupe. */
  readonly labels: string
  readonly lines: ReadonlyArray<string>
}

interface Family {
  readonly name: string
  readonly type: FamilyType
  help: string | undefined
  readonly series: Array<Series>
  readonly seen: Set<string>
}

const invalidMetricChars = /[^a-zA-Z0-9_:]/g
const invalidLabelChars = /[^a-zA-Z0-9_]/g
const leadingDigit = /^[0-9]/

/** @internal */
export const sanitizeMetricName = (name: string): string => {
  const replaced = name.replace(invalidMetricChars, "_")
  return replaced.length === 0 || leadingDigit.test(replaced) ? "_" + replaced : replaced
}

/** @internal */
export const sanitizeLabelName = (name: string): string => {
  const replaced = name.replace(invalidLabelChars, "_")
  return replaced.length === 0 || leadingDigit.test(replaced) ? "_" + replaced : replaced
}

/** @internal */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** @internal */
export const escapeHelp = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** @internal */
export const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

const familyType = (keyType: unknown): FamilyType | undefined => {
  if (MetricKeyType.isCounterKey(keyType) || MetricKeyType.isFrequencyKey(keyType)) return "counter"
  if (MetricKeyType.isGaugeKey(keyType)) return "gauge"
  if (MetricKeyType.isHistogramKey(keyType)) return "histogram"
  if (MetricKeyType.isSummaryKey(keyType)) return "summary"
  return undefined
}

/** The label name each family type reserves for itself; a metric tag of that name is renamed `exported_<name>`. */
const reservedLabel = (pair: MetricPair.MetricPair.Untyped, type: FamilyType): string | undefined => {
  if (type === "histogram") return "le"
  if (type === "summary") return "quantile"
  if (MetricKeyType.isFrequencyKey(pair.metricKey.keyType)) return "key"
  return undefined
}

const renderLabels = (
  constant: ReadonlyArray<readonly [string, string]>,
  pair: MetricPair.MetricPair.Untyped,
  reserved: string | undefined
): string => {
  const labels = new Map<string, string>()
  for (const [name, value] of constant) {
    labels.set(name === reserved ? "exported_" + name : name, value)
  }
  for (const tag of pair.metricKey.tags) {
    const name = sanitizeLabelName(tag.key)
    labels.set(name === reserved ? "exported_" + name : name, tag.value)
  }
  if (labels.size === 0) return ""
  const names = Array.from(labels.keys()).sort()
  let out = ""
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ","
    out += names[i] + "=\"" + escapeLabelValue(labels.get(names[i])!) + "\""
  }
  return out
}

const sample = (name: string, labels: string, value: number | bigint): string =>
  labels.length === 0 ? `${name} ${formatValue(value)}` : `${name}{${labels}} ${formatValue(value)}`

const withLabel = (labels: string, name: string, value: string): string =>
  labels.length === 0 ? `${name}="${escapeLabelValue(value)}"` : `${labels},${name}="${escapeLabelValue(value)}"`

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Builds the sample lines of one series, or `undefined` when key and state do not agree. */
const seriesOf = (
  name: string,
  labels: string,
  pair: MetricPair.MetricPair.Untyped
): Array<Series> | undefined => {
  const state = pair.metricState
  if (MetricState.isFrequencyState(state)) {
    const words = Array.from(state.occurrences.keys()).sort(compareStrings)
    return words.map((word) => {
      const wordLabels = withLabel(labels, "key", word)
      return { labels: wordLabels, lines: [sample(name, wordLabels, state.occurrences.get(word)!)] }
    })
  }
  if (MetricState.isCounterState(state)) {
    return [{ labels, lines: [sample(name, labels, state.count)] }]
  }
  if (MetricState.isGaugeState(state)) {
    return [{ labels, lines: [sample(name, labels, state.value)] }]
  }
  if (MetricState.isHistogramState(state)) {
    const lines: Array<string> = []
    for (const [boundary, cumulative] of state.buckets) {
      if (Number.isFinite(boundary)) {
        lines.push(sample(`${name}_bucket`, withLabel(labels, "le", formatValue(boundary)), cumulative))
      }
    }
    lines.push(sample(`${name}_bucket`, withLabel(labels, "le", "+Inf"), state.count))
    lines.push(sample(`${name}_sum`, labels, state.sum))
    lines.push(sample(`${name}_count`, labels, state.count))
    return [{ labels, lines }]
  }
  if (MetricState.isSummaryState(state)) {
    const lines: Array<string> = []
    const quantiles = state.quantiles.slice().sort((a, b) => a[0] - b[0])
    for (const [quantile, value] of quantiles) {
      lines.push(
        sample(name, withLabel(labels, "quantile", formatValue(quantile)), Option.getOrElse(value, () => Number.NaN))
      )
    }
    lines.push(sample(`${name}_sum`, labels, state.sum))
    lines.push(sample(`${name}_count`, labels, state.count))
    return [{ labels, lines }]
  }
  return undefined
}

const sampleNames = (family: Family): ReadonlyArray<string> => {
  switch (family.type) {
    case "counter":
    case "gauge":
      return [family.name]
    case "histogram":
      return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`]
    case "summary":
      return [family.name, `${family.name}_sum`, `${family.name}_count`]
  }
}

/** @internal */
export interface EncodeResult {
  readonly text: string
  /** Metric names left out because their type or their sample names clash with another family. */
  readonly skipped: ReadonlyArray<string>
}

/** @internal */
export const encodeWithReport = (
  snapshot: Iterable<MetricPair.MetricPair.Untyped>,
  options?: Prometheus.RenderOptions
): EncodeResult => {
  const prefix = options?.prefix
  const constant: Array<readonly [string, string]> = options?.labels === undefined
    ? []
    : Object.entries(options.labels).map(([key, value]) => [sanitizeLabelName(key), value] as const)
  const families = new Map<string, Family>()
  const skipped: Array<string> = []

  for (const pair of snapshot) {
    const name = sanitizeMetricName(pair.metricKey.name)
    if (prefix !== undefined && !name.startsWith(prefix)) continue
    const type = familyType(pair.metricKey.keyType)
    if (type === undefined) continue
    let family = families.get(name)
    if (family === undefined) {
      family = { name, type, help: undefined, series: [], seen: new Set() }
      families.set(name, family)
    } else if (family.type !== type) {
      skipped.push(pair.metricKey.name)
      continue
    }
    const labels = renderLabels(constant, pair, reservedLabel(pair, type))
    const series = seriesOf(name, labels, pair)
    if (series === undefined) continue
    for (const one of series) {
      // the same name and label set under another key type (different boundaries, bigint, ...) is a duplicate
      if (family.seen.has(one.labels)) continue
      family.seen.add(one.labels)
      family.series.push(one)
    }
    if (family.help === undefined && Option.isSome(pair.metricKey.description)) {
      family.help = pair.metricKey.description.value
    }
  }

  const names = Array.from(families.keys()).sort(compareStrings)
  const claimed = new Set<string>()
  const lines: Array<string> = []
  for (const name of names) {
    const family = families.get(name)!
    const own = sampleNames(family)
    if (own.some((sampleName) => claimed.has(sampleName))) {
      skipped.push(name)
      continue
    }
    for (const sampleName of own) claimed.add(sampleName)
    if (family.series.length === 0) continue
    if (family.help !== undefined) lines.push(`# HELP ${name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${name} ${family.type}`)
    family.series.sort((a, b) => compareStrings(a.labels, b.labels))
    for (const series of family.series) {
      for (const line of series.lines) lines.push(line)
    }
  }
  return { text: lines.length === 0 ? "" : lines.join("\n") + "\n", skipped }
}

/** @internal */
export const encode = (
  snapshot: Iterable<MetricPair.MetricPair.Untyped>,
  options?: Prometheus.RenderOptions
): string => encodeWithReport(snapshot, options).text

/** @internal */
export const render = (options?: Prometheus.RenderOptions): Effect.Effect<string> =>
  Effect.flatMap(Metric.snapshot, (snapshot) => {
    const result = encodeWithReport(snapshot, options)
    return result.skipped.length === 0 ? Effect.succeed(result.text) : Effect.as(
      Effect.logDebug("Prometheus: metrics left out because their names clash with another family").pipe(
        Effect.annotateLogs("metrics", result.skipped.join(","))
      ),
      result.text
    )
  })
