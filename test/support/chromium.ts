import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';

/** Debian's chromium (CHROMIUM_PATH to override); `.ci/run` installs it. */
export function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('The browser test needs Chromium: apt-get install chromium (or set CHROMIUM_PATH).');
  }
}

/** Headless Debian Chromium with the flags that work here (see STACK.md, "Browser tests"). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * The same browser with a profile of its own (a temporary directory): a plain context is
 * incognito-like, where Chromium refuses the Push API outright; a profile lets a page really try.
 */
export function launchChromiumProfile(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'push-chromium-')), {
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Script errors, CSP violations (console errors) and failed loads, but the favicon nobody serves. */
export function watchErrors(page: Page, errors: string[]): void {
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => msg.type() === 'error' && !msg.text().startsWith('Failed to load resource') && errors.push(msg.text()));
  page.on('response', (res) => res.status() >= 400 && !res.url().endsWith('/favicon.ico') && errors.push(`${res.status()} ${res.url()}`));
  page.on('requestfailed', (req) => req.failure()?.errorText !== 'net::ERR_ABORTED' && errors.push(`failed ${req.url()}: ${req.failure()?.errorText ?? ''}`));
}
