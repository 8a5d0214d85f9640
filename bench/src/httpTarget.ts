/**
 * A server under test of the HTTP benchmark, in a child process of its own:
 *
 *   node bench/dist/httpTarget.js bare
 *   node bench/dist/httpTarget.js spindle-sqlite <file>
 *   node bench/dist/httpTarget.js spindle-pg <postgres-url>
 *
 * `bare` is the ceiling: Node's `http` server reading the body, parsing its JSON and answering
 * 201 with an id, nothing else. The Spindle targets are the task service (`TaskService.layer`,
 * API only, request log off) accepting `POST /v1/tasks` of a no-op task into a durable store.
 * Each prints `listening <port>` once ready and runs until SIGTERM.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { TaskService } from "@spindle/server"
import { Task } from "@spindle/tasks"
import { Effect, Layer, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"

/**
 * The task every target accepts.
 *
 * @since 0.1.0
 */
export const BenchNoop = Task.make("bench.noop", {
  payload: Schema.Struct({ n: Schema.Number }),
  success: Schema.Void,
  failure: Schema.Never
})

const [kind, address] = process.argv.slice(2)

if (kind === "bare") {
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      try {
        JSON.parse(Buffer.concat(chunks).toString("utf8"))
      } catch {
        response.writeHead(400, { "content-type": "application/json" }).end("{\"error\":\"malformed JSON\"}")
        return
      }
      const body = JSON.stringify({ id: randomUUID() })
      response.writeHead(201, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
      response.end(body)
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as { port: number }).port
    console.log(`listening ${port}`)
  })
  process.on("SIGTERM", () => server.close(() => process.exit(0)))
} else if (kind === "spindle-sqlite" || kind === "spindle-pg") {
  if (address === undefined) throw new Error(`${kind} needs a database address`)
  const service = TaskService.layer({
    db: address,
    api: true,
    worker: false,
    port: 0,
    module: TaskService.module({ definitions: [BenchNoop] }),
    server: { requestLog: false },
    onListening: (url) => Effect.sync(() => console.log(`listening ${new URL(url).port}`))
  })
  NodeRuntime.runMain(Layer.launch(service))
} else {
  throw new Error(`unknown target ${kind}: bare, spindle-sqlite <file> or spindle-pg <url>`)
}
