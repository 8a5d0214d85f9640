/**
 * Server-Sent Events parsing (no DOM needed): the stream's text in, messages out.
 */

/** One dispatched SSE message. */
export interface Message {
  readonly id: string | undefined
  readonly event: string
  readonly data: string
}

/**
 * An incremental parser of `text/event-stream` (the WHATWG algorithm): feed it chunks of text,
 * it calls `onMessage` per dispatched message, `onId` whenever the last event id changes (an
 * `id:`-only block included) and `onRetry` for a `retry:` field.
 */
export const makeParser = (callbacks: {
  readonly onMessage: (message: Message) => void
  readonly onId: (id: string) => void
  readonly onRetry: (ms: number) => void
}) => {
  let buffer = ""
  let data: Array<string> = []
  let event = ""
  let id: string | undefined = undefined
  let lastCarriageReturn = false
  const line = (text: string) => {
    if (text === "") {
      if (id !== undefined) callbacks.onId(id)
      if (data.length > 0) callbacks.onMessage({ id, event: event === "" ? "message" : event, data: data.join("\n") })
      data = []
      event = ""
      id = undefined
      return
    }
    if (text.startsWith(":")) return
    const colon = text.indexOf(":")
    const field = colon === -1 ? text : text.slice(0, colon)
    let value = colon === -1 ? "" : text.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    switch (field) {
      case "data":
        data.push(value)
        break
      case "event":
        event = value
        break
      case "id":
        if (!value.includes("\0")) id = value
        break
      case "retry":
        if (/^\d+$/.test(value)) callbacks.onRetry(Number(value))
        break
    }
  }
  return (chunk: string) => {
    buffer += chunk
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const char = buffer[i]
      if (char === "\n" && lastCarriageReturn && i === start) {
        start = i + 1
        lastCarriageReturn = false
        continue
      }
      lastCarriageReturn = false
      if (char === "\n" || char === "\r") {
        line(buffer.slice(start, i))
        lastCarriageReturn = char === "\r"
        start = i + 1
      }
    }
    buffer = buffer.slice(start)
  }
}
