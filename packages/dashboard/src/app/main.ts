/**
 * The dashboard's entry point: the shell (header, navigation, live indicator, error banner),
 * the hash router, the live event stream shared by every page, and the token prompt.
 */
import "uplot/dist/uPlot.min.css"
import "./styles.css"
import { getToken, onUnauthorized, setToken } from "./api.js"
import { h, replace } from "./dom.js"
import { connect } from "./events.js"
import type { StreamState } from "./events.js"
import { href, parse } from "./router.js"
import type { TaskEvent } from "./types.js"
import { clearError, mountBanner, promptToken, showError } from "./ui.js"
import { overview } from "./views/overview.js"
import { task } from "./views/task.js"
import { tasks } from "./views/tasks.js"
import type { View } from "./views/view.js"

const recentLimit = 2000
const recent: Array<TaskEvent> = []

const stateLabels: { readonly [S in StreamState]: string } = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  unauthorized: "signed out",
  stopped: "offline"
}

const indicator = h("span", { class: "live", "data-testid": "live-state", "data-state": "connecting" }, "connecting…")
const signOut = h("button", { type: "button", class: "button subtle", "data-testid": "sign-out" }, "Sign out")
const navOverview = h("a", { href: href.overview() }, "Overview")
const navTasks = h("a", { href: href.tasks() }, "Tasks")
const banner = h("div", { class: "banner-host", "aria-live": "polite" })
const main = h("main", { id: "main" })

document.body.replaceChildren(
  h(
    "header",
    { class: "topbar" },
    h(
      "a",
      { class: "brand", href: href.overview() },
      h("span", { class: "brand-mark", "aria-hidden": "true" }),
      "Spindle"
    ),
    h("nav", { class: "nav", "aria-label": "Main" }, navOverview, navTasks),
    h("div", { class: "topbar-right" }, indicator, signOut)
  ),
  banner,
  main
)
mountBanner(banner)

let view: View | undefined

const render = () => {
  const route = parse(location.hash)
  view?.dispose()
  clearError()
  switch (route._tag) {
    case "overview":
      view = overview()
      break
    case "tasks":
      view = tasks(route.query)
      break
    case "task":
      view = task(route.id, { recentEvents: () => recent })
      break
    case "notFound":
      view = undefined
      replace(
        main,
        h(
          "div",
          { class: "page" },
          h("h1", null, "Not found"),
          h("p", null, "Nothing lives at ", h("code", null, `#${route.path}`), ". ", h("a", { href: "#/" }, "Overview"))
        )
      )
      document.title = "Not found · Spindle"
      return
  }
  navOverview.classList.toggle("active", route._tag === "overview")
  navTasks.classList.toggle("active", route._tag !== "overview")
  document.title = `${view.title} · Spindle`
  replace(main, view.element)
  window.scrollTo(0, 0)
  void view.refresh()
}

const stream = connect({
  onEvent: (event) => {
    recent.push(event)
    if (recent.length > recentLimit) recent.splice(0, recent.length - recentLimit)
    view?.onEvent(event)
  },
  onReset: () => void view?.refresh(),
  onState: (state, error) => {
    indicator.dataset.state = state
    indicator.textContent = stateLabels[state]
    indicator.title = error ? `${error.tag}: ${error.message}` : ""
  }
})

const updateSignOut = () => {
  signOut.hidden = getToken() === null
}

onUnauthorized((error) =>
  promptToken(getToken() === null ? undefined : error, (token) => {
    setToken(token)
    updateSignOut()
    clearError()
    void view?.refresh()
    stream.restart()
  })
)

signOut.addEventListener("click", () => {
  setToken(null)
  updateSignOut()
  stream.restart()
  void view?.refresh()
})

window.addEventListener("hashchange", render)
window.addEventListener("unhandledrejection", (event) => showError(event.reason))
updateSignOut()
render()
