/**
 * `ztp dhcp --format isc|kea|dnsmasq --server URL [--platform P ...]`: prints DHCP server
 * configuration that points each platform's zero-touch boot at this server's bootstrap URLs
 * (GET /ztp/bootstrap/{platform}). Pure text generation; docs/devices.md has the recipes.
 *
 * Options that only one kind of device asks for are set for everyone: 114 (ONIE default-url)
 * and 239 (SONiC and Cumulus: one script serves both, the Cumulus marker is a comment to SONiC).
 * Option 67 (Cisco, Arista) and 43 (Juniper) mean different things to different devices (PXE
 * clients read 67 too), so they are given per vendor class: option 60 prefixes below.
 */
import { isIPv4 } from 'node:net';
import { parseArgs } from 'node:util';
import { bootstrapUrl } from '../bootstrap/platforms.js';
import { ConfigError } from '../errors.js';

export const FORMATS = ['isc', 'kea', 'dnsmasq'] as const;
export type Format = (typeof FORMATS)[number];

/** The platforms DHCP can start, in output order. */
export const DHCP_PLATFORMS = [
  'onie',
  'sonic',
  'cumulus',
  'eos',
  'nxos',
  'iosxe',
  'junos',
] as const;
export type DhcpPlatform = (typeof DHCP_PLATFORMS)[number];

/** Option 67 and 43 platforms: the start of the vendor class identifier (option 60) they send. */
const VENDOR_CLASS: Record<'eos' | 'nxos' | 'iosxe' | 'junos', { prefix: string; label: string }> =
  {
    eos: { prefix: 'Arista', label: 'Arista EOS ZTP' },
    nxos: { prefix: 'Cisco', label: 'Cisco NX-OS POAP' },
    iosxe: { prefix: 'ciscopnp', label: 'Cisco IOS-XE ZTP' },
    junos: { prefix: 'Juniper', label: 'Juniper Junos ZTP' },
  };

export interface DhcpRequest {
  format: Format;
  server: string;
  platforms: readonly DhcpPlatform[];
}

interface Plan {
  server: string;
  /** Option 114, ONIE. */
  onie?: string;
  /** Option 239, SONiC and/or Cumulus, and who reads it. */
  provision?: { url: string; who: string };
  /** Option 67 per vendor class. */
  bootfiles: { key: 'eos' | 'nxos' | 'iosxe'; url: string }[];
  /** Option 43 sub-options 1/3/5 and option 150, Juniper. */
  junos?: { address: string; path: string; mode: string; port: string };
}

function plan(req: DhcpRequest): Plan {
  const url = (p: string) => bootstrapUrl(req.server, p);
  const has = (p: DhcpPlatform) => req.platforms.includes(p);
  const out: Plan = { server: req.server, bootfiles: [] };
  if (has('onie')) out.onie = url('onie');
  if (has('sonic') || has('cumulus'))
    out.provision = {
      url: url(has('cumulus') ? 'cumulus' : 'sh'),
      who: [has('sonic') && 'SONiC', has('cumulus') && 'Cumulus'].filter(Boolean).join(' and '),
    };
  for (const key of ['eos', 'nxos', 'iosxe'] as const)
    if (has(key)) out.bootfiles.push({ key, url: url(key) });
  if (has('junos')) {
    const u = new URL(req.server);
    out.junos = {
      address: u.hostname,
      path: 'ztp/bootstrap/junos',
      mode: u.protocol.slice(0, -1),
      port: u.port || (u.protocol === 'https:' ? '443' : '80'),
    };
  }
  return out;
}

const q = (s: string) => JSON.stringify(s);

function isc(p: Plan): string {
  const lines = [
    `# ztp zero-touch bootstrap for ${p.server} (ztp dhcp --format isc), for dhcpd.conf`,
  ];
  if (p.provision) lines.push('option ztp-provision-url code 239 = text;');
  if (p.junos)
    lines.push(
      'option ztp-file-server code 150 = ip-address;',
      'option space ztp-junos;',
      'option ztp-junos.config-file-name code 1 = text;',
      'option ztp-junos.transfer-mode code 3 = text;',
      'option ztp-junos.http-port code 5 = text;',
      'option ztp-junos-encapsulation code 43 = encapsulate ztp-junos;',
    );
  if (p.onie)
    lines.push('', '# ONIE: installer URL (option 114)', `option default-url ${q(p.onie)};`);
  if (p.provision)
    lines.push(
      '',
      `# ${p.provision.who}: provisioning script (option 239)`,
      `option ztp-provision-url ${q(p.provision.url)};`,
    );
  for (const b of p.bootfiles) {
    const vc = VENDOR_CLASS[b.key];
    lines.push(
      '',
      `# ${vc.label}: script URL (option 67), for vendor class ${q(`${vc.prefix}…`)}`,
      `class "ztp-${b.key}" {`,
      `  match if substring(option vendor-class-identifier, 0, ${vc.prefix.length}) = ${q(vc.prefix)};`,
      `  option bootfile-name ${q(b.url)};`,
      '}',
    );
  }
  if (p.junos) {
    const vc = VENDOR_CLASS.junos;
    lines.push(
      '',
      `# ${vc.label}: file server (option 150) and option 43 sub-options 1, 3, 5`,
      'class "ztp-junos" {',
      `  match if substring(option vendor-class-identifier, 0, ${vc.prefix.length}) = ${q(vc.prefix)};`,
      `  option ztp-file-server ${p.junos.address};`,
      `  option ztp-junos.config-file-name ${q(p.junos.path)};`,
      `  option ztp-junos.transfer-mode ${q(p.junos.mode)};`,
      `  option ztp-junos.http-port ${q(p.junos.port)};`,
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}

function dnsmasq(p: Plan): string {
  const lines = [
    `# ztp zero-touch bootstrap for ${p.server} (ztp dhcp --format dnsmasq), for dnsmasq.conf`,
  ];
  if (p.onie) lines.push('', '# ONIE: installer URL (option 114)', `dhcp-option=114,${q(p.onie)}`);
  if (p.provision)
    lines.push(
      '',
      `# ${p.provision.who}: provisioning script (option 239)`,
      `dhcp-option=239,${q(p.provision.url)}`,
    );
  for (const b of p.bootfiles) {
    const vc = VENDOR_CLASS[b.key];
    lines.push(
      '',
      `# ${vc.label}: script URL (option 67), for vendor class ${q(`${vc.prefix}…`)}`,
      `dhcp-vendorclass=set:ztp-${b.key},${vc.prefix}`,
      `dhcp-option=tag:ztp-${b.key},67,${q(b.url)}`,
    );
  }
  if (p.junos) {
    const vc = VENDOR_CLASS.junos;
    lines.push(
      '',
      `# ${vc.label}: file server (option 150) and option 43 sub-options 1, 3, 5`,
      `dhcp-vendorclass=set:ztp-junos,${vc.prefix}`,
      `dhcp-option=tag:ztp-junos,150,${p.junos.address}`,
      `dhcp-option=vendor:${vc.prefix},1,${q(p.junos.path)}`,
      `dhcp-option=vendor:${vc.prefix},3,${q(p.junos.mode)}`,
      `dhcp-option=vendor:${vc.prefix},5,${q(p.junos.port)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function kea(p: Plan): string {
  const optionDef: object[] = [];
  const optionData: object[] = [];
  const classes: object[] = [];
  const test = (prefix: string) => `substring(option[60].hex,0,${prefix.length}) == '${prefix}'`;
  if (p.onie) optionData.push({ code: 114, space: 'dhcp4', data: p.onie });
  if (p.provision) {
    optionDef.push({ name: 'ztp-provision-url', code: 239, type: 'string', space: 'dhcp4' });
    optionData.push({ name: 'ztp-provision-url', space: 'dhcp4', data: p.provision.url });
  }
  for (const b of p.bootfiles)
    classes.push({
      name: `ztp-${b.key}`,
      test: test(VENDOR_CLASS[b.key].prefix),
      'option-data': [{ name: 'boot-file-name', space: 'dhcp4', data: b.url }],
    });
  if (p.junos) {
    const space = 'vendor-encapsulated-options-space';
    optionDef.push(
      { name: 'config-file-name', code: 1, type: 'string', space },
      { name: 'transfer-mode', code: 3, type: 'string', space },
      { name: 'http-port', code: 5, type: 'string', space },
    );
    const hex = p.junos.address
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .join('')
      .toUpperCase();
    classes.push({
      name: 'ztp-junos',
      test: test(VENDOR_CLASS.junos.prefix),
      'option-data': [
        // Option 150 as raw bytes: Kea versions differ on whether they define it.
        { code: 150, space: 'dhcp4', 'csv-format': false, data: hex },
        { name: 'vendor-encapsulated-options', space: 'dhcp4' },
        { name: 'config-file-name', space, data: p.junos.path },
        { name: 'transfer-mode', space, data: p.junos.mode },
        { name: 'http-port', space, data: p.junos.port },
      ],
    });
  }
  const dhcp4: Record<string, unknown> = {};
  if (optionDef.length > 0) dhcp4['option-def'] = optionDef;
  if (optionData.length > 0) dhcp4['option-data'] = optionData;
  if (classes.length > 0) dhcp4['client-classes'] = classes;
  return `${JSON.stringify({ Dhcp4: dhcp4 }, null, 2)}\n`;
}

/** The configuration text; throws ConfigError for a request it cannot serve. */
export function dhcpConfig(req: DhcpRequest): string {
  let url: URL;
  try {
    url = new URL(req.server);
  } catch {
    throw new ConfigError(`--server must be an http:// or https:// URL, got '${req.server}'`);
  }
  if (
    !['http:', 'https:'].includes(url.protocol) ||
    url.pathname !== '/' ||
    url.search ||
    url.username
  )
    throw new ConfigError(
      `--server must be the server's http:// or https:// origin (no path, query or credentials), got '${req.server}'`,
    );
  if (req.platforms.includes('junos') && !isIPv4(url.hostname))
    throw new ConfigError(
      `junos needs --server with an IPv4 address: DHCP option 150 is an address, not a name (got '${url.hostname}')`,
    );
  const p = plan({ ...req, server: url.origin });
  return req.format === 'isc' ? isc(p) : req.format === 'kea' ? kea(p) : dnsmasq(p);
}

const HELP = `Usage: ztp dhcp --format isc|kea|dnsmasq --server URL [--platform P]...

Prints DHCP server configuration that starts each platform's zero-touch boot from this server's
bootstrap scripts (GET {server}/ztp/bootstrap/{platform}):

  onie     option 114 (default-url)          sonic, cumulus  option 239 (one script for both)
  eos      option 67, vendor class Arista    nxos            option 67, vendor class Cisco
  iosxe    option 67, vendor class ciscopnp  junos           option 43.1/43.3/43.5 + 150, vendor class Juniper

--server   the URL devices reach this server at (http(s)://host[:port]); junos needs an IPv4 host
--platform one of ${DHCP_PLATFORMS.join(', ')}; repeat for several (default: all; junos only when
           --server is an IPv4 address)`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        format: { type: 'string' },
        server: { type: 'string' },
        platform: { type: 'string', multiple: true },
      },
      strict: true,
      allowPositionals: false,
    });
    const format = values.format;
    if (format === undefined || !(FORMATS as readonly string[]).includes(format))
      throw new ConfigError(`--format must be one of ${FORMATS.join(', ')}`);
    if (values.server === undefined)
      throw new ConfigError('--server URL is required: the URL devices reach this server at');
    const given = values.platform ?? [];
    for (const p of given)
      if (!(DHCP_PLATFORMS as readonly string[]).includes(p))
        throw new ConfigError(`--platform must be one of ${DHCP_PLATFORMS.join(', ')}, got '${p}'`);
    let platforms = given as DhcpPlatform[];
    if (platforms.length === 0) {
      const ipv4 = URL.canParse(values.server) && isIPv4(new URL(values.server).hostname);
      platforms = DHCP_PLATFORMS.filter((p) => p !== 'junos' || ipv4);
    }
    process.stdout.write(
      dhcpConfig({ format: format as Format, server: values.server, platforms }),
    );
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`ztp dhcp: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}
