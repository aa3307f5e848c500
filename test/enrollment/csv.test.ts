/** `ztp import --csv`: the allowlist CSV's format, its bad rows, all-or-nothing, and the result in allowlist mode. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { importEnrollmentCsv, transferStore, type TransferStore } from '../../src/cli/transfer.js';
import { DeviceService } from '../../src/devices/service.js';
import { parseEnrollmentCsv } from '../../src/enrollment/csv.js';
import { EnrollmentService } from '../../src/enrollment/service.js';
import { EventBus } from '../../src/events/bus.js';
import { openStores, type OpenedStores } from '../../src/stores.js';
import { tempDir } from '../helpers.js';

describe('parseEnrollmentCsv', () => {
  it('reads id,serial,macs,name rows with an optional header and quoted fields', () => {
    const report = parseEnrollmentCsv(
      [
        'id,serial,macs,name',
        'leaf-1,,,"Leaf, rack ""4"""',
        ',FOC123,,spine',
        ',,AA-BB-CC-00-00-01,',
        'aa:bb:cc:00:00:02,,aabb.cc00.0002;,oob',
        '',
      ].join('\r\n'),
    );
    assert.deepEqual(report.bad, []);
    assert.deepEqual(report.rows, [
      { row: 2, id: 'leaf-1', name: 'Leaf, rack "4"', aliases: [] },
      { row: 3, id: 'FOC123', name: 'spine', aliases: [] },
      { row: 4, id: 'aa:bb:cc:00:00:01', name: '', aliases: [] },
      { row: 5, id: 'aa:bb:cc:00:00:02', name: 'oob', aliases: [] },
    ]);
  });

  it('keeps a serial and MACs other than the id as the device aliases', () => {
    const report = parseEnrollmentCsv(
      'sw-1,FOC555,AA-BB-CC-00-05-01 aa:bb:cc:00:05:02,spine\nFOC556,,aabb.cc00.0503,\n',
    );
    assert.deepEqual(report.bad, []);
    assert.deepEqual(report.rows, [
      {
        row: 1,
        id: 'sw-1',
        name: 'spine',
        aliases: [
          { type: 'serial', value: 'FOC555' },
          { type: 'mac', value: 'aa:bb:cc:00:05:01' },
          { type: 'mac', value: 'aa:bb:cc:00:05:02' },
        ],
      },
      { row: 2, id: 'FOC556', name: '', aliases: [{ type: 'mac', value: 'aa:bb:cc:00:05:03' }] },
    ]);
  });

  it('names each bad row with its reason', () => {
    const { bad } = parseEnrollmentCsv(
      [
        'ok-1,,,',
        'too,few',
        ',,,',
        'bad id!,,,',
        ',,zz:zz,',
        'dev-2,ok-1,,',
        ',,aa:bb:cc:00:00:01 aa:bb:cc:00:00:02,',
        'ok-1,,,again',
        '"open,,,',
        'list,,,',
      ].join('\n'),
    );
    assert.deepEqual(
      bad.map((b) => b.row),
      [2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    const reason = (row: number) => bad.find((b) => b.row === row)!.reason;
    assert.match(reason(2), /2 columns; expected 4: id,serial,macs,name/);
    assert.match(reason(3), /no id/);
    assert.match(reason(5), /'zz:zz' is not a MAC address/);
    assert.match(reason(6), /'ok-1' is already on row 1/);
    assert.match(reason(7), /no id/);
    assert.match(reason(8), /already on row 1/);
    assert.match(reason(9), /not closed/);
    assert.match(reason(10), /reserved/);
  });
});

describe('importEnrollmentCsv into SQLite, then --enrollment allowlist', () => {
  let stores: OpenedStores;
  let transfer: TransferStore;
  const { dir, cleanup } = tempDir();
  before(async () => {
    stores = await openStores(join(dir, 'ztp.db'));
    transfer = transferStore(stores);
  });
  after(async () => {
    await stores.db.close();
    cleanup();
  });

  it('imports nothing when any row is bad', async () => {
    const report = await importEnrollmentCsv(transfer, 'good-1,,,\nbad id,,,\n', 1000);
    assert.deepEqual(
      report.bad.map((b) => b.row),
      [2],
    );
    assert.equal(report.created, 0);
    assert.deepEqual(await stores.deviceReads.listIds(undefined, 10), []);
  });

  it('enrolls the rows (never registered, no ip), keeps existing devices, and only they may register', async () => {
    const first = await importEnrollmentCsv(transfer, 'id,serial,macs,name\n,FOC1,,a\n', 1000);
    assert.deepEqual(first, { created: 1, present: 0, bad: [] });
    const again = await importEnrollmentCsv(transfer, ',FOC1,,renamed\n,FOC2,,b\n', 2000);
    assert.deepEqual(again, { created: 1, present: 1, bad: [] });
    const foc1 = await stores.devices.get('FOC1');
    assert.equal(foc1.name, 'a');
    assert.equal(foc1.registrations, 0);
    assert.equal(foc1.ip, '');

    const enrollment = new EnrollmentService(stores.db, stores.enrollment, { mode: 'allowlist' });
    const service = new DeviceService(stores, {
      triggersEnabled: true,
      historyLimit: 5,
      events: new EventBus(),
      admission: enrollment.admission,
    });
    const ok = await service.register('FOC2', { ip: '10.0.0.2' }, '10.0.0.2');
    assert.ok(!('held' in ok) && !ok.created && ok.device.registrations === 1);
    await assert.rejects(service.register('FOC3', {}, '10.0.0.3'), { code: 'not_enrolled' });
  });

  it('admits a device enrolled with a serial and MACs when it registers by any of them', async () => {
    const csv = 'sw-7,FOC777,aa:bb:cc:00:07:01 aa:bb:cc:00:07:02,spine-7\n';
    assert.deepEqual(await importEnrollmentCsv(transfer, csv, 3000), {
      created: 1,
      present: 0,
      bad: [],
    });
    const enrollment = new EnrollmentService(stores.db, stores.enrollment, { mode: 'allowlist' });
    const service = new DeviceService(stores, {
      triggersEnabled: true,
      historyLimit: 5,
      events: new EventBus(),
      admission: enrollment.admission,
    });
    const registered = async (id: string, aliases: { type: string; value: string }[] = []) => {
      const r = await service.register(id, { ip: '10.0.7.1', aliases }, '10.0.7.1');
      assert.ok(!('held' in r));
      return r.device;
    };
    // By the serial, by a MAC in another notation, and as a bootstrap fetch does (its base MAC,
    // the serial header as an alias): always the enrolled device.
    assert.equal((await registered('FOC777')).id, 'sw-7');
    assert.equal((await registered('AA-BB-CC-00-07-02')).id, 'sw-7');
    const boot = await registered('aa:bb:cc:00:07:01', [{ type: 'serial', value: 'FOC777' }]);
    assert.deepEqual([boot.id, boot.name, boot.registrations], ['sw-7', 'spine-7', 3]);
    await assert.rejects(service.register('FOC778', {}, '10.0.7.2'), { code: 'not_enrolled' });
  });

  it('refuses every row when one has a serial or MAC a device already holds', async () => {
    const csv = 'sw-8,FOC888,,\nsw-9,FOC999,aa:bb:cc:00:07:02,\n';
    const report = await importEnrollmentCsv(transfer, csv, 4000);
    assert.equal(report.created, 0);
    assert.deepEqual(report.bad, [
      { row: 2, reason: "mac 'aa:bb:cc:00:07:02' is already device 'sw-7' (its id or an alias)" },
    ]);
    await assert.rejects(stores.devices.get('sw-8'), { code: 'device_not_found' });
  });
});
