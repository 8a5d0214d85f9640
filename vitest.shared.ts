import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const root = path.dirname(fileURLToPath(import.meta.url))

/**
 * Shared test configuration: `@spindle/<pkg>` and `@spindle/<pkg>/<Module>` resolve to the
 * TypeScript sources, so tests never need a build first.
 */
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@spindle\/([a-z-]+)$/, replacement: path.join(root, "packages/$1/src/index.ts") },
      { find: /^@spindle\/([a-z-]+)\/(.+)$/, replacement: path.join(root, "packages/$1/src/$2.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    fakeTimers: { toFake: undefined }
  }
})
