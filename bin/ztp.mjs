#!/usr/bin/env node
// The published entry point: the CLI is bundled into dist/ by `npm run build` (run by `npm ci`).
import '../dist/cli.mjs';
