// Bundles the dashboard's browser app (src/app) into dist/assets: app.js and app.css
// (minified, with source maps), favicon.svg, and index.html referencing them with a content
// hash query (`assets/app.js?v=<hash>`) for cache busting. Deterministic: the same sources give
// the same bytes. Usage: node scripts/bundle.mjs [--outdir <dir>]
import { createHash } from "node:crypto"
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const app = path.join(root, "src", "app")

const outdirArg = process.argv.indexOf("--outdir")
const outdir = outdirArg === -1 ? path.join(root, "dist", "assets") : path.resolve(process.argv[outdirArg + 1] ?? "")
if (outdirArg !== -1 && process.argv[outdirArg + 1] === undefined) {
  console.error("bundle: --outdir needs a directory")
  process.exit(2)
}

/** The hash the server compares a `?v=` query with (see src/internal/dashboard.ts). */
const contentHash = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 16)

const started = performance.now()
await rm(outdir, { recursive: true, force: true })
await mkdir(outdir, { recursive: true })

await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: path.join(app, "main.ts") },
  outdir,
  entryNames: "[name]",
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome111", "firefox113", "safari16.4"],
  minify: true,
  sourcemap: "linked",
  sourcesContent: true,
  legalComments: "linked",
  charset: "utf8",
  tsconfig: path.join(root, "tsconfig.app.json"),
  logLevel: "warning"
})

await copyFile(path.join(app, "favicon.svg"), path.join(outdir, "favicon.svg"))

let html = await readFile(path.join(app, "index.html"), "utf8")
for (const name of ["app.js", "app.css", "favicon.svg"]) {
  const hash = contentHash(await readFile(path.join(outdir, name)))
  html = html.replaceAll(`"assets/${name}"`, `"assets/${name}?v=${hash}"`)
}
await writeFile(path.join(outdir, "index.html"), html)

console.log(
  `bundle: ${path.relative(process.cwd(), outdir) || "."} in ${Math.round(performance.now() - started)} ms`
)
