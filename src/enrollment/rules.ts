/**
 * Enrollment rules (`--enrollment-rules FILE`): which unknown devices are accepted without an
 * operator. One rule per line, `#` starts a comment:
 *
 *     mac-prefix 00:1b:21          a MAC (the id or a mac alias) from this vendor prefix (OUI)
 *     serial FOC1234X5678          this serial number (the id or a serial alias)
 *     serial-pattern FOC2*         a serial matching this glob (* any run, ? one character)
 *     source 10.20.0.0/16          the registration came from this network
 *
 * Matching is case-insensitive. The first matching rule wins; a device shows which rule would
 * have accepted it (or none) while it waits for approval. A file with an error is refused as a
 * whole, naming the line, so a reload never leaves half a rule set in force.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../errors.js';

export const RULE_KINDS = ['mac-prefix', 'serial', 'serial-pattern', 'source'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export interface Rule {
  kind: RuleKind;
  /** The value as written in the file. */
  value: string;
  /** Where it is written: `FILE:LINE`. */
  where: string;
}

/** What a rule can see of a registering device. */
export interface Candidate {
  /** Canonical MAC addresses of the device (its id when that is a MAC, its mac aliases). */
  macs: readonly string[];
  /** Serial numbers of the device (its id when it is not a MAC, its serial aliases). */
  serials: readonly string[];
  /** The address the registration came from ('' when unknown). */
  source: string;
}

/** At most this many rules in one file: a rule set is read on every unknown registration. */
export const RULES_MAX = 10_000;

const HEX_PREFIX = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){0,5}$/i;
const SERIAL = /^[A-Za-z0-9._:/-]{1,128}$/;
const PATTERN = /^[A-Za-z0-9._:/*?-]{1,128}$/;

interface Compiled {
  rule: Rule;
  matches(c: Candidate): boolean;
}

export class RuleSet {
  private constructor(private readonly compiled: readonly Compiled[]) {}

  static readonly empty = new RuleSet([]);

  /** Parses rules-file text; throws ConfigError naming `source:line` at the first bad line. */
  static parse(text: string, source: string): RuleSet {
    const compiled: Compiled[] = [];
    text.split(/\r?\n/).forEach((raw, index) => {
      const line = raw.replace(/#.*$/, '').trim();
      if (line === '') return;
      const where = `${source}:${index + 1}`;
      const [kind, value, ...extra] = line.split(/\s+/) as [
        string,
        string | undefined,
        ...string[],
      ];
      if (!(RULE_KINDS as readonly string[]).includes(kind))
        throw new ConfigError(
          `${where}: unknown rule '${kind}'; rules are ${RULE_KINDS.join(', ')}`,
        );
      if (value === undefined) throw new ConfigError(`${where}: '${kind}' needs a value`);
      if (extra.length > 0)
        throw new ConfigError(`${where}: one value per rule, got '${[value, ...extra].join(' ')}'`);
      if (compiled.length >= RULES_MAX)
        throw new ConfigError(`${where}: more than ${RULES_MAX} rules in one file`);
      const rule: Rule = { kind: kind as RuleKind, value, where };
      compiled.push({ rule, matches: matcher(rule) });
    });
    return new RuleSet(compiled);
  }

  get size(): number {
    return this.compiled.length;
  }

  get rules(): Rule[] {
    return this.compiled.map((c) => c.rule);
  }

  /** The first rule that accepts the candidate, or undefined. */
  match(candidate: Candidate): Rule | undefined {
    return this.compiled.find((c) => c.matches(candidate))?.rule;
  }
}

function matcher(rule: Rule): (c: Candidate) => boolean {
  const { kind, value, where } = rule;
  switch (kind) {
    case 'mac-prefix': {
      if (!HEX_PREFIX.test(value))
        throw new ConfigError(
          `${where}: '${value}' is not a MAC prefix (1-6 hex octets, e.g. 00:1b:21 or 001b21)`,
        );
      const prefix = value
        .toLowerCase()
        .replace(/[:-]/g, '')
        .replace(/(..)(?!$)/g, '$1:');
      return (c) => c.macs.some((mac) => mac.startsWith(prefix));
    }
    case 'serial': {
      if (!SERIAL.test(value)) throw new ConfigError(`${where}: '${value}' is not a serial number`);
      const serial = value.toLowerCase();
      return (c) => c.serials.some((s) => s.toLowerCase() === serial);
    }
    case 'serial-pattern': {
      if (!PATTERN.test(value))
        throw new ConfigError(
          `${where}: '${value}' is not a serial pattern (serial characters, * and ?)`,
        );
      const escaped = value.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.');
      const re = new RegExp(`^${escaped}$`, 'i');
      return (c) => c.serials.some((s) => re.test(s));
    }
    case 'source': {
      const block = parseCidr(value, where);
      return (c) => {
        const ip = c.source.startsWith('::ffff:') ? c.source.slice(7) : c.source;
        if (isIPv4(ip)) return block.check(ip, 'ipv4');
        if (isIPv6(ip)) return block.check(ip, 'ipv6');
        return false;
      };
    }
  }
}

function parseCidr(value: string, where: string): BlockList {
  const [address = '', bits, ...rest] = value.split('/');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (
    family === undefined ||
    rest.length > 0 ||
    (bits !== undefined && !/^\d{1,3}$/.test(bits)) ||
    prefix > max
  )
    throw new ConfigError(
      `${where}: '${value}' is not an address or network (e.g. 10.20.0.0/16, 2001:db8::/32)`,
    );
  const block = new BlockList();
  block.addSubnet(address, prefix, family);
  return block;
}
