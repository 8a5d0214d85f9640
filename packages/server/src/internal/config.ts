import { Duration, Redacted } from "effect"
import type { Options } from "../Server.js"
import type { FastLane } from "./fastLane.js"

/** The server's options with their defaults applied. @internal */
export interface Config {
  readonly token: Redacted.Redacted | undefined
  readonly protectSystemRoutes: boolean
  readonly corsOrigins: ReadonlyArray<string>
  readonly bodyLimitBytes: number
  readonly eventsBuffer: number
  readonly swaggerPath: `/${string}`
  readonly requestLog: boolean
  readonly storeName: string
  readonly coalesceWindow: Duration.Duration
  readonly httpSpans: boolean
  readonly fastLane: FastLane | undefined
}

/** @internal */
export const DEFAULT_BODY_LIMIT = 1024 * 1024

/** @internal */
export const resolve = (options: Options | undefined): Config => {
  const token = options?.token === undefined || options.token === ""
    ? undefined
    : Redacted.isRedacted(options.token)
    ? options.token
    : Redacted.make(options.token)
  const limit = options?.bodyLimitBytes
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new Error(`Server: bodyLimitBytes must be a positive integer, got ${limit}`)
  }
  const swaggerPath = options?.swaggerPath ?? "/docs"
  if (!swaggerPath.startsWith("/")) throw new Error(`Server: swaggerPath must start with "/", got "${swaggerPath}"`)
  return {
    token,
    protectSystemRoutes: options?.protectSystemRoutes ?? false,
    corsOrigins: options?.corsOrigins ?? [],
    bodyLimitBytes: limit ?? DEFAULT_BODY_LIMIT,
    eventsBuffer: options?.eventsBuffer ?? 10_000,
    swaggerPath: swaggerPath as `/${string}`,
    requestLog: options?.requestLog ?? true,
    storeName: options?.storeName ?? "task-store",
    coalesceWindow: Duration.decode(options?.coalesceWindow ?? Duration.millis(1)),
    httpSpans: options?.httpSpans ?? false,
    fastLane: options?.fastLane
  }
}
