/**
 * `ztp token create --role ROLE --name NAME [restrictions] [--tokens-file FILE]`: makes a new
 * random API token, prints it (shown only this once) and the line for the tokens file, which
 * stores only its hash. `ztp token hash --role ROLE --name NAME [restrictions]`: the tokens-file
 * line for a token read on stdin. Restrictions: --bind-id, --enroll, --expires, --uses.
 */
import { appendFileSync, chmodSync, existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import {
  generateToken,
  isRole,
  parseBind,
  parseExpiry,
  parseTokens,
  parseUses,
  ROLES,
  TOKEN_SYNTAX,
  tokenLine,
  validateName,
  type Role,
  type TokenOptions,
} from '../security/tokens.js';

const HELP = `Usage: ztp token create --role <role> --name <name> [restrictions] [--tokens-file <file>]
       ztp token hash --role <role> --name <name> [restrictions]  < token

create  prints a new random token (first line; it is shown only once, give it to its holder)
        and its tokens-file line (second line: role:name:sha256[:options]). With --tokens-file
        the line is also appended to that file (created with mode 600); send SIGHUP to the
        server to load it.
hash    prints the tokens-file line of an existing token read from standard input.

Restrictions (device tokens; --expires any token):
  --bind-id <id>     registers only this device: its id or one of its aliases (a MAC in
                     any notation, a serial, or another id); any id or alias of it then
                     registers, and a new device only by this value or as its alias
  --enroll           an enrollment token: creates new devices, then registers only those
  --uses <n>         with --enroll: enrols at most n devices (1 = single use per device)
  --expires <when>   refused (401) from then on: an ISO time with offset
                     (2027-01-31T18:00:00Z), or a duration from now (12h, 30d)

Roles: device (registration), manager (retrieval), admin (everything).
Names: 1-64 characters of A-Z a-z 0-9 . _ @ -`;

const DURATION = /^([0-9]{1,5})(h|d)$/;

/** --expires: an ISO time, or hours/days from now. */
function expiry(text: string, now: number): number {
  const d = DURATION.exec(text);
  const at = d
    ? now + Number(d[1]) * (d[2] === 'h' ? 3_600_000 : 86_400_000)
    : parseExpiry(text, '--expires');
  if (at <= now) throw new ConfigError(`--expires ${text} is not in the future`);
  return at;
}

function parse(argv: string[]): {
  role: Role;
  name: string;
  file: string | undefined;
  options: TokenOptions;
} {
  const { values } = parseArgs({
    args: argv,
    options: {
      role: { type: 'string' },
      name: { type: 'string' },
      'tokens-file': { type: 'string' },
      'bind-id': { type: 'string' },
      enroll: { type: 'boolean' },
      expires: { type: 'string' },
      uses: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.role === undefined || !isRole(values.role))
    throw new ConfigError(`--role must be one of ${ROLES.join(', ')}`);
  if (values.name === undefined) throw new ConfigError('--name is required');
  const options: TokenOptions = {
    bind: values['bind-id'] === undefined ? undefined : parseBind(values['bind-id'], '--bind-id'),
    enroll: values.enroll,
    expiresAt: values.expires === undefined ? undefined : expiry(values.expires, Date.now()),
    maxUses: values.uses === undefined ? undefined : parseUses(values.uses, '--uses'),
  };
  return {
    role: values.role,
    name: validateName(values.name),
    file: values['tokens-file'],
    options,
  };
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
      const { role, name, file, options } = parse(rest);
      const token = generateToken();
      const line = tokenLine(role, name, token, options);
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
      const { role, name, options } = parse(rest);
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const token = Buffer.concat(chunks).toString('utf8').trim();
      if (!TOKEN_SYNTAX.test(token))
        throw new ConfigError('the token on standard input is empty or has invalid characters');
      console.log(tokenLine(role, name, token, options));
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
