/**
 * The page's shared pieces: the error banner, the confirmation and token dialogs, status
 * badges, and `action` (a button that runs a request and reports its error).
 */
import { ApiError } from "./api.js"
import { h, replace } from "./dom.js"
import type { TaskStatus } from "./types.js"

// -----------------------------------------------------------------------------
// Error banner
// -----------------------------------------------------------------------------

const issuePath = (path: ReadonlyArray<string | number>): string =>
  path.length === 0 ? "(root)" : path.map(String).join(".")

/** The banner's content for an error: its tag, message and issues. */
export const describeError = (error: unknown, context?: string): HTMLElement => {
  const apiError = error instanceof ApiError
    ? error
    : new ApiError(
      0,
      error instanceof Error ? error.name : "Error",
      error instanceof Error ? error.message : String(error)
    )
  return h(
    "div",
    { class: "error-body" },
    h(
      "p",
      null,
      context ? h("span", { class: "error-context" }, `${context}: `) : null,
      h("strong", { class: "error-tag", "data-testid": "error-tag" }, apiError.tag),
      apiError.status > 0 ? h("span", { class: "muted" }, ` (HTTP ${apiError.status})`) : null,
      apiError.message === "" ? null : [" — ", h("span", { "data-testid": "error-message" }, apiError.message)]
    ),
    apiError.issues.length === 0 ? null : h(
      "ul",
      { class: "issues" },
      apiError.issues.map((issue) => h("li", null, h("code", null, issuePath(issue.path)), " ", issue.message))
    )
  )
}

let bannerHost: HTMLElement | undefined

export const mountBanner = (host: HTMLElement): void => {
  bannerHost = host
}

/** Shows `error` in the banner (replacing the previous one) until dismissed or cleared. */
export const showError = (error: unknown, context?: string): void => {
  if (!bannerHost) return
  replace(
    bannerHost,
    h(
      "div",
      { class: "banner", role: "alert", "data-testid": "error-banner" },
      describeError(error, context),
      h("button", { class: "banner-close", type: "button", "aria-label": "Dismiss", onclick: clearError }, "×")
    )
  )
}

export const clearError = (): void => {
  if (bannerHost) replace(bannerHost)
}

// -----------------------------------------------------------------------------
// Dialogs
// -----------------------------------------------------------------------------

/**
 * Asks before a destructive action. Resolves true when confirmed; Escape, the backdrop and the
 * "Keep" button resolve false.
 */
export const confirmAction = (options: {
  readonly title: string
  readonly body: string
  readonly confirm: string
}): Promise<boolean> =>
  new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "dialog", "data-testid": "confirm-dialog" },
      h(
        "form",
        { method: "dialog" },
        h("h2", null, options.title),
        h("p", null, options.body),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { type: "submit", value: "cancel", class: "button" }, "Keep"),
          h(
            "button",
            { type: "submit", value: "confirm", class: "button danger", "data-testid": "confirm" },
            options.confirm
          )
        )
      )
    )
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm")
      dialog.remove()
    })
    document.body.appendChild(dialog)
    dialog.showModal()
  })

let tokenDialog: HTMLDialogElement | undefined

/**
 * Asks for the bearer token (after a 401); `onToken` gets what was entered. Shown once even
 * when several requests fail together; shows the service's answer to a token that was
 * entered (`error`), none on a first visit.
 */
export const promptToken = (error: ApiError | undefined, onToken: (token: string) => void): void => {
  const content = error === undefined ? null : describeError(error)
  if (tokenDialog?.open) {
    replace(tokenDialog.querySelector(".dialog-error")!, content)
    return
  }
  const message = h("div", { class: "dialog-error", "data-testid": "token-error" }, content)
  const input = h("input", {
    type: "password",
    name: "token",
    required: true,
    autocomplete: "current-password",
    placeholder: "Bearer token",
    "aria-label": "Bearer token",
    "data-testid": "token-input"
  })
  const dialog: HTMLDialogElement = h(
    "dialog",
    { class: "dialog", "data-testid": "token-dialog" },
    h(
      "form",
      {
        method: "dialog",
        onsubmit: (event: SubmitEvent) => {
          event.preventDefault()
          const token = input.value.trim()
          if (token === "") return
          dialog.close()
          onToken(token)
        }
      },
      h("h2", null, "Sign in"),
      h(
        "p",
        null,
        "This service requires a bearer token. It is kept in this tab only (sessionStorage) and sent with every request."
      ),
      message,
      input,
      h(
        "div",
        { class: "dialog-actions" },
        h("button", { type: "submit", class: "button primary", "data-testid": "token-submit" }, "Sign in")
      )
    )
  )
  dialog.addEventListener("cancel", (event) => event.preventDefault())
  dialog.addEventListener("close", () => {
    dialog.remove()
    if (tokenDialog === dialog) tokenDialog = undefined
  })
  tokenDialog = dialog
  document.body.appendChild(dialog)
  dialog.showModal()
  input.focus()
}

// -----------------------------------------------------------------------------
// Small pieces
// -----------------------------------------------------------------------------

export const statusBadge = (status: TaskStatus): HTMLElement =>
  h("span", { class: `badge status-${status}`, "data-status": status }, status)

/**
 * A button that runs `run` when clicked (after `confirm`, if given): disabled while it runs,
 * its error shown in the banner, `done` called after a success.
 */
export const action = (options: {
  readonly label: string
  readonly run: () => Promise<unknown>
  readonly done?: () => void
  readonly confirm?: { readonly title: string; readonly body: string; readonly confirm: string }
  readonly className?: string
  readonly testId?: string
}): HTMLButtonElement => {
  const button: HTMLButtonElement = h("button", {
    type: "button",
    class: `button ${options.className ?? ""}`.trim(),
    "data-testid": options.testId,
    onclick: async () => {
      if (options.confirm && !(await confirmAction(options.confirm))) return
      button.disabled = true
      try {
        await options.run()
        clearError()
        options.done?.()
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) showError(error, options.label)
      } finally {
        button.disabled = false
      }
    }
  }, options.label)
  return button
}

/** A labelled value in a definition list. */
export const field = (label: string, ...value: Array<Node | string | null>): Array<HTMLElement> => [
  h("dt", null, label),
  h("dd", null, ...value)
]
