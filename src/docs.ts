/** Generated documentation parts: the configuration table comes from the option declarations. */
import { optionsTable, SERVE_OPTIONS } from './config.js';

const START = '<!-- config:start -->';
const END = '<!-- config:end -->';

/** docs/operations.md with the table between its config markers regenerated. */
export function renderOperationsDoc(page: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error('docs/operations.md lacks the config markers');
  return `${page.slice(0, start + START.length)}\n${optionsTable(SERVE_OPTIONS)}\n${page.slice(end)}`;
}
