import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { SEARCH_ATTRIBUTES } from '../workflows/shared/search-attributes';
import type { TemporalEngine } from './bench/stack';
import { openLog, spawnUntilReady, type LogSink } from './chaos/processes';
import { freePort, startPostgres, stopProcess, waitForPort } from './local-services';
import { findTemporalCli } from './temporal-cli';

/**
 * The Temporal server with PostgreSQL persistence (the compose file's topology), without Docker:
 * the server and its SQL schema tool built from their Go module into .tools, and databases on
 * a PostgreSQL the caller gives (the benchmark's), or on an embedded one (`npm run
 * temporal:postgres`). Schemas are created or updated, the namespace registered with the
 * service's search attributes, then the server runs (one process, every service).
 *
 *   npm run temporal:postgres                 # server on 127.0.0.1:7233, data in .data/temporal-postgres
 *   npm run temporal:postgres -- --build-only # only build the binaries
 */

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');

/**
 * v1.32.0 is the newest release whose go.mod asks for no newer Go than the machines have
 * (1.26.8); later patch releases ask for 1.26.10. With a newer Go installed, set
 * TEMPORAL_SERVER_VERSION to build another.
 */
const DEFAULT_VERSION = 'v1.32.0';
const NAMESPACE = 'default';
const RETENTION = '72h';

/** A free port on 127.0.0.1 below `limit` (picked at random from 10000 up, tried until one binds). */
async function freePortBelow(limit: number): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * (limit - 10_000));
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface TemporalServerBinaries {
  server: string;
  sqlTool: string;
}

/**
 * The server and schema tool: TEMPORAL_SERVER_PATH / TEMPORAL_SQL_TOOL_PATH if set, else built
 * into .tools/go/temporal-server-<version>/bin once (`go install` from the module proxy; the
 * first build takes several minutes on two cores, later ones use Go's build cache).
 */
export function temporalServerBinaries(log: (line: string) => void = () => {}): TemporalServerBinaries {
  const explicit = { server: process.env.TEMPORAL_SERVER_PATH, sqlTool: process.env.TEMPORAL_SQL_TOOL_PATH };
  if (explicit.server && explicit.sqlTool) return { server: explicit.server, sqlTool: explicit.sqlTool };
  const version = process.env.TEMPORAL_SERVER_VERSION ?? DEFAULT_VERSION;
  const binDir = path.join(ROOT, '.tools', 'go', `temporal-server-${version}`, 'bin');
  const built = { server: path.join(binDir, 'server'), sqlTool: path.join(binDir, 'sql') };
  if (!isExecutable(built.server) || !isExecutable(built.sqlTool)) {
    mkdirSync(binDir, { recursive: true });
    log(`building the Temporal server ${version} and its SQL tool with go install (minutes, once) …`);
    const result = spawnSync(
      'go',
      [
        'install',
        `go.temporal.io/server/cmd/server@${version}`,
        `go.temporal.io/server/cmd/tools/sql@${version}`,
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, GOBIN: binDir, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
      },
    );
    if (result.error || result.status !== 0 || !isExecutable(built.server)) {
      throw new Error(
        `could not build the Temporal server ${version} (exit ${String(result.status)}${result.error ? `, ${result.error.message}` : ''}); ` +
          'Go is needed, or set TEMPORAL_SERVER_PATH and TEMPORAL_SQL_TOOL_PATH',
      );
    }
  }
  return { server: explicit.server ?? built.server, sqlTool: explicit.sqlTool ?? built.sqlTool };
}

interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

function pgTarget(url: string): PgTarget {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

/** Creates the two databases with their schemas, or brings existing ones up to date. */
export async function prepareTemporalDatabases(
  adminUrl: string,
  sqlTool: string,
  log: (line: string) => void,
): Promise<void> {
  const pg = pgTarget(adminUrl);
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    for (const [database, schema] of [
      ['temporal', 'postgresql/v12/temporal'],
      ['temporal_visibility', 'postgresql/v12/visibility'],
    ] as const) {
      const exists = (await admin`SELECT 1 FROM pg_database WHERE datname = ${database}`).length > 0;
      const tool = (...args: string[]) =>
        execFileAsync(sqlTool, [
          '--ep',
          pg.host,
          '-p',
          String(pg.port),
          '-u',
          pg.user,
          '--pw',
          pg.password,
          '--pl',
          'postgres12',
          '--db',
          database,
          ...args,
        ]);
      if (!exists) {
        log(`creating database ${database}`);
        await tool('create-database');
        await tool('setup-schema', '-v', '0.0');
      }
      await tool('update-schema', '--schema-name', schema);
    }
  } finally {
    await admin.end({ timeout: 5 });
  }
}

function serverConfig(options: {
  pg: PgTarget;
  ports: Record<'frontend' | 'frontendHttp' | 'history' | 'matching' | 'worker' | 'metrics', number>;
  membership: Record<'frontend' | 'history' | 'matching' | 'worker', number>;
  dynamicConfigFile: string;
}): string {
  const { pg, ports, membership } = options;
  const store = (database: string, maxConns: number) => `
      sql:
        pluginName: postgres12
        databaseName: ${database}
        connectAddr: "${pg.host}:${pg.port}"
        connectProtocol: tcp
        user: ${JSON.stringify(pg.user)}
        password: ${JSON.stringify(pg.password)}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (name: 'frontend' | 'history' | 'matching' | 'worker', extra = '') => `
  ${name}:
    rpc:
      grpcPort: ${ports[name]}
      membershipPort: ${membership[name]}
      bindOnIP: 127.0.0.1${extra}`;
  return `# Written by scripts/temporal-postgres.ts.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  # Few shards: one small machine, and each shard is work for the history service.
  numHistoryShards: 4
  datastores:
    postgres-default:${store('temporal', 20)}
    postgres-visibility:${store('temporal_visibility', 4)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:${ports.metrics}"
services:${service('frontend', `\n      httpPort: ${ports.frontendHttp}`)}${service('history')}${service('matching')}${service('worker')}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${ports.frontend}"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: ${JSON.stringify(options.dynamicConfigFile)}
  pollInterval: 10s
`;
}

// Search attributes usable as soon as they are registered (as on the dev server).
const DYNAMIC_CONFIG = `# Written by scripts/temporal-postgres.ts.
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
    constraints: {}
limit.maxIDLength:
  - value: 255
    constraints: {}
`;

/** The namespace and the service's search attributes, registered once. */
async function registerNamespace(address: string, log: (line: string) => void): Promise<void> {
  const cli = findTemporalCli(log);
  const run = (...args: string[]) => execFileAsync(cli, [...args, '--address', address]);
  try {
    await run('operator', 'namespace', 'describe', '--namespace', NAMESPACE);
  } catch {
    log(`registering namespace ${NAMESPACE}`);
    await run('operator', 'namespace', 'create', '--namespace', NAMESPACE, '--retention', RETENTION);
  }
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const { stdout } = await run(
        'operator',
        'search-attribute',
        'list',
        '--namespace',
        NAMESPACE,
        '--output',
        'json',
      );
      const missing = SEARCH_ATTRIBUTES.filter(({ name }) => !stdout.includes(`"${name}"`));
      if (missing.length === 0) return;
      for (const { name, cliType } of missing) {
        await run(
          'operator',
          'search-attribute',
          'create',
          '--namespace',
          NAMESPACE,
          '--name',
          name,
          '--type',
          cliType,
        );
      }
    } catch (error) {
      // A namespace just created takes a moment to reach every service.
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/**
 * Prepares the databases on the PostgreSQL at `postgresUrl` (a user that may create databases),
 * writes the configuration into `workDir`, and starts the server on free ports (or `port`).
 */
export async function startTemporalOnPostgres(options: {
  postgresUrl: string;
  workDir: string;
  log: LogSink;
  progress: (line: string) => void;
  port?: number;
}): Promise<TemporalEngine> {
  const binaries = temporalServerBinaries(options.progress);
  mkdirSync(options.workDir, { recursive: true });
  await prepareTemporalDatabases(options.postgresUrl, binaries.sqlTool, options.progress);
  // Temporal stores the services' ports in its membership table as a smallint: all below 32768,
  // where the ephemeral range (and so freePort) starts.
  const low = () => freePortBelow(32_768);
  const ports = {
    frontend: options.port ?? (await low()),
    frontendHttp: await low(),
    history: await low(),
    matching: await low(),
    worker: await low(),
    metrics: await freePort(),
  };
  const membership = {
    frontend: await low(),
    history: await low(),
    matching: await low(),
    worker: await low(),
  };
  const configFile = path.join(options.workDir, 'temporal-server.yaml');
  const dynamicConfigFile = path.join(options.workDir, 'dynamic-config.yaml');
  writeFileSync(dynamicConfigFile, DYNAMIC_CONFIG);
  writeFileSync(
    configFile,
    serverConfig({ pg: pgTarget(options.postgresUrl), ports, membership, dynamicConfigFile }),
  );
  const child = await spawnUntilReady({
    name: 'temporal-server',
    command: binaries.server,
    args: ['--config-file', configFile, '--allow-no-auth', 'start'],
    log: options.log,
    probe: async () => {
      await waitForPort(ports.frontend, 1000);
      return (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).ok;
    },
    timeoutMs: 180_000,
  });
  const address = `127.0.0.1:${ports.frontend}`;
  try {
    await registerNamespace(address, options.progress);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return {
    address,
    metricsUrl: `http://127.0.0.1:${ports.metrics}/metrics`,
    pid: () => child.pid,
    stop: () => stopProcess(child, 15_000),
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string', default: '7233' },
      'postgres-port': { type: 'string', default: '54330' },
      'data-dir': { type: 'string', default: path.join(ROOT, '.data', 'temporal-postgres') },
      'build-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  if (values.help) {
    process.stdout.write(
      'usage: npm run temporal:postgres -- [--port 7233] [--postgres-port 54330] [--data-dir DIR] [--build-only]\n',
    );
    return;
  }
  const binaries = temporalServerBinaries(progress);
  if (values['build-only']) {
    process.stdout.write(`${binaries.server}\n${binaries.sqlTool}\n`);
    return;
  }
  const dataDir = path.resolve(values['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  const pg = await startPostgres({
    dataDir: path.join(dataDir, 'postgres'),
    port: Number(values['postgres-port']),
    database: 'postgres',
    persistent: true,
    log: () => {},
  });
  const log = openLog(path.join(dataDir, 'temporal-server.log'));
  let temporal: TemporalEngine | null = null;
  const stop = async () => {
    await temporal?.stop();
    await pg.stop();
    await log.close();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
  try {
    temporal = await startTemporalOnPostgres({
      postgresUrl: pg.url,
      workDir: dataDir,
      log: log.sink,
      progress,
      port: Number(values.port),
    });
  } catch (error) {
    await stop();
    throw error;
  }
  progress(
    `Temporal server on PostgreSQL: ${temporal.address} (namespace ${NAMESPACE}, search attributes registered); ` +
      `metrics ${temporal.metricsUrl}; PostgreSQL 127.0.0.1:${pg.port}; log ${path.join(dataDir, 'temporal-server.log')}. Ctrl-C stops.`,
  );
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(
      `temporal:postgres failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
