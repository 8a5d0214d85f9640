import type { Task } from "@spindle/tasks"
import { Option } from "effect"
import type { Service } from "../TaskCatalog.js"

/** @internal */
export const make = (definitions: Iterable<Task.Task.Any>): Service => {
  const byName = new Map<string, Task.Task.Any>()
  for (const definition of definitions) {
    const existing = byName.get(definition.name)
    if (existing !== undefined && existing !== definition) {
      throw new Error(`two task definitions are named "${definition.name}"`)
    }
    byName.set(definition.name, definition)
  }
  const all = Array.from(byName.values()).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return { all, get: (name) => Option.fromNullable(byName.get(name)) }
}
