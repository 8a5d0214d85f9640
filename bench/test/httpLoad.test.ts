import { assert, describe, it } from "@effect/vitest"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { parseHttpBenchArgs } from "../src/http.js"
import { requestBytes, ResponseParser, runLoad } from "../src/httpLoad.js"

describe("HTTP bench load generator", () => {
  it("parses responses split anywhere, with Content-Length or chunked bodies", () => {
    const stream = Buffer.from(
      "HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello" +
        "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
        "HTTP/1.1 204 No Content\r\n\r\n"
    )
    for (let cut = 1; cut < stream.length; cut++) {
      const parser = new ResponseParser()
      const statuses = [...parser.feed(stream.subarray(0, cut)), ...parser.feed(stream.subarray(cut))]
      assert.deepStrictEqual(statuses, [201, 400, 204], `cut at ${cut}`)
    }
  })

  it("builds a request with its content length", () => {
    const bytes = requestBytes({ host: "127.0.0.1", port: 80, method: "POST", path: "/x", body: "{\"é\":1}" })
    const text = bytes.toString("utf8")
    assert.include(text, "POST /x HTTP/1.1\r\n")
    assert.include(text, "content-length: 8\r\n")
    assert.isTrue(text.endsWith("\r\n\r\n{\"é\":1}"))
  })

  it("counts every answer of a real server by status", async () => {
    let served = 0
    const server = createServer((request, response) => {
      request.resume()
      request.on("end", () => {
        served++
        const status = served % 10 === 0 ? 400 : 201
        response.writeHead(status, { "content-type": "application/json" }).end("{}")
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      const { port } = server.address() as AddressInfo
      const result = await runLoad({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/",
        body: "{}",
        connections: 4,
        durationMs: 200
      })
      assert.strictEqual(result.requests, served)
      assert.strictEqual(result.ok + (result.statuses[400] ?? 0), served)
      assert.strictEqual(result.statuses[400] ?? 0, Math.floor(served / 10))
      assert.strictEqual(result.errors, 0)
      assert.isAbove(result.ok, 0)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it("rejects bad options", () => {
    assert.throws(() => parseHttpBenchArgs(["--targets", "bare,nginx"]), /unknown target nginx/)
    assert.throws(() => parseHttpBenchArgs(["--seconds", "0"]), /--seconds/)
    assert.deepStrictEqual(parseHttpBenchArgs(["--targets", "bare"]).targets, ["bare"])
  })
})
