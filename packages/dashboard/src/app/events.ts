/**
 * The live event stream: `GET /v1/events` read with `fetch` and a streaming reader rather than
 * `EventSource`, which cannot send an `Authorization` header. Reconnects after a dropped
 * connection with `Last-Event-ID` (the server replays what was missed, or sends `reset`), waiting
 * the server's `retry:` delay, doubled after each failure up to 30 seconds.
 */
import { ApiError, authHeaders, notifyUnauthorized, toApiError } from "./api.js"
import { makeParser } from "./sse.js"
import type { TaskEvent } from "./types.js"

export type StreamState = "connecting" | "live" | "reconnecting" | "unauthorized" | "stopped"

export interface StreamHandlers {
  readonly onEvent: (event: TaskEvent) => void
  /** Events were missed and cannot be replayed: re-read what is shown. */
  readonly onReset: () => void
  readonly onState: (state: StreamState, error?: ApiError) => void
}

const maxDelayMs = 30_000

/** Opens the stream; `stop` closes it, `restart` reconnects at once (a new token). */
export const connect = (handlers: StreamHandlers) => {
  let lastEventId: string | undefined = undefined
  let retryMs = 2000
  let failures = 0
  let controller: AbortController | undefined
  let wake: (() => void) | undefined
  let stopped = false
  let generation = 0

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wake = undefined
        resolve()
      }
      wake = done
    })

  const once = async (signal: AbortSignal): Promise<"ended" | "unauthorized"> => {
    const headers: Record<string, string> = { accept: "text/event-stream", ...authHeaders() }
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId
    const response = await fetch("v1/events", { headers, cache: "no-store", signal })
    if (!response.ok) {
      const error = toApiError(response.status, response.statusText, await response.text())
      if (response.status === 401) {
        handlers.onState("unauthorized", error)
        notifyUnauthorized(error)
        return "unauthorized"
      }
      throw error
    }
    if (response.body === null) throw new ApiError(response.status, "MalformedResponse", "the event stream has no body")
    failures = 0
    handlers.onState("live")
    const feed = makeParser({
      onId: (id) => {
        lastEventId = id
      },
      onRetry: (ms) => {
        retryMs = ms
      },
      onMessage: (message) => {
        if (message.event === "reset") return handlers.onReset()
        let event: TaskEvent
        try {
          event = JSON.parse(message.data)
        } catch {
          return
        }
        handlers.onEvent(event)
      }
    })
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return "ended"
      feed(value)
    }
  }

  const loop = async (mine: number) => {
    handlers.onState("connecting")
    while (!stopped && mine === generation) {
      controller = new AbortController()
      let error: ApiError | undefined = undefined
      try {
        const outcome = await once(controller.signal)
        if (outcome === "unauthorized") return
      } catch (cause) {
        if (stopped || mine !== generation) return
        error = cause instanceof ApiError
          ? cause
          : new ApiError(0, "NetworkError", `the event stream broke: ${cause instanceof Error ? cause.message : cause}`)
      }
      if (stopped || mine !== generation) return
      failures++
      handlers.onState("reconnecting", error)
      await sleep(Math.min(retryMs * 2 ** Math.max(0, failures - 1), maxDelayMs))
    }
  }

  const start = () => {
    const mine = ++generation
    controller?.abort()
    wake?.()
    void loop(mine)
  }

  start()
  return {
    restart: () => {
      failures = 0
      start()
    },
    stop: () => {
      stopped = true
      generation++
      controller?.abort()
      wake?.()
      handlers.onState("stopped")
    }
  }
}
