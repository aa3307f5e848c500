/**
 * The operator console in a real browser (Debian's Chromium driven by playwright-core) against a
 * real server: one browser launch, one server, a fresh page per test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import {
  chromiumMissing,
  launchChromium,
  seed,
  startConsoleServer,
  type ConsoleServer,
} from './fixture.js';
import { TEST_ADMIN } from '../helpers.js';

const skip = chromiumMissing;

describe('operator console (browser)', { skip }, () => {
  let server: ConsoleServer;
  let browser: Browser;
  let ids: string[];

  before(async () => {
    server = await startConsoleServer();
    ids = await seed(server, 30);
    browser = await launchChromium();
  });

  after(async () => {
    await browser.close();
    await server.close();
  });

  async function open(path = ''): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(5000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // The console never uses the browser's own alert/confirm/prompt boxes.
    page.on('dialog', (d) => {
      errors.push(`native ${d.type()}: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(`${server.url}${path}`);
    await page.getByText('Live', { exact: true }).waitFor();
    assert.deepEqual(errors, []);
    return page;
  }

  const rowIds = async (page: Page) => {
    const rows = await page.locator('#devices tbody tr[data-id]').all();
    return Promise.all(rows.map((r) => r.getAttribute('data-id')));
  };

  const row = (page: Page, id: string) => page.locator(`#devices tbody tr[data-id="${id}"]`);

  it('lists the seeded devices, a page at a time, with the summary', async () => {
    const page = await open();
    await page.locator('#page-info', { hasText: '1–25 of 30' }).waitFor();
    assert.deepEqual(await rowIds(page), ids.slice(0, 25));
    const first = row(page, ids[0]!);
    assert.equal(await first.locator('td[data-label="Name"]').textContent(), 'sw-core-00');
    assert.equal(await first.locator('td[data-label="IP"]').textContent(), '10.0.0.10');
    assert.equal(await first.locator('td[data-label="Registrations"]').textContent(), '1');
    assert.match(
      (await first.locator('td[data-label="Last seen"]').textContent()) ?? '',
      /ago|now/,
    );
    assert.equal(await first.locator('.badge').textContent(), 'pending');
    assert.equal(await page.locator('#stat-devices').textContent(), '30');
    assert.equal(await page.locator('#stat-pending').textContent(), '30');
    // No token in use: nothing to sign out of.
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), false);

    await page.getByRole('button', { name: 'Next' }).click();
    await page.locator('#page-info', { hasText: '26–30 of 30' }).waitFor();
    assert.deepEqual(await rowIds(page), ids.slice(25));

    // Sorting by name descending is done by the server.
    await page.getByRole('button', { name: 'Name' }).click();
    await page.getByRole('button', { name: 'Name' }).click();
    await page.locator('th[aria-sort="descending"]', { hasText: 'Name' }).waitFor();
    await page.locator('#page-info', { hasText: '1–25 of 30' }).waitFor();
    const names = await page.locator('#devices td[data-label="Name"]').allTextContents();
    assert.equal(names[0], 'sw-lab-27');
    await page.close();
  });

  it('search filters by name and by ip', async () => {
    const page = await open();
    await page.getByLabel('Search id, alias, name or ip').fill('sw-edge');
    await page.locator('#page-info', { hasText: 'of 8' }).waitFor();
    const names = await page.locator('#devices td[data-label="Name"]').allTextContents();
    assert.equal(names.length, 8);
    assert.ok(names.every((n) => n.startsWith('sw-edge-')));

    await page.getByLabel('Search id, alias, name or ip').fill('10.0.0.13');
    await page.locator('#page-info', { hasText: '1–1 of 1' }).waitFor();
    assert.deepEqual(await rowIds(page), [ids[3]]);

    await page.getByLabel('Search id, alias, name or ip').fill('no-such-thing');
    await page.getByText('No devices match: search “no-such-thing”.').waitFor();
    // The pager says so too, rather than "0–0 of 0".
    assert.equal(await page.locator('#page-info').textContent(), 'No devices match');
    await page.close();
  });

  it('keeps the view in the address bar, so a link shows a colleague the same page and device', async () => {
    const page = await open();
    await page.getByLabel('Search id, alias, name or ip').fill('sw-edge');
    await page.locator('#page-info', { hasText: 'of 8' }).waitFor();
    await page.getByRole('button', { name: 'Name' }).click();
    await page.getByRole('button', { name: 'Name' }).click();
    await page.locator('th[aria-sort="descending"]', { hasText: 'Name' }).waitFor();
    await page.getByLabel('Rows per page').selectOption('10');
    await page.locator('#page-info', { hasText: '1–8 of 8' }).waitFor();
    await row(page, ids[5]!).getByRole('button').click();
    await page.locator('#detail[open]').waitFor();
    const link = new URL(page.url());
    assert.deepEqual(Object.fromEntries(link.searchParams), {
      search: 'sw-edge',
      sort: 'name',
      order: 'desc',
      limit: '10',
      device: ids[5],
    });
    await page.close();

    // The colleague opens the link: the same search, sort, page size and the device's detail.
    const colleague = await open(`${link.pathname}${link.search}`);
    await colleague.locator('#detail[open]').waitFor();
    assert.equal(await colleague.locator('#detail-title').textContent(), ids[5]);
    assert.equal(
      await colleague.getByLabel('Search id, alias, name or ip').inputValue(),
      'sw-edge',
    );
    assert.equal(await colleague.getByLabel('Rows per page').inputValue(), '10');
    await colleague.locator('#page-info', { hasText: '1–8 of 8' }).waitFor();
    const names = await colleague.locator('#devices td[data-label="Name"]').allTextContents();
    assert.equal(names[0], 'sw-edge-29');
    // Closing the detail takes the device out of the address, and keeps the rest.
    await colleague.keyboard.press('Escape');
    await colleague.waitForURL((u) => !u.searchParams.has('device'));
    assert.equal(new URL(colleague.url()).searchParams.get('search'), 'sw-edge');
    await colleague.close();
  });

  it('a link to a device that is gone shows the list and says so', async () => {
    const page = await open('/?device=no-such-device&trigger=bogus&offset=-4');
    await page
      .getByText(/no-such-device/)
      .first()
      .waitFor();
    await page.locator('#page-info', { hasText: '1–25 of' }).waitFor();
    assert.equal(await page.locator('#detail[open]').count(), 0);
    assert.equal(await page.getByLabel('Latest trigger').inputValue(), '');
    assert.equal(new URL(page.url()).search, '');
    await page.close();
  });

  it('shows a registration made through the API without a reload', async () => {
    const page = await open();
    await page.getByLabel('Search id, alias, name or ip').fill('fresh-box');
    await page.getByText('No devices match').first().waitFor();
    const res = await fetch(`${server.url}/ztp/register/fresh-box-1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ip: '10.9.9.9', name: 'fresh' }),
    });
    assert.equal(res.status, 201);
    await row(page, 'fresh-box-1').waitFor();
    assert.equal(
      await row(page, 'fresh-box-1').locator('td[data-label="IP"]').textContent(),
      '10.9.9.9',
    );
    await page.locator('#stat-devices', { hasText: '31' }).waitFor();
    await server.service.delete('fresh-box-1', TEST_ADMIN);
    await page.getByText('No devices match: search “fresh-box”.').waitFor();
    await page.close();
  });

  it('edits a device and deletes it after confirmation', async () => {
    const page = await open();
    const id = ids[1]!;
    await page.getByRole('button', { name: `Details of ${id}` }).click();
    const dialog = page.getByRole('dialog', { name: id });
    await dialog.waitFor();
    // The detail view shows userdata and the registration history.
    assert.equal(
      await page.getByLabel('Userdata', { exact: true }).inputValue(),
      'rack 2\nrole edge',
    );
    assert.equal(await dialog.locator('#history tbody tr').count(), 1);
    assert.equal(
      await dialog.locator('#history td[data-label="Source address"]').textContent(),
      '192.0.2.2',
    );
    assert.equal(await dialog.locator('#triggers td[data-label="State"]').textContent(), 'pending');

    await page.getByLabel('Name', { exact: true }).fill('renamed-edge');
    await page.getByLabel('IP address', { exact: true }).fill('10.1.2.3');
    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.getByText('Saved.').waitFor();
    const stored = await server.store.get(id);
    assert.equal(stored.name, 'renamed-edge');
    assert.equal(stored.ip, '10.1.2.3');
    await row(page, id).locator('td[data-label="Name"]', { hasText: 'renamed-edge' }).waitFor();

    // An invalid ip is refused with the API's message next to the IP field, which gets the
    // focus; nothing changes.
    const ipInput = page.getByLabel('IP address', { exact: true });
    await ipInput.fill('300.1.1.1');
    await page.getByRole('button', { name: 'Save' }).click();
    const ipError = dialog.locator('#edit-ip-error');
    await ipError.waitFor();
    assert.equal(await ipError.textContent(), 'ip must be an IPv4 or IPv6 address');
    assert.equal(await ipInput.getAttribute('aria-invalid'), 'true');
    assert.equal(await ipInput.getAttribute('aria-describedby'), 'edit-ip-error');
    assert.equal(await page.evaluate<string | undefined>('document.activeElement?.id'), 'edit-ip');
    assert.equal(await dialog.locator('#detail-status').textContent(), '');
    assert.equal(await dialog.locator('#edit-name-error').isVisible(), false);
    assert.equal((await server.store.get(id)).ip, '10.1.2.3');
    // Correcting the field clears its message; a problem with the name shows at the name.
    await ipInput.fill('10.1.2.3');
    await ipError.waitFor({ state: 'hidden' });
    await page.getByLabel('Name', { exact: true }).fill('tab\there');
    await page.getByRole('button', { name: 'Save' }).click();
    await dialog
      .locator('#edit-name-error', { hasText: 'name must not contain control characters' })
      .waitFor();
    assert.equal(await ipError.isVisible(), false);
    assert.equal((await server.store.get(id)).name, 'renamed-edge');

    // Delete asks in the page, naming the device, with the focus on Cancel; Escape cancels.
    await page.getByRole('button', { name: 'Delete…' }).click();
    const confirm = page.getByRole('alertdialog', { name: `Delete device ${id}?` });
    await confirm.waitFor();
    assert.equal(
      await page.evaluate<string | undefined>('document.activeElement?.id'),
      'confirm-delete-cancel',
    );
    await page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'hidden' });
    assert.equal(await dialog.isVisible(), true);
    assert.equal(await page.evaluate<string | undefined>('document.activeElement?.id'), 'delete');
    assert.equal((await server.store.get(id)).id, id);
    // Cancel keeps it too; Delete deletes it.
    await page.getByRole('button', { name: 'Delete…' }).click();
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'hidden' });
    assert.equal((await server.store.get(id)).id, id);
    await page.getByRole('button', { name: 'Delete…' }).click();
    await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
    await row(page, id).waitFor({ state: 'detached' });
    await assert.rejects(server.store.get(id), { code: 'device_not_found' });
    await page.getByText(`Deleted ${id}.`).waitFor();
    await page.close();
  });

  it('aliases: search finds a device by one, the detail adds and removes them', async () => {
    const register = (id: string, body: unknown) =>
      fetch(`${server.url}/ztp/register/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal(
      (
        await register('alias-box', {
          ip: '10.7.7.7',
          aliases: [{ type: 'serial', value: 'FOC777' }],
        })
      ).status,
      201,
    );
    const page = await open();
    await page.getByLabel('Search id, alias, name or ip').fill('foc777');
    await page.locator('#page-info', { hasText: '1–1 of 1' }).waitFor();
    assert.deepEqual(await rowIds(page), ['alias-box']);
    await page.getByRole('button', { name: 'Details of alias-box' }).click();
    const dialog = page.getByRole('dialog', { name: 'alias-box' });
    await dialog.locator('#aliases li', { hasText: 'FOC777' }).waitFor();
    // Add one; a conflict shows the API's message beside the form and stores nothing.
    await page.getByLabel('Type').selectOption('mac');
    await page.getByLabel('Value').fill('AABB.CC77.7777');
    await page.getByRole('button', { name: 'Add alias' }).click();
    await dialog.locator('#aliases li', { hasText: 'aa:bb:cc:77:77:77' }).waitFor();
    assert.equal((await server.store.get('aa:bb:cc:77:77:77')).id, 'alias-box');
    await page.getByLabel('Type').selectOption('serial');
    await page.getByLabel('Value').fill(ids[0]!);
    await page.getByRole('button', { name: 'Add alias' }).click();
    await dialog.locator('#alias-error', { hasText: 'already identifies device' }).waitFor();
    // Remove.
    await page.getByRole('button', { name: 'Remove serial alias FOC777' }).click();
    await dialog.locator('#aliases li', { hasText: 'FOC777' }).waitFor({ state: 'detached' });
    await assert.rejects(server.store.get('FOC777'), { code: 'device_not_found' });
    await page.close();
    await server.service.delete('alias-box', TEST_ADMIN);
  });

  it('pins: a pinned name survives the next boot, and what the device sent is shown beside it', async () => {
    const register = (body: unknown) =>
      fetch(`${server.url}/ztp/register/pin-box`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    await register({ ip: '10.8.8.8', name: 'from-boot' });
    const page = await open('/?device=pin-box');
    const dialog = page.getByRole('dialog', { name: 'pin-box' });
    await dialog.waitFor();
    assert.equal(await page.getByLabel('Pin name').isChecked(), false);
    await page.getByLabel('Name', { exact: true }).fill('operator-name');
    await page.getByLabel('Pin name').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.getByText('Saved.').waitFor();
    assert.deepEqual((await server.store.get('pin-box')).pinned, { name: true, userdata: false });
    // The device boots again with its own name: the pinned one stays, the reported one shows.
    await register({ ip: '10.8.8.9', name: 'device-name' });
    await dialog.locator('#reported-name', { hasText: 'Device reported: device-name' }).waitFor();
    assert.equal((await server.store.get('pin-box')).name, 'operator-name');
    // Unpin: the note goes away.
    await page.getByLabel('Pin name').uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.locator('#reported-name').waitFor({ state: 'hidden' });
    assert.deepEqual((await server.store.get('pin-box')).pinned, { name: false, userdata: false });
    await page.close();
    await server.service.delete('pin-box', TEST_ADMIN);
  });

  it('re-trigger turns a dead trigger into a pending one, and live changes move the badge', async () => {
    const page = await open();
    const id = ids[2]!;
    const badge = row(page, id).locator('.badge');
    assert.equal(await badge.textContent(), 'pending');
    await server.setTriggerState(id, 'dead');
    await row(page, id).locator('.badge-dead', { hasText: 'dead' }).waitFor();
    await page.locator('#stat-dead', { hasText: '1' }).waitFor();

    await page.getByRole('button', { name: `Details of ${id}` }).click();
    await page
      .getByRole('dialog', { name: id })
      .getByRole('button', { name: 'Re-trigger' })
      .click();
    await page.getByText(/Trigger #\d+ queued/).waitFor();
    await row(page, id).locator('.badge-pending', { hasText: 'pending' }).waitFor();
    const latest = await server.store.latestTrigger(id);
    assert.equal(latest?.state, 'pending');

    await server.setTriggerState(id, 'delivered');
    await row(page, id).locator('.badge-delivered', { hasText: 'delivered' }).waitFor();
    await page.close();
  });

  it("shows each device's latest progress report as its status, live, and its timeline in the detail", async () => {
    const page = await open();
    const id = ids[4]!;
    const status = row(page, id).locator('td[data-label="Status"]');
    assert.equal(await status.textContent(), '—');
    await server.reports.report(id, { type: 'bootstrap-initiated' });
    await status.locator('.report-progress', { hasText: 'bootstrap-initiated' }).waitFor();
    await server.reports.report(id, { type: 'config-error', message: 'commit failed: line 7' });
    await status.locator('.report-error', { hasText: 'config-error' }).waitFor();

    await page.getByRole('button', { name: `Details of ${id}` }).click();
    const dialog = page.getByRole('dialog', { name: id });
    const timeline = dialog.locator('#reports tbody tr');
    await timeline.first().getByText('commit failed: line 7').waitFor();
    assert.deepEqual(await dialog.locator('#reports tbody .report').allTextContents(), [
      'config-error',
      'bootstrap-initiated',
    ]);
    await server.reports.report(id, { type: 'bootstrap-complete' });
    await dialog.locator('#reports tbody .report-complete').waitFor();
    assert.equal(await timeline.count(), 3);
    await status.locator('.report-complete', { hasText: 'bootstrap-complete' }).waitFor();
    await page.close();
  });

  it('asks for the admin token when the API wants one, and keeps it for the session', async () => {
    server.auth.token = 's3cret-token';
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(5000);
      await page.goto(server.url);
      const prompt = page.getByRole('dialog', { name: 'Admin token required' });
      await prompt.waitFor();
      assert.equal(await page.locator('#devices tbody tr[data-id]').count(), 0);

      await page.getByLabel('Admin token', { exact: true }).fill('manager-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await prompt.getByText('may not use the management API').waitFor();

      await page.getByLabel('Admin token', { exact: true }).fill('wrong');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await prompt.getByText('was not accepted').waitFor();

      await page.getByLabel('Admin token', { exact: true }).fill('s3cret-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await prompt.waitFor({ state: 'hidden' });
      await page.locator('#page-info', { hasText: 'of 29' }).waitFor();
      await page.getByText('Live', { exact: true }).waitFor();
      assert.equal(
        await page.evaluate<string | null>("sessionStorage.getItem('ztp-admin-token')"),
        's3cret-token',
      );

      // A reload in the same tab does not ask again.
      await page.reload();
      await page.locator('#page-info', { hasText: 'of 29' }).waitFor();
      assert.equal(await prompt.isVisible(), false);

      // Sign out forgets the token, hides the data and asks for a token again.
      await page.getByText('Live', { exact: true }).waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await prompt.getByText('Signed out').waitFor();
      assert.equal(
        await page.evaluate<string | null>("sessionStorage.getItem('ztp-admin-token')"),
        null,
      );
      assert.equal(await page.locator('#devices tbody tr').count(), 0);
      assert.equal(await page.locator('#stat-devices').textContent(), '–');
      await page.getByLabel('Admin token', { exact: true }).fill('s3cret-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await prompt.waitFor({ state: 'hidden' });
      await page.locator('#page-info', { hasText: 'of 29' }).waitFor();
      // The live stream reconnected with the new token.
      await page.getByText('Live', { exact: true }).waitFor();
      await page.close();
    } finally {
      server.auth.token = undefined;
    }
  });

  it('works with the keyboard: open a device with Enter, close with Escape, focus returns', async () => {
    const page = await open();
    const id = ids[4]!;
    const button = page.getByRole('button', { name: `Details of ${id}` });
    await button.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: id });
    await dialog.waitFor();
    // Focus moved into the dialog (its title), so screen readers announce it.
    assert.equal(
      await page.evaluate<string | undefined>('document.activeElement?.id'),
      'detail-title',
    );
    await page.keyboard.press('Tab');
    assert.equal(
      await page.evaluate<string | undefined>('document.activeElement?.id'),
      'detail-close',
    );
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(
      await page.evaluate<string | null>("document.activeElement?.getAttribute('aria-label')"),
      `Details of ${id}`,
    );
    await page.close();
  });

  it('the trigger cards and the trigger filter show the devices whose latest trigger is in that state', async () => {
    const page = await open();
    const [failedA, failedB, dead] = [ids[10]!, ids[11]!, ids[12]!];
    await server.setTriggerState(failedA, 'failed');
    await server.setTriggerState(failedB, 'failed');
    await server.setTriggerState(dead, 'dead');
    const failedCard = page.getByRole('button', { name: /Failed triggers/ });
    await failedCard.locator('#stat-failed', { hasText: '2' }).waitFor();

    await failedCard.click();
    await page.locator('#page-info', { hasText: '1–2 of 2' }).waitFor();
    assert.deepEqual(await rowIds(page), [failedA, failedB]);
    assert.deepEqual(await page.locator('#devices .badge').allTextContents(), ['failed', 'failed']);
    assert.equal(await failedCard.getAttribute('aria-pressed'), 'true');
    assert.equal(await page.getByLabel('Latest trigger').inputValue(), 'failed');

    // A re-triggered device leaves the filtered table by itself (live update).
    await server.service.requeueTrigger(failedA, TEST_ADMIN);
    await page.locator('#page-info', { hasText: '1–1 of 1' }).waitFor();
    assert.deepEqual(await rowIds(page), [failedB]);

    // The select offers every state; the cards follow it.
    await page.getByLabel('Latest trigger').selectOption('dead');
    await page.locator('#page-info', { hasText: '1–1 of 1' }).waitFor();
    await row(page, dead).waitFor();
    assert.equal(await failedCard.getAttribute('aria-pressed'), 'false');
    const deadCard = page.getByRole('button', { name: /Dead triggers/ });
    assert.equal(await deadCard.getAttribute('aria-pressed'), 'true');

    // Together with a search that nothing matches: said plainly, not "0–0 of 0".
    await page.getByLabel('Search id, alias, name or ip').fill('sw-edge');
    await page.getByText('No devices match: search “sw-edge”, latest trigger dead.').waitFor();
    assert.equal(await page.locator('#page-info').textContent(), 'No devices match');

    // A second click on the active card shows every device again.
    await page.getByLabel('Search id, alias, name or ip').fill('');
    await page.locator('#page-info', { hasText: '1–1 of 1' }).waitFor();
    await deadCard.click();
    await page.locator('#page-info', { hasText: '1–25 of' }).waitFor();
    assert.equal(await deadCard.getAttribute('aria-pressed'), 'false');
    assert.equal(await page.getByLabel('Latest trigger').inputValue(), '');
    await page.close();
  });

  it('fits a phone screen: rows become labelled cards without horizontal scrolling', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    page.setDefaultTimeout(5000);
    await page.goto(server.url);
    await page.locator('#devices tbody tr[data-id]').first().waitFor();
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    assert.equal(overflow, 0);
    const display = await page.evaluate<string>(
      `getComputedStyle(document.querySelector('#devices tbody td[data-label="IP"]')).display`,
    );
    assert.equal(display, 'grid');
    await page.close();
  });
});
