// Types of built.mjs (plain JavaScript, so that the bins run without a build step of their own).

/** Why dist/ENTRY cannot run (missing, or older than the sources in a checkout), or undefined. */
export declare const distProblem: (entry: string) => string | undefined;

/** Import dist/ENTRY; exits 2 with the fix when dist/ is missing or stale. */
export declare const importBuilt: (entry: string) => Promise<Record<string, unknown>>;
