// Writes src/client/python-script.ts from src/client/ztp_client.py, so the server (under tsx and
// bundled) serves the Python client without a file loader. test/client/python-client.test.ts
// fails when the two differ. Usage: npm run gen:client-py
import { readFileSync, writeFileSync } from 'node:fs';
import * as prettier from 'prettier';

const root = new URL('..', import.meta.url).pathname;
const source = readFileSync(`${root}src/client/ztp_client.py`, 'utf8');
const target = `${root}src/client/python-script.ts`;
const text = `// Generated from src/client/ztp_client.py by \`npm run gen:client-py\`; do not edit.
/**
 * The Python device client served at GET /ztp/client.py; the server replaces
 * ${'`'}${'@@'}ZTP_SERVER${'@@'}${'`'} with its own URL.
 */
export const PYTHON_CLIENT = ${JSON.stringify(source)};
`;
const options = { ...(await prettier.resolveConfig(target)), filepath: target };
writeFileSync(target, await prettier.format(text, options));
console.log(`wrote ${target}`);
