import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** The application failure an activity failed with (its type says which), when it is one. */
export function applicationFailureOf(error: unknown): ApplicationFailure | null {
  // A regular activity's failure comes wrapped in an ActivityFailure; a local activity's does not.
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure ? cause : null;
}
