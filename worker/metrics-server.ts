import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { Gauge, type Registry } from 'prom-client';

/**
 * The worker's one metrics URL, `GET /metrics`: its own registry (business counters, database
 * gauges, Node's process metrics) followed by the Temporal SDK's runtime metrics (workflow and
 * activity task latencies, slots, polls, sticky cache…).
 *
 * Why this shape: the SDK's metrics come from its Rust core, which serves them only from an
 * exporter of its own (or pushes them over OTLP). Business metrics through the SDK's meter would
 * give one exporter too, but that meter cannot read a gauge when scraped (the held-purchase age
 * comes from PostgreSQL) and lives for the whole process, where tests need a registry each. So
 * the core's exporter listens on a loopback port nobody else uses, and each scrape of this
 * server reads it and appends it: one URL for Prometheus, one scrape job, one `up`.
 */
export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(options: {
  registry: Registry;
  host: string;
  port: number;
  /** The SDK's own exporter (`http://127.0.0.1:<port>/metrics`); null when it is not installed. */
  runtimeMetricsUrl: string | null;
}): Promise<MetricsServer> {
  const { registry, runtimeMetricsUrl } = options;
  const runtimeUp = new Gauge({
    name: 'billing_worker_runtime_metrics_up',
    help: "1 when this scrape includes the Temporal SDK's runtime metrics, 0 when its exporter did not answer.",
    registers: [registry],
  });

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    void (async () => {
      const runtime = runtimeMetricsUrl ? await readRuntimeMetrics(runtimeMetricsUrl) : null;
      runtimeUp.set(runtime === null ? 0 : 1);
      const own = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(runtime ? `${own}\n${runtime}` : own);
    })().catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readRuntimeMetrics(url: string): Promise<string | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return response.ok ? await response.text() : null;
  } catch {
    return null;
  }
}

/** A loopback port free right now, for the SDK's exporter (which cannot report one it picked). */
export async function freeLoopbackPort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
