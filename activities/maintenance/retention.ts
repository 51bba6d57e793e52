import { Context } from '@temporalio/activity';
import {
  deleteExpiredEmails,
  deleteExpiredOutboundEvents,
  deleteExpiredRejectedEvents,
} from '../../db/maintenance/retention';
import { forgetUsageProperties } from '../../credits';
import type { ActivityDependencies } from '../dependencies';

/** How long finished records are kept (RETENTION_* in the worker's configuration), and how they are deleted. */
export interface RetentionSettings {
  outboundEventsMs: number;
  emailOutboxMs: number;
  rejectedEventsMs: number;
  /** After this a usage event's properties are cleared; the event stays. */
  usagePropertiesMs: number;
  /** Rows deleted per statement (each its own transaction). */
  batchSize: number;
  /** Batches per table per run: a run stays short; the next one goes on where it stopped. */
  maxBatchesPerRun: number;
}

const DAY_MS = 24 * 60 * 60_000;

export const DEFAULT_RETENTION_SETTINGS: RetentionSettings = {
  outboundEventsMs: 90 * DAY_MS,
  emailOutboxMs: 180 * DAY_MS,
  rejectedEventsMs: 90 * DAY_MS,
  usagePropertiesMs: 90 * DAY_MS,
  batchSize: 1000,
  maxBatchesPerRun: 20,
};

/** What one run deleted, per table. */
export interface RetentionResult {
  outboundEvents: number;
  emails: number;
  rejectedEvents: number;
  /** Usage events whose properties were cleared (absent from runs before usage). */
  usageProperties?: number;
}

/** What the retention sweep uses: the database and its settings (the defaults when absent). */
export type RetentionActivityDependencies = Pick<ActivityDependencies, 'sql'> & {
  config: Pick<ActivityDependencies['config'], 'retention'>;
};

// Heartbeats when run as an activity; a direct call (a test) has no context to beat.
function beat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not inside an activity
  }
}

/** The retention sweep of the maintenance schedule: its own activity, apart from the other steps. */
export function createRetentionActivities<D extends RetentionActivityDependencies>(deps: D) {
  const { sql } = deps;
  const settings = deps.config.retention ?? DEFAULT_RETENTION_SETTINGS;

  /** Deletes batch after batch until one comes back short or the run's bound is reached. */
  async function drain(table: string, deleteBatch: () => Promise<number>): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < settings.maxBatchesPerRun; batch += 1) {
      const deleted = await deleteBatch();
      total += deleted;
      beat({ table, total });
      if (deleted < settings.batchSize) break;
    }
    return total;
  }

  return {
    /**
     * Deletes outbound events, emails and rejected events older than their retention, never one
     * still pending delivery or sending, and clears the properties of usage events past theirs.
     * Idempotent: a retry deletes what is left.
     */
    async deleteExpiredRecords(): Promise<RetentionResult> {
      const { batchSize } = settings;
      return {
        outboundEvents: await drain('outbound_events', () =>
          deleteExpiredOutboundEvents(sql, settings.outboundEventsMs, batchSize),
        ),
        emails: await drain('email_outbox', () =>
          deleteExpiredEmails(sql, settings.emailOutboxMs, batchSize),
        ),
        rejectedEvents: await drain('rejected_events', () =>
          deleteExpiredRejectedEvents(sql, settings.rejectedEventsMs, batchSize),
        ),
        usageProperties: await drain('usage_events', () =>
          forgetUsageProperties(sql, Math.floor(settings.usagePropertiesMs / 1000), batchSize),
        ),
      };
    },
  };
}
