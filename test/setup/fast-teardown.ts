import { rmSync } from 'node:fs';

/** Removes the fast tier's workflow bundle. */
export default function fastTeardown(): void {
  const workDir = process.env.FAST_WORK_DIR;
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}
