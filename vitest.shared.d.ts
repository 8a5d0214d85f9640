/**
 * Shared test configuration: `@spindle/<pkg>` and `@spindle/<pkg>/<Module>` resolve to the
 * TypeScript sources, so tests never need a build first.
 */
declare const _default: import("vite").UserConfig;
export default _default;
//# sourceMappingURL=vitest.shared.d.ts.map