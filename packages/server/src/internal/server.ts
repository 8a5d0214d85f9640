import type { HttpApi, HttpServer } from "@effect/platform"
import type { TaskClient, TaskStore } from "@spindle/tasks"
import { Layer } from "effect"
import type { Options } from "../Server.js"
import type { TaskCatalog } from "../TaskCatalog.js"

// CONTRACT STUB: the server helper replaces this file.

/** @internal */
export const layerApi = (
  _options?: Options
): Layer.Layer<HttpApi.Api, never, TaskClient.TaskClient | TaskStore.TaskStore | TaskCatalog> =>
  Layer.die("Server.layerApi: not implemented yet")

/** @internal */
export const layer = (
  _options?: Options
): Layer.Layer<never, never, HttpServer.HttpServer | TaskClient.TaskClient | TaskStore.TaskStore | TaskCatalog> =>
  Layer.die("Server.layer: not implemented yet")
