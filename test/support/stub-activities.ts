import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';

type AnyActivity = (...args: any[]) => Promise<unknown>;
type ActivitiesOf<T> = { [K in keyof T]: T[K] extends AnyActivity ? T[K] : never };

/** The stubs one run was given, and what it called. */
export interface StubbedRun<T> {
  /** The inputs of every call (each attempt) of one activity, in order. */
  calls<K extends keyof T & string>(name: K): Parameters<ActivitiesOf<T>[K]>[0][];
  /** The names of the activities called, in order (each attempt). */
  names(): string[];
}

/**
 * Stub activities for workflow logic without services: a test gives each run (by workflow ID) a
 * plain object of stubs under its room's activity names (`Partial` of the room's factory result,
 * so a misspelled name does not compile), and every call is recorded with its input. The worker
 * of a test file registers `activities` once: the SDK's catch-all `default` activity, which hands
 * each call to the stub of its run. An activity without a stub fails at once (non-retryable).
 */
export class StubActivities<T> {
  private readonly runs = new Map<
    string,
    { stubs: Partial<ActivitiesOf<T>>; log: { name: string; input: unknown }[] }
  >();

  readonly activities = {
    default: async (...args: unknown[]): Promise<unknown> => {
      const { activityType, workflowExecution } = Context.current().info;
      const run = workflowExecution ? this.runs.get(workflowExecution.workflowId) : undefined;
      if (!run) throw ApplicationFailure.nonRetryable(`no stubs for ${activityType}'s run`);
      run.log.push({ name: activityType, input: args[0] });
      const stub = (run.stubs as Record<string, AnyActivity | undefined>)[activityType];
      if (!stub) throw ApplicationFailure.nonRetryable(`the test gives ${activityType} no stub`);
      return stub(...args);
    },
  };

  /** The stubs of the run with this workflow ID (and of its continuations). */
  forRun(workflowId: string, stubs: Partial<ActivitiesOf<T>>): StubbedRun<T> {
    const run = { stubs, log: [] as { name: string; input: unknown }[] };
    this.runs.set(workflowId, run);
    return {
      calls: (name) => run.log.filter((call) => call.name === name).map((call) => call.input as never),
      names: () => run.log.map((call) => call.name),
    };
  }
}
