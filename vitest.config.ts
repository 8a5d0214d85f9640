import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: [
      "packages/*/vitest.config.ts",
      "examples/*/vitest.config.ts",
      "test/vitest.config.ts",
      "bench/vitest.config.ts"
    ],
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }]]
  }
})
