/** Identity headers → device id, aliases and facts; malformed values are refused by name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { identityFromHeaders } from '../../src/bootstrap/identity-headers.js';
import { ZtpError } from '../../src/errors.js';
import { CUMULUS_HEADERS, ONIE_HEADERS, SONIC_HEADERS } from './fixtures.js';

function refused(headers: Record<string, string | string[]>, header: string): void {
  assert.throws(
    () => identityFromHeaders(headers),
    (e: unknown) =>
      e instanceof ZtpError &&
      e.code === 'invalid_identity_header' &&
      e.extra.header === header &&
      e.message.startsWith(`${header}: `),
  );
}

describe('identityFromHeaders', () => {
  it('ONIE: id is ONIE-ETH-ADDR, canonical; serial an alias; the security key is not kept', () => {
    assert.deepEqual(identityFromHeaders(ONIE_HEADERS), {
      source: 'onie',
      id: '14:02:ec:2d:f0:00',
      aliases: [{ type: 'serial', value: 'TW68HF500N' }],
      facts: {
        'onie-vendor-id': '259',
        'onie-machine': 'accton_as4610_54',
        'onie-machine-rev': '0',
        'onie-arch': 'arm',
        'onie-operation': 'os-install',
        'onie-version': '2016.05.00.03',
      },
    });
    const withKey = identityFromHeaders({ ...ONIE_HEADERS, 'onie-security-key': 'd3b07384d' });
    assert.ok(!JSON.stringify(withKey).includes('d3b07384d'));
  });

  it('SONiC: id is BASE-MAC-ADDRESS', () => {
    assert.deepEqual(identityFromHeaders(SONIC_HEADERS), {
      source: 'sonic',
      id: '00:e0:ec:38:50:fb',
      aliases: [{ type: 'serial', value: 'E1031B2F035A17GD020' }],
      facts: { 'product-name': 'E1031', 'sonic-version': 'SONiC.201811.0-20190315.181511' },
    });
  });

  it('Cumulus: id is CUMULUS-BASE-MAC, the management MAC an alias unless it is the same', () => {
    const identity = identityFromHeaders(CUMULUS_HEADERS)!;
    assert.equal(identity.source, 'cumulus');
    assert.equal(identity.id, '44:38:39:ff:40:94');
    assert.deepEqual(identity.aliases, [
      { type: 'serial', value: 'XYZ123004' },
      { type: 'mac', value: '44:38:39:ff:00:00' },
    ]);
    assert.equal(identity.facts['cumulus-productname'], 'switch_model');
    const same = identityFromHeaders({ ...CUMULUS_HEADERS, 'cumulus-mgmt-mac': '4438.39ff.4094' });
    assert.deepEqual(same!.aliases, [{ type: 'serial', value: 'XYZ123004' }]);
  });

  it('no identity headers (or only empty ones): undefined', () => {
    assert.equal(identityFromHeaders({ 'user-agent': 'curl/8', host: 'x' }), undefined);
    assert.equal(identityFromHeaders({ 'onie-security-key': '' }), undefined);
  });

  it('refuses a MAC header that is not a MAC, naming it', () => {
    refused({ ...ONIE_HEADERS, 'onie-eth-addr': 'not-a-mac' }, 'ONIE-ETH-ADDR');
    refused({ ...SONIC_HEADERS, 'base-mac-address': '00:E0:EC:38:50' }, 'BASE-MAC-ADDRESS');
    refused({ ...CUMULUS_HEADERS, 'cumulus-mgmt-mac': 'zz:38:39:ff:00:00' }, 'CUMULUS-MGMT-MAC');
    // Node joins a repeated custom header with ", ".
    refused(
      { ...ONIE_HEADERS, 'onie-eth-addr': '14:02:ec:2d:f0:00, 14:02:ec:2d:f0:01' },
      'ONIE-ETH-ADDR',
    );
  });

  it('refuses a serial or fact with control characters, non-ASCII or over 128 characters', () => {
    refused({ ...ONIE_HEADERS, 'onie-serial-number': 'AB\tC' }, 'ONIE-SERIAL-NUMBER');
    refused({ ...SONIC_HEADERS, 'serial-number': 'A\x7fB' }, 'SERIAL-NUMBER');
    refused({ ...CUMULUS_HEADERS, 'cumulus-serial': 'X'.repeat(129) }, 'CUMULUS-SERIAL');
    refused({ ...ONIE_HEADERS, 'onie-machine': 'caf\u00e9' }, 'ONIE-MACHINE');
    assert.equal(
      identityFromHeaders({ ...CUMULUS_HEADERS, 'cumulus-serial': 'X'.repeat(128) })!.aliases[0]!
        .value.length,
      128,
    );
  });

  it('refuses a set without its MAC, mixed sets and a repeated header', () => {
    refused({ 'onie-serial-number': 'XYZ' }, 'ONIE-ETH-ADDR');
    refused({ ...ONIE_HEADERS, ...SONIC_HEADERS }, 'BASE-MAC-ADDRESS');
    refused({ ...SONIC_HEADERS, 'serial-number': ['A', 'B'] }, 'SERIAL-NUMBER');
  });
});
