import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { locateTool, type ToolSpec } from './tool-installer';

// Prometheus's own rule checker; the module's v0.3xx.y versions are Prometheus 3.xx.y. Built
// without the service-discovery plugins (Kubernetes, AWS, Azure, GCE…): the scrape config uses
// static targets, and those plugins are most of what there is to compile.
const PROMTOOL: ToolSpec = {
  binary: 'promtool',
  envVar: 'PROMTOOL_PATH',
  install: {
    kind: 'go',
    module: 'github.com/prometheus/prometheus/cmd/promtool@v0.316.0',
    tags: ['remove_all_sd'],
  },
};

const OPS = path.resolve(__dirname, '..', 'ops', 'prometheus');

export function findPromtool(log?: (message: string) => void): string {
  return locateTool(PROMTOOL, log);
}

/**
 * `npm run check:alerts`: the Prometheus configuration and alert rules are valid, and every
 * alert's unit tests (ops/prometheus/alerts.test.yml) pass.
 */
function checkAlerts(): number {
  const promtool = findPromtool((message) => process.stderr.write(`${message}\n`));
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
    process.stdout.write(`${findPromtool((message) => process.stderr.write(`${message}\n`))}\n`);
  }
}
