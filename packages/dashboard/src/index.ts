/**
 * @spindle/dashboard — the web page of the task service: queues, throughput, tasks, actions,
 * live over the service's event stream.
 *
 * @since 0.1.0
 */

/**
 * The dashboard's page and the middleware serving it next to the API.
 *
 * @since 0.1.0
 */
export * as Dashboard from "./Dashboard.js"
