/** Generated README parts: the configuration table comes from the option declarations. */
import { optionsTable, SERVE_OPTIONS } from './config.js';

const START = '<!-- config:start -->';
const END = '<!-- config:end -->';

export function renderReadme(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error('README.md lacks the config markers');
  return `${readme.slice(0, start + START.length)}\n${optionsTable(SERVE_OPTIONS)}\n${readme.slice(end)}`;
}
