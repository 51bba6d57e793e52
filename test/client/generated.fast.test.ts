import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

// The client is typed by files generated from the route declarations: a route changed without
// regenerating them would leave the client describing an API that no longer exists.
describe('the typed client (client/)', () => {
  it('when the routes are described again, then the committed openapi.json and schema.ts are what client:generate writes', () => {
    const check = spawnSync(process.execPath, ['--import', 'tsx', 'client/generate.ts', '--check'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    // stderr names the stale files and says to run `npm run client:generate`.
    expect({ status: check.status, stderr: check.stderr }).toEqual({ status: 0, stderr: '' });
  });
});
