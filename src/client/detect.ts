/**
 * Finds this device's facts for registration: its id (MAC, machine-id, CPU serial or DMI UUID)
 * and the local address it uses to reach the server. Every source of facts (files, the interface
 * list, the CPUID device, the kernel's routing via a UDP socket) is injected, so the logic is
 * tested against fixtures rather than the machine running the tests.
 *
 * Imports node builtins and the shared id helpers only: this module is part of the single-file
 * device client.
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { canonicalMac } from '../devices/identity.js';

export const ID_SOURCES = ['mac', 'machine-id', 'cpu', 'dmi-uuid'] as const;
export type IdSource = (typeof ID_SOURCES)[number];

/** The chosen id source gave nothing usable; `tried` names every place looked at and why it failed. */
export class DetectionError extends Error {
  override name = 'DetectionError';
  constructor(
    message: string,
    readonly tried: string[] = [],
  ) {
    super(tried.length === 0 ? message : `${message}; tried: ${tried.join('; ')}`);
  }
}

export interface DetectionSources {
  /** Reads a whole text file; rejects with the fs error (code ENOENT, EACCES, ...). */
  readFile(path: string): Promise<string>;
  /** `os.networkInterfaces()`. */
  networkInterfaces(): NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** The 16 bytes (eax, ebx, ecx, edx little-endian) of CPUID `leaf` on CPU 0 (/dev/cpu/0/cpuid). */
  readCpuid(leaf: number): Promise<Buffer>;
}

export interface Identity {
  id: string;
  /** How the id was found, for --dry-run and messages, e.g. "mac of eth0 (default route)". */
  how: string;
}

function errorReason(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOENT') return 'not present';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied (needs root)';
  if (typeof code === 'string') return code;
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------------------------
// Routes

/** Interfaces holding an IPv4 default route in /proc/net/route text, lowest metric first. */
export function parseDefaultRoutes(procNetRoute: string): string[] {
  const routes: { iface: string; metric: number }[] = [];
  for (const line of procNetRoute.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, destination, , flags, , , metric, mask] = f;
    const up = (parseInt(flags!, 16) & 0x1) !== 0;
    if (destination === '00000000' && mask === '00000000' && up && iface !== 'lo') {
      routes.push({ iface: iface!, metric: parseInt(metric!, 10) || 0 });
    }
  }
  return routes.sort((a, b) => a.metric - b.metric).map((r) => r.iface);
}

/** Interfaces holding an IPv6 default route in /proc/net/ipv6_route text, lowest metric first. */
export function parseDefaultRoutes6(procNetIpv6Route: string): string[] {
  const RTF_UP = 0x1;
  const RTF_REJECT = 0x200;
  const routes: { iface: string; metric: number }[] = [];
  for (const line of procNetIpv6Route.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [destination, prefix, , , , metric, , , flags, iface] = f;
    const fl = parseInt(flags!, 16);
    if (
      /^0{32}$/.test(destination!) &&
      prefix === '00' &&
      (fl & RTF_UP) !== 0 &&
      (fl & RTF_REJECT) === 0 &&
      iface !== 'lo'
    ) {
      routes.push({ iface: iface!, metric: parseInt(metric!, 16) || 0 });
    }
  }
  return routes.sort((a, b) => a.metric - b.metric).map((r) => r.iface);
}

// ---------------------------------------------------------------------------------------------
// MAC

/**
 * Why `mac` cannot identify a device, or undefined when it can. `assignType` is the kernel's
 * /sys/class/net/IF/addr_assign_type (0 permanent, 1 random, 2 stolen, 3 set), when known.
 */
export function unusableMacReason(mac: string, assignType?: number): string | undefined {
  const canonical = canonicalMac(mac);
  if (canonical === undefined) return `'${mac}' is not a MAC address`;
  if (canonical === '00:00:00:00:00:00') return 'all-zero address (no hardware address)';
  if (canonical === 'ff:ff:ff:ff:ff:ff') return 'broadcast address';
  if ((parseInt(canonical.slice(0, 2), 16) & 0x1) !== 0) return 'multicast address';
  if (assignType === 1) return 'randomly generated address (addr_assign_type 1)';
  return undefined;
}

function sameIp(a: string, b: string): boolean {
  if (a === b) return true;
  if (isIP(a) === 6 && isIP(b) === 6) {
    try {
      return new URL(`http://[${a}]/`).hostname === new URL(`http://[${b}]/`).hostname;
    } catch {
      return false;
    }
  }
  return false;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

async function assignType(sources: DetectionSources, iface: string): Promise<number | undefined> {
  try {
    const n = parseInt((await sources.readFile(`/sys/class/net/${iface}/addr_assign_type`)).trim());
    return Number.isNaN(n) ? undefined : n;
  } catch {
    return undefined;
  }
}

/** MAC of `iface`, or the reason it cannot be used. */
async function macOf(
  sources: DetectionSources,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  iface: string,
): Promise<{ mac: string } | { reason: string }> {
  const infos = interfaces[iface];
  if (!infos || infos.length === 0)
    return { reason: `${iface}: no such interface with an address` };
  if (infos.some((i) => i.internal)) return { reason: `${iface}: loopback interface` };
  const mac = infos[0]!.mac;
  const why = unusableMacReason(mac, await assignType(sources, iface));
  if (why !== undefined) return { reason: `${iface}: ${why}` };
  return { mac: canonicalMac(mac)! };
}

async function readOr(sources: DetectionSources, path: string): Promise<string | undefined> {
  try {
    return await sources.readFile(path);
  } catch {
    return undefined;
  }
}

/**
 * The MAC of the interface that owns `sourceIp` (the address the kernel uses to reach the
 * server). When the server is on loopback (testing on one box) the default-route interface is
 * used instead. Never a loopback, all-zero, multicast or randomly generated address.
 */
export async function detectMac(sourceIp: string, sources: DetectionSources): Promise<Identity> {
  const interfaces = sources.networkInterfaces();
  const owner = Object.entries(interfaces).find(([, infos]) =>
    (infos ?? []).some((i) => sameIp(i.address, sourceIp)),
  );
  const loopback = LOOPBACK.test(sourceIp) || (owner?.[1]?.some((i) => i.internal) ?? false);
  if (!loopback) {
    if (!owner) {
      throw new DetectionError(
        `no network interface has the source address ${sourceIp}, so its MAC is unknown`,
      );
    }
    const found = await macOf(sources, interfaces, owner[0]);
    if ('mac' in found) return { id: found.mac, how: `mac of ${owner[0]} (route to the server)` };
    throw new DetectionError(
      `the interface that carries the route to the server has no usable MAC address (${found.reason})`,
    );
  }
  // The server is reached over loopback: identify the box by its default-route interface.
  const v4 = await readOr(sources, '/proc/net/route');
  const v6 = await readOr(sources, '/proc/net/ipv6_route');
  if (v4 === undefined && v6 === undefined) {
    throw new DetectionError(
      'the server is on loopback and the default-route interface is unknown (no /proc/net/route)',
    );
  }
  const candidates = [
    ...new Set([...parseDefaultRoutes(v4 ?? ''), ...parseDefaultRoutes6(v6 ?? '')]),
  ];
  const tried: string[] = [];
  for (const iface of candidates) {
    const found = await macOf(sources, interfaces, iface);
    if ('mac' in found) {
      return { id: found.mac, how: `mac of ${iface} (default route; the server is on loopback)` };
    }
    tried.push(found.reason);
  }
  if (candidates.length === 0)
    tried.push('no default route in /proc/net/route or /proc/net/ipv6_route');
  throw new DetectionError(
    'the server is on loopback and no default-route interface has a usable MAC address',
    tried,
  );
}

// ---------------------------------------------------------------------------------------------
// Other id sources

const ID_CHARS = /^[A-Za-z0-9._:-]{1,128}$/;

export const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];

export async function detectMachineId(sources: DetectionSources): Promise<Identity> {
  const tried: string[] = [];
  for (const path of MACHINE_ID_FILES) {
    let text: string;
    try {
      text = (await sources.readFile(path)).trim();
    } catch (e) {
      tried.push(`${path}: ${errorReason(e)}`);
      continue;
    }
    if (/^[0-9a-f]{32}$/i.test(text) && !/^0+$/.test(text)) {
      return { id: text.toLowerCase(), how: `machine-id from ${path}` };
    }
    tried.push(
      `${path}: ${text === '' ? 'empty' : text === 'uninitialized' ? 'uninitialized (first boot)' : 'not 32 hex digits'}`,
    );
  }
  throw new DetectionError('no machine-id found', tried);
}

export const CPUINFO = '/proc/cpuinfo';
export const DEVICE_TREE_SERIAL = '/sys/firmware/devicetree/base/serial-number';

/** Intel's processor serial number format: signature (CPUID 1 EAX) then CPUID 3 EDX, ECX. */
export function formatPsn(leaf1: Buffer, leaf3: Buffer): string {
  const hex = [leaf1.readUInt32LE(0), leaf3.readUInt32LE(12), leaf3.readUInt32LE(8)]
    .map((n) => n.toString(16).padStart(8, '0'))
    .join('')
    .toUpperCase();
  return hex.replace(/(....)(?!$)/g, '$1-');
}

/**
 * The CPU's serial number where the platform exposes one: the `Serial` line of /proc/cpuinfo
 * (Raspberry Pi and other ARM boards), the device-tree serial-number, or the x86 processor
 * serial number (CPUID leaf 3, only on CPUs with the `pn` flag; needs /dev/cpu/0/cpuid).
 */
export async function detectCpuId(sources: DetectionSources): Promise<Identity> {
  const tried: string[] = [];
  let cpuinfo = '';
  try {
    cpuinfo = await sources.readFile(CPUINFO);
    const serial = /^Serial\s*:\s*(\S+)\s*$/im.exec(cpuinfo)?.[1];
    if (serial === undefined) tried.push(`${CPUINFO}: no Serial line`);
    else if (/^0+$/.test(serial)) tried.push(`${CPUINFO}: Serial is all zeros`);
    else if (!ID_CHARS.test(serial)) tried.push(`${CPUINFO}: Serial '${serial}' is not a valid id`);
    else return { id: serial, how: `cpu serial from ${CPUINFO}` };
  } catch (e) {
    tried.push(`${CPUINFO}: ${errorReason(e)}`);
  }
  try {
    // eslint-disable-next-line no-control-regex
    const serial = (await sources.readFile(DEVICE_TREE_SERIAL)).replace(/\u0000/g, '').trim();
    if (serial !== '' && !/^0+$/.test(serial) && ID_CHARS.test(serial)) {
      return { id: serial, how: `cpu serial from ${DEVICE_TREE_SERIAL}` };
    }
    tried.push(`${DEVICE_TREE_SERIAL}: ${serial === '' ? 'empty' : `'${serial}' is not usable`}`);
  } catch (e) {
    tried.push(`${DEVICE_TREE_SERIAL}: ${errorReason(e)}`);
  }
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1]?.trim().split(/\s+/) ?? [];
  if (!flags.includes('pn')) {
    tried.push('x86 processor serial number (CPUID leaf 3): not offered by this CPU (no pn flag)');
  } else {
    try {
      const id = formatPsn(await sources.readCpuid(1), await sources.readCpuid(3));
      return { id, how: 'x86 processor serial number (CPUID leaf 3)' };
    } catch (e) {
      tried.push(`/dev/cpu/0/cpuid: ${errorReason(e)}`);
    }
  }
  throw new DetectionError('this platform exposes no CPU serial number', tried);
}

export const DMI_UUID = '/sys/class/dmi/id/product_uuid';
/** Values firmware vendors ship instead of a real UUID. */
const PLACEHOLDER_UUIDS = new Set([
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '03000200-0400-0500-0006-000700080009',
]);

export async function detectDmiUuid(sources: DetectionSources): Promise<Identity> {
  let text: string;
  try {
    text = (await sources.readFile(DMI_UUID)).trim().toLowerCase();
  } catch (e) {
    throw new DetectionError('no DMI product UUID', [`${DMI_UUID}: ${errorReason(e)}`]);
  }
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text)) {
    throw new DetectionError('no DMI product UUID', [`${DMI_UUID}: '${text}' is not a UUID`]);
  }
  if (PLACEHOLDER_UUIDS.has(text)) {
    throw new DetectionError('no DMI product UUID', [
      `${DMI_UUID}: ${text} is a firmware placeholder, not unique`,
    ]);
  }
  return { id: text, how: `DMI product UUID from ${DMI_UUID}` };
}

/** Id from a non-network source (mac needs the source address: use detectMac). */
export function detectFileId(
  source: Exclude<IdSource, 'mac'>,
  sources: DetectionSources,
): Promise<Identity> {
  switch (source) {
    case 'machine-id':
      return detectMachineId(sources);
    case 'cpu':
      return detectCpuId(sources);
    case 'dmi-uuid':
      return detectDmiUuid(sources);
  }
}

// ---------------------------------------------------------------------------------------------
// Source address

/** Error codes meaning "the network is not ready yet" (boot): worth waiting for. */
export const TRANSIENT_NETWORK_CODES = new Set([
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETDOWN',
]);

/**
 * The local address the kernel would use to reach `host`: connect a UDP socket (no packet is
 * sent) and read its local address. IPv6 servers give an IPv6 address.
 */
export async function sourceAddressFor(host: string, port: number): Promise<string> {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  const target = family !== 0 ? { address: bare, family } : await lookup(bare);
  const socket = createSocket(target.family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, target.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}
