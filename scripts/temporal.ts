import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { operatorEnvironment, type DevStack } from '../cli/dev-stack';
import { findTemporalCli } from './temporal-cli';

/**
 * `npm run temporal -- <command>`: the project's Temporal CLI (found or installed as the tests
 * find it) pointed at the service, so that a workflow's history reads decrypted:
 *
 *   npm run temporal -- workflow show --workflow-id evt_…
 *
 * With TEMPORAL_ADDRESS in the environment the CLI gets the environment as it is. Otherwise the
 * running `npm run dev` supplies the address, namespace and codec server (endpoint and
 * `Authorization` header). They reach the CLI as its own variables (TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_CODEC_ENDPOINT, TEMPORAL_CODEC_AUTH), below its flags: any flag
 * passed here wins, and nothing secret appears on a command line.
 */

/** The CLI's variables for the dev stack's Temporal and codec server, where `env` has none. */
export function temporalCliEnvironment(env: NodeJS.ProcessEnv, stack: DevStack): NodeJS.ProcessEnv {
  const fromStack: Record<string, string> = {
    TEMPORAL_ADDRESS: stack.temporal.address,
    TEMPORAL_NAMESPACE: stack.temporal.namespace,
    TEMPORAL_CODEC_ENDPOINT: stack.codec.endpoint,
    TEMPORAL_CODEC_AUTH: `Bearer ${stack.codec.token}`,
  };
  const filled: NodeJS.ProcessEnv = { ...env };
  for (const [name, value] of Object.entries(fromStack)) {
    if (!filled[name]) filled[name] = value;
  }
  return filled;
}

function main(args: string[]): number {
  const found = operatorEnvironment(process.env, 'TEMPORAL_ADDRESS');
  let env = process.env;
  if ('error' in found) {
    // The CLI still runs (help, its own config file, `--address`): it says the rest itself.
    if (!args.some((arg) => arg === '--address' || arg.startsWith('--address='))) {
      process.stderr.write(`${found.error}\n`);
    }
  } else if (found.stack) {
    env = temporalCliEnvironment(process.env, found.stack);
  }
  const result = spawnSync(findTemporalCli(), args, { stdio: 'inherit', env });
  if (result.error) throw result.error;
  return result.status ?? 128 + constants.signals[result.signal ?? 'SIGTERM'];
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
