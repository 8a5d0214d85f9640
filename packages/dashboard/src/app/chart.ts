/**
 * The throughput chart of the overview: tasks succeeded and failed per minute over the last
 * hour, as side-by-side bars drawn by uPlot (canvas, no external requests).
 */
import uPlot from "uplot"
import type { Stats } from "./types.js"

const green = "#1a7f37"
const red = "#cf222e"

const height = (width: number): number => (width < 500 ? 180 : 240)

/** Mounts a chart in `container`; resizes with it. */
export const throughputChart = (container: HTMLElement) => {
  let plot: uPlot | undefined
  let data: uPlot.AlignedData = [[], [], []]
  const bars = (align: -1 | 1) => uPlot.paths.bars!({ size: [0.4, 14, 1], align, gap: 1 })

  const create = () => {
    const width = Math.max(container.clientWidth, 200)
    plot = new uPlot(
      {
        width,
        height: height(width),
        legend: { show: true, live: true },
        cursor: { drag: { x: false, y: false }, points: { show: false } },
        scales: {
          // half a minute of room at both ends: the bars sit beside their minute, not on it
          x: { time: true, range: (_self, min, max) => [min - 30, max + 30] },
          y: { range: (_self, _min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] }
        },
        axes: [
          { stroke: "#57606a", grid: { stroke: "#eaeef2" }, ticks: { stroke: "#d0d7de" } },
          { stroke: "#57606a", grid: { stroke: "#eaeef2" }, ticks: { stroke: "#d0d7de" }, size: 40 }
        ],
        series: [
          { label: "minute" },
          { label: "succeeded", stroke: green, fill: "rgba(26,127,55,0.75)", paths: bars(-1), points: { show: false } },
          { label: "failed", stroke: red, fill: "rgba(207,34,46,0.75)", paths: bars(1), points: { show: false } }
        ]
      },
      data,
      container
    )
  }

  const observer = new ResizeObserver(() => {
    if (!plot) return
    const width = Math.max(container.clientWidth, 200)
    if (width !== plot.width) plot.setSize({ width, height: height(width) })
  })
  observer.observe(container)

  return {
    update: (throughput: Stats["throughput"]) => {
      data = [
        throughput.map((point) => new Date(point.minute).getTime() / 1000),
        // zero as no bar at all (a zero-height bar draws its outline)
        throughput.map((point) => point.succeeded || null),
        throughput.map((point) => point.failed || null)
      ]
      if (plot) plot.setData(data)
      else create()
    },
    destroy: () => {
      observer.disconnect()
      plot?.destroy()
      plot = undefined
    }
  }
}
