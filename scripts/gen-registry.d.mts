// Types for scripts/gen-registry.mjs, so that TypeScript tests can import it.
/** Path of src/kmip/registry/generated.ts. */
export declare const outPath: string;
/** Text of src/kmip/registry/generated.ts, generated from the registry source JSON. */
export declare function generate(): string;
