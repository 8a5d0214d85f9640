/**
 * What `report.generate` needs: the worker-thread pool that summarizes chunks, and the
 * directory its reports are written to (temporary data that `maintenance.cleanup` prunes).
 *
 * @since 0.1.0
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as WorkerPool from "@spindle/core/WorkerPool"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import type { SummarizeChunk } from "./report.js"

/**
 * The pool of worker threads running `SummarizeChunk`.
 *
 * @since 0.1.0
 * @category tags
 */
export class ReportPool extends Context.Tag("task-service/ReportPool")<
  ReportPool,
  WorkerPool.WorkerPool<SummarizeChunk>
>() {}

/**
 * The compiled worker script. Next to this module in `dist/`; when this module runs from its
 * TypeScript source (vitest), the compiled script in `../dist/` (Node cannot load TypeScript in
 * a worker thread, so the example must be built first: `tsc -b examples/task-service`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultWorkerUrl = (): URL =>
  import.meta.url.endsWith(".ts")
    ? new URL("../dist/reportWorker.js", import.meta.url)
    : new URL("./reportWorker.js", import.meta.url)

/**
 * Options of `ReportPool` layers.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReportPoolOptions {
  /** Worker threads. */
  readonly size: number
  /** The worker script. Default `defaultWorkerUrl()`. */
  readonly workerUrl?: URL | undefined
}

/**
 * The pool as a layer: threads start in the background and stop with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPool = (options: ReportPoolOptions): Layer.Layer<ReportPool> => {
  const workerUrl = options.workerUrl ?? defaultWorkerUrl()
  return WorkerPool.layerNode(ReportPool, {
    name: "reports",
    size: options.size,
    // a fresh thread now and then keeps a long-running service's heap small
    recycleAfter: 1_000,
    taskTimeout: "2 minutes",
    spawn: () => new Worker(workerUrl)
  })
}

/**
 * Where reports are written: a directory of temporary files, pruned by `maintenance.cleanup`.
 *
 * @since 0.1.0
 * @category tags
 */
export class ReportFiles extends Context.Tag("task-service/ReportFiles")<ReportFiles, {
  readonly directory: string
  /** Writes a report as JSON; returns its path. */
  readonly write: (name: string, report: unknown) => Effect.Effect<string, PlatformError>
  /** Deletes the reports last modified before `cutoff`; returns how many. */
  readonly deleteBefore: (cutoff: Date) => Effect.Effect<number, PlatformError>
}>() {}

/**
 * The reports directory `directory` (created when missing).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFiles = (directory: string): Layer.Layer<ReportFiles, PlatformError, FileSystem.FileSystem> =>
  Layer.effect(
    ReportFiles,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      yield* fs.makeDirectory(directory, { recursive: true })
      const safeName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, "_")
      return {
        directory,
        write: (name, report) => {
          const file = path.join(directory, `${safeName(name)}.json`)
          return Effect.as(fs.writeFileString(file, JSON.stringify(report, null, 2)), file)
        },
        deleteBefore: (cutoff) =>
          Effect.gen(function*() {
            const names = yield* fs.readDirectory(directory)
            let deleted = 0
            for (const name of names) {
              if (!name.endsWith(".json")) continue
              const file = path.join(directory, name)
              const info = yield* fs.stat(file)
              const modified = Option.getOrElse(info.mtime, () => new Date(0))
              if (info.type === "File" && modified.getTime() < cutoff.getTime()) {
                yield* fs.remove(file)
                deleted++
              }
            }
            return deleted
          })
      }
    })
  )
