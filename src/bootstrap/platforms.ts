/**
 * What each platform's zero-touch boot environment fetches and runs, with this server's public
 * URL (and the device token it presented, if any) filled in. Pure: the route
 * (src/bootstrap/routes.ts) decides the URL, validates the token and registers the device.
 *
 * Every script registers through the registration API; none embeds more logic than its boot
 * environment forces. docs/devices.md has one recipe per platform.
 */
import { createHash } from 'node:crypto';
import { SHELL_CLIENT } from '../client/shell-script.js';
import { pythonClientFor } from './client-script.js';

/** What a generator is given. */
export interface ScriptContext {
  /** This server's public URL, `scheme://host[:port]`, safe to paste into any script. */
  server: string;
  /** A device token that the fetch presented and the server accepted. */
  token?: string | undefined;
  /** The device id the fetch identified itself with (identity headers), canonical MAC. */
  deviceId?: string | undefined;
}

export interface Platform {
  name: string;
  description: string;
  contentType: string;
  render(ctx: ScriptContext): string;
}

const SH = 'text/x-shellscript; charset=utf-8';
const PY = 'text/x-python; charset=utf-8';

/** The bootstrap URL of a platform, with the token when there is one. */
export function bootstrapUrl(server: string, platform: string, token?: string): string {
  const query = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
  return `${server}/ztp/bootstrap/${platform}${query}`;
}

// --- sh --------------------------------------------------------------------------------------

const SERVED_FROM_LINE = "ZTP_SERVED_FROM='@@ZTP_SERVER@@'\n";
if (!SHELL_CLIENT.includes(SERVED_FROM_LINE))
  throw new Error('src/client/ztp-client.sh no longer has the ZTP_SERVED_FROM line');

/**
 * The POSIX sh client as /ztp/client.sh serves it. A token and an id the fetch presented become
 * defaults (ZTP_TOKEN, ZTP_ID), so the script registers the device under the same id as its
 * identity headers did, and a flag or the environment still wins. Tokens and canonical MACs are
 * of characters that are safe inside single quotes.
 */
function shClient(ctx: ScriptContext, marker = ''): string {
  const lines = [`ZTP_SERVED_FROM='${ctx.server}'`];
  if (ctx.token !== undefined) lines.push(`[ -n "\${ZTP_TOKEN:-}" ] || ZTP_TOKEN='${ctx.token}'`);
  if (ctx.deviceId !== undefined)
    lines.push(`[ -n "\${ZTP_ID:-}\${ZTP_ID_SOURCE:-}" ] || ZTP_ID='${ctx.deviceId}'`);
  const text = SHELL_CLIENT.replace(SERVED_FROM_LINE, `${lines.join('\n')}\n`);
  // Right after the shebang: Cumulus reads the whole file for it, a comment is enough.
  return marker === '' ? text : text.replace('#!/bin/sh\n', `#!/bin/sh\n${marker}\n`);
}

// --- ONIE ------------------------------------------------------------------------------------

/**
 * An ONIE installer. ONIE runs it with BusyBox (ash, wget) and exports onie_eth_addr (the
 * management MAC, the ONIE-ETH-ADDR its fetch already sent) and, after DHCP, onie_disco_ip.
 * BusyBox wget can only GET and POST, so it registers by POST with a form body. This server
 * configures no NOS image, so the installer always exits non-zero after registering: ONIE then
 * goes on to its next discovery method (a NOS installer named by DHCP, USB, the waterfall).
 */
function onieInstaller(ctx: ScriptContext): string {
  return `#!/bin/sh
# ztp ONIE installer, served by the ztp server at /ztp/bootstrap/onie. ONIE runs it with
# BusyBox: it registers this switch (id: the management MAC) and exits 1, so that ONIE carries
# on looking for a NOS installer; this server provides none.

ZTP_SERVER='${ctx.server}'
ZTP_TOKEN='${ctx.token ?? ''}'

say() { echo "ztp: $*" >&2; }

mac=\${onie_eth_addr:-}
[ -n "$mac" ] || mac=$(onie-sysinfo -e 2>/dev/null)
case $mac in
  '' | *[!0-9A-Fa-f:]*)
    say "cannot find the management MAC (onie_eth_addr, onie-sysinfo -e): '$mac'"
    exit 2
    ;;
esac
ip=\${onie_disco_ip:-}
case $ip in *[!0-9A-Fa-f.:]*) ip= ;; esac

# No ip: the server records the address the request came from.
body=
[ -z "$ip" ] || body="ip=$ip"
# No -T: BusyBox 1.35's wget crashes when a timeout is combined with --post-data.
set -- -q -O /dev/null --post-data "$body" \\
  --header 'Content-Type: application/x-www-form-urlencoded'
[ -z "$ZTP_TOKEN" ] || set -- "$@" --header "Authorization: Bearer $ZTP_TOKEN"
if wget "$@" "$ZTP_SERVER/ztp/register/$mac"; then
  say "registered $mac with $ZTP_SERVER; no NOS installer here, ONIE continues discovery"
  exit 1
fi
say "registration of $mac with $ZTP_SERVER failed; ONIE will try again"
exit 2
`;
}

// --- SONiC -----------------------------------------------------------------------------------

/**
 * A SONiC ZTP JSON (DHCP option 67). One section whose user-defined plugin is the sh client: the
 * ZTP service downloads it (with its SERIAL-NUMBER/BASE-MAC-ADDRESS headers, so that fetch
 * registers too) and runs it. `ignore-section-data` keeps SONiC from passing the section file as
 * an argument, which the client would refuse. `restart-ztp-no-config` off: this file brings no
 * config_db.json, and SONiC would otherwise restart ZTP forever.
 */
function sonicZtpJson(ctx: ScriptContext): string {
  const doc = {
    ztp: {
      '01-ztp-register': {
        plugin: {
          url: {
            source: bootstrapUrl(ctx.server, 'sh', ctx.token),
            destination: '/var/run/ztp/plugins/ztp-register',
          },
          'ignore-section-data': true,
        },
        'ignore-result': false,
      },
      'restart-ztp-no-config': false,
    },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

// --- Python ----------------------------------------------------------------------------------

/**
 * A Python 2.7/3 bootstrap: fetches `{server}/ztp/client.py` and runs it in this interpreter (no
 * subprocess: NX-OS POAP and the IOS-XE guest shell need not have a `python` on PATH), with
 * --server and --token. `extraFetch` is platform code that tries another way to download when
 * urllib cannot reach the server. Server and token are JSON strings, valid Python literals.
 */
function pythonBootstrap(
  ctx: ScriptContext,
  opts: { shebang: string; platform: string; header?: string; extraFetch?: string },
): string {
  const lines = [
    opts.shebang,
    ...(opts.header === undefined ? [] : [opts.header]),
    `# ztp bootstrap for ${opts.platform}, served by the ztp server at /ztp/bootstrap/${opts.platform}:`,
    '# downloads the ztp Python client from the same server and runs it, which registers this',
    '# device. Runs on Python 2.7 and 3.',
    'import sys',
    '',
    `SERVER = ${JSON.stringify(ctx.server)}`,
    `TOKEN = ${JSON.stringify(ctx.token ?? '')}`,
    '',
    '',
    'def fetch(url):',
    '    try:',
    '        from urllib.request import urlopen',
    '    except ImportError:',
    '        from urllib2 import urlopen',
    '    try:',
    '        return urlopen(url, timeout=30).read()',
    '    except Exception as e:',
    '        first = e',
    ...(opts.extraFetch === undefined ? [] : opts.extraFetch.split('\n')),
    "    raise SystemExit('ztp: cannot download %s: %s' % (url, first))",
    '',
    '',
    'def main():',
    "    url = SERVER + '/ztp/client.py'",
    '    code = fetch(url)',
    "    sys.argv = ['ztp_client.py', '--server', SERVER]",
    '    if TOKEN:',
    "        sys.argv += ['--token', TOKEN]",
    "    scope = {'__name__': '__main__', '__file__': 'ztp_client.py'}",
    "    exec(compile(code, 'ztp_client.py', 'exec'), scope)",
    '',
    '',
    "if __name__ == '__main__':",
    '    main()',
    '',
  ];
  return lines.join('\n');
}

/**
 * NX-OS POAP runs Python in the switch's default VRF, where the management network may not be
 * routed; its `cli` module can copy over the management VRF instead.
 */
const NXOS_FETCH = `    try:
        from cli import cli
        cli('copy %s bootflash:ztp_client.py vrf management' % url)
        with open('/bootflash/ztp_client.py', 'rb') as f:
            return f.read()
    except Exception:
        pass`;

const MD5_LINE = /^#md5sum=.*$/m;

/**
 * NX-OS POAP checks a script against its `#md5sum="…"` line: the MD5 of the file with every line
 * that starts with `#md5sum` deleted (Cisco's recipe: `sed '/^#md5sum/d' f | md5sum`). The text
 * must hold exactly one such line; its value is replaced.
 */
export function withPoapMd5(text: string): string {
  const without = text
    .split('\n')
    .filter((line) => !line.startsWith('#md5sum'))
    .join('\n');
  const md5 = createHash('md5').update(without, 'utf8').digest('hex');
  return text.replace(MD5_LINE, `#md5sum="${md5}"`);
}

function pythonClient(ctx: ScriptContext): string {
  return pythonClientFor(ctx.server, ctx.token);
}

// --- the list --------------------------------------------------------------------------------

export const PLATFORMS: readonly Platform[] = [
  {
    name: 'sh',
    description:
      'POSIX sh client for Linux boxes (curl or GNU wget), the same text as /ztp/client.sh',
    contentType: SH,
    render: (ctx) => shClient(ctx),
  },
  {
    name: 'python',
    description: 'Python 2.7/3 client for devices with Python and no sh tools',
    contentType: PY,
    render: pythonClient,
  },
  {
    name: 'onie',
    description:
      'ONIE installer (DHCP option 114): registers the switch and lets ONIE continue discovery',
    contentType: SH,
    render: onieInstaller,
  },
  {
    name: 'sonic',
    description: 'SONiC ZTP JSON (DHCP option 67) whose one section runs the sh client',
    contentType: 'application/json; charset=utf-8',
    render: sonicZtpJson,
  },
  {
    name: 'cumulus',
    description: 'Cumulus Linux ZTP script (DHCP option 239): the sh client with its marker',
    contentType: SH,
    render: (ctx) => shClient(ctx, '# CUMULUS-AUTOPROVISIONING'),
  },
  {
    name: 'nxos',
    description: 'Cisco NX-OS POAP script (DHCP option 67), with its #md5sum line',
    contentType: PY,
    render: (ctx) =>
      withPoapMd5(
        pythonBootstrap(ctx, {
          shebang: '#!/bin/env python3',
          header: '#md5sum="0"',
          platform: 'nxos',
          extraFetch: NXOS_FETCH,
        }),
      ),
  },
  {
    name: 'eos',
    description: 'Arista EOS ZTP script (DHCP option 67)',
    contentType: PY,
    render: (ctx) => pythonBootstrap(ctx, { shebang: '#!/usr/bin/env python', platform: 'eos' }),
  },
  {
    name: 'iosxe',
    description: 'Cisco IOS-XE ZTP script for the guest shell (DHCP option 67)',
    contentType: PY,
    render: (ctx) => pythonBootstrap(ctx, { shebang: '#!/usr/bin/env python', platform: 'iosxe' }),
  },
  {
    name: 'junos',
    description: 'Juniper Junos ZTP script (DHCP option 43 sub-option 1, with option 150)',
    contentType: PY,
    // Junos runs a ZTP file as a script only with one of its own interpreter paths.
    render: (ctx) => pythonBootstrap(ctx, { shebang: '#!/usr/bin/python', platform: 'junos' }),
  },
];

const BY_NAME: ReadonlyMap<string, Platform> = new Map(PLATFORMS.map((p) => [p.name, p]));

export function platformNamed(name: string): Platform | undefined {
  return BY_NAME.get(name);
}
