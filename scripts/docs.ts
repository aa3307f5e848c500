// Rewrites the generated parts of docs/operations.md (the configuration table) from src/config.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderOperationsDoc } from '../src/docs.js';

const path = new URL('../docs/operations.md', import.meta.url);
writeFileSync(path, renderOperationsDoc(readFileSync(path, 'utf8')));
