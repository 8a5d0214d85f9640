/**
 * Helpers of the Postgres tests: the test database URL, whether to skip, and a store layer
 * isolated in a fresh schema that is dropped when the layer's scope closes.
 *
 * `SPINDLE_TEST_PG_URL` names the database (default `postgres://postgres@127.0.0.1:5432/test`).
 * When it cannot be reached the Postgres tests are skipped with a printed reason, except on CI
 * (`CI=true`), where they run and fail.
 */
import { PgClient } from "@effect/sql-pg"
import { PgTaskStore } from "@spindle/sql"
import type { TaskStore } from "@spindle/tasks"
import type { Duration } from "effect"
import { Context, Effect, Layer, ManagedRuntime, Redacted } from "effect"

export const testUrl: string = process.env.SPINDLE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** A client on the test database with a small pool of its own. */
export const clientLayer: Layer.Layer<PgClient.PgClient, never> = PgClient.layer({
  url: Redacted.make(testUrl),
  maxConnections: 4,
  applicationName: "spindle-test"
}).pipe(Layer.orDie)

const unreachable: string | undefined = await Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  yield* sql`SELECT 1`
}).pipe(
  Effect.provide(PgClient.layer({ url: Redacted.make(testUrl), maxConnections: 1, connectTimeout: "3 seconds" })),
  Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("timed out connecting") }),
  Effect.match({
    onFailure: (error) => `${testUrl.replace(/\/\/[^@]*@/, "//…@")} is unreachable: ${String(error.message)}`,
    onSuccess: () => undefined
  }),
  Effect.runPromise
)

/** True when the Postgres tests should be skipped (unreachable and not on CI). */
export const skipPg: boolean = unreachable !== undefined && process.env.CI !== "true"

if (skipPg) console.warn(`skipping Postgres tests: ${unreachable}`)

/** A fresh, unique schema name. */
export const freshSchema = (): string => `spindle_test_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`

/** Drops `schema` when the scope closes. */
export const dropSchemaOnClose = (schema: string) =>
  Effect.flatMap(
    PgClient.PgClient,
    (sql) =>
      Effect.addFinalizer(() =>
        sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).withoutTransform.pipe(Effect.ignore)
      )
  )

/**
 * One client for the stores of a test file that each live in their own schema (so they do not
 * share a LISTEN channel): saves a pool per test. Dispose it in `afterAll`.
 */
export const sharedClient: ManagedRuntime.ManagedRuntime<PgClient.PgClient, never> = ManagedRuntime.make(clientLayer)

const sharedClientLayer: Layer.Layer<PgClient.PgClient> = Layer.effect(
  PgClient.PgClient,
  Effect.map(sharedClient.runtimeEffect, (runtime) => Context.get(runtime.context, PgClient.PgClient))
)

/**
 * A store in `schema` (a fresh one by default); when `drop` (default true) the schema is
 * dropped once the layer's scope closes. With `shared`, the store uses `sharedClient`;
 * otherwise a client of its own.
 */
export const storeLayer = (
  options?: {
    readonly schema?: string
    readonly drop?: boolean
    readonly shared?: boolean
    readonly listenHealthCheck?: Duration.DurationInput
  }
): Layer.Layer<TaskStore.TaskStore> => {
  const schema = options?.schema ?? freshSchema()
  return Layer.unwrapScoped(
    Effect.as(
      options?.drop === false ? Effect.void : dropSchemaOnClose(schema),
      PgTaskStore.layerClient({ schema, listenHealthCheck: options?.listenHealthCheck })
    )
  ).pipe(Layer.provide(options?.shared === true ? sharedClientLayer : clientLayer), Layer.orDie)
}
