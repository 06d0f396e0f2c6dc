import { execFileSync } from 'node:child_process';
import { Browser, chromium } from 'playwright-core';

/** Debian's chromium (CHROMIUM_PATH to override); `.ci/run` installs it. */
export function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('The browser tests need Chromium: apt-get install chromium (or set CHROMIUM_PATH).');
  }
}

/** Headless Chromium as test/browser.e2e-spec.ts runs it (see STACK.md, "Browser tests"). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
