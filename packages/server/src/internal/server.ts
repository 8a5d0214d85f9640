import type { HttpApi, HttpApp, HttpServer } from "@effect/platform"
import { HttpApiBuilder, HttpApiSwagger, HttpMiddleware } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Dashboard } from "@spindle/dashboard"
import type { TaskClient, TaskStore } from "@spindle/tasks"
import { Layer } from "effect"
import { SpindleApi } from "../Api.js"
import type { Options } from "../Server.js"
import type { TaskCatalog } from "../TaskCatalog.js"
import { resolve } from "./config.js"
import * as Events from "./events.js"
import { handlersLayer } from "./handlers.js"
import { apiMiddlewareLayer, authorizationLayer } from "./middleware.js"

/** @internal */
export const layerApi = (
  options?: Options
): Layer.Layer<HttpApi.Api, never, TaskClient.TaskClient | TaskStore.TaskStore | TaskCatalog> => {
  const config = resolve(options)
  const api = HttpApiBuilder.api(SpindleApi).pipe(
    Layer.provide(Layer.mergeAll(handlersLayer(config), Events.layer({ eventsBuffer: config.eventsBuffer }))),
    Layer.provide(authorizationLayer(config))
  )
  const extras = Layer.mergeAll(
    apiMiddlewareLayer(config),
    HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }),
    HttpApiSwagger.layer({ path: config.swaggerPath })
  )
  return Layer.provideMerge(extras, api)
}

const dashboardOf = (options: Options | undefined): ((app: HttpApp.Default) => HttpApp.Default) | undefined => {
  const dashboard = options?.dashboard ?? true
  return dashboard === false ? undefined : Dashboard.middleware(dashboard === true ? undefined : dashboard)
}

/** @internal */
export const layer = (
  options?: Options
): Layer.Layer<never, never, HttpServer.HttpServer | TaskClient.TaskClient | TaskStore.TaskStore | TaskCatalog> => {
  const served = HttpApiBuilder.serve(dashboardOf(options)).pipe(
    Layer.provide(layerApi(options)),
    // The platform services the router may use (file responses, etags); the HTTP server is the caller's.
    Layer.provide(NodeHttpServer.layerContext)
  )
  return options?.httpSpans === true ? served : HttpMiddleware.withTracerDisabledWhen(served, () => true)
}
