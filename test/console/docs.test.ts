/**
 * The Swagger UI at /docs in a real browser (Debian's Chromium driven by playwright-core): its
 * Content-Security-Policy lets the page render completely without a single violation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import {
  chromiumMissing,
  launchChromium,
  startConsoleServer,
  type ConsoleServer,
} from './fixture.js';

const skip = chromiumMissing;

describe('Swagger UI (browser)', { skip }, () => {
  let server: ConsoleServer;
  let browser: Browser;

  before(async () => {
    server = await startConsoleServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser.close();
    await server.close();
  });

  it('loads /docs with no Content-Security-Policy error, scripts still without unsafe-inline', async () => {
    const page = await browser.newPage();
    // Generous: Swagger UI's 1.5 MB bundle loads slowly on a busy CI machine.
    page.setDefaultTimeout(30_000);
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    // Violations are also recorded in the page itself, where none can be missed by the time
    // the last one is read.
    await page.addInitScript(
      `window.cspViolations = [];
       document.addEventListener('securitypolicyviolation', (e) =>
         window.cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')));`,
    );
    const response = await page.goto(`${server.url}/docs/`);
    const csp = response?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);

    // The whole UI rendered: the top bar with its logo, and the API description with operations.
    await page.locator('.topbar svg, .topbar img').first().waitFor();
    await page.locator('.swagger-ui .info .title').waitFor();
    await page.locator('.opblock-tag', { hasText: 'management' }).first().waitFor();
    // Reports are queued as tasks: let the page run the ones already queued, then read them.
    const violations = await page.evaluate<string[]>(
      'new Promise((resolve) => setTimeout(() => resolve(window.cspViolations)))',
    );
    assert.deepEqual(violations, []);
    assert.deepEqual(
      errors.filter((e) => /Content Security Policy/i.test(e)),
      [],
    );
    assert.deepEqual(errors, []);
    await page.close();
  });
});
