/**
 * The task module of the service: definitions, handlers with every requirement provided, the
 * nightly clean-up and the worker's limits. `main.ts` runs it; `spindle serve` can load it too:
 *
 *     spindle serve --tasks examples/task-service/dist/module.js
 *
 * The default export reads its settings from the environment:
 *
 * - `SPINDLE_DB` (default `./spindle.db`): where the task store is; the import
 *   database (`<db>.imports.db`) and the reports directory (`<db>.reports/`) live next to it.
 * - `SPINDLE_REPORT_WORKERS` (default 2): worker threads of the report pool.
 * - `SPINDLE_PROVIDER_FAILURE_RATE` (default 0.3): the share of the fake provider's failures.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { TaskService } from "@spindle/server"
import type { Task, TaskHandlers, TaskStore, TaskWorker } from "@spindle/tasks"
import { Cron } from "@spindle/tasks"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as path from "node:path"
import * as Handlers from "./handlers.js"
import * as Imports from "./imports.js"
import * as Maintenance from "./maintenance.js"
import * as Notifications from "./notifications.js"
import * as Reports from "./reports.js"
import { Cleanup, definitions, GenerateReport, ImportData, SendNotification } from "./tasks.js"

/**
 * Options of the module.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModuleOptions {
  /** The task store's address (a SQLite path or a `postgres://` URL), next to which data files go. Default `./spindle.db`. */
  readonly db?: string | undefined
  /** Default: `<db without .db>.imports.db` (`./spindle.imports.db` for a Postgres store). */
  readonly importsFile?: string | undefined
  /** Default: `<db without .db>.reports` (`./spindle.reports` for a Postgres store). */
  readonly reportsDirectory?: string | undefined
  /** Worker threads of the report pool. Default 2. */
  readonly reportWorkers?: number | undefined
  /** The compiled worker script. Default: `reportWorker.js` of `dist/`. */
  readonly workerUrl?: URL | undefined
  /** How the fake notification provider misbehaves. */
  readonly provider?: Notifications.FakeProviderOptions | undefined
}

/**
 * Where the example's own data lives, next to the task database.
 *
 * @since 0.1.0
 * @category getters
 */
export const dataPaths = (
  options: ModuleOptions
): { readonly importsFile: string; readonly reportsDirectory: string } => {
  const db = options.db ?? "./spindle.db"
  const base = /^postgres(ql)?:\/\//.test(db) ? path.resolve("spindle") : db.replace(/\.(db|sqlite3?)$/, "")
  return {
    importsFile: options.importsFile ?? `${base}.imports.db`,
    reportsDirectory: options.reportsDirectory ?? `${base}.reports`
  }
}

/**
 * Limits by task name, applied by the worker.
 *
 * - `notification.send`: at most 10 starts per second (the provider's quota), one message to a
 *   recipient at a time.
 * - `report.generate`: two reports at once (they share the thread pool).
 * - `data.import`: four imports at once.
 * - `maintenance.cleanup`: one at a time.
 *
 * @since 0.1.0
 * @category limits
 */
export const limits: { readonly [name: string]: TaskWorker.TaskWorker.Limits } = {
  [SendNotification.name]: {
    rateLimit: { limit: 10, interval: "1 second" },
    keyConcurrency: { key: (payload: Task.Task.Payload<typeof SendNotification>) => payload.to, limit: 1 }
  },
  [GenerateReport.name]: { concurrency: 2 },
  [ImportData.name]: { concurrency: 4 },
  [Cleanup.name]: { concurrency: 1 }
}

/**
 * The nightly clean-up: at 03:00 (the machine's time zone), tasks finished more than a week ago
 * and reports older than that.
 *
 * @since 0.1.0
 * @category cron
 */
export const nightlyCleanup = Cron.schedule(Cleanup, { cron: "0 3 * * *", payload: { olderThanHours: 7 * 24 } })

/**
 * The services the handlers need, except `TaskRetention`: the report pool and directory, the
 * fake provider and its client, the import database.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServices = (options: ModuleOptions = {}) => {
  const paths = dataPaths(options)
  const notifier = Layer.unwrapEffect(
    Effect.map(Notifications.FakeProvider, (provider) => Notifications.layerNotifier(provider.url))
  ).pipe(
    Layer.provideMerge(Notifications.layerFakeProvider(options.provider)),
    Layer.provide(FetchHttpClient.layer)
  )
  return Layer.mergeAll(
    Reports.layerPool({ size: options.reportWorkers ?? 2, workerUrl: options.workerUrl }),
    Reports.layerFiles(paths.reportsDirectory).pipe(Layer.provide(NodeFileSystem.layer)),
    notifier,
    Imports.layer({ filename: paths.importsFile })
  )
}

/**
 * Every handler with its requirements provided but the task store, which the service provides
 * (the clean-up deletes from it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHandlers = (
  options: ModuleOptions = {}
): Layer.Layer<TaskHandlers.TaskHandlers, unknown, TaskStore.TaskStore> =>
  Handlers.layer.pipe(
    Layer.provide(layerServices(options)),
    Layer.provide(Maintenance.layerStore)
  )

/** The module around a handlers layer: the same definitions, cron and limits. */
const moduleWith = (handlers: Layer.Layer<TaskHandlers.TaskHandlers, unknown, TaskStore.TaskStore>) =>
  TaskService.module({
    definitions,
    handlers,
    cron: [nightlyCleanup],
    worker: { limits }
  })

/**
 * The module for explicit options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeModule = (options: ModuleOptions = {}) => moduleWith(layerHandlers(options))

/**
 * The settings of the default module, from the environment.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<ModuleOptions> = Config.all({
  db: Config.string("SPINDLE_DB").pipe(Config.withDefault("./spindle.db")),
  reportWorkers: Config.integer("SPINDLE_REPORT_WORKERS").pipe(Config.withDefault(2)),
  provider: Config.all({
    failureRate: Config.number("SPINDLE_PROVIDER_FAILURE_RATE").pipe(Config.withDefault(0.3))
  })
})

/**
 * The module `spindle serve --tasks` loads: settings from the environment (see above).
 *
 * @since 0.1.0
 * @category modules
 */
export default moduleWith(Layer.unwrapEffect(Effect.map(config, layerHandlers)))
