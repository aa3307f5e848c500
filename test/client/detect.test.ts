/** Identity detection against fixture files and interface lists (never this machine's NICs). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, it } from 'node:test';
import {
  DetectionError,
  detectCpuId,
  detectDmiUuid,
  detectFileId,
  detectMac,
  detectMachineId,
  formatPsn,
  parseDefaultRoutes,
  parseDefaultRoutes6,
  sourceAddressFor,
  unusableMacReason,
  type DetectionSources,
} from '../../src/client/detect.js';

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const LAPTOP = JSON.parse(fixture('interfaces-laptop.json')) as NodeJS.Dict<NetworkInterfaceInfo[]>;

/** Sources backed by a map of path → content (or an errno code to fail with). */
function fake(
  files: Record<string, string | { code: string }>,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = LAPTOP,
  cpuid?: Record<number, Buffer>,
): DetectionSources & { read: string[] } {
  const read: string[] = [];
  return {
    read,
    readFile: async (path) => {
      read.push(path);
      const v = files[path];
      if (v === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
      if (typeof v !== 'string') throw Object.assign(new Error(`${v.code} ${path}`), v);
      return v;
    },
    networkInterfaces: () => interfaces,
    readCpuid: async (leaf) => {
      const b = cpuid?.[leaf];
      if (!b) throw Object.assign(new Error('no cpuid device'), { code: 'ENOENT' });
      return b;
    },
  };
}

const ROUTES = {
  '/proc/net/route': fixture('proc-net-route'),
  '/proc/net/ipv6_route': fixture('proc-net-ipv6_route'),
};

async function detectionError(p: Promise<unknown>): Promise<DetectionError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DetectionError, `expected a DetectionError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected detection to fail');
}

describe('routing tables', () => {
  it('lists IPv4 default-route interfaces that are up, lowest metric first', () => {
    // docker0's default route is not up (flags 0002); the /24 routes are not defaults.
    assert.deepEqual(parseDefaultRoutes(fixture('proc-net-route')), ['eth0', 'wlan0']);
  });

  it('lists IPv6 default routes by metric, skipping reject routes and lo', () => {
    assert.deepEqual(parseDefaultRoutes6(fixture('proc-net-ipv6_route')), ['eth1', 'wg0']);
  });

  it('tolerates empty and garbled tables', () => {
    assert.deepEqual(parseDefaultRoutes(''), []);
    assert.deepEqual(parseDefaultRoutes('Iface\tDestination\nnonsense'), []);
    assert.deepEqual(parseDefaultRoutes6('x y z'), []);
  });
});

describe('MAC usability', () => {
  it('accepts a burned-in and a locally administered but permanent address', () => {
    assert.equal(unusableMacReason('3C:52:82:11:22:33', 0), undefined);
    assert.equal(unusableMacReason('02:fc:00:00:00:01', 0), undefined);
    assert.equal(unusableMacReason('02:fc:00:00:00:01'), undefined);
  });

  it('refuses all-zero, broadcast, multicast, random and malformed addresses', () => {
    assert.match(unusableMacReason('00:00:00:00:00:00')!, /all-zero/);
    assert.match(unusableMacReason('ff:ff:ff:ff:ff:ff')!, /broadcast/);
    assert.match(unusableMacReason('01:00:5e:00:00:01')!, /multicast/);
    assert.match(unusableMacReason('da:a1:19:00:00:07', 1)!, /random/);
    assert.match(unusableMacReason('nope')!, /not a MAC/);
  });
});

describe('mac id source', () => {
  it('takes the MAC of the interface that owns the source address, in canonical form', async () => {
    const id = await detectMac('192.168.1.23', fake({}));
    assert.equal(id.id, 'da:a1:19:00:00:07');
    assert.match(id.how, /wlan0/);
    const v6 = await detectMac('fd00::2', fake({}));
    assert.equal(v6.id, '3c:52:82:11:22:33', 'IPv6 source matched in any notation');
  });

  it('uses the default-route interface when the server is on loopback', async () => {
    const id = await detectMac('127.0.0.1', fake(ROUTES));
    assert.equal(id.id, '3c:52:82:11:22:33');
    assert.match(id.how, /eth0 \(default route; the server is on loopback\)/);
    const v6 = await detectMac('::1', fake(ROUTES));
    assert.equal(v6.id, '3c:52:82:11:22:33');
  });

  it('skips a default-route interface with a random MAC and takes the next', async () => {
    const routes = {
      '/proc/net/route': fixture('proc-net-route').replace(/\teth0\t|\neth0\t/g, '\nxx0\t'),
      '/sys/class/net/wlan0/addr_assign_type': '0\n',
    };
    // eth0 renamed away: wlan0 is the only IPv4 default; it is permanent here.
    assert.equal((await detectMac('127.0.0.1', fake(routes))).id, 'da:a1:19:00:00:07');
    const random = { ...routes, '/sys/class/net/wlan0/addr_assign_type': '1\n' };
    const e = await detectionError(detectMac('127.0.0.1', fake(random)));
    assert.match(e.message, /wlan0: randomly generated address/);
    assert.match(e.message, /xx0: no such interface/);
  });

  it('refuses an interface without a hardware address (a tunnel) and names it', async () => {
    const e = await detectionError(detectMac('10.8.0.2', fake({})));
    assert.match(e.message, /wg0: all-zero address/);
  });

  it('refuses a multicast MAC on the route interface', async () => {
    const e = await detectionError(detectMac('fd01::7', fake({})));
    assert.match(e.message, /eth1: multicast/);
  });

  it('fails naming the address when no interface owns it', async () => {
    const e = await detectionError(detectMac('203.0.113.9', fake({})));
    assert.match(e.message, /203\.0\.113\.9/);
  });

  it('fails clearly on loopback without a default route or without route tables', async () => {
    const none = await detectionError(
      detectMac('127.0.0.1', fake({ '/proc/net/route': 'Iface\tDestination\n' })),
    );
    assert.match(none.message, /no default route/);
    const noProc = await detectionError(detectMac('127.0.0.1', fake({})));
    assert.match(noProc.message, /\/proc\/net\/route/);
  });

  it('never returns the loopback interface even when it is the only one', async () => {
    const onlyLo = { lo: LAPTOP.lo };
    const routes = {
      '/proc/net/route': 'Iface\tDestination\nlo\t00000000\t0\t0003\t0\t0\t0\t00000000\n',
    };
    const e = await detectionError(detectMac('127.0.0.1', fake(routes, onlyLo)));
    assert.match(e.message, /no default-route interface has a usable MAC address/);
  });
});

describe('machine-id source', () => {
  const ID = '3d1219c7c4c5404aaa1f6d2a48adfda4';

  it('reads /etc/machine-id', async () => {
    const id = await detectMachineId(fake({ '/etc/machine-id': `${ID.toUpperCase()}\n` }));
    assert.deepEqual(id, { id: ID, how: 'machine-id from /etc/machine-id' });
  });

  it('falls back to /var/lib/dbus/machine-id', async () => {
    const id = await detectMachineId(fake({ '/var/lib/dbus/machine-id': `${ID}\n` }));
    assert.equal(id.id, ID);
  });

  it('skips an uninitialized first-boot value, names every file tried', async () => {
    const e = await detectionError(
      detectMachineId(
        fake({
          '/etc/machine-id': 'uninitialized\n',
          '/var/lib/dbus/machine-id': { code: 'EACCES' },
        }),
      ),
    );
    assert.match(e.message, /\/etc\/machine-id: uninitialized/);
    assert.match(e.message, /\/var\/lib\/dbus\/machine-id: permission denied/);
  });

  it('refuses empty and malformed values', async () => {
    const e = await detectionError(
      detectMachineId(fake({ '/etc/machine-id': '\n', '/var/lib/dbus/machine-id': 'xyz\n' })),
    );
    assert.match(e.message, /empty/);
    assert.match(e.message, /not 32 hex digits/);
  });
});

describe('cpu source', () => {
  it('reads the Serial line of a Raspberry Pi', async () => {
    const id = await detectCpuId(fake({ '/proc/cpuinfo': fixture('cpuinfo-raspberry-pi') }));
    assert.equal(id.id, '00000000a1b2c3d4');
  });

  it('falls back to the device-tree serial-number when cpuinfo has none', async () => {
    const id = await detectCpuId(
      fake({
        '/proc/cpuinfo': fixture('cpuinfo-zero-serial'),
        '/sys/firmware/devicetree/base/serial-number': 'XB7-00412\u0000',
      }),
    );
    assert.equal(id.id, 'XB7-00412');
  });

  it('reads the x86 processor serial number when the CPU offers one (pn flag)', async () => {
    const leaf1 = Buffer.alloc(16);
    leaf1.writeUInt32LE(0x00000673, 0);
    const leaf3 = Buffer.alloc(16);
    leaf3.writeUInt32LE(0x1234abcd, 8); // ecx
    leaf3.writeUInt32LE(0x0000beef, 12); // edx
    const id = await detectCpuId(
      fake({ '/proc/cpuinfo': fixture('cpuinfo-pentium3') }, LAPTOP, { 1: leaf1, 3: leaf3 }),
    );
    assert.equal(id.id, '0000-0673-0000-BEEF-1234-ABCD');
    assert.equal(formatPsn(leaf1, leaf3), id.id);
  });

  it('on a modern x86 without a serial, fails naming every source tried', async () => {
    const e = await detectionError(detectCpuId(fake({ '/proc/cpuinfo': fixture('cpuinfo-x86') })));
    assert.match(e.message, /\/proc\/cpuinfo: no Serial line/);
    assert.match(e.message, /serial-number: not present/);
    assert.match(e.message, /no pn flag/);
  });

  it('reports an all-zero Serial and an unreadable cpuid device', async () => {
    const e = await detectionError(
      detectCpuId(fake({ '/proc/cpuinfo': `${fixture('cpuinfo-zero-serial')}flags : pn\n` })),
    );
    assert.match(e.message, /Serial is all zeros/);
    assert.match(e.message, /\/dev\/cpu\/0\/cpuid: not present/);
  });
});

describe('dmi-uuid source', () => {
  const FILE = '/sys/class/dmi/id/product_uuid';

  it('reads the product UUID in lower case', async () => {
    const id = await detectDmiUuid(fake({ [FILE]: '4C4C4544-0042-3510-8052-B4C04F4B4E32\n' }));
    assert.equal(id.id, '4c4c4544-0042-3510-8052-b4c04f4b4e32');
  });

  it('refuses firmware placeholders, garbage, absence and says when root is needed', async () => {
    for (const [content, why] of [
      ['03000200-0400-0500-0006-000700080009\n', /placeholder/],
      ['00000000-0000-0000-0000-000000000000\n', /placeholder/],
      ['Not Settable\n', /not a UUID/],
      [{ code: 'EACCES' }, /needs root/],
      [undefined, /not present/],
    ] as const) {
      const files: Record<string, string | { code: string }> =
        content === undefined ? {} : { [FILE]: content };
      const e = await detectionError(detectDmiUuid(fake(files)));
      assert.match(e.message, why);
      assert.match(e.message, /product_uuid/);
    }
  });

  it('is reachable through detectFileId like the other file sources', async () => {
    const files = {
      [FILE]: '4c4c4544-0042-3510-8052-b4c04f4b4e32',
      '/etc/machine-id': 'a'.repeat(32),
    };
    assert.equal((await detectFileId('dmi-uuid', fake(files))).id, files[FILE]);
    assert.equal((await detectFileId('machine-id', fake(files))).id, 'a'.repeat(32));
    await detectionError(detectFileId('cpu', fake({})));
  });
});

describe('source address', () => {
  it('is the loopback address for a loopback server, IPv4 and IPv6', async () => {
    assert.equal(await sourceAddressFor('127.0.0.1', 9), '127.0.0.1');
    assert.equal(await sourceAddressFor('[::1]', 9), '::1');
    assert.equal(
      await sourceAddressFor('localhost', 9).then((a) => /^(127\.0\.0\.1|::1)$/.test(a)),
      true,
    );
  });
});
