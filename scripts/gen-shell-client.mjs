// Writes src/client/shell-script.ts from src/client/ztp-client.sh, so the server (under tsx and
// bundled) serves the POSIX sh client without a file loader. test/client/shell-client.test.ts
// fails when the two differ. Usage: npm run gen:client-sh
import { readFileSync, writeFileSync } from 'node:fs';
import * as prettier from 'prettier';

const root = new URL('..', import.meta.url).pathname;
const source = readFileSync(`${root}src/client/ztp-client.sh`, 'utf8');
const target = `${root}src/client/shell-script.ts`;
const text = `// Generated from src/client/ztp-client.sh by \`npm run gen:client-sh\`; do not edit.
/**
 * The POSIX sh device client served at GET /ztp/client.sh; the server replaces
 * ${'`'}${'@@'}ZTP_SERVER${'@@'}${'`'} with its own URL.
 */
export const SHELL_CLIENT = ${JSON.stringify(source)};
`;
const options = { ...(await prettier.resolveConfig(target)), filepath: target };
writeFileSync(target, await prettier.format(text, options));
console.log(`wrote ${target}`);
