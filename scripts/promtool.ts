import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { locateTool, type ToolSpec } from './tool-installer';

// Prometheus's own rule checker; the module's v0.3xx.y versions are Prometheus 3.xx.y, the one
// docker-compose.yml runs. Built without the service-discovery plugins (Kubernetes, AWS, Azure,
// GCE…): the scrape config uses static targets, and those plugins are most of what there is to
// compile.
const PROMTOOL: ToolSpec = {
  binary: 'promtool',
  label: 'promtool (Prometheus 3.16.0)',
  envVar: 'PROMTOOL_PATH',
  rejectOnPath: olderThanPrometheus3,
  install: {
    kind: 'go',
    module: 'github.com/prometheus/prometheus/cmd/promtool@v0.316.0',
    tags: ['remove_all_sd'],
  },
};

/**
 * A Prometheus 2 promtool (Debian 12 packages 2.42) passes these files today but evaluates the
 * rule tests with Prometheus 2's range selectors, which include a sample at the window's start
 * that Prometheus 3 leaves out: `count_over_time(x[15m])` over one-minute samples is 16 there
 * and 15 in the Prometheus that runs the rules. Tests must agree with that one.
 */
function olderThanPrometheus3(file: string): string | null {
  const { stdout } = spawnSync(file, ['--version'], { encoding: 'utf8' });
  const version = /version (\d+)\.(\S+)/.exec(stdout ?? '');
  return version && Number(version[1]) < 3
    ? `it is Prometheus ${version[1]}.${version[2]}, the rules run on 3`
    : null;
}

const OPS = path.resolve(__dirname, '..', 'ops', 'prometheus');

export function findPromtool(log?: (message: string) => void): string {
  return locateTool(PROMTOOL, log);
}

/**
 * `npm run check:alerts`: the Prometheus configuration and alert rules are valid, and every
 * alert's unit tests (ops/prometheus/alerts.test.yml) pass.
 */
function checkAlerts(): number {
  const promtool = findPromtool();
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
