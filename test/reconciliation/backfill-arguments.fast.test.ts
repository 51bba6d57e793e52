import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseBackfillArguments, UsageError } from '../../cli/reconcile';

/** The window `npm run reconcile` reads, from the times an operator types. */
describe('backfill arguments', () => {
  it('when a backfill names a time without an offset or a day that does not exist, then it is read as UTC or refused', () => {
    const now = Date.UTC(2026, 11, 20) / 1000;
    // The operator's machine is not on UTC: the window must not move with it.
    const parse = `import { parseBackfillArguments } from ${JSON.stringify(path.join(__dirname, '..', '..', 'cli', 'reconcile'))};
      console.log(JSON.stringify(parseBackfillArguments(['--since', '2026-11-20T10:00', '--until', '2026-11-21'], ${now})));`;
    const cli = spawnSync(path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'), ['-e', parse], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'America/New_York', NODE_ENV: 'test' },
    });
    expect(cli.stderr).toBe('');
    expect(JSON.parse(cli.stdout) as unknown).toMatchObject({
      fromSeconds: Date.UTC(2026, 10, 20, 10) / 1000,
      untilSeconds: Date.UTC(2026, 10, 21) / 1000,
    });
    expect(() => parseBackfillArguments(['--since', '2026-11-31'], now)).toThrow(UsageError);
    expect(() => parseBackfillArguments(['--since', '2026-11-20T24:30Z'], now)).toThrow(UsageError);
  });
});
