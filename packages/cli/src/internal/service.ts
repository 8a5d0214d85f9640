import { Command, Options } from "@effect/cli"
import { TaskService } from "@spindle/server"
import { MemoryStore, TaskClient, TaskHandlers } from "@spindle/tasks"
import type { Redacted } from "effect"
import { Console, Context, Effect, Layer, Option } from "effect"
import { CliError } from "./error.js"
import * as Format from "./format.js"
import * as Module from "./module.js"
import * as Flags from "./options.js"

/** @internal */
export interface Listening {
  readonly url: string
  readonly db: string
  readonly token: Option.Option<Redacted.Redacted>
}

/** @internal */
export interface RunOptions {
  readonly module?: TaskService.TaskModule | ((service: { readonly db: string }) => TaskService.TaskModule) | undefined
  readonly onListening?: ((info: Listening) => Effect.Effect<void>) | undefined
}

const serviceError = (error: TaskService.TaskServiceError): CliError =>
  new CliError({
    reason: "Service",
    lines: [`error: TaskServiceError: ${error.reason}: ${error.message}`],
    cause: error
  })

const resolveModule = (
  tasks: Option.Option<string>,
  db: string,
  options: RunOptions
): Effect.Effect<{ readonly module: TaskService.TaskModule | undefined; readonly source: string | null }, CliError> =>
  Option.match(tasks, {
    onSome: (specifier) => Effect.map(Module.load(specifier), (module) => ({ module, source: specifier })),
    onNone: () =>
      Effect.sync(() =>
        options.module === undefined
          ? { module: undefined, source: null }
          : {
            module: typeof options.module === "function" ? options.module({ db }) : options.module,
            source: "(embedded)"
          }
      )
  })

const handlerNames = (module: TaskService.TaskModule | undefined): Effect.Effect<Array<string>, CliError> =>
  module?.handlers === undefined
    ? Effect.succeed([])
    // Built only to read their names: what the service would provide is stood in by a memory store.
    : Layer.build(Layer.provide(module.handlers, Layer.provideMerge(TaskClient.layer, MemoryStore.layer))).pipe(
      Effect.map((context) => Array.from(Context.get(context, TaskHandlers.TaskHandlers).entries.keys()).sort()),
      Effect.scoped,
      Effect.mapError((cause) =>
        new CliError({
          reason: "Module",
          lines: [`error: the task module's handlers failed to build: ${String(cause)}`],
          cause
        })
      )
    )

interface ServiceFlags {
  readonly db: string
  readonly concurrency: number
  readonly tasks: Option.Option<string>
  readonly dryRun: boolean
  readonly json: boolean
}

const dryRun = (
  command: string,
  flags: ServiceFlags,
  resolved: { readonly module: TaskService.TaskModule | undefined; readonly source: string | null },
  extra: ReadonlyArray<readonly [string, unknown]>
) =>
  Effect.gen(function*() {
    const handlers = yield* handlerNames(resolved.module)
    const definitions = (resolved.module?.definitions ?? []).map((definition) => definition.name).sort()
    const config: Record<string, unknown> = {
      command,
      db: TaskService.redactUrl(flags.db),
      ...Object.fromEntries(extra),
      concurrency: flags.concurrency,
      tasks: resolved.source,
      handlers,
      definitions
    }
    if (flags.json) return yield* Console.log(Format.json(config))
    yield* Console.log(Format.keyValues(
      Object.entries(config).map(([key, value]) => [
        key,
        value === null || value === undefined
          ? "-"
          : Array.isArray(value)
          ? value.length === 0 ? "-" : value.join(", ")
          : String(value)
      ])
    ))
  })

const runService = (options: TaskService.Options): Effect.Effect<never, CliError> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(TaskService.layer(options)).pipe(Effect.mapError(serviceError))
    const service = Context.get(context, TaskService.TaskService)
    if (Option.isSome(service.workerId)) {
      yield* Console.log(
        `spindle worker ${service.workerId.value} running (concurrency ${options.concurrency}, store ${service.store})`
      )
    }
    return yield* Effect.never
  }).pipe(Effect.scoped)

/** @internal */
export const serve = (runOptions: RunOptions) =>
  Command.make("serve", {
    db: Flags.db,
    port: Flags.port,
    host: Flags.host,
    concurrency: Flags.concurrency,
    token: Flags.token,
    tasks: Flags.tasks(runOptions.module === undefined),
    noWorker: Flags.noWorker,
    cors: Flags.cors,
    quiet: Options.boolean("quiet").pipe(Options.withDescription("Log no line per HTTP request")),
    dryRun: Flags.dryRun,
    json: Flags.json
  }, (flags) =>
    Effect.gen(function*() {
      const resolved = yield* resolveModule(flags.tasks, flags.db, runOptions)
      if (flags.dryRun) {
        return yield* dryRun("serve", flags, resolved, [
          ["host", flags.host],
          ["port", flags.port],
          ["token", Option.isSome(flags.token) ? "<redacted>" : null],
          ["cors", Option.getOrElse(flags.cors, () => [])],
          ["worker", !flags.noWorker && resolved.module?.handlers !== undefined]
        ])
      }
      if (resolved.module === undefined) {
        yield* Console.error("warning: no task module (--tasks or SPINDLE_TASKS): the API accepts no task names")
      }
      return yield* runService({
        db: flags.db,
        module: resolved.module,
        api: true,
        worker: flags.noWorker ? false : undefined,
        port: flags.port,
        host: flags.host,
        concurrency: flags.concurrency,
        server: {
          token: Option.getOrUndefined(flags.token),
          corsOrigins: Option.getOrUndefined(flags.cors),
          requestLog: !flags.quiet
        },
        onListening: (url) =>
          Effect.zipRight(
            Console.log(`spindle listening on ${url}`),
            runOptions.onListening === undefined
              ? Effect.void
              : runOptions.onListening({ url, db: flags.db, token: flags.token })
          )
      })
    })).pipe(Command.withDescription("Serve the HTTP API and run a worker for the module's handlers"))

/** @internal */
export const worker = (runOptions: RunOptions) =>
  Command.make("worker", {
    db: Flags.db,
    concurrency: Flags.concurrency,
    tasks: Flags.tasks(runOptions.module === undefined),
    dryRun: Flags.dryRun,
    json: Flags.json
  }, (flags) =>
    Effect.gen(function*() {
      const resolved = yield* resolveModule(flags.tasks, flags.db, runOptions)
      if (resolved.module?.handlers === undefined) {
        return yield* new CliError({
          reason: "Usage",
          lines: [
            resolved.module === undefined
              ? "error: spindle worker needs a task module: --tasks <module> (or SPINDLE_TASKS)"
              : `error: the task module ${resolved.source} has no handlers to run`
          ]
        })
      }
      if (flags.dryRun) return yield* dryRun("worker", flags, resolved, [["worker", true]])
      return yield* runService({
        db: flags.db,
        module: resolved.module,
        api: false,
        worker: true,
        concurrency: flags.concurrency
      })
    })).pipe(Command.withDescription("Run a worker only (no HTTP API)"))

/** @internal */
export const migrate = Command.make("migrate", { db: Flags.db }, ({ db }) =>
  Effect.gen(function*() {
    yield* Layer.build(TaskService.layerStore(db)).pipe(Effect.mapError(serviceError), Effect.scoped)
    yield* Console.log(`migrations applied to ${TaskService.redactUrl(db)}`)
  })).pipe(Command.withDescription("Apply the store's migrations and exit"))
