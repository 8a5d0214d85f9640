/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, against a real
 * server on a free port (memory store, a worker running the test tasks, bearer-token auth).
 *
 * Without /usr/bin/chromium these tests are skipped with a printed reason, except with CI=true,
 * where they run (and fail). Screenshots go to test-output/ and are copied to docs/.
 */
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Dashboard } from "@spindle/dashboard"
import { Server, TaskCatalog } from "@spindle/server"
import { MemoryStore, Task, TaskClient, TaskHandlers, TaskWorker } from "@spindle/tasks"
import { Deferred, Effect, Layer, ManagedRuntime, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import * as path from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { afterAll, beforeAll } from "vitest"

const executablePath = "/usr/bin/chromium"
const hasChromium = existsSync(executablePath)
const inCi = process.env.CI === "true"
if (!hasChromium && !inCi) {
  console.warn(
    `[dashboard] browser tests skipped: ${executablePath} not found (apt-get install chromium; with CI=true they run)`
  )
}

const packageDir = path.resolve(import.meta.dirname, "..")
const outputDir = path.join(packageDir, "test-output")
const docsDir = path.resolve(packageDir, "..", "..", "docs")
const token = "browser-test-token"

// -----------------------------------------------------------------------------
// Test tasks
// -----------------------------------------------------------------------------

class Declined extends Schema.TaggedError<Declined>()("Declined", { message: Schema.String, code: Schema.String }) {}

const ResizeImage = Task.make("resize-image", {
  payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
  success: Schema.Struct({ url: Schema.String, bytes: Schema.Int }),
  failure: Schema.Never,
  queue: "images",
  tags: ["media"]
})

/** Declined on its first attempt, charged on the next ones (a retry succeeds). */
const ChargeCard = Task.make("charge-card", {
  payload: Schema.Struct({ orderId: Schema.String, amountCents: Schema.Int }),
  success: Schema.Struct({ chargeId: Schema.String }),
  failure: Declined,
  queue: "billing",
  maxAttempts: 1,
  tags: ["payments"]
})

/** Started, by report: the test waits on these rather than polling for `running`. */
const exportStarted = {
  "monthly-revenue": Effect.runSync(Deferred.make<void>()),
  "audit-log": Effect.runSync(Deferred.make<void>())
}

/** Reports progress and logs, then runs until cancelled. */
const ExportReport = Task.make("export-report", {
  payload: Schema.Struct({ report: Schema.String, rows: Schema.Int }),
  success: Schema.Struct({ file: Schema.String }),
  failure: Schema.Never,
  queue: "reports"
})

const SendEmail = Task.make("send-email", {
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  success: Schema.Struct({ messageId: Schema.String }),
  failure: Schema.Never,
  queue: "email"
})

const handlers = TaskHandlers.layer(
  TaskHandlers.handler(ResizeImage, (payload, ctx) =>
    Effect.gen(function*() {
      yield* ctx.log(`fetching ${payload.url}`)
      yield* ctx.progress(0.5, "downloaded")
      return { url: `${payload.url}?w=${payload.width}`, bytes: payload.width * 31 }
    })),
  TaskHandlers.handler(ChargeCard, (payload, ctx) =>
    ctx.attempt === 1
      ? Effect.zipRight(
        ctx.log(`card declined for order ${payload.orderId}`, "warn"),
        Effect.fail(new Declined({ message: "insufficient funds", code: "51" }))
      )
      : Effect.succeed({ chargeId: `ch_${payload.orderId}` })),
  TaskHandlers.handler(ExportReport, (payload, ctx) =>
    Effect.gen(function*() {
      yield* ctx.log(`exporting ${payload.report}`)
      yield* ctx.log(`query planned: ${payload.rows} rows`, "debug")
      yield* ctx.progress(0.42, `${Math.round(payload.rows * 0.42)} of ${payload.rows} rows`)
      const started = exportStarted[payload.report as keyof typeof exportStarted]
      if (started) yield* Deferred.succeed(started, undefined)
      return yield* Effect.never
    })),
  TaskHandlers.handler(SendEmail, (payload) => Effect.succeed({ messageId: `<${payload.to}>` }))
)

const definitions = [ResizeImage, ChargeCard, ExportReport, SendEmail]

/** The server; made after the bundle is written (the middleware reads the assets when made). */
const makeServer = (assetsDir: string) =>
  HttpApiBuilder.serve(Dashboard.middleware({ assetsDir })).pipe(
    Layer.provide(Server.layerApi({ token, requestLog: false })),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(
      TaskWorker.layer({
        pollInterval: "50 millis",
        progressInterval: "50 millis",
        shutdownGrace: "50 millis",
        concurrency: 20
      })
    ),
    Layer.provideMerge(Layer.mergeAll(TaskClient.layer, TaskCatalog.layer(definitions), handlers)),
    Layer.provideMerge(MemoryStore.layer)
  )

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

let runtime: ManagedRuntime.ManagedRuntime<Layer.Layer.Success<ReturnType<typeof makeServer>>, unknown> | undefined
let context: BrowserContext | undefined
let profileDir = ""
let assetsDir = ""
let base = ""
/** Every URL the browser requested, to check none leaves the server. */
const requested: Array<string> = []
/** Console errors (CSP violations, scripts' errors, assets not found), API answers aside. */
const consoleErrors: Array<string> = []

interface Answer {
  readonly status: number
  readonly body: any
}

const call = async (
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  auth: string | null = token
): Promise<Answer> => {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(auth === null ? {} : { authorization: `Bearer ${auth}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
}

const submit = async (name: string, payload: unknown, options: Record<string, unknown> = {}): Promise<string> => {
  const answer = await call("POST", "/v1/tasks", { name, payload, ...options })
  assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
  return answer.body.id
}

/** Waits (server-side, up to 10 s) for a task to finish; returns its status. */
const finished = async (id: string): Promise<string> => {
  const answer = await call("GET", `/v1/tasks/${id}/result?waitMs=10000`)
  assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
  assert.isTrue(answer.body.finished, `task ${id} did not finish: ${answer.body.status}`)
  return answer.body.status
}

/** A new tab on the dashboard, with the token in its sessionStorage unless `withToken` is false. */
const open = async (hash: string, options: { readonly withToken?: boolean } = {}): Promise<Page> => {
  const page = await context!.newPage()
  page.on("request", (request) => requested.push(request.url()))
  page.on("console", (message) => {
    // the API's 4xx answers (401 before sign-in, 404 of a missing task) are checked by the tests
    const apiAnswer = message.text().startsWith("Failed to load resource") && message.location().url.includes("/v1/")
    if (message.type() === "error" && !apiAnswer) consoleErrors.push(`${message.text()} ${message.location().url}`)
  })
  page.on("pageerror", (error) => consoleErrors.push(`${error.name}: ${error.message}`))
  if (options.withToken !== false) {
    await page.addInitScript((value) => sessionStorage.setItem("spindle.token", value), token)
  }
  await page.goto(`${base}/${hash}`)
  return page
}

const text = (page: Page, selector: string) => page.locator(selector).first().innerText()

const screenshot = async (page: Page, name: string, docs: boolean) => {
  mkdirSync(outputDir, { recursive: true })
  const file = path.join(outputDir, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  if (docs) {
    mkdirSync(docsDir, { recursive: true })
    copyFileSync(file, path.join(docsDir, `${name}.png`))
  }
}

// Ids of the seeded tasks
const seeded: { running: string; toCancel: string; dead: Array<string>; paused: string; scheduled: string } = {
  running: "",
  toCancel: "",
  dead: [],
  paused: "",
  scheduled: ""
}

describe.skipIf(!hasChromium && !inCi)("Dashboard in Chromium", () => {
  beforeAll(async () => {
    assetsDir = mkdtempSync(path.join(tmpdir(), "spindle-dashboard-assets-"))
    execFileSync(process.execPath, [path.join(packageDir, "scripts", "bundle.mjs"), "--outdir", assetsDir], {
      stdio: "pipe"
    })
    runtime = ManagedRuntime.make(makeServer(assetsDir))
    const address = await runtime.runPromise(HttpServer.HttpServer.pipe(Effect.map((server) => server.address)))
    assert.strictEqual(address._tag, "TcpAddress")
    base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""

    profileDir = mkdtempSync(path.join(tmpdir(), "spindle-chromium-"))
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath,
      headless: true,
      viewport: { width: 1280, height: 860 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
    context.setDefaultTimeout(8_000)

    // A few tasks of several statuses.
    const resized = await Promise.all(
      [320, 640, 800, 1024, 1280, 1920].map((width) =>
        submit("resize-image", { url: `https://img.example/${width}.png`, width })
      )
    )
    seeded.dead = await Promise.all(
      ["A-1001", "A-1002"].map((orderId) => submit("charge-card", { orderId, amountCents: 4999 }))
    )
    seeded.running = await submit("export-report", { report: "monthly-revenue", rows: 10_000 }, { tags: ["finance"] })
    seeded.toCancel = await submit("export-report", { report: "audit-log", rows: 2_500 })
    seeded.scheduled = await submit("send-email", { to: "ada@example.com", subject: "digest" }, { delayMs: 3_600_000 })
    assert.strictEqual((await call("POST", "/v1/queues/email/pause")).status, 200)
    seeded.paused = await submit("send-email", { to: "grace@example.com", subject: "welcome" })
    for (const id of resized) assert.strictEqual(await finished(id), "succeeded")
    for (const id of seeded.dead) assert.strictEqual(await finished(id), "dead")
    await Effect.runPromise(Deferred.await(exportStarted["monthly-revenue"]))
    await Effect.runPromise(Deferred.await(exportStarted["audit-log"]))
  }, 60_000)

  afterAll(async () => {
    await context?.close()
    await runtime?.dispose()
    if (profileDir !== "") rmSync(profileDir, { recursive: true, force: true })
    if (assetsDir !== "") rmSync(assetsDir, { recursive: true, force: true })
  }, 30_000)

  it("asks for the token, refuses a wrong one, then shows counts that match the API", async () => {
    const refused = await call("GET", "/v1/queues", undefined, null)
    assert.strictEqual(refused.status, 401)
    assert.strictEqual(refused.body._tag, "Unauthorized")

    const page = await open("#/", { withToken: false })
    const dialog = page.getByTestId("token-dialog")
    await dialog.waitFor()
    await page.getByTestId("token-input").fill("not-the-token")
    await page.getByTestId("token-submit").click()
    await page.getByTestId("token-error").getByText("Unauthorized").waitFor()
    await screenshot(page, "dashboard-sign-in", false)
    assert.strictEqual(await page.evaluate(() => sessionStorage.getItem("spindle.token")), "not-the-token")
    await page.getByTestId("token-input").fill(token)
    await page.getByTestId("token-submit").click()
    await dialog.waitFor({ state: "detached" })
    await page.locator("[data-testid=queue-row]").first().waitFor()
    await page.locator("[data-testid=live-state][data-state=live]").waitFor()

    const queues = (await call("GET", "/v1/queues")).body as Array<any>
    const stats = (await call("GET", "/v1/stats")).body
    await page.reload()
    await page.locator("[data-testid=queue-row]").first().waitFor()
    assert.sameMembers(
      await page.locator("[data-testid=queue-row]").evaluateAll((rows) =>
        rows.map((row) => row.getAttribute("data-queue"))
      ),
      queues.map((queue) => queue.queue)
    )
    for (const queue of queues) {
      const row = page.locator(`[data-testid=queue-row][data-queue="${queue.queue}"]`)
      assert.strictEqual(await row.getByTestId("queue-state").innerText(), queue.paused ? "paused" : "running")
      for (const [status, count] of Object.entries(queue.counts)) {
        assert.strictEqual(
          await row.locator(`[data-count="${status}"]`).innerText(),
          String(count),
          `${queue.queue} ${status}`
        )
      }
    }
    for (const [status, count] of Object.entries(stats.byStatus)) {
      assert.strictEqual(await text(page, `[data-testid="status-count-${status}"]`), String(count), status)
    }
    assert.strictEqual(await text(page, "[data-testid=metric-total]"), String(stats.total))
    assert.strictEqual(await page.locator("[data-testid=throughput-chart] canvas").count(), 1)
    await page.close()
  })

  it("shows a task submitted through the API without reloading", async () => {
    const page = await open("#/tasks")
    await page.locator("[data-testid=task-row]").first().waitFor()
    await page.locator("[data-testid=live-state][data-state=live]").waitFor()
    const overview = await open("#/")
    await overview.locator("[data-testid=live-state][data-state=live]").waitFor()
    const total = Number(await text(overview, "[data-testid=metric-total]"))

    const id = await submit("resize-image", { url: "https://img.example/live.png", width: 256 })
    const row = page.locator(`[data-testid=task-row][data-task-id="${id}"]`)
    await row.waitFor()
    await page.locator(`[data-testid=task-row][data-task-id="${id}"][data-status=succeeded]`).waitFor()
    await overview.getByTestId("metric-total").getByText(String(total + 1), { exact: true }).waitFor()

    // filters narrow the table, in the address
    await page.locator("label.chip", { hasText: "dead" }).click()
    await page.waitForURL(/#\/tasks\?status=dead$/)
    await page.locator("[data-testid=task-row]").first().waitFor()
    const statuses = await page.locator("[data-testid=task-row]").evaluateAll((rows) =>
      rows.map((row) => row.getAttribute("data-status"))
    )
    assert.deepStrictEqual(statuses, ["dead", "dead"])
    await page.close()
    await overview.close()
  })

  it("pages through the table with the API's cursors", async () => {
    const all = ((await call("GET", "/v1/tasks?limit=1000")).body.items as Array<any>).map((task) => task.id)
    assert.isAbove(all.length, 10)
    const page = await open("#/tasks?limit=5")
    const shown = () =>
      page.locator("[data-testid=task-row]").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-task-id")))
    await page.locator(`[data-testid=task-row][data-task-id="${all[0]}"]`).waitFor()
    assert.deepStrictEqual(await shown(), all.slice(0, 5))
    await page.getByTestId("page-next").click()
    await page.locator(`[data-testid=task-row][data-task-id="${all[5]}"]`).waitFor()
    assert.deepStrictEqual(await shown(), all.slice(5, 10))
    assert.match(page.url(), /limit=5&cursor=/)
    await page.getByTestId("page-previous").click()
    await page.locator(`[data-testid=task-row][data-task-id="${all[0]}"]`).waitFor()
    assert.deepStrictEqual(await shown(), all.slice(0, 5))
    assert.isTrue(await page.getByTestId("page-previous").isDisabled())
    await page.close()
  })

  it("follows a running task live, and cancels it after confirmation", async () => {
    const page = await open(`#/tasks/${seeded.toCancel}`)
    await page.locator("[data-testid=task-status] [data-status=running]").waitFor()
    await page.getByTestId("progress-value").getByText("42%").waitFor()
    await page.getByTestId("log-line").first().waitFor()
    await page.locator("[data-testid=live-state][data-state=live]").waitFor()

    await page.getByTestId("task-cancel").click()
    await page.getByTestId("confirm-dialog").getByText("Keep").click()
    await page.getByTestId("confirm-dialog").waitFor({ state: "detached" })
    assert.strictEqual((await call("GET", `/v1/tasks/${seeded.toCancel}`)).body.status, "running")

    await page.getByTestId("task-cancel").click()
    await page.getByTestId("confirm").click()
    await page.locator("[data-testid=task-status] [data-status=cancelled]").waitFor()
    assert.strictEqual((await call("GET", `/v1/tasks/${seeded.toCancel}`)).body.status, "cancelled")
    await page.locator("[data-testid=task-timeline] [data-step=cancelled]").waitFor()
    await page.close()
  })

  it("shows a dead task's error with its cause, and retries it", async () => {
    const [id] = seeded.dead
    const page = await open(`#/tasks/${id}`)
    await page.getByTestId("task-error-tag").getByText("Declined").waitFor()
    assert.strictEqual(await text(page, "[data-testid=task-error-message]"), "insufficient funds")
    assert.include(await text(page, "[data-testid=task-error-cause]"), "Declined")
    assert.include(await text(page, "[data-testid=task-payload-json]"), "A-1001")

    await page.getByTestId("task-retry").click()
    await page.locator("[data-testid=task-status] [data-status=succeeded]").waitFor()
    await page.getByTestId("task-result-json").getByText("ch_A-1001", { exact: false }).waitFor()
    assert.strictEqual(await text(page, "[data-testid=task-attempts]"), "2 of 2")
    assert.strictEqual((await call("GET", `/v1/tasks/${id}`)).body.status, "succeeded")
    await page.close()
  })

  it("pauses a queue after confirmation and resumes it; a task waiting on it then runs live", async () => {
    const waiting = await open(`#/tasks/${seeded.paused}`)
    await waiting.locator("[data-testid=task-status] [data-status=pending]").waitFor()
    await waiting.locator("[data-testid=live-state][data-state=live]").waitFor()

    const page = await open("#/")
    const images = page.locator("[data-testid=queue-row][data-queue=images]")
    await images.getByTestId("queue-pause").click()
    await page.getByTestId("confirm").click()
    await images.getByTestId("queue-state").getByText("paused").waitFor()
    assert.isTrue((await call("GET", "/v1/queues")).body.find((queue: any) => queue.queue === "images").paused)
    await images.getByTestId("queue-resume").click()
    await images.getByTestId("queue-state").getByText("running").waitFor()

    const email = page.locator("[data-testid=queue-row][data-queue=email]")
    await email.getByTestId("queue-resume").click()
    await email.getByTestId("queue-state").getByText("running").waitFor()
    await waiting.locator("[data-testid=task-status] [data-status=succeeded]").waitFor()
    await page.close()
    await waiting.close()
    // leave the email queue paused again for the screenshots, with one task waiting
    await call("POST", "/v1/queues/email/pause")
    seeded.paused = await submit("send-email", { to: "linus@example.com", subject: "welcome" })
  })

  it("shows the API's errors instead of swallowing them", async () => {
    const page = await open("#/tasks/no-such-task")
    await page.getByTestId("task-not-found").waitFor()
    await page.getByTestId("error-banner").getByText("TaskNotFound").waitFor()
    assert.include(await text(page, "[data-testid=error-banner]"), "404")
    await screenshot(page, "dashboard-error", false)
    await page.close()
  })

  it("fits a narrow window, and takes the screenshots", async () => {
    const overview = await open("#/")
    await overview.locator("[data-testid=queue-row]").first().waitFor()
    await overview.locator("[data-testid=live-state][data-state=live]").waitFor()
    await screenshot(overview, "dashboard-overview", true)

    const task = await open(`#/tasks/${seeded.running}`)
    await task.getByTestId("log-line").first().waitFor()
    await task.getByTestId("progress-value").getByText("42%").waitFor()
    await task.locator("[data-testid=live-state][data-state=live]").waitFor()
    await screenshot(task, "dashboard-task", true)

    const list = await open("#/tasks")
    await list.locator("[data-testid=task-row]").first().waitFor()
    await screenshot(list, "dashboard-tasks", false)

    for (const page of [overview, task, list]) {
      await page.setViewportSize({ width: 380, height: 800 })
      // the widths settle after a layout and the chart's resize observer
      await page.bringToFront()
      await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, undefined, {
        polling: 50,
        timeout: 2000
      }).catch(() => undefined)
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      assert.isAtMost(overflow, 0, `horizontal overflow on ${page.url()}`)
    }
    await screenshot(overview, "dashboard-overview-narrow", false)
    await screenshot(task, "dashboard-task-narrow", false)
    await screenshot(list, "dashboard-tasks-narrow", false)
    await overview.close()
    await list.close()
    await task.close()

    assert.isAbove(requested.length, 0)
    const elsewhere = requested.filter((url) => !url.startsWith(`${base}/`))
    assert.deepStrictEqual(elsewhere, [], "requests that left the server")
    assert.deepStrictEqual(consoleErrors, [], "console errors (CSP violations included)")
  })
})
