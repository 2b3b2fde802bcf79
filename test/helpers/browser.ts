/**
 * Debian's chromium through playwright-core, for the pages the agent serves (the status page,
 * the report): one headless launch with the flags that keep it off the network and quiet, and
 * the screenshots a test takes copied to docs/screenshots/ when GREENLIGHT_UPDATE_SCREENSHOTS=1.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { hasTool, tempDir } from './tools.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether chromium is installed (the browser tests are skipped without it). */
export const hasChromium = (): boolean => hasTool('chromium');

export interface PageBrowser {
  browser: Browser;
  /** Where the test writes its screenshots (a fresh temporary directory). */
  shots: string;
  /** Close the browser; with GREENLIGHT_UPDATE_SCREENSHOTS=1, copy `screenshots` (names in `shots`) to docs/screenshots/. */
  close(screenshots: readonly string[]): Promise<void>;
}

export async function launchBrowser(shotsPrefix: string): Promise<PageBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const shots = tempDir(shotsPrefix);
  return {
    browser,
    shots,
    close: async (screenshots) => {
      await browser.close();
      if (process.env.GREENLIGHT_UPDATE_SCREENSHOTS !== '1') return;
      const target = join(import.meta.dirname, '..', '..', 'docs', 'screenshots');
      mkdirSync(target, { recursive: true });
      for (const name of screenshots) copyFileSync(join(shots, name), join(target, name));
    },
  };
}
