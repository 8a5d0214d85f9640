/**
 * The main job: the task service of this example on an embedded SQLite file, its HTTP API on
 * localhost, a worker running the module's handlers, and a few demo tasks so that something
 * happens.
 *
 *     npm start                                     # at the repository root
 *     node examples/task-service/dist/main.js [spindle serve flags] [--no-demo]
 *
 * The service is `spindle serve` with this example's module embedded, so it takes the same
 * flags and environment: `--db`/`SPINDLE_DB` (default `./spindle.db`), `--port`/`SPINDLE_PORT`
 * (default 7400, 0 picks a free port), `--host`/`SPINDLE_HOST`, `--token`/`SPINDLE_TOKEN`,
 * `--concurrency`/`SPINDLE_CONCURRENCY`. `--no-demo` or `SPINDLE_DEMO=0` submits no demo tasks.
 * Ctrl-C (or SIGTERM) shuts it down gracefully: running tasks finish, or are released for the
 * next start.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Cli } from "@spindle/cli"
import { Api } from "@spindle/server"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { dataPaths, makeModule } from "./module.js"
import { Cleanup, GenerateReport, ImportData, type ImportRecord, SendNotification } from "./tasks.js"

// -----------------------------------------------------------------------------
// Arguments
// -----------------------------------------------------------------------------

/** The value of `--name value` or `--name=value`, the last one given. */
const flag = (argv: ReadonlyArray<string>, name: string): Option.Option<string> => {
  let value: Option.Option<string> = Option.none()
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}` && i + 1 < argv.length) value = Option.some(argv[++i])
    else if (argv[i].startsWith(`--${name}=`)) value = Option.some(argv[i].slice(name.length + 3))
  }
  return value
}

const argv = process.argv.slice(2)
const serveArgs = argv.filter((arg) => arg !== "--no-demo")

/** What main needs to know besides what `spindle serve` reads (flags win over the environment). */
const settings = Effect.gen(function*() {
  const db = yield* Option.match(flag(argv, "db"), {
    onSome: Effect.succeed,
    onNone: () => Config.string("SPINDLE_DB").pipe(Config.withDefault("./spindle.db"))
  })
  const token = yield* Option.match(flag(argv, "token"), {
    onSome: (token) => Effect.succeed(Option.some(token)),
    onNone: () => Config.option(Config.string("SPINDLE_TOKEN"))
  })
  const demo = !argv.includes("--no-demo") && (yield* Config.boolean("SPINDLE_DEMO").pipe(Config.withDefault(true)))
  const reportWorkers = yield* Config.integer("SPINDLE_REPORT_WORKERS").pipe(Config.withDefault(2))
  const failureRate = yield* Config.number("SPINDLE_PROVIDER_FAILURE_RATE").pipe(Config.withDefault(0.3))
  return { db, token, demo, reportWorkers, failureRate }
})

// -----------------------------------------------------------------------------
// The banner and the demo
// -----------------------------------------------------------------------------

const banner = (url: string, db: string, token: Option.Option<string>): string => {
  const paths = dataPaths({ db })
  const auth = Option.isSome(token) ? ` -H "authorization: Bearer $SPINDLE_TOKEN"` : ""
  return [
    "",
    "Spindle task service (examples/task-service)",
    `  dashboard  ${url}/`,
    `  API        ${url}/v1   (OpenAPI docs: ${url}/docs)`,
    `  tasks      ${db}`,
    `  imports    ${paths.importsFile}`,
    `  reports    ${paths.reportsDirectory}`,
    "",
    "Try:",
    `  curl -s${auth} ${url}/v1/stats`,
    `  curl -s${auth} '${url}/v1/tasks?status=running,succeeded,failed&limit=10'`,
    `  curl -s${auth} -X POST ${url}/v1/tasks -H 'content-type: application/json' \\`,
    `    -d '{"name":"notification.send","payload":{"to":"ada@example.com","subject":"Hello","body":"from curl"}}'`,
    `  curl -s${auth} '${url}/v1/tasks/<id>/result?waitMs=10000'`,
    `  curl -s${auth} ${url}/v1/tasks/<id>/logs`,
    `  curl -sN${auth} ${url}/v1/events`,
    `  SPINDLE_URL=${url} npx spindle list --status failed`,
    "",
    "Ctrl-C stops the service gracefully.",
    ""
  ].join("\n")
}

const customers = (count: number): Array<ImportRecord> =>
  Array.from({ length: count }, (_, i) => ({
    externalId: `crm-${String(i + 1).padStart(5, "0")}`,
    name: `Customer ${i + 1}`,
    email: `customer${i + 1}@example.com`,
    amountCents: (i * 7_919) % 100_000
  }))

/** One task of each kind (and a few notifications, one of them to a blocked recipient). */
const demoTasks = [
  {
    name: GenerateReport.name,
    payload: { title: "Sales report (demo)", rows: 2_000_000, seed: 2026 }
  },
  ...["ada@example.com", "grace@example.com", "alan@example.com", "mallory@blocked.example"].map((to) => ({
    name: SendNotification.name,
    payload: { to, subject: "Your weekly digest", body: "Three reports are ready." }
  })),
  {
    name: ImportData.name,
    payload: { batchId: "demo-customers", records: customers(1_000) }
  },
  {
    name: Cleanup.name,
    payload: { olderThanHours: 7 * 24 }
  }
]

/** Submits the demo tasks through the service's own HTTP API, in one batch. */
const submitDemo = (url: string, token: Option.Option<string>) =>
  Effect.gen(function*() {
    const client = yield* HttpApiClient.make(Api.SpindleApi, {
      baseUrl: url,
      transformClient: Option.match(token, {
        onNone: () => (client: HttpClient.HttpClient) => client,
        onSome: (token) => HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
      })
    })
    const { items } = yield* client.tasks.submitBatch({ payload: { tasks: demoTasks } })
    yield* Console.log(
      `submitted ${items.length} demo tasks (--no-demo or SPINDLE_DEMO=0 to skip):\n` +
        items.map((item) => `  ${item.id}  ${item.task.name}`).join("\n")
    )
  }).pipe(
    Effect.provide(FetchHttpClient.layer),
    Effect.catchAllCause((cause) => Console.error(`could not submit the demo tasks: ${cause}`))
  )

// -----------------------------------------------------------------------------
// Main
// -----------------------------------------------------------------------------

/**
 * `spindle serve` announces its URL on stdout (`spindle listening on <url>`): this console
 * passes every line through and hands the URL over.
 */
const watchingConsole = (listening: Deferred.Deferred<string>) =>
  Effect.map(Effect.console, (console): Console.Console => ({
    ...console,
    log: (...args) =>
      Effect.zipRight(
        console.log(...args),
        Effect.suspend(() => {
          const match = typeof args[0] === "string" ? /^spindle listening on (\S+)/.exec(args[0]) : null
          return match === null ? Effect.void : Deferred.succeed(listening, match[1])
        })
      )
  }))

const main = Effect.gen(function*() {
  const { db, demo, failureRate, reportWorkers, token } = yield* settings
  const module = makeModule({ db, reportWorkers, provider: { failureRate } })
  const listening = yield* Deferred.make<string>()

  yield* Deferred.await(listening).pipe(
    Effect.flatMap((url) =>
      Effect.zipRight(Console.log(banner(url, db, token)), demo ? submitDemo(url, token) : Effect.void)
    ),
    Effect.forkScoped
  )
  yield* Cli.run(["serve", ...serveArgs], { module }).pipe(
    Effect.withConsole(yield* watchingConsole(listening))
  )
}).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

main.pipe(NodeRuntime.runMain({ disableErrorReporting: true }))
