/**
 * `ztp dhcp`: the printed configuration for each format equals its committed golden file
 * (test/cli/fixtures/dhcp-*.golden; after an intended change, regenerate them with
 * `node bin/ztp.mjs dhcp --format F --server http://192.0.2.10:8080`), dnsmasq accepts its
 * file when installed, and bad arguments are refused with exit code 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dhcpConfig, DHCP_PLATFORMS, FORMATS } from '../../src/cli/dhcp.js';
import { BIN, run, which } from '../client/support.js';
import { tempDir } from '../helpers.js';

const SERVER = 'http://192.0.2.10:8080';
const golden = (format: string) =>
  readFileSync(new URL(`fixtures/dhcp-${format}.golden`, import.meta.url), 'utf8');
const tmp = tempDir('ztp-dhcp-');
after(() => tmp.cleanup());

describe('ztp dhcp', () => {
  for (const format of FORMATS) {
    it(`--format ${format} prints its golden file`, async () => {
      const r = await run(process.execPath, [BIN, 'dhcp', '--format', format, '--server', SERVER]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, golden(format));
    });
  }

  it('points every platform at its bootstrap URL with the option it reads', () => {
    const isc = golden('isc');
    assert.match(isc, /option default-url "http:\/\/192\.0\.2\.10:8080\/ztp\/bootstrap\/onie";/);
    assert.match(isc, /option ztp-provision-url code 239 = text;/);
    assert.match(
      isc,
      /option ztp-provision-url "http:\/\/192\.0\.2\.10:8080\/ztp\/bootstrap\/cumulus";/,
    );
    for (const p of ['eos', 'nxos', 'iosxe'])
      assert.match(isc, new RegExp(`option bootfile-name "${SERVER}/ztp/bootstrap/${p}";`));
    assert.match(isc, /option ztp-junos\.config-file-name "ztp\/bootstrap\/junos";/);
    const kea = JSON.parse(golden('kea')) as {
      Dhcp4: { 'client-classes': { name: string; test: string }[] };
    };
    assert.deepEqual(
      kea.Dhcp4['client-classes'].map((c) => c.name),
      ['ztp-eos', 'ztp-nxos', 'ztp-iosxe', 'ztp-junos'],
    );
    assert.equal(kea.Dhcp4['client-classes'][0]!.test, "substring(option[60].hex,0,6) == 'Arista'");
  });

  it('SONiC alone gets the plain sh script on option 239; --platform picks the blocks', () => {
    const text = dhcpConfig({ format: 'dnsmasq', server: SERVER, platforms: ['sonic'] });
    assert.match(text, /^dhcp-option=239,"http:\/\/192\.0\.2\.10:8080\/ztp\/bootstrap\/sh"$/m);
    assert.doesNotMatch(text, /114|67|Juniper/);
  });

  const dnsmasq = which('dnsmasq');
  it(
    'dnsmasq --test accepts the dnsmasq file',
    {
      skip: dnsmasq === undefined ? 'dnsmasq is not installed' : false,
    },
    () => {
      const path = join(tmp.dir, 'ztp.conf');
      writeFileSync(path, golden('dnsmasq'));
      const r = spawnSync(dnsmasq!, ['--test', '-C', path], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    },
  );

  it('refuses bad arguments with exit code 2 and a reason', async () => {
    for (const [args, reason] of [
      [['--server', SERVER], /--format must be one of isc, kea, dnsmasq/],
      [['--format', 'isc'], /--server URL is required/],
      [['--format', 'isc', '--server', 'ftp://x'], /--server must be/],
      [['--format', 'isc', '--server', `${SERVER}/path`], /no path, query or credentials/],
      [
        ['--format', 'isc', '--server', SERVER, '--platform', 'windows'],
        /--platform must be one of/,
      ],
      [['--format', 'isc', '--server', 'http://ztp.example', '--platform', 'junos'], /IPv4/],
      [['--format', 'isc', '--server', SERVER, '--bogus'], /bogus/],
    ] as const) {
      const r = await run(process.execPath, [BIN, 'dhcp', ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, reason);
    }
  });

  it('leaves junos out by default when the server is a name', async () => {
    const r = await run(process.execPath, [
      BIN,
      'dhcp',
      '--format',
      'isc',
      '--server',
      'http://ztp.example',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /junos/i);
    assert.equal(DHCP_PLATFORMS.length, 7);
  });
});
