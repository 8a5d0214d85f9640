/**
 * What `notification.send` needs: a client of the notification provider (`Notifier`), and a
 * local stand-in for the provider (`FakeProvider`), a flaky HTTP API on a free loopback port
 * that fails a seeded fraction of requests with 500 or 429, answers some slowly, and rejects
 * recipients of blocked domains with 422.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import { seeded } from "./random.js"
import { ProviderThrottled, ProviderUnavailable, RecipientRejected } from "./tasks.js"

// -----------------------------------------------------------------------------
// The provider's wire format
// -----------------------------------------------------------------------------

const Message = Schema.Struct({ to: Schema.String, subject: Schema.String, body: Schema.String })
const Delivered = Schema.Struct({ id: Schema.String })
const Rejected = Schema.Struct({ error: Schema.Literal("recipient_rejected"), reason: Schema.String })

/**
 * A message to send.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message extends Schema.Schema.Type<typeof Message> {}

// -----------------------------------------------------------------------------
// The fake provider
// -----------------------------------------------------------------------------

/**
 * How the fake provider misbehaves.
 *
 * @since 0.1.0
 * @category models
 */
export interface FakeProviderOptions {
  /** Share of requests failed, half with 500 and half with 429. Default 0.3. */
  readonly failureRate?: number | undefined
  /** Share of requests answered after `slowDelay` (past the task's soft timeout). Default 0.1. */
  readonly slowRate?: number | undefined
  /** Default 1.5 seconds. */
  readonly slowDelay?: Duration.DurationInput | undefined
  /** Recipients of these domains are rejected with 422. Default `["blocked.example"]`. */
  readonly rejectDomains?: ReadonlyArray<string> | undefined
  /** The seed of the generator drawing each request's fate. Default 42. */
  readonly seed?: number | undefined
}

/**
 * What the fake provider has answered so far.
 *
 * @since 0.1.0
 * @category models
 */
export interface FakeProviderStats {
  readonly requests: number
  readonly delivered: number
  readonly failed: number
  readonly throttled: number
  readonly rejected: number
  readonly slow: number
}

/**
 * The running fake provider.
 *
 * @since 0.1.0
 * @category tags
 */
export class FakeProvider extends Context.Tag("task-service/FakeProvider")<FakeProvider, {
  /** Base URL, such as `http://127.0.0.1:43127`. */
  readonly url: string
  readonly stats: Effect.Effect<FakeProviderStats>
}>() {}

/**
 * Starts the fake provider on a free loopback port for the lifetime of the layer.
 *
 * `POST /v1/messages` with `{ to, subject, body }` answers 200 `{ id }`, 422 for a recipient of
 * a blocked domain, and otherwise, drawn from the seeded generator, 500, 429 or a slow 200.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFakeProvider = (options: FakeProviderOptions = {}): Layer.Layer<FakeProvider, never> =>
  Layer.scoped(
    FakeProvider,
    Effect.gen(function*() {
      const failureRate = options.failureRate ?? 0.3
      const slowRate = options.slowRate ?? 0.1
      const slowDelay = Duration.decode(options.slowDelay ?? "1.5 seconds")
      const rejectDomains = new Set(options.rejectDomains ?? ["blocked.example"])
      const random = seeded(options.seed ?? 42)
      const stats = { requests: 0, delivered: 0, failed: 0, throttled: 0, rejected: 0, slow: 0 }

      const send = Effect.gen(function*() {
        const message = yield* HttpServerRequest.schemaBodyJson(Message)
        stats.requests++
        const domain = message.to.slice(message.to.lastIndexOf("@") + 1).toLowerCase()
        if (rejectDomains.has(domain)) {
          stats.rejected++
          return yield* HttpServerResponse.json({ error: "recipient_rejected", reason: `${domain} is blocked` }, {
            status: 422
          })
        }
        const roll = random()
        if (roll < failureRate / 2) {
          stats.failed++
          return yield* HttpServerResponse.json({ error: "internal" }, { status: 500 })
        }
        if (roll < failureRate) {
          stats.throttled++
          return yield* HttpServerResponse.json({ error: "throttled" }, {
            status: 429,
            headers: { "retry-after": "1" }
          })
        }
        if (random() < slowRate) {
          stats.slow++
          yield* Effect.sleep(slowDelay)
        }
        stats.delivered++
        return yield* HttpServerResponse.json({ id: `msg-${String(stats.delivered).padStart(6, "0")}` })
      }).pipe(
        Effect.catchTags({
          ParseError: (error) =>
            HttpServerResponse.json({ error: "bad_request", message: error.message }, { status: 400 }),
          RequestError: (error) =>
            HttpServerResponse.json({ error: "bad_request", message: error.message }, { status: 400 })
        })
      )

      const app = HttpRouter.empty.pipe(HttpRouter.post("/v1/messages", send))
      yield* HttpServer.serveEffect(app)
      const url = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
      return { url, stats: Effect.sync(() => ({ ...stats })) }
    })
  ).pipe(
    Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
    Layer.orDie
  )

// -----------------------------------------------------------------------------
// The client
// -----------------------------------------------------------------------------

/**
 * The client of the notification provider.
 *
 * @since 0.1.0
 * @category tags
 */
export class Notifier extends Context.Tag("task-service/Notifier")<Notifier, {
  /** Sends one message; one HTTP request, no retry (the task's retry policy retries). */
  readonly send: (
    message: Message
  ) => Effect.Effect<{ readonly messageId: string }, RecipientRejected | ProviderUnavailable | ProviderThrottled>
}>() {}

/**
 * A `Notifier` for the provider at `baseUrl`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNotifier = (baseUrl: string): Layer.Layer<Notifier, never, HttpClient.HttpClient> =>
  Layer.effect(
    Notifier,
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      const unavailable = (status: number) => (error: { readonly message: string }) =>
        new ProviderUnavailable({ status, message: error.message })
      return {
        send: (message) =>
          HttpClientRequest.post(`${baseUrl}/v1/messages`).pipe(
            HttpClientRequest.bodyUnsafeJson(message),
            client.execute,
            Effect.mapError(unavailable(0)),
            Effect.flatMap(HttpClientResponse.matchStatus({
              "2xx": (response) =>
                HttpClientResponse.schemaBodyJson(Delivered)(response).pipe(
                  Effect.mapBoth({
                    onFailure: unavailable(response.status),
                    onSuccess: (delivered) => ({ messageId: delivered.id })
                  })
                ),
              422: (response) =>
                HttpClientResponse.schemaBodyJson(Rejected)(response).pipe(
                  Effect.mapError(unavailable(response.status)),
                  Effect.flatMap((rejected) =>
                    Effect.fail(new RecipientRejected({ recipient: message.to, reason: rejected.reason }))
                  )
                ),
              429: (response) => {
                const seconds = Number(response.headers["retry-after"])
                return Effect.fail(
                  new ProviderThrottled(Number.isFinite(seconds) ? { retryAfterMs: Math.round(seconds * 1000) } : {})
                )
              },
              orElse: (response) =>
                Effect.fail(
                  new ProviderUnavailable({
                    status: response.status,
                    message: `the provider answered ${response.status}`
                  })
                )
            })),
            Effect.scoped
          )
      }
    })
  )
