/** A mistake in a command's arguments: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {}

/** Whether an error is a mistake in the arguments: ours, or one `node:util` parseArgs found. */
export function isUsageMistake(error: unknown): error is Error {
  return (
    error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true
  );
}
