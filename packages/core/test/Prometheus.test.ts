import { assert, describe, it } from "@effect/vitest"
import * as Prometheus from "@spindle/core/Prometheus"
import { Effect, Metric, MetricBoundaries, MetricLabel } from "effect"

// -----------------------------------------------------------------------------
// A strict parser for the Prometheus text exposition format 0.0.4.
// It throws on anything the format forbids (and on comments and blank lines, which Spindle never
// emits), and checks the family invariants: TYPE before samples, HELP and TYPE once, every sample
// in a declared family, families contiguous, no duplicate series, histogram buckets cumulative
// with `+Inf` equal to `_count`, summaries with `_sum` and `_count`.
// -----------------------------------------------------------------------------

type Labels = Readonly<Record<string, string>>

interface ParsedSample {
  readonly name: string
  readonly labels: Labels
  readonly value: number
}

interface ParsedFamily {
  readonly name: string
  type: string | undefined
  help: string | undefined
  readonly samples: Array<ParsedSample>
}

class ParseError extends Error {}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/
const floatValue = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/

const fail = (line: number, message: string): never => {
  throw new ParseError(`line ${line}: ${message}`)
}

const parseFloatStrict = (text: string, line: number): number => {
  if (!floatValue.test(text)) fail(line, `invalid value ${JSON.stringify(text)}`)
  if (text === "NaN") return Number.NaN
  if (text.endsWith("Inf")) return text.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY
  return Number(text)
}

const unescapeHelp = (text: string, line: number): string =>
  text.replace(/\\(.?)/g, (_, c: string) => c === "\\" ? "\\" : c === "n" ? "\n" : fail(line, `bad escape \\${c}`))

const parseLabels = (text: string, line: number): { labels: Labels; rest: string } => {
  const labels: Record<string, string> = {}
  let i = 0
  if (text[i] === "}") return { labels, rest: text.slice(1) }
  for (;;) {
    const name = labelName.exec(text.slice(i))?.[0] ?? fail(line, "bad label name")
    i += name.length
    if (text[i] !== "=" || text[i + 1] !== "\"") fail(line, `expected =" after ${name}`)
    i += 2
    let value = ""
    for (;;) {
      const c = text[i++]
      if (c === undefined) fail(line, "unterminated label value")
      if (c === "\"") break
      if (c === "\\") {
        const e = text[i++]
        if (e === "\\") value += "\\"
        else if (e === "\"") value += "\""
        else if (e === "n") value += "\n"
        else fail(line, `bad escape \\${e}`)
      } else {
        value += c
      }
    }
    if (Object.hasOwn(labels, name)) fail(line, `duplicate label ${name}`)
    labels[name] = value
    if (text[i] === ",") {
      i++
      continue
    }
    if (text[i] === "}") return { labels, rest: text.slice(i + 1) }
    fail(line, "expected , or }")
  }
}

const seriesKey = (labels: Labels, without?: string): string =>
  JSON.stringify(Object.keys(labels).filter((k) => k !== without).sort().map((k) => [k, labels[k]]))

const familyOf = (families: Map<string, ParsedFamily>, name: string): ParsedFamily | undefined => {
  const exact = families.get(name)
  if (exact !== undefined && exact.type !== "histogram") return exact
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue
    const base = families.get(name.slice(0, -suffix.length))
    if (base?.type === "histogram") return base
    if (base?.type === "summary" && suffix !== "_bucket") return base
  }
  return undefined
}

const checkHistogram = (family: ParsedFamily): void => {
  const groups = new Map<string, { buckets: Array<[number, number]>; sum: Array<number>; count: Array<number> }>()
  for (const s of family.samples) {
    const key = seriesKey(s.labels, s.name.endsWith("_bucket") ? "le" : undefined)
    const group = groups.get(key) ?? { buckets: [], sum: [], count: [] }
    groups.set(key, group)
    if (s.name.endsWith("_bucket")) {
      const le = s.labels.le ?? fail(0, `${s.name} without le`)
      group.buckets.push([parseFloatStrict(le, 0), s.value])
    } else if (s.name.endsWith("_sum")) group.sum.push(s.value)
    else if (s.name.endsWith("_count")) group.count.push(s.value)
    else fail(0, `${s.name} is not a histogram sample`)
  }
  for (const [key, group] of groups) {
    if (group.sum.length !== 1 || group.count.length !== 1) fail(0, `${family.name}${key}: one _sum and _count`)
    if (group.buckets.length === 0) fail(0, `${family.name}${key}: no buckets`)
    for (let i = 1; i < group.buckets.length; i++) {
      if (!(group.buckets[i][0] > group.buckets[i - 1][0])) fail(0, `${family.name}${key}: le not increasing`)
      if (group.buckets[i][1] < group.buckets[i - 1][1]) fail(0, `${family.name}${key}: buckets not cumulative`)
    }
    const last = group.buckets[group.buckets.length - 1]
    if (last[0] !== Number.POSITIVE_INFINITY) fail(0, `${family.name}${key}: no +Inf bucket`)
    if (last[1] !== group.count[0]) fail(0, `${family.name}${key}: +Inf bucket differs from _count`)
  }
}

const checkSummary = (family: ParsedFamily): void => {
  const groups = new Map<string, { sum: number; count: number }>()
  for (const s of family.samples) {
    const key = seriesKey(s.labels, s.name === family.name ? "quantile" : undefined)
    const group = groups.get(key) ?? { sum: 0, count: 0 }
    groups.set(key, group)
    if (s.name === family.name) {
      const q = parseFloatStrict(s.labels.quantile ?? fail(0, `${s.name} without quantile`), 0)
      if (!(q >= 0 && q <= 1)) fail(0, `${s.name}: quantile ${q} out of range`)
    } else if (s.name.endsWith("_sum")) group.sum++
    else group.count++
  }
  for (const [key, group] of groups) {
    if (group.sum !== 1 || group.count !== 1) fail(0, `${family.name}${key}: one _sum and _count`)
  }
}

const parseExposition = (text: string): Map<string, ParsedFamily> => {
  const families = new Map<string, ParsedFamily>()
  if (text === "") return families
  if (!text.endsWith("\n")) fail(0, "missing final newline")
  const lines = text.slice(0, -1).split("\n")
  const finished = new Set<string>()
  const series = new Set<string>()
  let current: ParsedFamily | undefined
  const enter = (family: ParsedFamily, line: number) => {
    if (current === family) return
    if (finished.has(family.name)) fail(line, `family ${family.name} is not contiguous`)
    if (current !== undefined) finished.add(current.name)
    current = family
  }
  lines.forEach((raw, index) => {
    const line = index + 1
    if (raw === "") fail(line, "blank line")
    if (raw.startsWith("#")) {
      const match = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(raw) ?? fail(line, "unexpected comment")
      const [, keyword, name, rest] = match
      if (!metricName.test(name) || metricName.exec(name)![0] !== name) fail(line, `bad name ${name}`)
      let family = families.get(name)
      if (family === undefined) {
        family = { name, type: undefined, help: undefined, samples: [] }
        families.set(name, family)
      }
      enter(family, line)
      if (keyword === "HELP") {
        if (family.help !== undefined) fail(line, `second HELP for ${name}`)
        family.help = unescapeHelp(rest ?? "", line)
      } else {
        if (family.type !== undefined) fail(line, `second TYPE for ${name}`)
        if (family.samples.length > 0) fail(line, `TYPE after samples for ${name}`)
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest ?? "")) fail(line, "bad type")
        family.type = rest
      }
      return
    }
    const name = metricName.exec(raw)?.[0] ?? fail(line, "bad sample name")
    let rest = raw.slice(name.length)
    let labels: Labels = {}
    if (rest.startsWith("{")) {
      const parsed = parseLabels(rest.slice(1), line)
      labels = parsed.labels
      rest = parsed.rest
    }
    if (!rest.startsWith(" ")) fail(line, "expected a space before the value")
    const parts = rest.slice(1).split(" ")
    if (parts.length !== 1) fail(line, "unexpected timestamp or trailing text")
    const value = parseFloatStrict(parts[0], line)
    const family = familyOf(families, name) ?? fail(line, `sample ${name} has no declared family`)
    if (family.type === undefined) fail(line, `sample ${name} before TYPE`)
    enter(family, line)
    const id = name + seriesKey(labels)
    if (series.has(id)) fail(line, `duplicate series ${id}`)
    series.add(id)
    if (family.type !== "histogram" && Object.hasOwn(labels, "le")) fail(line, "le outside a histogram")
    family.samples.push({ name, labels, value })
  })
  for (const family of families.values()) {
    if (family.type === undefined) fail(0, `family ${family.name} without TYPE`)
    if (family.type === "histogram") checkHistogram(family)
    if (family.type === "summary") checkSummary(family)
  }
  return families
}

const valueOf = (
  families: Map<string, ParsedFamily>,
  family: string,
  name: string,
  labels: Labels = {}
): number | undefined =>
  families.get(family)?.samples.find((s) => s.name === name && seriesKey(s.labels) === seriesKey(labels))?.value

// -----------------------------------------------------------------------------

describe("Prometheus", () => {
  describe("parser self-check", () => {
    it("rejects malformed expositions", () => {
      const bad = [
        "x 1\n", // no family
        "# TYPE x counter\nx 1", // no final newline
        "# TYPE x counter\nx{a=\"\\t\"} 1\n", // bad escape
        "# TYPE x counter\n# TYPE x counter\nx 1\n", // TYPE twice
        "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx{a=\"b\"} 2\n", // not contiguous
        "# TYPE x counter\nx 1\nx 2\n", // duplicate series
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n", // +Inf != count
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
        "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\n", // no _count
        "# TYPE x gauge\nx one\n" // bad value
      ]
      for (const text of bad) {
        assert.throws(() => parseExposition(text), ParseError, undefined, text)
      }
      const good = parseExposition(
        "# HELP x a \\\\ b\\nc\n# TYPE x counter\nx{a=\"q\\\"\\\\\\n\"} +Inf\n# TYPE g gauge\ng NaN\n"
      )
      assert.strictEqual(good.get("x")?.help, "a \\ b\nc")
      assert.deepStrictEqual(good.get("x")?.samples[0].labels, { a: "q\"\\\n" })
    })
  })

  it("exposes the 0.0.4 content type", () => {
    assert.strictEqual(Prometheus.contentType, "text/plain; version=0.0.4; charset=utf-8")
  })

  it.effect("renders every metric type exactly", () =>
    Effect.gen(function*() {
      const jobs = Metric.counter("prom_exact_jobs_total", { description: "Jobs done", incremental: true })
      const gauge = Metric.gauge("prom_exact_gauge", { description: "A gauge" })
      const hist = Metric.histogram("prom_exact_hist", MetricBoundaries.fromIterable([1, 2, 5]), "Latency")
      const summary = Metric.summary({
        name: "prom_exact_summary",
        maxAge: "1 minute",
        maxSize: 100,
        error: 0.01,
        quantiles: [0.9, 0.5],
        description: "Sizes"
      })
      const status = Metric.frequency("prom_exact_status")

      yield* Metric.incrementBy(jobs, 3)
      yield* Metric.set(Metric.tagged(gauge, "pool", "b"), -2)
      yield* Metric.set(Metric.tagged(gauge, "pool", "a"), 1.5)
      for (const value of [0.5, 1.5, 2, 8.5]) yield* Metric.update(hist, value)
      for (const value of [5, 5, 5]) yield* Metric.update(summary, value)
      for (const value of ["failed", "done", "done"]) yield* Metric.update(status, value)

      const text = yield* Prometheus.render({ prefix: "prom_exact_" })
      assert.strictEqual(
        text,
        [
          "# HELP prom_exact_gauge A gauge",
          "# TYPE prom_exact_gauge gauge",
          "prom_exact_gauge{pool=\"a\"} 1.5",
          "prom_exact_gauge{pool=\"b\"} -2",
          "# HELP prom_exact_hist Latency",
          "# TYPE prom_exact_hist histogram",
          "prom_exact_hist_bucket{le=\"1\"} 1",
          "prom_exact_hist_bucket{le=\"2\"} 3",
          "prom_exact_hist_bucket{le=\"5\"} 3",
          "prom_exact_hist_bucket{le=\"+Inf\"} 4",
          "prom_exact_hist_sum 12.5",
          "prom_exact_hist_count 4",
          "# HELP prom_exact_jobs_total Jobs done",
          "# TYPE prom_exact_jobs_total counter",
          "prom_exact_jobs_total 3",
          "# TYPE prom_exact_status counter",
          "prom_exact_status{key=\"done\"} 2",
          "prom_exact_status{key=\"failed\"} 1",
          "# HELP prom_exact_summary Sizes",
          "# TYPE prom_exact_summary summary",
          "prom_exact_summary{quantile=\"0.5\"} 5",
          "prom_exact_summary{quantile=\"0.9\"} 5",
          "prom_exact_summary_sum 15",
          "prom_exact_summary_count 3",
          ""
        ].join("\n")
      )
      const families = parseExposition(text)
      assert.deepStrictEqual(
        Array.from(families.values(), (f) => [f.name, f.type]),
        [
          ["prom_exact_gauge", "gauge"],
          ["prom_exact_hist", "histogram"],
          ["prom_exact_jobs_total", "counter"],
          ["prom_exact_status", "counter"],
          ["prom_exact_summary", "summary"]
        ]
      )
    }))

  it.effect("escapes awkward label values, help text and names", () =>
    Effect.gen(function*() {
      const awkward = "back\\slash \"quoted\"\nnew line, {braces}=é"
      const counter = Metric.counter("prom_awk.requests-total", {
        description: "Line one\nline \\ two \"quoted\"",
        incremental: true
      })
      yield* Metric.increment(
        Metric.taggedWithLabels(counter, [
          MetricLabel.make("route", awkward),
          MetricLabel.make("http.method", "GET"),
          MetricLabel.make("9x", "n")
        ])
      )
      const hist = Metric.histogram("prom_awk_latency", MetricBoundaries.fromIterable([0.1, 1]))
      yield* Metric.update(Metric.tagged(Metric.tagged(hist, "le", "mine"), "path", awkward), 0.5)
      const summary = Metric.summary({
        name: "prom_awk_empty_summary",
        maxAge: "1 minute",
        maxSize: 10,
        error: 0.01,
        quantiles: [0.5]
      })
      yield* Metric.update(Metric.tagged(summary, "quantile", "x"), 1)
      const freq = Metric.frequency("prom_awk_words")
      yield* Metric.update(Metric.tagged(freq, "key", "k"), awkward)

      const text = yield* Prometheus.render({ prefix: "prom_awk" })
      const families = parseExposition(text)
      assert.strictEqual(families.get("prom_awk_requests_total")?.help, "Line one\nline \\ two \"quoted\"")
      assert.strictEqual(
        valueOf(families, "prom_awk_requests_total", "prom_awk_requests_total", {
          route: awkward,
          http_method: "GET",
          _9x: "n"
        }),
        1
      )
      // the histogram's own `le` wins; a tag named `le` is renamed
      assert.strictEqual(
        valueOf(families, "prom_awk_latency", "prom_awk_latency_bucket", {
          exported_le: "mine",
          path: awkward,
          le: "1"
        }),
        1
      )
      assert.strictEqual(
        valueOf(families, "prom_awk_latency", "prom_awk_latency_bucket", {
          exported_le: "mine",
          path: awkward,
          le: "0.1"
        }),
        0
      )
      assert.strictEqual(
        valueOf(families, "prom_awk_empty_summary", "prom_awk_empty_summary", {
          exported_quantile: "x",
          quantile: "0.5"
        }),
        1
      )
      assert.strictEqual(valueOf(families, "prom_awk_words", "prom_awk_words", { exported_key: "k", key: awkward }), 1)
      assert.isTrue(text.includes("route=\"back\\\\slash \\\"quoted\\\"\\nnew line, {braces}=é\""))
    }))

  it.effect("groups tag sets into one family, filters by prefix and adds constant labels", () =>
    Effect.gen(function*() {
      const counter = Metric.counter("prom_group_total", { description: "Grouped", incremental: true })
      yield* Metric.incrementBy(Metric.tagged(counter, "queue", "b"), 2)
      yield* Metric.incrementBy(Metric.tagged(counter, "queue", "a"), 1)
      yield* Metric.incrementBy(Metric.tagged(counter, "queue", "c"), 4)
      yield* Metric.incrementBy(Metric.tagged(Metric.tagged(counter, "queue", "a"), "node", "local"), 7)
      yield* Metric.set(Metric.gauge("prom_other_gauge"), 1)

      const text = yield* Prometheus.render({ prefix: "prom_group_", labels: { node: "n1", "service.name": "s" } })
      assert.strictEqual(
        text,
        [
          "# HELP prom_group_total Grouped",
          "# TYPE prom_group_total counter",
          "prom_group_total{node=\"local\",queue=\"a\",service_name=\"s\"} 7",
          "prom_group_total{node=\"n1\",queue=\"a\",service_name=\"s\"} 1",
          "prom_group_total{node=\"n1\",queue=\"b\",service_name=\"s\"} 2",
          "prom_group_total{node=\"n1\",queue=\"c\",service_name=\"s\"} 4",
          ""
        ].join("\n")
      )
      assert.strictEqual(parseExposition(text).get("prom_group_total")?.samples.length, 4)
      assert.strictEqual(yield* Prometheus.render({ prefix: "prom_nothing_here_" }), "")
    }))

  it.effect("leaves out metrics whose names clash instead of emitting an invalid exposition", () =>
    Effect.gen(function*() {
      yield* Metric.increment(Metric.counter("prom_clash_x"))
      yield* Metric.set(Metric.gauge("prom_clash_x"), 42)
      yield* Metric.update(Metric.histogram("prom_clash_h", MetricBoundaries.fromIterable([1])), 3)
      yield* Metric.set(Metric.gauge("prom_clash_h_count"), 9)
      yield* Metric.update(Metric.histogram("prom_clash_h", MetricBoundaries.fromIterable([1, 10])), 3)

      const families = parseExposition(yield* Prometheus.render({ prefix: "prom_clash_" }))
      assert.deepStrictEqual(Array.from(families.keys()), ["prom_clash_h", "prom_clash_x"])
      assert.strictEqual(families.get("prom_clash_x")?.samples.length, 1)
      // same name and labels under two boundary sets: one series only
      assert.strictEqual(valueOf(families, "prom_clash_h", "prom_clash_h_count"), 1)
      // a constant label named like a reserved one is renamed too
      const withLe = parseExposition(yield* Prometheus.render({ prefix: "prom_clash_h", labels: { le: "x" } }))
      assert.strictEqual(
        valueOf(withLe, "prom_clash_h", "prom_clash_h_bucket", { exported_le: "x", le: "+Inf" }),
        1
      )
    }))

  it.effect("encodes bigint metrics and special float values", () =>
    Effect.gen(function*() {
      yield* Metric.incrementBy(Metric.counter("prom_big_total", { bigint: true }), 12345678901234567890n)
      yield* Metric.set(Metric.gauge("prom_big_inf"), Number.POSITIVE_INFINITY)
      yield* Metric.set(Metric.gauge("prom_big_nan"), Number.NaN)
      const snapshot = yield* Metric.snapshot
      const text = Prometheus.encode(snapshot, { prefix: "prom_big_" })
      assert.isTrue(text.includes("\nprom_big_total 12345678901234567890\n"))
      assert.isTrue(text.includes("\nprom_big_inf +Inf\n"))
      assert.isTrue(text.includes("\nprom_big_nan NaN\n"))
      const families = parseExposition(text)
      assert.isTrue(Number.isNaN(valueOf(families, "prom_big_nan", "prom_big_nan")))
    }))

  it.effect("the whole registry parses", () =>
    Effect.gen(function*() {
      yield* Metric.update(
        Metric.histogram("prom_all_seconds", MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 12 })),
        0.3
      )
      yield* Metric.increment(Metric.counter("prom_all_total", { description: "All" }))
      yield* Metric.set(Metric.tagged(Metric.gauge("prom_all_gauge"), "a", "\"\n\\"), 1)
      yield* Metric.update(Metric.frequency("prom_all_words"), "w")
      yield* Metric.update(
        Metric.summary({ name: "prom_all_summary", maxAge: "1 minute", maxSize: 10, error: 0.01, quantiles: [0.99] }),
        2
      )
      // everything in the registry, including what other tests of this file registered
      const text = yield* Prometheus.render({ labels: { instance: "test" } })
      const families = parseExposition(text)
      for (
        const name of ["prom_all_total", "prom_all_gauge", "prom_all_words", "prom_all_summary", "prom_all_seconds"]
      ) {
        assert.isTrue(families.has(name), name)
      }
      assert.strictEqual(
        valueOf(families, "prom_all_seconds", "prom_all_seconds_bucket", { instance: "test", le: "+Inf" }),
        1
      )
      assert.strictEqual(
        valueOf(families, "prom_all_seconds", "prom_all_seconds_bucket", { instance: "test", le: "0.256" }),
        0
      )
      assert.strictEqual(
        valueOf(families, "prom_all_seconds", "prom_all_seconds_bucket", { instance: "test", le: "0.512" }),
        1
      )
    }))
})
