/**
 * `ztp token create --role ROLE --name NAME [--tokens-file FILE]`: makes a new random API token,
 * prints it (shown only this once) and the line for the tokens file, which stores only its hash.
 * `ztp token hash --role ROLE --name NAME`: the tokens-file line for a token read on stdin.
 */
import { appendFileSync, chmodSync, existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import {
  generateToken,
  isRole,
  parseTokens,
  ROLES,
  TOKEN_SYNTAX,
  tokenLine,
  validateName,
  type Role,
} from '../security/tokens.js';

const HELP = `Usage: ztp token create --role <role> --name <name> [--tokens-file <file>]
       ztp token hash --role <role> --name <name>  < token

create  prints a new random token (first line; it is shown only once, give it to its holder)
        and its tokens-file line (second line: role:name:sha256). With --tokens-file the line
        is also appended to that file (created with mode 600); send SIGHUP to the server to
        load it.
hash    prints the tokens-file line of an existing token read from standard input.

Roles: device (registration), manager (retrieval), admin (everything).
Names: 1-64 characters of A-Z a-z 0-9 . _ @ -`;

function parse(argv: string[]): { role: Role; name: string; file: string | undefined } {
  const { values } = parseArgs({
    args: argv,
    options: {
      role: { type: 'string' },
      name: { type: 'string' },
      'tokens-file': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.role === undefined || !isRole(values.role))
    throw new ConfigError(`--role must be one of ${ROLES.join(', ')}`);
  if (values.name === undefined) throw new ConfigError('--name is required');
  return { role: values.role, name: validateName(values.name), file: values['tokens-file'] };
}

function append(file: string, line: string): void {
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '';
  // Refuse to append to a file the server could not load.
  parseTokens(existing, file);
  const separator = existing === '' || existing.endsWith('\n') ? '' : '\n';
  appendFileSync(file, `${separator}${line}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (
    command === undefined ||
    command === '--help' ||
    command === '-h' ||
    rest.includes('--help')
  ) {
    console.log(HELP);
    return command === undefined ? 2 : 0;
  }
  try {
    if (command === 'create') {
      const { role, name, file } = parse(rest);
      const token = generateToken();
      const line = tokenLine(role, name, token);
      if (file !== undefined) append(file, line);
      console.log(token);
      console.log(line);
      console.error(
        file === undefined
          ? `Give the token (first line) to ${name}; it is not stored anywhere. Add the second line to the tokens file.`
          : `Give the token (first line) to ${name}; it is not stored anywhere. Added to ${file}: send SIGHUP to the server to load it.`,
      );
      return 0;
    }
    if (command === 'hash') {
      const { role, name } = parse(rest);
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const token = Buffer.concat(chunks).toString('utf8').trim();
      if (!TOKEN_SYNTAX.test(token))
        throw new ConfigError('the token on standard input is empty or has invalid characters');
      console.log(tokenLine(role, name, token));
      return 0;
    }
    console.error(`ztp token: unknown subcommand '${command}'\n\n${HELP}`);
    return 2;
  } catch (e) {
    if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`ztp token: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}
