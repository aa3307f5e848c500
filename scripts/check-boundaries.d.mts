// Types of check-boundaries.mjs for the TypeScript tests that import it.

export type Rule = 'cycles' | 'engines' | 'layers';

export const RULES: readonly Rule[];

export interface CheckOptions {
  /** The source tree to check; default: the repository's src/. */
  root?: string;
  /** Default: every rule. */
  rules?: readonly Rule[];
}

/** One message per broken rule; empty when every rule holds. */
export function check(options?: CheckOptions): string[];

export function importsOf(file: string): {
  local: { path: string; typeOnly: boolean; statement: string }[];
  packages: string[];
};

export function nodeOf(file: string, root?: string): string;
