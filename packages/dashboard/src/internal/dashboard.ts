/**
 * The machinery of `Dashboard.middleware`: the bundled assets read once, and the answers to
 * `GET /`, `GET /index.html` and `GET /assets/<name>`.
 *
 * Assets are looked up by exact file name in the set read at startup, so no request path can
 * reach another file (`..`, encoded slashes and the like simply name no asset). A `?v=` query
 * equal to the asset's content hash (what the bundler writes into index.html) makes the answer
 * cacheable forever; any other request revalidates with the ETag.
 *
 * @internal
 */
import type { HttpApp } from "@effect/platform"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Options } from "../Dashboard.js"

/**
 * `dist/assets` of this package: the module is `<package>/dist/internal/dashboard.js` once
 * built (`<package>/src/internal/dashboard.ts` under vitest), two levels below the package.
 *
 * @internal
 */
export const defaultAssetsDir: string = fileURLToPath(new URL("../../dist/assets", import.meta.url))

/** @internal */
export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join("; ")

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
} as const

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2"
}

/** @internal */
export const contentType = (name: string): string =>
  contentTypes[path.extname(name).toLowerCase()] ?? "application/octet-stream"

/**
 * The hash of an asset's bytes, as the bundler (`scripts/bundle.mjs`) writes it in `?v=`.
 *
 * @internal
 */
export const contentHash = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex").slice(0, 16)

/** @internal */
export interface Asset {
  readonly body: Uint8Array
  readonly contentType: string
  readonly hash: string
}

/** @internal */
export type Assets =
  | { readonly _tag: "Loaded"; readonly dir: string; readonly index: Asset; readonly files: ReadonlyMap<string, Asset> }
  | { readonly _tag: "Missing"; readonly dir: string; readonly reason: string }

const asset = (name: string, body: Uint8Array): Asset => ({
  body,
  contentType: contentType(name),
  hash: contentHash(body)
})

/**
 * Reads every file of `dir` (not its subdirectories): `Missing` when the directory or its
 * `index.html` cannot be read.
 *
 * @internal
 */
export const load = (dir: string): Assets => {
  try {
    const files = new Map<string, Asset>()
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isFile()) files.set(entry.name, asset(entry.name, readFileSync(path.join(dir, entry.name))))
    }
    const index = files.get("index.html")
    return index === undefined
      ? { _tag: "Missing", dir, reason: "index.html is missing" }
      : { _tag: "Loaded", dir, index, files }
  } catch (error) {
    return { _tag: "Missing", dir, reason: error instanceof Error ? error.message : String(error) }
  }
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

const notBuilt = (assets: Extract<Assets, { _tag: "Missing" }>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Spindle dashboard not built</title></head>` +
      `<body><h1>The Spindle dashboard is not built</h1>` +
      `<p>Its assets were not found in <code>${escapeHtml(assets.dir)}</code> (${escapeHtml(assets.reason)}).</p>` +
      `<p>Run <code>npm run build</code> (or <code>npm run bundle -w @spindle/dashboard</code>) and restart the ` +
      `server. The API under <code>/v1</code> works meanwhile.</p></body></html>\n`,
    {
      status: 503,
      contentType: "text/html; charset=utf-8",
      headers: { ...securityHeaders, "cache-control": "no-store" }
    }
  )

const notFound = (method: string, pathname: string, message: string): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(
    { _tag: "NotFound", method, path: pathname, message, issues: [{ path: ["path"], message }] },
    { status: 404, headers: { ...securityHeaders, "cache-control": "no-store" } }
  )

const serve = (
  request: HttpServerRequest.HttpServerRequest,
  file: Asset,
  version: string | null
): HttpServerResponse.HttpServerResponse => {
  const etag = `"${file.hash}"`
  const headers = {
    ...securityHeaders,
    etag,
    "cache-control": version === file.hash ? "public, max-age=31536000, immutable" : "no-cache"
  }
  return request.headers["if-none-match"] === etag
    ? HttpServerResponse.empty({ status: 304, headers })
    : HttpServerResponse.uint8Array(file.body, { contentType: file.contentType, headers })
}

const assetName = (pathname: string): string | undefined => {
  try {
    return decodeURIComponent(pathname.slice("/assets/".length))
  } catch {
    return undefined
  }
}

/**
 * The answer to a request the dashboard serves, or undefined for one it passes on.
 *
 * @internal
 */
export const respond = (
  assets: Assets,
  request: HttpServerRequest.HttpServerRequest
): HttpServerResponse.HttpServerResponse | undefined => {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined
  const queryAt = request.url.indexOf("?")
  const pathname = queryAt === -1 ? request.url : request.url.slice(0, queryAt)
  const isIndex = pathname === "/" || pathname === "/index.html"
  if (!isIndex && !pathname.startsWith("/assets/")) return undefined
  if (assets._tag === "Missing") {
    return isIndex ? notBuilt(assets) : notFound(request.method, pathname, "the dashboard's assets are not built")
  }
  if (isIndex) return serve(request, assets.index, null)
  const name = assetName(pathname)
  const file = name === undefined || name === "index.html" ? undefined : assets.files.get(name)
  return file === undefined
    ? notFound(request.method, pathname, `no dashboard asset at ${pathname}`)
    : serve(request, file, queryAt === -1 ? null : new URLSearchParams(request.url.slice(queryAt + 1)).get("v"))
}

/** @internal */
export const middleware = (options: Options = {}) => {
  const assets = load(options.assetsDir ?? defaultAssetsDir)
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const response = respond(assets, request)
      if (response === undefined) return app
      return response.status === 503 && assets._tag === "Missing"
        ? Effect.as(
          Effect.logWarning("dashboard: assets not built, answering 503").pipe(
            Effect.annotateLogs({ dir: assets.dir, reason: assets.reason })
          ),
          response
        )
        : Effect.succeed(response)
    })
}
