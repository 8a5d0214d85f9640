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
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { config, dataPaths, makeModule } from "./module.js"
import { Cleanup, GenerateReport, ImportData, type ImportRecord, SendNotification } from "./tasks.js"

const argv = process.argv.slice(2)
const serveArgs = argv.filter((arg) => arg !== "--no-demo")

// -----------------------------------------------------------------------------
// The banner and the demo
// -----------------------------------------------------------------------------

const banner = (url: string, db: string, token: Option.Option<Redacted.Redacted>): string => {
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
const submitDemo = (url: string, token: Option.Option<Redacted.Redacted>) =>
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
 * `spindle serve` with this example's module (its data files next to the store `serve` resolved
 * from `--db`, `SPINDLE_DB` or the default); once it listens, the banner and the demo tasks, in a
 * fiber of their own.
 */
const main = Effect.gen(function*() {
  const options = yield* config
  const demo = !argv.includes("--no-demo") && (yield* Config.boolean("SPINDLE_DEMO").pipe(Config.withDefault(true)))
  const scope = yield* Effect.scope
  yield* Cli.run(["serve", ...serveArgs], {
    module: ({ db }) => makeModule({ ...options, db }),
    onListening: ({ db, token, url }) =>
      Effect.zipRight(Console.log(banner(url, db, token)), demo ? submitDemo(url, token) : Effect.void).pipe(
        Effect.forkIn(scope),
        Effect.asVoid
      )
  })
}).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

main.pipe(NodeRuntime.runMain({ disableErrorReporting: true }))
