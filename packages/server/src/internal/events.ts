/**
 * `GET /v1/events`: the event log as Server-Sent Events.
 *
 * The stream opens with `retry: 2000` (written at once, so the client gets the headers), then,
 * once subscribed, an `id:`-only block: the id the stream continues after (the client's
 * `Last-Event-ID`, or the log's last id without one). It dispatches nothing but sets the
 * client's last event id, so a reconnect before any event still resumes from there. Then the
 * replayed events, if any, and live ones, each as
 *
 * ```text
 * id: <log id>
 * event: <type>
 * data: <EventView as JSON>
 * ```
 *
 * Ids are the event log's, not the store's `sequence` (see `eventLog.ts`). Events the client
 * cannot get back (its id is older than the buffer, from before a restart, or its stream fell
 * too far behind) are announced instead by `event: reset`, `data: {"reason", "after",
 * "message"}`, with an `id:` the stream continues after: the client should re-read the tasks it
 * follows. A comment (`: keep-alive`) every 15 seconds keeps proxies from closing an idle
 * stream. Filters apply on the server. The stream ends when the client goes away or the event
 * log closes (shutdown).
 *
 * @internal
 */
import { Headers, HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import type { TaskEvent, TaskStore } from "@spindle/tasks"
import { TaskClient } from "@spindle/tasks"
import type { Duration } from "effect"
import { Chunk, Context, Effect, Layer, Option, Schema, Stream } from "effect"
import { BadRequest, EventView, SpindleApi } from "../Api.js"
import * as EventLog from "./eventLog.js"

/**
 * How the events endpoint writes its stream; a `Context.Reference`, so it works without being
 * provided.
 *
 * @internal
 */
export class EventsConfig extends Context.Reference<EventsConfig>()("@spindle/server/EventsConfig", {
  defaultValue: (): {
    readonly heartbeatInterval: Duration.DurationInput
    readonly retryMs: number
  } => ({ heartbeatInterval: "15 seconds", retryMs: 2000 })
}) {}

/** @internal */
export interface Filter {
  readonly id?: ReadonlyArray<string> | undefined
  readonly name?: ReadonlyArray<string> | undefined
  readonly queue?: ReadonlyArray<string> | undefined
  readonly type?: ReadonlyArray<TaskEvent.TaskEventType> | undefined
}

/**
 * The predicate of a filter: every list given must contain the event's value.
 *
 * @internal
 */
export const matches = (filter: Filter): (event: TaskEvent.TaskEvent) => boolean =>
  TaskClient.eventMatches({ ids: filter.id, names: filter.name, queues: filter.queue, types: filter.type })

const encodeView = Schema.encodeSync(EventView)

/** Every stream is handed the same event objects: encode each once, however many clients. */
const dataCache = new WeakMap<TaskEvent.TaskEvent, string>()

const dataOf = (event: TaskEvent.TaskEvent): string => {
  let data = dataCache.get(event)
  if (data === undefined) {
    data = JSON.stringify(encodeView(event))
    dataCache.set(event, data)
  }
  return data
}

const resetMessages: { readonly [R in EventLog.ResetReason]: string } = {
  expired: "the events after this id are no longer held: re-read the tasks you follow",
  unknown: "this id was not handed out by this server (restarted?): re-read the tasks you follow",
  lagged: "the stream fell too far behind and events were dropped: re-read the tasks you follow"
}

/**
 * One log item as an SSE block; the empty string for an event the filter rejects.
 *
 * @internal
 */
export const formatItem = (item: EventLog.Item, filter: (event: TaskEvent.TaskEvent) => boolean): string => {
  switch (item._tag) {
    case "Position":
      return `id: ${item.id}\n\n`
    case "Event":
      return filter(item.event)
        ? `id: ${item.id}\nevent: ${item.event.type}\ndata: ${dataOf(item.event)}\n\n`
        : ""
    case "Reset":
      return `id: ${item.id}\nevent: reset\ndata: ${
        JSON.stringify({ reason: item.reason, after: String(item.after), message: resetMessages[item.reason] })
      }\n\n`
  }
}

const ID = /^\d{1,16}$/

/**
 * The id to resume after: the `Last-Event-ID` header (what a browser sends when it reconnects),
 * else the `lastEventId` query parameter; an empty value counts as none.
 *
 * @internal
 */
export const resumeId = (
  header: string | undefined,
  query: string | undefined
): Effect.Effect<Option.Option<number>, BadRequest> => {
  const [value, path] = header !== undefined && header.trim() !== ""
    ? [header.trim(), ["headers", "last-event-id"]]
    : query !== undefined && query.trim() !== ""
    ? [query.trim(), ["query", "lastEventId"]]
    : [undefined, []]
  if (value === undefined) return Effect.succeed(Option.none())
  const id = ID.test(value) ? Number(value) : NaN
  return Number.isSafeInteger(id)
    ? Effect.succeed(Option.some(id))
    : Effect.fail(
      new BadRequest({
        message: "malformed event id",
        issues: [{ path, message: `Expected a non-negative integer event id, actual ${JSON.stringify(value)}` }]
      })
    )
}

const encoder = new TextEncoder()

/**
 * The SSE body for a client: `retry`, then the log's items after `after` that pass the filter,
 * with heartbeats, until the log ends.
 *
 * @internal
 */
export const sseBody = (
  log: EventLog.Service,
  options: {
    readonly after: Option.Option<number>
    readonly filter: Filter
    readonly heartbeatInterval: Duration.DurationInput
    readonly retryMs: number
  }
): Stream.Stream<Uint8Array> => {
  const keep = matches(options.filter)
  const events = log.stream(options.after).pipe(
    Stream.mapChunks((items) => {
      let text = ""
      for (const item of items) text += formatItem(item, keep)
      return text === "" ? Chunk.empty() : Chunk.of(text)
    })
  )
  const heartbeats = Stream.repeatEffect(Effect.as(Effect.sleep(options.heartbeatInterval), ": keep-alive\n\n"))
  return Stream.concat(Stream.succeed(`retry: ${options.retryMs}\n\n`), events).pipe(
    Stream.merge(heartbeats, { haltStrategy: "left" }),
    Stream.map((text) => encoder.encode(text))
  )
}

const sseHeaders = Headers.fromInput({
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no"
})

/**
 * The handlers of the `events` group; need the `EventLog` (see `layer`).
 *
 * @internal
 */
export const EventsLive = HttpApiBuilder.group(
  SpindleApi,
  "events",
  (handlers) =>
    Effect.gen(function*() {
      const log = yield* EventLog.EventLog
      const config = yield* EventsConfig
      return handlers.handleRaw("events", ({ headers, urlParams }) =>
        Effect.gen(function*() {
          const after = yield* resumeId(headers["last-event-id"], urlParams.lastEventId)
          return HttpServerResponse.stream(
            sseBody(log, {
              after,
              filter: urlParams,
              heartbeatInterval: config.heartbeatInterval,
              retryMs: config.retryMs
            }),
            { contentType: "text/event-stream", headers: sseHeaders }
          )
        }))
    })
)

/** @internal */
export interface Options {
  /** Events held for `Last-Event-ID` resumption. Default 10,000. */
  readonly eventsBuffer?: number | undefined
  /** Default 15 seconds. */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
}

/**
 * `EventsLive` with its event log (fed by the `TaskStore` in context): what the server
 * composes. The log closes with the layer, ending every open stream.
 *
 * @internal
 */
export const layer = (options: Options = {}): Layer.Layer<
  Layer.Layer.Success<typeof EventsLive>,
  never,
  Exclude<Layer.Layer.Context<typeof EventsLive>, EventLog.EventLog> | TaskStore.TaskStore
> => {
  const live = EventsLive.pipe(Layer.provide(EventLog.layer({ capacity: options.eventsBuffer })))
  const heartbeatInterval = options.heartbeatInterval
  return heartbeatInterval === undefined ? live : live.pipe(
    Layer.provide(Layer.effect(EventsConfig, Effect.map(EventsConfig, (config) => ({ ...config, heartbeatInterval }))))
  )
}
