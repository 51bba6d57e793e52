import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { toStderr } from './tool-installer';

/**
 * Chromium, for the tests that drive a real browser (the local Stripe's checkout pages, through
 * puppeteer-core, which downloads no browser of its own). Found in this order: CHROMIUM_PATH,
 * then Chromium or Chrome on the PATH; else, as root where apt is, Debian's `chromium` package is
 * installed (with the libraries it needs: a browser is not one file to unpack into .tools, as the
 * other tools are); anywhere else the error says what to install.
 */

const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];
const ENV_VAR = 'CHROMIUM_PATH';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(binary: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, binary))) return path.join(dir, binary);
  }
  return null;
}

/** The browser's path without installing it, or null. */
export function findInstalledChromium(): string | null {
  const explicit = process.env[ENV_VAR];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${ENV_VAR}=${explicit} is not an executable file`);
    return explicit;
  }
  for (const name of NAMES) {
    const found = onPath(name);
    if (found) return found;
  }
  return null;
}

function aptInstall(log: (message: string) => void): void {
  const aptGet = onPath('apt-get');
  if (!aptGet || process.getuid?.() !== 0) {
    throw new Error(
      `Chromium is needed by the browser tests of the checkout pages and was not found: install it ` +
        `(Debian: sudo apt-get install chromium) or set ${ENV_VAR} to a Chromium or Chrome binary`,
    );
  }
  log("installing Chromium from Debian's chromium package with apt (first run only; a few minutes)…");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync(aptGet, ['install', '-y', '-q', '--no-install-recommends', 'chromium'], {
      env,
      encoding: 'utf8',
    });
  let result = install();
  if (result.status !== 0) {
    // A fresh container has no package lists yet.
    log('apt-get install chromium failed; updating the package lists once…');
    spawnSync(aptGet, ['update', '-qq'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    result = install();
  }
  if (result.status !== 0) {
    throw new Error(`apt-get install chromium failed: ${(result.stderr || result.stdout || '').trim()}`);
  }
}

/** The browser's path; installs it first (saying so on `log`) when it is missing and it can. */
export function findChromium(log: (message: string) => void = toStderr): string {
  const found = findInstalledChromium();
  if (found) return found;
  aptInstall(log);
  const installed = findInstalledChromium();
  if (!installed) throw new Error('apt-get installed chromium, but no chromium is on the PATH');
  return installed;
}

/**
 * The flags every headless start needs on a machine without network: without them Chromium
 * waits on updates, sync and first-run checks that never answer.
 */
export const OFFLINE_HEADLESS_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

if (require.main === module) {
  process.stdout.write(`${findChromium()}\n`);
}
