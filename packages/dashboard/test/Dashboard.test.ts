import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Dashboard } from "@spindle/dashboard"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"

const files = {
  "index.html": "<!doctype html><title>Spindle</title><script type=\"module\" src=\"assets/app.js\"></script>",
  "app.js": "console.log(\"spindle\")\n",
  "app.css": "body { margin: 0 }\n",
  "app.js.map": "{\"version\":3}",
  "favicon.svg": "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
  "data.bin": "\u0000\u0001"
}

let dir = ""
let root = ""

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), "spindle-dashboard-"))
  dir = path.join(root, "assets")
  mkdirSync(path.join(dir, "nested"), { recursive: true })
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content)
  writeFileSync(path.join(dir, "nested", "hidden.txt"), "not served")
  writeFileSync(path.join(root, "secret.txt"), "outside the assets")
})

afterAll(() => rmSync(root, { recursive: true, force: true }))

/** The wrapped app: answers every request it gets with 418, so a pass-through is visible. */
const api = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => HttpServerResponse.unsafeJson({ passedThrough: `${request.method} ${request.url}` }, { status: 418 })
)

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const send = (
  url: string,
  init: RequestInit = {},
  options: Dashboard.Options = { assetsDir: dir },
  rawUrl?: string
): Effect.Effect<Answer> =>
  Effect.gen(function*() {
    const app = Dashboard.middleware(options)(api)
    const web = HttpServerRequest.fromWeb(new Request(`http://localhost${url}`, init))
    const request = rawUrl === undefined ? web : web.modify({ url: rawUrl })
    const response = yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, request)
    const answer = HttpServerResponse.toWeb(response)
    const text = yield* Effect.promise(() => answer.text())
    return { status: answer.status, headers: answer.headers, text }
  })

const hash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16)

const assertPassedThrough = (answer: Answer, method: string, url: string) => {
  assert.strictEqual(answer.status, 418, answer.text)
  assert.deepStrictEqual(JSON.parse(answer.text), { passedThrough: `${method} ${url}` })
}

const assertNotFound = (answer: Answer) => {
  assert.strictEqual(answer.status, 404, answer.text)
  const body = JSON.parse(answer.text)
  assert.strictEqual(body._tag, "NotFound")
  assert.deepStrictEqual(body.issues[0].path, ["path"])
}

describe("Dashboard.middleware", () => {
  it.effect("answers / and /index.html with the page, uncached, under a strict CSP", () =>
    Effect.gen(function*() {
      for (const url of ["/", "/index.html", "/?from=link"]) {
        const answer = yield* send(url)
        assert.strictEqual(answer.status, 200, url)
        assert.strictEqual(answer.text, files["index.html"])
        assert.strictEqual(answer.headers.get("content-type"), "text/html; charset=utf-8")
        assert.strictEqual(answer.headers.get("cache-control"), "no-cache")
        assert.strictEqual(answer.headers.get("content-security-policy"), Dashboard.contentSecurityPolicy)
        assert.strictEqual(answer.headers.get("x-content-type-options"), "nosniff")
      }
      assert.include(Dashboard.contentSecurityPolicy, "default-src 'self'")
      assert.notInclude(Dashboard.contentSecurityPolicy, "unsafe-inline")
    }))

  it.effect("serves assets with their content types", () =>
    Effect.gen(function*() {
      const expected: ReadonlyArray<readonly [keyof typeof files, string]> = [
        ["app.js", "text/javascript; charset=utf-8"],
        ["app.css", "text/css; charset=utf-8"],
        ["app.js.map", "application/json; charset=utf-8"],
        ["favicon.svg", "image/svg+xml"],
        ["data.bin", "application/octet-stream"]
      ]
      for (const [name, contentType] of expected) {
        const answer = yield* send(`/assets/${name}`)
        assert.strictEqual(answer.status, 200, name)
        assert.strictEqual(answer.text, files[name], name)
        assert.strictEqual(answer.headers.get("content-type"), contentType, name)
        assert.strictEqual(answer.headers.get("etag"), `"${hash(files[name])}"`, name)
        assert.strictEqual(answer.headers.get("content-security-policy"), Dashboard.contentSecurityPolicy, name)
      }
    }))

  it.effect("lets the versioned URL be cached for good, and revalidates others with the ETag", () =>
    Effect.gen(function*() {
      const version = hash(files["app.js"])
      const versioned = yield* send(`/assets/app.js?v=${version}`)
      assert.strictEqual(versioned.headers.get("cache-control"), "public, max-age=31536000, immutable")
      const stale = yield* send("/assets/app.js?v=0123456789abcdef")
      assert.strictEqual(stale.headers.get("cache-control"), "no-cache")
      const plain = yield* send("/assets/app.js")
      assert.strictEqual(plain.headers.get("cache-control"), "no-cache")
      const revalidated = yield* send("/assets/app.js", { headers: { "if-none-match": `"${version}"` } })
      assert.strictEqual(revalidated.status, 304)
      assert.strictEqual(revalidated.text, "")
      const changed = yield* send("/assets/app.js", { headers: { "if-none-match": "\"other\"" } })
      assert.strictEqual(changed.status, 200)
    }))

  it.effect("answers 404 for an asset that was not bundled", () =>
    Effect.gen(function*() {
      assertNotFound(yield* send("/assets/missing.js"))
      assertNotFound(yield* send("/assets/"))
      assertNotFound(yield* send("/assets/index.html"))
      assertNotFound(yield* send("/assets/nested/hidden.txt"))
      assertNotFound(yield* send("/assets/%E0%A4%A"))
    }))

  it.effect("refuses paths leading out of the assets directory", () =>
    Effect.gen(function*() {
      for (
        const url of [
          "/assets/../secret.txt",
          "/assets/..%2Fsecret.txt",
          "/assets/%2e%2e%2fsecret.txt",
          "/assets/%2E%2E/secret.txt",
          "/assets/..%5Csecret.txt",
          "/assets/..\\secret.txt",
          "/assets/%2Fetc%2Fpasswd",
          "/assets//etc/passwd",
          "/assets/nested%2Fhidden.txt",
          "/assets/./app.js",
          "/assets/app.js%00"
        ]
      ) {
        // the raw URL as it arrives on the socket (a WHATWG Request would normalize `..` away)
        const answer = yield* send("/", {}, { assetsDir: dir }, url)
        assertNotFound(answer)
        assert.notInclude(answer.text, "outside the assets", url)
      }
    }))

  it.effect("passes every other request to the wrapped app", () =>
    Effect.gen(function*() {
      assertPassedThrough(yield* send("/v1/tasks?status=failed"), "GET", "/v1/tasks?status=failed")
      assertPassedThrough(yield* send("/healthz"), "GET", "/healthz")
      assertPassedThrough(yield* send("/assetsx/app.js"), "GET", "/assetsx/app.js")
      assertPassedThrough(yield* send("/index.htm"), "GET", "/index.htm")
      assertPassedThrough(yield* send("/", { method: "POST", body: "{}" }), "POST", "/")
      assertPassedThrough(yield* send("/assets/app.js", { method: "DELETE" }), "DELETE", "/assets/app.js")
    }))

  it.effect("answers HEAD like GET", () =>
    Effect.gen(function*() {
      const answer = yield* send("/assets/app.css", { method: "HEAD" })
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.headers.get("content-type"), "text/css; charset=utf-8")
    }))

  it.effect("answers 503 at / when the assets are not built, and passes the API on", () =>
    Effect.gen(function*() {
      const options = { assetsDir: path.join(root, "not-built") }
      const page = yield* send("/", {}, options)
      assert.strictEqual(page.status, 503)
      assert.strictEqual(page.headers.get("content-type"), "text/html; charset=utf-8")
      assert.include(page.text, "npm run build")
      assert.include(page.text, "not-built")
      assertNotFound(yield* send("/assets/app.js", {}, options))
      assertPassedThrough(yield* send("/v1/queues", {}, options), "GET", "/v1/queues")
    }))

  it.effect("answers 503 when the directory has no index.html", () =>
    Effect.gen(function*() {
      const answer = yield* send("/", {}, { assetsDir: path.join(dir, "nested") })
      assert.strictEqual(answer.status, 503)
      assert.include(answer.text, "index.html is missing")
    }))

  it.effect("reads the assets once, when the middleware is made", () =>
    Effect.gen(function*() {
      const copy = path.join(root, "once")
      mkdirSync(copy, { recursive: true })
      writeFileSync(path.join(copy, "index.html"), "first")
      const app = Dashboard.middleware({ assetsDir: copy })(api)
      writeFileSync(path.join(copy, "index.html"), "second")
      const response = yield* Effect.provideService(
        app,
        HttpServerRequest.HttpServerRequest,
        HttpServerRequest.fromWeb(new Request("http://localhost/"))
      )
      const text = yield* Effect.promise(() => HttpServerResponse.toWeb(response).text())
      assert.strictEqual(text, "first")
    }))

  it("defaults to this package's dist/assets", () => {
    assert.strictEqual(
      Dashboard.defaultAssetsDir,
      path.resolve(import.meta.dirname, "..", "dist", "assets")
    )
  })
})
