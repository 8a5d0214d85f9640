/** How numbers, times and durations read on the page. */

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

export const count = (n: number): string => integer.format(n)

/** `42%`, `99.5%`: one decimal when it is not zero. */
export const percent = (fraction: number): string => {
  if (!Number.isFinite(fraction)) return "–"
  const tenths = Math.round(fraction * 1000)
  return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)}%`
}

/** `850 ms`, `1.2 s`, `3 min 4 s`, `2 h 5 min`. */
export const duration = (ms: number | null | undefined): string => {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "–"
  if (ms < 1000) return `${Math.round(ms)} ms`
  const seconds = ms / 1000
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours} h ${minutes % 60} min`
  return `${Math.floor(hours / 24)} d ${hours % 24} h`
}

const pad = (n: number): string => String(n).padStart(2, "0")

/** `14:03:27` today, `2026-11-21 14:03` another day (local time). */
export const time = (iso: string | null | undefined): string => {
  if (iso === null || iso === undefined) return "–"
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  const now = new Date()
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  return date.toDateString() === now.toDateString()
    ? clock
    : `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clock.slice(0, 5)}`
}

/** `12 s ago`, `in 3 min`. */
export const relative = (iso: string | null | undefined, now = Date.now()): string => {
  if (iso === null || iso === undefined) return "–"
  const at = new Date(iso).getTime()
  if (Number.isNaN(at)) return iso
  const delta = at - now
  if (Math.abs(delta) < 1000) return "now"
  const text = duration(Math.abs(delta)).replace(/^(\d+(?:\.\d)?) (\w+).*$/, "$1 $2")
  return delta < 0 ? `${text} ago` : `in ${text}`
}

/** JSON for a `<pre>`, two-space indented. */
export const json = (value: unknown): string => {
  if (value === undefined) return "undefined"
  try {
    return JSON.stringify(value, null, 2)
  } catch {
    return String(value)
  }
}

/** The full ISO time, for `title` tooltips. */
export const iso = (value: string | null | undefined): string | undefined => {
  if (value === null || value === undefined) return undefined
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : date.toISOString()
}
