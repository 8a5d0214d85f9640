/**
 * The dashboard: the web page of the task service. Overview of the queues with live counts and
 * a throughput chart, a filterable task table, each task's page (payload, result or error,
 * progress, timeline, logs), and the actions (cancel, retry, pause, resume) — a static bundle
 * that talks to the service's own `/v1` API, with the bearer token the page asks for.
 *
 * `middleware` serves the bundle next to the API: `GET /` (and `/index.html`) answer the page,
 * `GET /assets/<name>` its files, everything else goes on to the wrapped app.
 *
 * @since 0.1.0
 */
import type { HttpApp } from "@effect/platform"
import * as internal from "./internal/dashboard.js"

/**
 * Options of `middleware`.
 *
 * @example
 * ```ts
 * import type { Dashboard } from "@spindle/dashboard"
 *
 * const options: Dashboard.Options = { assetsDir: "/srv/spindle/assets" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The directory of the bundled page (`index.html`, `app.js`, `app.css`, …). Default: this
   * package's `dist/assets`, written by `npm run build`.
   */
  readonly assetsDir?: string | undefined
}

/**
 * Where `middleware` reads the page by default: this package's `dist/assets`.
 *
 * @example
 * ```ts
 * import { Dashboard } from "@spindle/dashboard"
 *
 * console.log(`serving the dashboard from ${Dashboard.defaultAssetsDir}`)
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultAssetsDir: string = internal.defaultAssetsDir

/**
 * The `Content-Security-Policy` of every answer of the dashboard: everything from the same
 * origin only (`default-src 'self'`), no inline scripts or styles, no plugins, no framing. The
 * page makes no request to any other host.
 *
 * @example
 * ```ts
 * import { Dashboard } from "@spindle/dashboard"
 *
 * const strict = Dashboard.contentSecurityPolicy.includes("default-src 'self'") // true
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const contentSecurityPolicy: string = internal.contentSecurityPolicy

/**
 * An `HttpMiddleware` serving the dashboard in front of an app (usually the service's API):
 *
 * - `GET /` and `GET /index.html`: the page (`cache-control: no-cache`);
 * - `GET /assets/<name>`: a bundled file with its content type and an ETag; cacheable for a
 *   year when requested with the `?v=<hash>` the page uses, revalidated otherwise; a name that
 *   is not a bundled file (`..` included) gets a 404 `NotFound` like the API's;
 * - every other request (and any other method) goes to the wrapped app unchanged.
 *
 * The assets are read once, when `middleware` is called. When they are missing (the package
 * was not built), `/` answers 503 with a page saying to run `npm run build`; the API works on.
 * Every answer carries a strict `Content-Security-Policy` (`contentSecurityPolicy`).
 *
 * @example
 * ```ts
 * import { HttpApiBuilder } from "@effect/platform"
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { Dashboard } from "@spindle/dashboard"
 * import { Server } from "@spindle/server"
 * import { Layer } from "effect"
 * import { createServer } from "node:http"
 *
 * const HttpLive = HttpApiBuilder.serve(Dashboard.middleware()).pipe(
 *   Layer.provide(Server.layerApi({ token: "s3cret" })),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 7400 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware: (options?: Options) => <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R> =
  internal.middleware
