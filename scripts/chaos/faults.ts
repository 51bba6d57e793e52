import { sleep, type Supervised } from './processes';
import { Random } from './random';
import type { ChaosStack } from './stack';

/**
 * The faults of a run, placed over the time the events take to send (so a longer run gets more
 * worker kills), and carried out one after the other, each waiting for the previous one to have
 * recovered: a worker killed while Temporal is still restarting would only test the start-up.
 * The SMTP refusal is a window that overlaps the others.
 */

export type FaultKind = 'worker_kill' | 'api_kill' | 'temporal_restart' | 'postgres_restart' | 'smtp_refusal';

export const FAULT_LABELS: Record<FaultKind, string> = {
  worker_kill: 'worker kill -9',
  api_kill: 'API kill -9',
  temporal_restart: 'Temporal restart (kill -9)',
  postgres_restart: 'PostgreSQL immediate restart',
  smtp_refusal: 'SMTP refusing (421/451)',
};

export const SMTP_REFUSAL_MS = 30_000;
/** About one worker kill per this much sending, never fewer than 3. */
const WORKER_KILL_EVERY_MS = 40_000;
const MIN_WORKER_KILLS = 3;
const MAX_WORKER_KILLS = 15;

export interface PlannedFault {
  kind: FaultKind;
  /** From the start of sending. */
  atMs: number;
  /** How long the process stays down before it is started again (or the refusal lasts). */
  pauseMs: number;
}

export interface FaultRecord extends PlannedFault {
  startedAt: number;
  endedAt: number;
  /** Until the process was up again (ready), or the refusal ended. */
  outageMs: number;
  /** When the killed process was seen gone (null for the SMTP refusal). */
  goneAt: number | null;
  error: string | null;
}

export function planFaults(sendMs: number, seed: number): PlannedFault[] {
  const random = new Random(seed, 'faults');
  const at = (fraction: number) => Math.max(0, Math.round(sendMs * (fraction + random.between(-0.03, 0.03))));
  const faults: PlannedFault[] = [
    { kind: 'smtp_refusal', atMs: at(0.15), pauseMs: SMTP_REFUSAL_MS },
    { kind: 'api_kill', atMs: at(0.3), pauseMs: random.int(1000, 3000) },
    { kind: 'temporal_restart', atMs: at(0.5), pauseMs: random.int(1000, 3000) },
    { kind: 'postgres_restart', atMs: at(0.7), pauseMs: random.int(1000, 3000) },
  ];
  const kills = Math.min(
    MAX_WORKER_KILLS,
    Math.max(MIN_WORKER_KILLS, Math.round(sendMs / WORKER_KILL_EVERY_MS)),
  );
  for (let i = 0; i < kills; i += 1) {
    // Evenly over 5–90 % of the send, each shifted a little, so kills land on every phase.
    const fraction = 0.05 + (0.85 * (i + 0.5)) / kills + random.between(-0.25, 0.25) * (0.85 / kills);
    faults.push({
      kind: 'worker_kill',
      atMs: Math.round(sendMs * fraction),
      pauseMs: random.int(1000, 4000),
    });
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

/** Kill -9, a pause, a start (which resolves once the process is ready again). */
async function killAndRestart(process: Supervised, pauseMs: number): Promise<{ goneAt: number }> {
  await process.signal('SIGKILL');
  const goneAt = Date.now();
  await sleep(pauseMs);
  await startUntilUp(process);
  return { goneAt };
}

/** A start that fails (it should not) is tried again: the run must not stay without the process. */
async function startUntilUp(process: Supervised): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await process.start();
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(2000);
    }
  }
}

export async function runFaults(options: {
  faults: PlannedFault[];
  stack: ChaosStack;
  /** When sending started (epoch ms); fault times count from here. */
  origin: number;
  stopped: () => boolean;
  progress: (line: string) => void;
  /** Told of each fault just before it is carried out; the fault waits for what it returns. */
  beforeFault?: (fault: PlannedFault) => Promise<void> | void;
}): Promise<FaultRecord[]> {
  const { stack, origin } = options;
  const records: FaultRecord[] = [];

  const carryOut = async (fault: PlannedFault): Promise<void> => {
    const due = origin + fault.atMs;
    if (due > Date.now()) await sleep(due - Date.now());
    if (options.stopped()) return;
    options.progress(
      `fault: ${FAULT_LABELS[fault.kind]}${fault.kind === 'smtp_refusal' ? ` for ${fault.pauseMs / 1000} s` : ''}`,
    );
    await options.beforeFault?.(fault);
    const startedAt = Date.now();
    let error: string | null = null;
    let goneAt: number | null = null;
    try {
      switch (fault.kind) {
        case 'smtp_refusal':
          stack.sink.refuse(true);
          await sleep(fault.pauseMs);
          stack.sink.refuse(false);
          break;
        case 'worker_kill':
          ({ goneAt } = await killAndRestart(stack.worker, fault.pauseMs));
          break;
        case 'api_kill':
          ({ goneAt } = await killAndRestart(stack.api, fault.pauseMs));
          break;
        case 'temporal_restart':
          ({ goneAt } = await stack.temporal.restart(fault.pauseMs));
          break;
        case 'postgres_restart':
          ({ goneAt } = await stack.postgres.restartImmediately(fault.pauseMs));
          break;
      }
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
      options.progress(`fault ${fault.kind} could not be carried out: ${error}`);
    }
    const endedAt = Date.now();
    records.push({ ...fault, startedAt, endedAt, outageMs: endedAt - startedAt, goneAt, error });
    if (fault.kind !== 'smtp_refusal') {
      options.progress(`  recovered after ${((endedAt - startedAt) / 1000).toFixed(1)} s`);
    }
  };

  const refusals = options.faults.filter((fault) => fault.kind === 'smtp_refusal');
  const crashes = options.faults.filter((fault) => fault.kind !== 'smtp_refusal');
  await Promise.all([
    ...refusals.map(carryOut),
    (async () => {
      for (const fault of crashes) await carryOut(fault);
    })(),
  ]);
  return records.sort((a, b) => a.startedAt - b.startedAt);
}
