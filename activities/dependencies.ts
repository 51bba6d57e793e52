import type { Sql } from '../db/client';
import type { InvoicePaymentLookup } from './invoice-payments';
import type { Mailer } from './mailer';

/** What the activities may ask of Temporal itself. */
export interface WorkflowDirectory {
  /** Whether the workflow with this ID has a run still open. */
  isRunning(workflowId: string): Promise<boolean>;
}

/** What every activity factory receives: real services in the worker and in the tests alike. */
export interface ActivityDependencies {
  sql: Sql;
  mailer: Mailer;
  /** Null without a Stripe key: payments then match purchases only by what events carry. */
  invoicePayments: InvoicePaymentLookup | null;
  workflows: WorkflowDirectory;
  config: {
    stripe: { livemode: boolean };
    emailDomain: string;
    outbox: { sweepAfterMs: number; giveUpAfterMs: number };
  };
}
