import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { findChromium, OFFLINE_HEADLESS_FLAGS } from '../../scripts/chromium';

export interface HeadlessBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** How long the first run may take to install Chromium (apt) before the browser starts. */
export const BROWSER_SETUP_TIMEOUT_MS = 10 * 60_000;

/**
 * A real headless Chromium (Debian's, installed on first use by scripts/chromium.ts), driven by
 * puppeteer-core, with a fresh profile of its own that is thrown away on close.
 */
export async function launchBrowser(): Promise<HeadlessBrowser> {
  const executablePath = findChromium();
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'credits-browser-'));
  try {
    const browser = await puppeteer.launch({
      executablePath,
      headless: true,
      userDataDir,
      args: OFFLINE_HEADLESS_FLAGS,
    });
    return {
      browser,
      async close() {
        await browser.close();
        rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
}
