import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { SpindleApi } from "../Api.js"

// CONTRACT STUB: the events helper replaces this file. It must keep exporting `EventsLive`, the
// handlers of the "events" group (GET /v1/events, Server-Sent Events).

/** @internal */
export const EventsLive = HttpApiBuilder.group(
  SpindleApi,
  "events",
  (handlers) => handlers.handleRaw("events", () => Effect.die("GET /v1/events: not implemented yet"))
)
