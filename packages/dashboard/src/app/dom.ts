/**
 * A tiny element builder: the views are plain functions from data to DOM nodes. Text always
 * goes in as text nodes (never as HTML), so task payloads, names and errors cannot inject
 * markup.
 */

export type Child = Node | string | number | null | undefined | false | ReadonlyArray<Child>

type Listener = (event: any) => void

export type Attrs = {
  readonly [name: string]: string | number | boolean | null | undefined | Listener
}

const append = (parent: Node, child: Child): void => {
  if (child === null || child === undefined || child === false) return
  if (Array.isArray(child)) {
    for (const item of child as ReadonlyArray<Child>) append(parent, item)
  } else if (child instanceof Node) {
    parent.appendChild(child)
  } else {
    parent.appendChild(document.createTextNode(String(child)))
  }
}

/**
 * `h("a", { href: "#/", class: "nav" }, "Overview")`: an element with attributes, listeners
 * (`onclick`, `onsubmit`, …) and children. `true` sets an empty attribute; `false`, `null` and
 * `undefined` leave it out; `value` and `checked` set the property.
 */
export const h = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Array<Child>
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue
      if (typeof value === "function") {
        element.addEventListener(name.slice(2), value)
      } else if (name === "value" || name === "checked") {
        ;(element as any)[name] = value
      } else {
        element.setAttribute(name, value === true ? "" : String(value))
      }
    }
  }
  append(element, children)
  return element
}

/** Replaces the children of `parent`. */
export const replace = (parent: Element, ...children: Array<Child>): void => {
  parent.replaceChildren()
  append(parent, children)
}

/**
 * Calls `f` at most once per `ms`: the first call runs at once, later calls within the window
 * are folded into one run at its end.
 */
export const throttle = (ms: number, f: () => void): { (): void; cancel(): void } => {
  let timer: ReturnType<typeof setTimeout> | undefined
  let last = 0
  let pending = false
  const run = () => {
    timer = undefined
    pending = false
    last = Date.now()
    f()
  }
  const call = () => {
    if (pending) return
    const wait = last + ms - Date.now()
    if (wait <= 0) return run()
    pending = true
    timer = setTimeout(run, wait)
  }
  call.cancel = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    pending = false
  }
  return call
}

/**
 * Runs `load` one at a time: a call while it runs schedules one more run after it (so data
 * changed during a load is read again) and returns the current run's promise.
 */
export const coalesce = (load: () => Promise<void>): () => Promise<void> => {
  let running: Promise<void> | undefined
  let again = false
  return () => {
    if (running) {
      again = true
      return running
    }
    running = (async () => {
      do {
        again = false
        await load()
      } while (again)
    })().finally(() => {
      running = undefined
    })
    return running
  }
}
