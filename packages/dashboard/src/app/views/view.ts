import type { TaskEvent } from "../types.js"

/** What the shell needs from a page: its element, a way to re-read it, and live events. */
export interface View {
  readonly element: HTMLElement
  readonly title: string
  /** Re-reads the page's data from the API and renders it; errors go to the banner. */
  readonly refresh: () => Promise<void>
  /** A live event from the stream. */
  readonly onEvent: (event: TaskEvent) => void
  readonly dispose: () => void
}

/** What the shell gives a page. */
export interface Shell {
  /** The events seen on the stream since the page was loaded, oldest first. */
  readonly recentEvents: () => ReadonlyArray<TaskEvent>
}
