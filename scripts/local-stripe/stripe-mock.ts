import { spawn } from 'node:child_process';
import { freePort, stopProcess, waitForPort } from '../local-services';
import { findStripeMock } from '../stripe-mock';

export interface StripeMock {
  /** Its plain-HTTP address, for the SDK's base URL or a stand-in in front of it. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Stripe's own stripe-mock on free ports: it validates every request against Stripe's OpenAPI
 * description and answers a fixture of the object asked for. It keeps no state.
 */
export async function startStripeMock(): Promise<StripeMock> {
  const httpPort = await freePort();
  // stripe-mock also serves HTTPS, on a fixed port unless told otherwise: give it a free one too.
  const mock = spawn(
    findStripeMock(),
    ['-http-addr', `127.0.0.1:${httpPort}`, '-https-addr', `127.0.0.1:${await freePort()}`],
    { stdio: 'ignore' },
  );
  await waitForPort(httpPort, 30_000);
  return { url: `http://127.0.0.1:${httpPort}`, stop: () => stopProcess(mock) };
}
