// Screenshots of the operator console for docs/operations.md: a seeded demo registry on 127.0.0.1,
// Debian's Chromium via playwright-core. Writes docs/console-table.png, docs/console-detail.png
// and docs/console-phone.png.   Usage: npm run build && npx tsx scripts/console-screenshots.ts
import { mkdirSync } from 'node:fs';
import { launchChromium, startConsoleServer } from '../test/console/fixture.js';

const root = new URL('..', import.meta.url).pathname;
const server = await startConsoleServer();
const { store } = server;
const now = Date.now();
const roles = ['core', 'edge', 'access', 'leaf', 'spine', 'oob'];

// 240 devices registered over the last two days; a few re-registered with new addresses.
for (let i = 0; i < 240; i++) {
  const id = `52:54:00:1a:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const role = roles[i % roles.length]!;
  const times = i % 9 === 0 ? 4 : 1;
  for (let r = 0; r < times; r++) {
    await store.register(
      {
        id,
        ip: `10.${20 + (i % 4)}.${Math.floor(i / 4)}.${10 + r}`,
        name: `${role}-sw-${String(i).padStart(3, '0')}`,
        userdata: `site: ams-${(i % 3) + 1}\nrack: ${(i % 24) + 1}\nmodel: ${i % 2 ? 'EX4300' : 'QFX5120'}`,
        source: `192.0.2.${(i % 200) + 1}`,
        at: now - ((i * 731_000) % 172_800_000) - (times - r) * 600_000,
      },
      { enqueueTrigger: true, historyLimit: 20 },
    );
  }
}
// Give the triggers the spread a live system has.
const claimed = await store.claimTriggers(now + 1, 100_000, 60_000);
for (const [n, t] of claimed.entries()) {
  const outcome =
    n % 23 === 5
      ? ({ kind: 'dead', at: now, error: 'connect ECONNREFUSED 10.9.0.1:9000' } as const)
      : n % 17 === 3
        ? ({ kind: 'failed', at: now, error: 'manager answered 404' } as const)
        : n % 5 === 1
          ? ({
              kind: 'retry',
              at: now,
              nextAttemptAt: now + 30_000,
              error: 'manager answered 503',
            } as const)
          : ({ kind: 'delivered', at: t.createdAt + 120 + (n % 7) * 40 } as const);
  await store.completeTrigger(t, outcome);
}

const browser = await launchChromium();
try {
  mkdirSync(`${root}docs`, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(server.url);
  await page.getByText('Live', { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Last seen' }).click();
  await page.locator('th[aria-sort="descending"]', { hasText: 'Last seen' }).waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${root}docs/console-table.png` });

  const detailId = '52:54:00:1a:00:09';
  await page.getByLabel('Search id, alias, name or ip').fill('sw-009');
  await page.getByRole('button', { name: `Details of ${detailId}` }).click();
  await page.getByRole('dialog', { name: detailId }).waitFor();
  await page.setViewportSize({ width: 1280, height: 1180 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${root}docs/console-detail.png` });
  await page.close();

  const phone = await browser.newPage({
    viewport: { width: 390, height: 844 },
    isMobile: true,
    deviceScaleFactor: 2,
  });
  await phone.goto(server.url);
  await phone.locator('#devices tbody tr[data-id]').first().waitFor();
  await phone.screenshot({ path: `${root}docs/console-phone.png` });
} finally {
  await browser.close();
  await server.close();
}
console.log('wrote docs/console-table.png, docs/console-detail.png, docs/console-phone.png');
