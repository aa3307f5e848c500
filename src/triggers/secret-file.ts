/** Reads --manager-secret-file at start: unreadable or empty is a ConfigError (exit 2). */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { parseSecrets, type ManagerSecrets } from './signature.js';

export function readManagerSecretFile(path: string): ManagerSecrets {
  const where = `--manager-secret-file ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw new ConfigError(
      `${where}: cannot be read (${typeof code === 'string' ? code : 'error'})`,
    );
  }
  return parseSecrets(text, where, 'line');
}
