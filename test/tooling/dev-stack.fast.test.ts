import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  devStackFile,
  operatorEnvironment,
  processIsRunning,
  readDevStack,
  removeDevStack,
  writeDevStack,
  type DevStack,
  type DevStackLookup,
} from '../../cli/dev-stack';
import { temporalCliEnvironment } from '../../scripts/temporal';

const STACK: DevStack = {
  pid: 4242,
  startedAt: '2026-12-01T10:00:00.000Z',
  databaseUrl: 'postgres://postgres:postgres@127.0.0.1:54329/credits',
  temporal: { address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'credits-billing', uiUrl: null },
  api: { url: 'http://127.0.0.1:3000', key: 'dev_api_key_change_me' },
  codec: { endpoint: 'http://127.0.0.1:3000/codec', token: 'dev_codec_token_change_me_0123456789' },
  smtp: { url: 'smtp://127.0.0.1:1025', inboxUrl: 'http://127.0.0.1:1080' },
};
const running: () => DevStackLookup = () => ({ kind: 'running', stack: STACK });

describe('the dev stack settings file', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dev-stack-'));
    file = path.join(dir, '.data', 'dev-stack.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('when the dev stack writes its settings, then only its owner can read them and they read back whole', () => {
    writeDevStack(file, STACK);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readDevStack(file, () => true)).toEqual({ kind: 'running', stack: STACK });
  });

  it('when the process that wrote the file is gone, then the stack reads as stopped, not running', () => {
    writeDevStack(file, STACK);
    expect(readDevStack(file, (pid) => pid !== STACK.pid)).toEqual({ kind: 'stopped', pid: STACK.pid });
  });

  it('when there is no file, then the stack is absent; when it is not the settings, then unreadable', () => {
    expect(readDevStack(file)).toEqual({ kind: 'absent' });
    writeDevStack(file, STACK);
    writeFileSync(file, '{"pid": 1');
    expect(readDevStack(file)).toEqual({ kind: 'unreadable', reason: 'not JSON' });
    writeFileSync(file, JSON.stringify({ ...STACK, databaseUrl: undefined }));
    expect(readDevStack(file)).toMatchObject({
      kind: 'unreadable',
      reason: expect.stringMatching(/^databaseUrl: /),
    });
  });

  it('when a stack stops, then it removes its own file and leaves one another stack wrote', () => {
    writeDevStack(file, STACK);
    removeDevStack(file, STACK.pid + 1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(STACK);
    removeDevStack(file, STACK.pid);
    expect(readDevStack(file)).toEqual({ kind: 'absent' });
  });

  it('when a process has exited, then it is not running; this one is', () => {
    const exited = spawnSync(process.execPath, ['-e', '']);
    expect(processIsRunning(exited.pid ?? 0)).toBe(false);
    expect(processIsRunning(process.pid)).toBe(true);
  });

  it('when CREDITS_DEV_STACK_FILE is set, then the file is there; else in the checkout’s .data', () => {
    expect(devStackFile({ CREDITS_DEV_STACK_FILE: file })).toBe(file);
    expect(devStackFile({})).toBe(path.resolve(__dirname, '..', '..', '.data', 'dev-stack.json'));
  });
});

describe('the environment of an operator command', () => {
  it('when DATABASE_URL is set, then the environment is used as it is and the dev stack is not read', () => {
    const env = { DATABASE_URL: 'postgres://ops@db.example/credits' };
    const lookup = jest.fn(running);
    expect(operatorEnvironment(env, 'DATABASE_URL', lookup)).toEqual({ env, stack: null });
    expect(lookup).not.toHaveBeenCalled();
  });

  it('when DATABASE_URL is unset or empty and the dev stack runs, then its database and Temporal fill what the environment leaves unset', () => {
    for (const DATABASE_URL of [undefined, '']) {
      const result = operatorEnvironment(
        { DATABASE_URL, TEMPORAL_NAMESPACE: 'mine', PATH: '/bin' },
        'DATABASE_URL',
        running,
      );
      expect(result).toEqual({
        stack: STACK,
        env: {
          PATH: '/bin',
          DATABASE_URL: STACK.databaseUrl,
          TEMPORAL_ADDRESS: '127.0.0.1:7233',
          TEMPORAL_NAMESPACE: 'mine',
          TEMPORAL_TASK_QUEUE: 'credits-billing',
        },
      });
    }
  });

  it('when neither DATABASE_URL nor a dev stack is there, then the error says to start one or set it', () => {
    expect(operatorEnvironment({}, 'DATABASE_URL', () => ({ kind: 'absent' }))).toEqual({
      error: 'no DATABASE_URL and no running dev stack: start `npm run dev` or set DATABASE_URL',
    });
  });

  it('when the dev stack that wrote the file is gone, then the error names the file and its process', () => {
    const env = { CREDITS_DEV_STACK_FILE: '/tmp/x/dev-stack.json' };
    expect(operatorEnvironment(env, 'TEMPORAL_ADDRESS', () => ({ kind: 'stopped', pid: 77 }))).toEqual({
      error:
        'no TEMPORAL_ADDRESS and no running dev stack (the one that wrote /tmp/x/dev-stack.json, pid 77, is gone): start `npm run dev` or set TEMPORAL_ADDRESS',
    });
    expect(
      operatorEnvironment(env, 'DATABASE_URL', () => ({ kind: 'unreadable', reason: 'not JSON' })),
    ).toEqual({
      error:
        'no DATABASE_URL, and /tmp/x/dev-stack.json cannot be read (not JSON): start `npm run dev` or set DATABASE_URL',
    });
  });
});

describe('the Temporal CLI environment of `npm run temporal`', () => {
  it('when the dev stack runs, then the CLI gets its address, namespace and codec server, and what the user set stays', () => {
    expect(
      temporalCliEnvironment({ TEMPORAL_CODEC_AUTH: 'Bearer mine', TEMPORAL_NAMESPACE: '' }, STACK),
    ).toEqual({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_CODEC_ENDPOINT: 'http://127.0.0.1:3000/codec',
      TEMPORAL_CODEC_AUTH: 'Bearer mine',
    });
  });
});
