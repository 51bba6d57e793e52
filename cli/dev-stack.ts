import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * The settings of a running `npm run dev`, kept in its git-ignored data folder while it runs
 * (.data/dev-stack.json, readable by its owner only: it holds the API key and the codec token).
 * The operator commands (`npm run verify:ledger`, `npm run reconcile`, `npm run temporal`) read
 * it when the environment names no database or Temporal of its own, so they reach the dev stack
 * with nothing to copy from its banner.
 */

/** Where `npm run dev` keeps it; CREDITS_DEV_STACK_FILE puts it elsewhere (the tests do). */
export function devStackFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.CREDITS_DEV_STACK_FILE || path.resolve(__dirname, '..', '.data', 'dev-stack.json');
}

const devStackSchema = z.object({
  /** The process that runs the stack: the file is stale once it is gone. */
  pid: z.number().int().positive(),
  startedAt: z.string(),
  databaseUrl: z.string().min(1),
  temporal: z.object({
    address: z.string().min(1),
    namespace: z.string().min(1),
    taskQueue: z.string().min(1),
    uiUrl: z.string().nullable(),
  }),
  api: z.object({ url: z.string().min(1), key: z.string() }),
  /** The codec server as the Temporal CLI calls it: the endpoint, and the token for its header. */
  codec: z.object({ endpoint: z.string().min(1), token: z.string() }),
  smtp: z.object({ url: z.string().min(1), inboxUrl: z.string().nullable() }),
});
export type DevStack = z.infer<typeof devStackSchema>;

export type DevStackLookup =
  | { kind: 'running'; stack: DevStack }
  | { kind: 'absent' }
  /** Its process is gone without removing the file (killed outright). */
  | { kind: 'stopped'; pid: number }
  | { kind: 'unreadable'; reason: string };

export function processIsRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, as another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Written whole or not at all (a reader never sees half a file), mode 0600. */
export function writeDevStack(file: string, stack: DevStack): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  rmSync(temporary, { force: true });
  writeFileSync(temporary, `${JSON.stringify(devStackSchema.parse(stack), null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

export function readDevStack(
  file: string = devStackFile(),
  isRunning: (pid: number) => boolean = processIsRunning,
): DevStackLookup {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return code === 'ENOENT' ? { kind: 'absent' } : { kind: 'unreadable', reason: message };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'unreadable', reason: 'not JSON' };
  }
  const parsed = devStackSchema.safeParse(json);
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    return { kind: 'unreadable', reason: `${issue?.path.join('.') || 'the file'}: ${issue?.message ?? ''}` };
  }
  return isRunning(parsed.data.pid)
    ? { kind: 'running', stack: parsed.data }
    : { kind: 'stopped', pid: parsed.data.pid };
}

/** Removes the file when it is this process's, so that a stack stopping never removes another's. */
export function removeDevStack(file: string = devStackFile(), pid: number = process.pid): void {
  const found = readDevStack(file, () => true);
  if (found.kind === 'running' && found.stack.pid === pid) rmSync(file, { force: true });
}

/** The dev stack's settings as the variables the service and its commands read. */
export function devStackVariables(stack: DevStack): Record<string, string> {
  return {
    DATABASE_URL: stack.databaseUrl,
    TEMPORAL_ADDRESS: stack.temporal.address,
    TEMPORAL_NAMESPACE: stack.temporal.namespace,
    TEMPORAL_TASK_QUEUE: stack.temporal.taskQueue,
  };
}

export type OperatorEnvironment = { env: NodeJS.ProcessEnv; stack: DevStack | null } | { error: string };

/**
 * The environment an operator command runs with. When it sets `required` (DATABASE_URL, say),
 * the environment as it is: it names the service to work on. Otherwise the running dev stack's
 * settings fill each variable it leaves unset ("" counts as unset, as in config/env.ts). With
 * neither, an error that says what to do.
 */
export function operatorEnvironment(
  env: NodeJS.ProcessEnv,
  required: 'DATABASE_URL' | 'TEMPORAL_ADDRESS',
  lookup: () => DevStackLookup = () => readDevStack(devStackFile(env)),
): OperatorEnvironment {
  if (env[required]) return { env, stack: null };
  const found = lookup();
  const todo = `start \`npm run dev\` or set ${required}`;
  switch (found.kind) {
    case 'running': {
      const filled: NodeJS.ProcessEnv = { ...env };
      for (const [name, value] of Object.entries(devStackVariables(found.stack))) {
        if (!filled[name]) filled[name] = value;
      }
      return { env: filled, stack: found.stack };
    }
    case 'absent':
      return { error: `no ${required} and no running dev stack: ${todo}` };
    case 'stopped':
      return {
        error: `no ${required} and no running dev stack (the one that wrote ${devStackFile(env)}, pid ${found.pid}, is gone): ${todo}`,
      };
    case 'unreadable':
      return { error: `no ${required}, and ${devStackFile(env)} cannot be read (${found.reason}): ${todo}` };
  }
}
