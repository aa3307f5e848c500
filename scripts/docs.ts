// Rewrites the generated parts of README.md (the configuration table) from src/config.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderReadme } from '../src/docs.js';

const path = new URL('../README.md', import.meta.url);
writeFileSync(path, renderReadme(readFileSync(path, 'utf8')));
