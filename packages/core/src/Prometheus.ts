/**
 * Prometheus text exposition (format 0.0.4) of Effect's global Metric registry.
 *
 * Every `effect/Metric` a program updates (Spindle's own `spindle_*` metrics and the application's)
 * lands in one global registry; {@link render} reads it with `Metric.snapshot` and turns it into the
 * text a Prometheus server scrapes, served as {@link contentType} (the `@spindle/server` package
 * serves it at `GET /metrics`).
 *
 * Mapping from Effect metric types:
 *
 * - `Metric.counter` → `counter`. The name is kept as written: the 0.0.4 text format does not
 *   require the `_total` suffix (only OpenMetrics does), so a counter named `jobs_total` is exposed
 *   as `jobs_total` and a counter named `jobs` as `jobs`. Spindle's own counters end in `_total`.
 * - `Metric.gauge` → `gauge`.
 * - `Metric.histogram` → `histogram`: cumulative `<name>_bucket{le="..."}` samples in boundary order,
 *   ending with `le="+Inf"` (equal to `_count`), then `<name>_sum` and `<name>_count`.
 * - `Metric.summary` → `summary`: `<name>{quantile="..."}` (`NaN` while the window is empty),
 *   `<name>_sum` and `<name>_count`.
 * - `Metric.frequency` → `counter`: one sample per observed value, carried by the label `key`.
 *
 * Names are sanitized to `[a-zA-Z_:][a-zA-Z0-9_:]*` (label names to `[a-zA-Z_][a-zA-Z0-9_]*`),
 * every invalid character becoming `_`. Metric tags become labels; label values are escaped
 * (backslash, double quote, newline) and `# HELP` text (the metric description) is escaped
 * (backslash, newline). Metrics sharing a name are grouped into one family whatever their tags,
 * with one `# HELP` and one `# TYPE` line. Families are sorted by name and series by label set, so
 * the output is stable. A metric whose name is already taken by a family of another type (or
 * whose sample names collide with another family's, such as a gauge `x_count` beside a histogram
 * `x`) is left out rather than producing an invalid exposition.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as MetricPair from "effect/MetricPair"
import * as internal from "./internal/prometheus.js"

/**
 * Options of {@link render} and {@link encode}.
 *
 * @example
 * ```ts
 * import { Prometheus } from "@spindle/core"
 *
 * const options: Prometheus.RenderOptions = {
 *   prefix: "spindle_",
 *   labels: { service: "billing" }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RenderOptions {
  /**
   * Only metrics whose (sanitized) name starts with this prefix are rendered.
   */
  readonly prefix?: string | undefined
  /**
   * Constant labels added to every sample (for example `{ service: "billing" }`). A metric tag of
   * the same name takes precedence over the constant label.
   */
  readonly labels?: Readonly<Record<string, string>> | undefined
}

/**
 * The `Content-Type` of the Prometheus text exposition format 0.0.4.
 *
 * @example
 * ```ts
 * import { Prometheus } from "@spindle/core"
 *
 * const headers = { "content-type": Prometheus.contentType }
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType: string = internal.contentType

/**
 * Renders the global Metric registry in the Prometheus text exposition format 0.0.4.
 *
 * The result ends with a newline, or is the empty string when no metric matches.
 *
 * @example
 * ```ts
 * import { Prometheus } from "@spindle/core"
 * import { Effect, Metric } from "effect"
 *
 * const requests = Metric.counter("app_requests_total", { description: "Requests served" })
 *
 * const program = Effect.gen(function*() {
 *   yield* Metric.increment(requests)
 *   const text = yield* Prometheus.render({ prefix: "app_" })
 *   // # HELP app_requests_total Requests served
 *   // # TYPE app_requests_total counter
 *   // app_requests_total 1
 *   return text
 * })
 * ```
 *
 * @since 0.1.0
 * @category rendering
 */
export const render: (options?: RenderOptions) => Effect.Effect<string> = internal.render

/**
 * Encodes a metric snapshot (such as the result of `Metric.snapshot`) in the Prometheus text
 * exposition format 0.0.4. {@link render} is this function applied to the global registry.
 *
 * @example
 * ```ts
 * import { Prometheus } from "@spindle/core"
 * import { Effect, Metric } from "effect"
 *
 * const program = Effect.map(
 *   Metric.snapshot,
 *   (snapshot) => Prometheus.encode(snapshot, { labels: { node: "a" } })
 * )
 * ```
 *
 * @since 0.1.0
 * @category rendering
 */
export const encode: (
  snapshot: Iterable<MetricPair.MetricPair.Untyped>,
  options?: RenderOptions
) => string = internal.encode
